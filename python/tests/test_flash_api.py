"""The flash-kmeans-compatible API on numpy arrays (and torch CPU tensors
when torch is installed)."""

import numpy as np
import pytest

import flashkmeans
from flashkmeans import FlashKMeans, batch_kmeans_Cosine, batch_kmeans_Dot, batch_kmeans_Euclid


@pytest.mark.parametrize("fn", [batch_kmeans_Euclid, batch_kmeans_Cosine, batch_kmeans_Dot])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_batch_functions(batch, fn, dtype):
    x = batch.astype(dtype)
    ids, centroids, n_iter = fn(x, 10, max_iters=5, device="cpu")
    assert ids.shape == (3, 2000) and ids.dtype == np.int64
    assert centroids.shape == (3, 10, 8) and centroids.dtype == dtype
    assert n_iter == 5
    assert ids.min() >= 0 and ids.max() < 10
    if fn is not batch_kmeans_Euclid:  # unit-norm centroids
        np.testing.assert_allclose(np.linalg.norm(centroids.astype(np.float32), axis=-1), 1,
                                   atol=1e-2)


def test_batch_matches_single_problems(batch):
    """Problem b of a batch is the same fit as b alone; labels are the
    nearest final centroid."""
    ids, centroids, _ = batch_kmeans_Euclid(batch, 10, max_iters=5, seed=3, device="cpu")
    for b in range(3):
        km = flashkmeans.Kmeans(8, 10, niter=5, seed=3, max_points_per_centroid=256, gpu=False)
        km.train(batch[b])
        np.testing.assert_allclose(centroids[b], km.centroids, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(ids[b], km.assign(batch[b])[1])


def test_init_centroids_and_tol_warning(batch):
    init = batch[:, :10].copy()
    with pytest.warns(RuntimeWarning, match="early stopping"):
        _, c, _ = batch_kmeans_Euclid(batch, 10, max_iters=0, tol=0.1, init_centroids=init,
                                      device="cpu")
    np.testing.assert_array_equal(c, init)


def test_flashkmeans_class(batch):
    model = FlashKMeans(d=8, k=10, niter=5, device="cpu")
    assert model.fit(batch[0]) is model
    labels = model.predict(batch[0])
    assert labels.shape == (2000,)
    np.testing.assert_array_equal(model.fit_predict(batch[0]), labels)
    batched = FlashKMeans(d=8, k=10, niter=5, device="cpu").fit(batch)
    assert batched.predict(batch).shape == (3, 2000)
    with pytest.raises(ValueError, match="trained with batch size B=3"):
        batched.predict(batch[0])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(device="tpu"), ValueError, "device: expected"),
    (dict(dtype="int8"), TypeError, "dtype: expected"),
])
def test_flashkmeans_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        FlashKMeans(8, 10, **kwargs)


def test_flash_shapes_checked(batch):
    with pytest.raises(ValueError, match=r"expected shape \(B, n, d\)"):
        batch_kmeans_Euclid(batch[0], 10)
    with pytest.raises(RuntimeError, match="Model not trained"):
        FlashKMeans(8, 10).predict(batch[0])
    with pytest.raises(ValueError, match="dimension 8 differs from d = 4"):
        FlashKMeans(4, 10).fit(batch)


def test_torch_cpu_tensors(batch):
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(batch)
    ids, centroids, _ = batch_kmeans_Euclid(x, 10, max_iters=3, device="cpu")
    assert isinstance(ids, torch.Tensor) and ids.dtype == torch.int64
    assert isinstance(centroids, torch.Tensor) and centroids.shape == (3, 10, 8)
    ref_ids, ref_c, _ = batch_kmeans_Euclid(batch, 10, max_iters=3, device="cpu")
    np.testing.assert_array_equal(ids.numpy(), ref_ids)
    assert flashkmeans._flashkmeans.view_info(x)["data"] == x.data_ptr()
    with pytest.raises(TypeError, match="float64"):
        batch_kmeans_Euclid(x.double(), 10)
