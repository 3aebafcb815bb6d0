"""GPU paths with torch (and cupy when installed): zero copies, results on
the input's device. Skipped without a CUDA GPU, a CUDA build and torch."""

import numpy as np
import pytest

import flashkmeans
from flashkmeans import _flashkmeans

pytestmark = pytest.mark.gpu


@pytest.fixture
def torch():
    import torch
    return torch


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_torch_cuda_zero_copy(torch, batch, dtype):
    x = torch.from_numpy(batch).to("cuda", getattr(torch, dtype))
    info = _flashkmeans.view_info(x)
    assert info["data"] == x.data_ptr() and "cuda:0" in info["describe"]
    ids, centroids, n_iter = flashkmeans.batch_kmeans_Euclid(x, 10, max_iters=5)
    assert ids.device == x.device and centroids.device == x.device
    assert centroids.dtype == x.dtype and n_iter == 5
    # the engine read x in place: a column-sliced view is not copied either
    view = x[:, :, 2:6]
    assert _flashkmeans.view_info(view)["data"] == view.data_ptr()


def test_torch_cuda_matches_cpu(torch, data):
    x = torch.from_numpy(data).cuda()
    gpu = flashkmeans.Kmeans(16, 32, niter=10, gpu=True, precision="exact")
    cpu = flashkmeans.Kmeans(16, 32, niter=10, gpu=False)
    assert gpu.train(x) == pytest.approx(cpu.train(data), rel=1e-4)
    D, I = gpu.assign(x)
    assert I.device == x.device and D.dtype == torch.float32
    assert (I.cpu().numpy() == cpu.assign(data)[1]).mean() > 0.999


def test_flashkmeans_class_on_cuda(torch, batch):
    x = torch.from_numpy(batch).cuda()
    model = flashkmeans.FlashKMeans(d=8, k=10, niter=5).fit(x)
    labels = model.predict(x)
    assert labels.device == x.device and labels.shape == (3, 2000)


def test_cupy_zero_copy(batch):
    cupy = pytest.importorskip("cupy")
    x = cupy.asarray(batch)
    assert _flashkmeans.view_info(x)["data"] == x.data.ptr
    ids, centroids, _ = flashkmeans.batch_kmeans_Cosine(x, 10, max_iters=3)
    assert isinstance(ids, cupy.ndarray) and isinstance(centroids, cupy.ndarray)


@pytest.mark.parametrize("d, k, deterministic", [(48, 40, False), (4, 64, True)])
def test_fits_repeat_bit_for_bit(d, k, deterministic):
    # The update sums in a fixed order (always for d = 48; for a small
    # codebook, d = 4, with deterministic=True), so two fits of the same data
    # give the same centroids bit for bit; and a fit streamed from host
    # memory under a small device budget gives the in-memory ones.
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((40, d)) * 4)[rng.integers(0, 40, 20000)]
    x = (x + rng.standard_normal(x.shape) * 0.5).astype(np.float32)
    kw = dict(niter=6, gpu=True, precision="exact", deterministic=deterministic,
              max_points_per_centroid=0)
    runs = []
    for budget in (0, 0, 1 << 20):
        km = flashkmeans.Kmeans(d, k, device_memory_budget=budget, **kw)
        km.train(x)
        runs.append(km.centroids.copy())
    assert runs[0].tobytes() == runs[1].tobytes()
    assert runs[0].tobytes() == runs[2].tobytes()
