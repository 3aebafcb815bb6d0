"""The flash-kmeans (Triton, `flash_kmeans` 0.3) API on the engine:
batch_kmeans_Euclid / _Cosine / _Dot and the FlashKMeans class.

Inputs are torch tensors, cupy arrays or numpy arrays, read in place through
DLPack; results are in the input's framework and on its device. Differences
from flash_kmeans: seeding is Faiss's (from `seed`, not torch's global RNG);
`tol` is accepted but the engine runs all iterations (a converged fit stays
put, so only the iteration count differs); labels come from one assignment
with the final centroids (the engine's fit returns centroids only)."""

from __future__ import annotations

import warnings

import numpy as np

from . import _arrays, _engine
from . import _flashkmeans as _ext

_METRICS = {  # name -> (engine metric, spherical centroids, normalise the data)
    "euclid": (_ext.Metric.L2, False, False),
    "cosine": (_ext.Metric.inner_product, True, True),
    # flash_kmeans' dot-product k-means normalises the centroids, not the data
    "dot": (_ext.Metric.inner_product, True, False),
}


def _warn_tol(tol: float) -> None:
    if tol > 1e-6:
        warnings.warn(f"tol={tol}: early stopping is not implemented; all iterations run",
                      RuntimeWarning, stacklevel=3)


def _batch_kmeans(x, n_clusters, max_iters, tol, init_centroids, verbose, metric, *,
                  seed=0, precision=None, device=None, progress=False):
    x = _arrays.as_input(x, "x", (3,))
    _warn_tol(tol)
    engine_metric, spherical, normalise = _METRICS[metric]
    if normalise:
        x = _arrays.normalize_rows(x)
    B, _, D = x.shape
    if init_centroids is not None:
        init_centroids = _arrays.as_host_float32(init_centroids, "init_centroids")
        init_centroids = np.ascontiguousarray(init_centroids.reshape(B, -1, D))
    choice, gpu_id = _device(device)
    params = _engine.make_params(niter=int(max_iters), verbose=bool(verbose), seed=int(seed),
                                 metric=engine_metric, spherical=spherical,
                                 precision=_engine.precision(precision),
                                 device=choice, gpu_id=gpu_id,
                                 num_gpus=1 if str(device).startswith("cuda:") else 0)
    result = _engine.fit(x, n_clusters, params, init_centroids=init_centroids,
                         batched=True, progress=progress)
    centroids = result["centroids"]
    labels = _assign_batched(x, centroids, engine_metric, choice, gpu_id, precision)
    return labels, _arrays.from_host(centroids, x), len(result["iteration_stats"][0])


def _assign_batched(x, centroids, metric, choice, gpu_id, precision):
    """(B, N) ids of the nearest of centroids[b] (host (B, K, D)) for each
    row of x[b]: one engine assignment per problem, written in place."""
    labels = _arrays.empty(x, x.shape[:2], "int64")
    for b in range(x.shape[0]):
        _, labels_b = _engine.assign(x[b], centroids[b], 1, metric=metric, device=choice,
                                     gpu_id=gpu_id, precision_=precision, with_distances=False)
        labels[b] = labels_b[:, 0]
    return labels


def batch_kmeans_Euclid(x, n_clusters, max_iters=100, tol=0.0, init_centroids=None,
                        verbose=False, *, use_heuristic=True, seed=0, precision=None,
                        device=None, progress=False):
    """B independent k-means (squared L2) on x (B, N, D).

    Returns (cluster_ids (B, N) int64, centroids (B, n_clusters, D) in x's
    dtype, iterations run). use_heuristic is accepted for compatibility
    (the engine chooses its tiles itself). Keyword-only extras: seed,
    precision ('automatic'|'exact'|'tf32'|'fp16'|'bf16'), device (None =
    where x lives / GPU when visible, 'cpu', 'cuda', 'cuda:N'), progress."""
    return _batch_kmeans(x, n_clusters, max_iters, tol, init_centroids, verbose, "euclid",
                         seed=seed, precision=precision, device=device, progress=progress)


def batch_kmeans_Cosine(x, n_clusters, max_iters=100, tol=0.0, init_centroids=None,
                        verbose=False, *, seed=0, precision=None, device=None, progress=False):
    """Like batch_kmeans_Euclid with cosine similarity: the rows are
    L2-normalised (one copy of x) and the centroids stay unit-norm."""
    return _batch_kmeans(x, n_clusters, max_iters, tol, init_centroids, verbose, "cosine",
                         seed=seed, precision=precision, device=device, progress=progress)


def batch_kmeans_Dot(x, n_clusters, max_iters=100, tol=0.0, init_centroids=None,
                     verbose=False, *, seed=0, precision=None, device=None, progress=False):
    """Like batch_kmeans_Euclid, assigning by raw dot product with unit-norm
    centroids (as flash_kmeans does)."""
    return _batch_kmeans(x, n_clusters, max_iters, tol, init_centroids, verbose, "dot",
                         seed=seed, precision=precision, device=device, progress=progress)


def _device(device) -> tuple[_ext.DeviceChoice, int]:
    """None | 'cpu' | 'cuda' | 'cuda:N' | torch.device as the engine's choice."""
    if device is None:
        return _ext.DeviceChoice.automatic, 0
    text = str(device)
    if text == "cpu":
        return _ext.DeviceChoice.cpu, 0
    if text == "cuda" or text.startswith("cuda:") and text[5:].isdigit():
        return _ext.DeviceChoice.cuda, int(text[5:] or 0)
    raise ValueError(f"device: expected None, 'cpu', 'cuda' or 'cuda:N', got {device!r}")


_TORCH_DTYPE_PRECISION = {"float32": "exact", "float16": "fp16", "bfloat16": "bf16"}


class FlashKMeans:
    """flash_kmeans.FlashKMeans on the engine (Euclidean k-means).

    Same constructor: d, k, niter=25, tol=1e-8, use_triton=True, seed=0,
    chunk_size_data, chunk_size_centroids, chunk_size_data_cpu, verbose,
    dtype (compute dtype: torch.float32/float16/bfloat16 select the
    engine's precision instead of converting the data), device. use_triton
    and the chunk sizes are accepted and have no effect: the engine picks
    its tiles and streams host data itself. train/fit/predict/fit_predict
    take (N, D) or (B, N, D) data; results are in the data's framework."""

    def __init__(self, d, k, niter=25, tol=1e-8, use_triton=True, seed=0,
                 chunk_size_data=32768, chunk_size_centroids=1024,
                 chunk_size_data_cpu=1048576, verbose=False, dtype=None, device=None):
        self.d, self.k, self.niter, self.tol = int(d), int(k), int(niter), float(tol)
        self.use_triton, self.seed, self.verbose = bool(use_triton), int(seed), bool(verbose)
        self.chunk_size_data = int(chunk_size_data)
        self.chunk_size_centroids = int(chunk_size_centroids)
        self.chunk_size_data_cpu = int(chunk_size_data_cpu)
        self.dtype, self.device = dtype, device
        self._precision = self._dtype_precision(dtype)
        _device(device)  # reject a bad device now
        self.centroids_b = None
        self.cluster_ids_b = None
        self._batch_size = None

    @staticmethod
    def _dtype_precision(dtype):
        if dtype is None:
            return None
        name = str(dtype).replace("torch.", "")
        if name not in _TORCH_DTYPE_PRECISION:
            raise TypeError(f"dtype: expected float32, float16 or bfloat16, got {dtype!r}")
        return _TORCH_DTYPE_PRECISION[name]

    def _batched(self, data):
        data = _arrays.as_input(data, "data", (2, 3))
        if data.shape[-1] != self.d:
            raise ValueError(f"data: dimension {data.shape[-1]} differs from d = {self.d}")
        return (data[None], None) if data.ndim == 2 else (data, data.shape[0])

    def train(self, data) -> None:
        x_b, B = self._batched(data)
        self.cluster_ids_b, self.centroids_b, _ = batch_kmeans_Euclid(
            x_b, self.k, self.niter, self.tol, None, self.verbose, seed=self.seed,
            precision=self._precision, device=self.device)
        self._batch_size = B

    def fit(self, data) -> "FlashKMeans":
        self.train(data)
        return self

    def predict(self, data):
        """Nearest-centroid ids: (N,) for (N, D) data, (B, N) for (B, N, D)."""
        if self.centroids_b is None:
            raise RuntimeError("Model not trained. Call train() or fit() first.")
        x_b, B = self._batched(data)
        if B != self._batch_size:
            raise ValueError(f"Model was trained with batch size B={self._batch_size}, "
                             f"but predict received B={B}. Provide matching batch size.")
        centroids = _arrays.as_host_float32(self.centroids_b, "centroids")
        choice, gpu_id = _device(self.device)
        labels = _assign_batched(x_b, centroids, _ext.Metric.L2, choice, gpu_id, self._precision)
        return labels[0] if B is None else labels

    def fit_predict(self, data):
        self.train(data)
        return self.cluster_ids_b[0] if self._batch_size is None else self.cluster_ids_b
