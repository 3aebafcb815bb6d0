"""Sum up where one kernel launch's warps stall, from the per-instruction
source page that `ncu -i REPORT --page source --csv --print-source sass`
writes (bench/probe_on_device.sh FK_NCU_SASS): samples by stall reason, by
opcode, by region of the kernel (between labels you name by address), and
the top instructions. With --against, the difference from another launch's
profile (e.g. the baseline tree's, FK_NCU_SASS's `baseline` token): each
reason and opcode as a share of the other launch's samples, so the
difference column says where the extra warp time went; and the time warps
spent waiting on each mbarrier (the SYNCS.PHASECHK try-wait and its retry
branch), by barrier address.

  python3 bench/sass_stalls.py sass_case.csv [--top=N] [--against=other.csv]
"""
import collections
import csv
import re
import sys


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    head = next(i for i, r in enumerate(rows) if r and r[0] == "Address")
    cols = rows[head]
    out = []
    for r in rows[head + 1:]:
        if len(r) != len(cols):
            continue
        out.append(dict(zip(cols, r)))
    return cols, out


def num(s):
    try:
        return float(s.replace(",", ""))
    except (ValueError, AttributeError):
        return 0.0


def opcode(src):
    m = re.match(r"\s*(@!?U?P\w+\s+)?([A-Z0-9_]+(\.[A-Z0-9_]+)*)", src)
    return m.group(2) if m else src.strip()[:20]


SAMPLES = "Warp Stall Sampling (All Samples)"


def totals(cols, rows):
    """Samples in all, by stall reason, by opcode, and on each mbarrier wait."""
    reasons = [c for c in cols if c.startswith("stall_") and "(Not Issued)" not in c]
    by_reason, by_op, waits = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0.0
    for i, r in enumerate(rows):
        s = num(r[SAMPLES])
        total += s
        by_op[opcode(r["Source"]).split(".")[0]] += s
        for c in reasons:
            by_reason[c] += num(r[c])
        m = re.search(r"SYNCS\.PHASECHK\S*\s+\w+, \[([^\]]*)\]", r["Source"])
        if m:  # the try-wait and the branch that retries it
            off = re.search(r"0x[0-9a-f]+$", m.group(1))
            nxt = num(rows[i + 1][SAMPLES]) if i + 1 < len(rows) else 0.0
            waits[off.group(0) if off else m.group(1)] += s + nxt
    return total, by_reason, by_op, waits


def compare(path, other):
    a, b = totals(*load(path)), totals(*load(other))
    base = b[0]
    print(f"{path} against {other}: samples {a[0]:.0f} / {b[0]:.0f} ({100 * (a[0] / base - 1):+.1f}%)")
    for title, i, n in (("reason", 1, 20), ("opcode", 2, 18), ("mbarrier wait at", 3, 8)):
        print(f"by {title} (% of the other's samples: this, other, difference):")
        keys = sorted(set(a[i]) | set(b[i]), key=lambda k: -abs(a[i][k] - b[i][k]))[:n]
        for k in keys:
            if a[i][k] or b[i][k]:
                print(f"  {k:24s} {100 * a[i][k] / base:5.1f} {100 * b[i][k] / base:5.1f} "
                      f"{100 * (a[i][k] - b[i][k]) / base:+5.1f}")


def main():
    path = sys.argv[1]
    top = int(next((a.split("=")[1] for a in sys.argv[2:] if a.startswith("--top=")), 30))
    other = next((a.split("=", 1)[1] for a in sys.argv[2:] if a.startswith("--against=")), None)
    if other:
        return compare(path, other)
    cols, rows = load(path)
    reasons = [c for c in cols if c.startswith("stall_") and "(Not Issued)" not in c]
    total = sum(num(r["Warp Stall Sampling (All Samples)"]) for r in rows)
    print(f"{path}: {len(rows)} instructions, {total:.0f} samples")
    by_reason = collections.Counter()
    for r in rows:
        for c in reasons:
            by_reason[c] += num(r[c])
    print("by reason (% of samples):")
    for c, v in by_reason.most_common():
        if v:
            print(f"  {c:24s} {100 * v / total:5.1f}")
    by_op = collections.Counter()
    for r in rows:
        by_op[opcode(r["Source"]).split(".")[0]] += num(r["Warp Stall Sampling (All Samples)"])
    print("by opcode (% of samples):")
    for op, v in by_op.most_common(15):
        print(f"  {op:14s} {100 * v / total:5.1f}")
    print(f"top {top} instructions (% of samples, top reasons):")
    for r in sorted(rows, key=lambda r: -num(r["Warp Stall Sampling (All Samples)"]))[:top]:
        s = num(r["Warp Stall Sampling (All Samples)"])
        why = sorted(((num(r[c]), c[6:]) for c in reasons), reverse=True)[:3]
        why = ", ".join(f"{w} {100 * v / total:.1f}" for v, w in why if v)
        print(f"  {r['Address']:>6s} {100 * s / total:5.1f}  {r['Source'].strip()[:60]:60s} {why}")


if __name__ == "__main__":
    main()
