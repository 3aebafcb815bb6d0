"""Faiss's own wheel and flashkmeans in one process; training faiss-python
indexes with the engine."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import flashkmeans

faiss = pytest.importorskip("faiss")


def test_exports_only_the_module_init():
    """No Faiss, BLAS or engine symbol leaks out to bind to faiss-cpu's."""
    so = next(Path(flashkmeans.__file__).resolve().parent.glob("_flashkmeans*.so"), None) \
        or next(Path(flashkmeans.__file__).parent.glob("_flashkmeans*.so"))
    out = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True,
                         text=True, check=True).stdout
    functions = [line.split()[-1] for line in out.splitlines() if line.split()[1] in "TtWi"]
    assert functions == ["PyInit__flashkmeans"], functions


@pytest.mark.parametrize("first", ["faiss", "flashkmeans"])
def test_both_in_one_process(first):
    """Either import order; both libraries work side by side."""
    second = "flashkmeans" if first == "faiss" else "faiss"
    code = f"""
import {first}, {second}
import numpy as np
x = np.random.RandomState(0).randn(3000, 8).astype("float32")
a = faiss.Kmeans(8, 16, niter=5); fa = a.train(x)
b = flashkmeans.Kmeans(8, 16, niter=5, gpu=False); fb = b.train(x)
assert abs(fa - fb) <= 1e-4 * fa, (fa, fb)
index = faiss.IndexFlatL2(8); index.add(b.centroids); index.search(x[:10], 1)
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def _recall(index, xb, xq, gt):
    index.add(xb)
    _, found = index.search(xq, 1)
    return (found.ravel() == gt).mean()


@pytest.mark.parametrize("factory", ["IVF32,Flat", "IVF16,PQ4", "PQ4", "IVF16,SQ8", "PCA8,IVF16,Flat"])
def test_train_faiss_index(factory):
    rs = np.random.RandomState(0)
    xb = rs.randn(6000, 16).astype(np.float32)
    xq = xb[:100]
    gt = np.arange(100)
    ref = faiss.index_factory(16, factory)
    ref.train(xb)
    ours = faiss.index_factory(16, factory)
    assert flashkmeans.train_faiss_index(ours, xb, gpu=False) is not None
    assert ours.is_trained
    assert _recall(ours, xb, xq, gt) >= _recall(ref, xb, xq, gt) - 0.05
    ivf = faiss.try_extract_index_ivf(ours) if hasattr(faiss, "try_extract_index_ivf") else None
    if ivf is not None and ivf.d == xb.shape[1]:  # not behind a transform
        # the coarse centroids are exactly flashkmeans.Kmeans's with the IVF's parameters
        km = flashkmeans.Kmeans(16, ivf.nlist, niter=ivf.cp.niter, seed=ivf.cp.seed, gpu=False)
        km.train(xb)
        quantizer = faiss.downcast_index(ivf.quantizer)
        np.testing.assert_allclose(quantizer.reconstruct_n(0, ivf.nlist), km.centroids, atol=1e-5)


def _inverted_lists(index):
    """{list number: (ids, codes)} of an IVF index, read through faiss-python."""
    ivf = faiss.extract_index_ivf(index)
    inv = ivf.invlists
    out = {}
    for j in range(ivf.nlist):
        n = inv.list_size(j)
        if n:
            ids = faiss.rev_swig_ptr(inv.get_ids(j), n).copy()
            codes = faiss.rev_swig_ptr(inv.get_codes(j), n * inv.code_size).copy()
            out[j] = (ids, codes.reshape(n, inv.code_size))
    return out


def _trained(description, d, metric, x, rng):
    """index_factory(description) made trained without Faiss's k-means (its
    PQ training takes ~10 s at this size here; these tests are about add):
    coarse centroids from random rows, random PQ codebooks, transforms trained."""
    index = faiss.index_factory(d, description, metric)
    top = faiss.downcast_index(index)
    if isinstance(top, faiss.IndexPreTransform):
        for i in range(top.chain.size()):
            top.chain.at(i).train(x)
            x = top.chain.at(i).apply(x)
        top.is_trained = True
        top = faiss.downcast_index(top.index)
    if isinstance(top, faiss.IndexIVF):
        quantizer = faiss.downcast_index(top.quantizer)
        quantizer.add(x[rng.choice(len(x), top.nlist, replace=False)])
        assign = quantizer.assign(x, 1).ravel()
        if getattr(top, "by_residual", False):
            x = x - quantizer.reconstruct_n(0, top.nlist)[assign]
    pq = getattr(top, "pq", None)
    if pq is not None:  # random codewords at the data's scale (rows could repeat: ties)
        books = rng.randn(pq.M, pq.ksub, pq.dsub) * x.std(0).reshape(pq.M, 1, pq.dsub)
        faiss.copy_array_to_vector(books.astype("float32").ravel(), pq.centroids)
    sq = getattr(top, "sq", None)
    if sq is not None:
        sq.train(x)
    top.is_trained = True
    if isinstance(top, faiss.IndexIVFPQ):
        top.precompute_table()
    return index


@pytest.mark.parametrize("description, metric, with_ids", [
    ("IVF37,PQ6", faiss.METRIC_L2, False),          # by_residual, 8-bit codes: add_sa_codes
    ("IVF37,PQ6", faiss.METRIC_INNER_PRODUCT, True),
    ("IVF37,PQ6x6", faiss.METRIC_L2, False),        # 6-bit codes: lists only, add_core
    ("IVF37,Flat", faiss.METRIC_L2, True),
    ("IVF37,SQ8", faiss.METRIC_L2, False),
    ("PCA16,IVF37,PQ4", faiss.METRIC_L2, False),    # transform applied first
    ("PQ6", faiss.METRIC_L2, False),                # not IVF: Faiss's own add
])
def test_add_matches_faiss_add(description, metric, with_ids):
    """Same lists, ids and (but for exact ties) codes as Faiss's add, added in
    two calls; the same search results."""
    seed = np.random.SeedSequence().entropy % (2 ** 32)
    rng = np.random.RandomState(seed)
    d, n = 24, 2500
    centers = rng.randn(50, d).astype("float32") * 3
    x = (centers[rng.randint(0, 50, n)] + rng.randn(n, d)).astype("float32")
    ids = rng.permutation(10 * n)[:n].astype("int64") if with_ids else None
    ref = _trained(description, d, metric, x, rng)
    ours = faiss.deserialize_index(faiss.serialize_index(ref))  # the same trained index
    if with_ids:
        ref.add_with_ids(x, ids)
        flashkmeans.add_to_faiss_index(ours, x[:1001], ids[:1001], gpu=False)
        flashkmeans.add_to_faiss_index(ours, x[1001:], ids[1001:], gpu=False)
    else:
        ref.add(x)
        flashkmeans.add_to_faiss_index(ours, x[:1001], gpu=False)
        flashkmeans.add_to_faiss_index(ours, x[1001:], gpu=False)
    assert ours.ntotal == ref.ntotal == n, seed
    q = (x[rng.randint(0, n, 200)] + 0.01 * rng.randn(200, d)).astype("float32")
    if "IVF" in description:
        faiss.extract_index_ivf(ours).nprobe = faiss.extract_index_ivf(ref).nprobe = 37
        a, b = _inverted_lists(ours), _inverted_lists(ref)
        moved = sum(abs(len(a.get(j, ([],))[0]) - len(b.get(j, ([],))[0])) for j in set(a) | set(b))
        assert moved <= 2, (seed, moved)  # a list number differs only on an exact tie
        same_codes = total = 0
        for j in set(a) & set(b):
            if len(a[j][0]) == len(b[j][0]):
                assert np.array_equal(a[j][0], b[j][0]), seed
                same_codes += int(np.all(a[j][1] == b[j][1], axis=1).sum())
                total += len(a[j][0])
        assert same_codes >= 0.999 * total, (seed, same_codes, total)
    _, la = ours.search(q, 10)
    _, lb = ref.search(q, 10)
    assert np.mean(la == lb) >= 0.99, seed


def test_add_errors():
    index = faiss.index_factory(8, "IVF4,PQ2")
    with pytest.raises(RuntimeError, match="not trained"):
        flashkmeans.add_to_faiss_index(index, np.zeros((10, 8), "float32"))
    x = np.random.RandomState(1).randn(500, 8).astype("float32")
    index = _trained("IVF4,PQ2", 8, faiss.METRIC_L2, x, np.random.RandomState(2))
    with pytest.raises(ValueError, match="ids: expected shape"):
        flashkmeans.add_to_faiss_index(index, x, np.arange(3))
