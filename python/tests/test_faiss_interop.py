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
