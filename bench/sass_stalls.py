"""Sum up where one kernel launch's warps stall, from the per-instruction
source page that `ncu -i REPORT --page source --csv --print-source sass`
writes (bench/probe_on_device.sh FK_NCU_SASS): samples by stall reason, by
opcode, by region of the kernel (between labels you name by address), and
the top instructions.

  python3 bench/sass_stalls.py sass_case.csv [--top N]
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


def main():
    path = sys.argv[1]
    top = int(next((a.split("=")[1] for a in sys.argv[2:] if a.startswith("--top=")), 30))
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
