"""flashkmeans.Kmeans against faiss.Kmeans (PyPI faiss-cpu) on the same
data, seed and parameters: every iteration's objective agrees."""

import numpy as np
import pytest

import flashkmeans

faiss = pytest.importorskip("faiss")

CASES = [
    dict(niter=10),
    dict(niter=8, seed=7, nredo=2),
    dict(niter=8, spherical=True),
    dict(niter=8, max_points_per_centroid=64),  # subsampling with Faiss's permutation
    dict(niter=5, int_centroids=True),
]


@pytest.mark.parametrize("kwargs", CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_objective_matches_faiss(data, kwargs):
    k = 32
    ours = flashkmeans.Kmeans(data.shape[1], k, gpu=False, **kwargs)
    theirs = faiss.Kmeans(data.shape[1], k, **kwargs)
    assert ours.train(data) == pytest.approx(theirs.train(data), rel=1e-4)
    # Faiss >= 1.14 stops once the objective repeats (early_stop_threshold=0,
    # also our default): both stop at the same iteration.
    np.testing.assert_allclose(ours.obj, theirs.obj, rtol=1e-4)
    assert set(ours.iteration_stats[0]) == set(theirs.iteration_stats[0])
    # a boundary point rounded the other way moves its two centroids a little
    close = np.isclose(ours.centroids, theirs.centroids, rtol=1e-3, atol=1e-3).all(axis=1)
    assert close.mean() >= 0.8


def test_weights_and_init_centroids_match_faiss(data):
    rs = np.random.RandomState(1)
    w = rs.uniform(0.5, 2, len(data)).astype(np.float32)
    init = data[rs.choice(len(data), 32, replace=False)]
    ours = flashkmeans.Kmeans(16, 32, niter=6, gpu=False)
    theirs = faiss.Kmeans(16, 32, niter=6)
    assert ours.train(data, weights=w, init_centroids=init) == pytest.approx(
        theirs.train(data, weights=w, init_centroids=init), rel=1e-4)


def test_assign_matches_faiss(data):
    ours = flashkmeans.Kmeans(16, 32, niter=5, gpu=False)
    ours.train(data)
    D, I = ours.assign(data[:500])
    index = faiss.IndexFlatL2(16)
    index.add(ours.centroids)
    D2, I2 = index.search(data[:500], 1)
    np.testing.assert_array_equal(I, I2.ravel())
    np.testing.assert_allclose(D, D2.ravel(), rtol=1e-4, atol=1e-3)
    assert I.dtype == np.int64 and D.dtype == np.float32 and D.shape == (500,)
    assert isinstance(ours.index.to_faiss(), faiss.IndexFlatL2)
    assert ours.index.ntotal == 32
