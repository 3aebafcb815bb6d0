"""Every documented keyword is accepted; bad keywords, values, dtypes and
shapes fail with an error that names the problem."""

import dataclasses

import numpy as np
import pytest

import flashkmeans
from flashkmeans import ClusteringParameters

VALID = {  # one non-default value per documented keyword
    "niter": 3, "nredo": 2, "verbose": False, "spherical": True, "int_centroids": True,
    "update_index": True, "frozen_centroids": False, "min_points_per_centroid": 1,
    "max_points_per_centroid": 100, "seed": 99, "decode_block_size": 1024,
    "check_input_data_for_NaNs": False, "use_faster_subsampling": False, "init_method": 0,
    "afkmc2_chain_length": 10, "early_stop_threshold": 0.1, "use_super_kmeans": False,
    "precision": "exact", "gpu_id": 0, "device_memory_budget": 1 << 20,
    "faiss_blas_blocking": True, "deterministic": True, "progress": False,
}


def test_every_field_is_listed_here():
    assert set(VALID) == set(ClusteringParameters.names())


@pytest.mark.parametrize("name", sorted(VALID))
def test_keyword_accepted(data, name):
    km = flashkmeans.Kmeans(16, 8, gpu=False, **{name: VALID[name]})
    assert getattr(km.cp, name) == VALID[name]
    km.train(data[:2000])
    assert km.centroids.shape == (8, 16)


def test_deterministic_reaches_the_engine():
    assert flashkmeans.Kmeans(16, 8, deterministic=True)._params().deterministic
    assert not flashkmeans.Kmeans(16, 8)._params().deterministic


def test_early_stop_threshold(data):
    # 0 (the default, as Faiss >= 1.14): stop once the objective repeats;
    # negative: always run niter iterations (Faiss 1.7).
    stops = flashkmeans.Kmeans(16, 8, niter=200, gpu=False)
    stops.train(data[:2000])
    assert 2 <= len(stops.obj) < 200 and stops.obj[-1] == stops.obj[-2]
    runs_all = flashkmeans.Kmeans(16, 8, niter=60, gpu=False, early_stop_threshold=-1)
    runs_all.train(data[:2000])
    assert len(runs_all.obj) == 60


@pytest.mark.parametrize("gpu", [False, 0, None])
def test_gpu_values_without_gpu(data, gpu):
    km = flashkmeans.Kmeans(16, 8, niter=2, gpu=gpu)
    km.train(data[:1000])


@pytest.mark.parametrize("gpu, devices, count", [
    (None, "automatic", 0), (True, "cuda", 0), (-1, "cuda", 0), (1, "cuda", 1), (3, "cuda", 3),
    (False, "cpu", 0),
])
def test_gpu_argument_as_faiss(gpu, devices, count):
    # faiss: gpu=True/-1 every GPU, gpu=n that many (host data is split over them)
    p = flashkmeans.Kmeans(16, 8, gpu=gpu)._params()
    assert p.device.name == devices
    if devices != "cpu":
        assert p.num_gpus == count


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(nitr=5), TypeError, "unexpected keyword argument 'nitr'"),
    (dict(init_method=1), ValueError, "init_method=1 is not supported"),
    (dict(use_faster_subsampling=True), ValueError, "use_faster_subsampling"),
    (dict(use_super_kmeans=True), ValueError, "use_super_kmeans"),
    (dict(progressive_dim_steps=4), ValueError, "progressive_dim_steps"),
    (dict(gpu="yes"), ValueError, "gpu: expected"),
    (dict(gpu=-3), ValueError, "gpu: expected"),
    (dict(precision="fp8"), ValueError, "precision: expected one of"),
    (dict(niter="ten"), TypeError, "niter: expected int"),
])
def test_bad_constructor_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        flashkmeans.Kmeans(16, 8, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(niter=-1), "niter: must be >= 0"),
    (dict(nredo=0), "nredo: must be >= 1"),
])
def test_bad_values_rejected_by_engine(data, kwargs, match):
    with pytest.raises(flashkmeans.Error, match=match):
        flashkmeans.Kmeans(16, 8, gpu=False, **kwargs).train(data[:1000])


def test_gpu_requested_without_gpu(data):
    if flashkmeans.cuda_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(flashkmeans.Error, match="cuda"):
        flashkmeans.Kmeans(16, 8, gpu=True).train(data[:1000])


def test_k_larger_than_n(data):
    with pytest.raises(flashkmeans.Error, match=r"number of training points \(10\) must be at least"):
        flashkmeans.Kmeans(16, 20, gpu=False).train(data[:10])


@pytest.mark.parametrize("dtype", [np.int32, np.float64])
def test_numpy_converted_like_faiss(data, dtype):
    km = flashkmeans.Kmeans(16, 8, niter=3, gpu=False)
    ref = flashkmeans.Kmeans(16, 8, niter=3, gpu=False)
    x = (data[:2000] * 10).astype(dtype)
    assert km.train(x) == pytest.approx(ref.train(x.astype(np.float32)), rel=1e-5)


def test_float16_read_in_place(data):
    km = flashkmeans.Kmeans(16, 8, niter=3, gpu=False)
    assert km.train(data[:2000].astype(np.float16)) > 0


@pytest.mark.parametrize("x, error, match", [
    (np.zeros((100, 16), dtype=np.complex64), TypeError, "x: dtype complex64 is not supported"),
    (np.zeros((100, 16), dtype=bool), TypeError, "x: dtype bool is not supported"),
    (np.zeros((100, 4, 4), dtype=np.float32), ValueError, r"x: expected shape \(n, d\)"),
    (np.zeros(100, dtype=np.float32), ValueError, r"x: expected shape \(n, d\)"),
    (np.zeros((100, 15), dtype=np.float32), ValueError, "x: dimension 15 differs from d = 16"),
    (np.zeros((100, 16), dtype=np.float32)[::-1], ValueError, "negative strides"),
])
def test_bad_input_arrays(x, error, match):
    with pytest.raises(error, match=match):
        flashkmeans.Kmeans(16, 8, gpu=False).train(x)


def test_nan_rejected_unless_disabled(data):
    x = data[:1000].copy()
    x[5, 3] = np.nan
    with pytest.raises(flashkmeans.Error, match="NaN or Inf"):
        flashkmeans.Kmeans(16, 8, gpu=False).train(x)


def test_non_contiguous_rows_are_handled(data):
    """A strided view (every other row / a column slice) is read in place and
    gives the same result as its contiguous copy."""
    wide = np.concatenate([data, data], axis=1)[:4000]
    views = [data[:8000:2], wide[:, 8:24]]
    for view in views:
        assert not view.flags.c_contiguous
        a = flashkmeans.Kmeans(16, 8, niter=4, gpu=False).train(view)
        b = flashkmeans.Kmeans(16, 8, niter=4, gpu=False).train(np.ascontiguousarray(view))
        assert a == pytest.approx(b, rel=1e-6)


def test_weights_checked(data):
    with pytest.raises(flashkmeans.Error, match="weights: expected shape"):
        flashkmeans.Kmeans(16, 8, gpu=False).train(data[:1000], weights=np.ones(999))


def test_init_centroids_checked(data):
    with pytest.raises(flashkmeans.Error, match="init_centroids: 9 centroids given, more than k = 8"):
        flashkmeans.Kmeans(16, 8, gpu=False).train(data[:1000], init_centroids=data[:9])


def test_assign_before_train():
    with pytest.raises(RuntimeError, match="train first"):
        flashkmeans.Kmeans(16, 8).assign(np.zeros((3, 16), np.float32))


def test_reset_and_attributes(data):
    km = flashkmeans.Kmeans(16, 8, niter=3, gpu=False)
    assert km.centroids is None and km.obj is None and km.iteration_stats is None
    km.train(data[:1000])
    assert km.obj.shape == (3,) and km.centroids.dtype == np.float32
    km.reset(4)
    assert km.k == 4 and km.centroids is None and km.index.ntotal == 0


def test_parameters_are_a_dataclass():
    assert dataclasses.is_dataclass(ClusteringParameters)
