"""The one place that calls the compiled module: parameters by name, fit and
assign with outputs allocated in the input's framework."""

from __future__ import annotations

import sys

import numpy as np

from . import _arrays
from . import _flashkmeans as _ext
from ._progress import Progress

Error = _ext.Error
OutOfMemoryError = _ext.OutOfMemoryError

_PRECISIONS = {p.name: p for p in _ext.Precision}  # automatic, exact, tf32, fp16, bf16


def precision(value) -> _ext.Precision:
    """'automatic' | 'exact' | 'tf32' | 'fp16' | 'bf16' (or None = automatic)."""
    if value is None:
        return _ext.Precision.automatic
    if isinstance(value, _ext.Precision):
        return value
    if value not in _PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(_PRECISIONS)}, got {value!r}")
    return _PRECISIONS[value]


def device_choice(gpu, gpu_id: int = 0) -> tuple[_ext.DeviceChoice, int]:
    """Faiss's `gpu` argument as the engine's device choice.

    None: the GPU(s) when one is visible, else the CPU. False/0: the CPU.
    True, -1 or a count n >= 1 (faiss: 'use n GPUs'): the GPU(s) from
    `gpu_id` on; num_gpus() gives how many."""
    if gpu is None:
        return _ext.DeviceChoice.automatic, gpu_id
    if isinstance(gpu, (bool, int, np.integer)) and not isinstance(gpu, str):
        if gpu is False or gpu == 0:
            return _ext.DeviceChoice.cpu, gpu_id
        if gpu is True or gpu == -1 or gpu >= 1:
            return _ext.DeviceChoice.cuda, gpu_id
    raise ValueError(f"gpu: expected None, False, True or a number of GPUs >= 1, got {gpu!r}")


def num_gpus(gpu) -> int:
    """How many GPUs a fit of host data spreads over (KMeansParams.num_gpus):
    faiss's gpu=True/-1/None mean every visible GPU (0), gpu=n means n."""
    if gpu is None or gpu is True or isinstance(gpu, bool) or gpu == -1:
        return 0
    return max(int(gpu), 1)


def make_params(**fields) -> _ext.KMeansParams:
    """KMeansParams with the given fields set (names as in params.hpp)."""
    p = _ext.KMeansParams()
    for name, value in fields.items():
        try:
            setattr(p, name, value)
        except TypeError:
            raise TypeError(f"{name}: expected {type(getattr(p, name)).__name__}, "
                            f"got {value!r}") from None
    return p


def fit(x, k: int, params: _ext.KMeansParams, *, weights=None, init_centroids=None,
        batched: bool = False, progress: bool = False) -> dict:
    """Engine fit; see _flashkmeans.fit. Ctrl-C raises KeyboardInterrupt
    between iterations."""
    if params.verbose:
        sys.stdout.flush()  # keep Python's and the engine's lines in order
    total = params.niter * params.nredo
    with Progress(progress, total, f"k-means k={k}") as bar:
        return _ext.fit(x, int(k), params, weights, init_centroids, batched, bar.callback)


def assign(x, centroids: np.ndarray, topk: int = 1, *, metric=_ext.Metric.L2,
           precision_=None, device=_ext.DeviceChoice.automatic, gpu_id: int = 0,
           with_distances: bool = True):
    """(distances, labels) of the `topk` nearest host `centroids` (k, d) for
    each row of x (n, d), each (n, topk), in x's framework and device."""
    n = x.shape[0]
    labels = _arrays.empty(x, (n, topk), "int64")
    distances = _arrays.empty(x, (n, topk), "float32") if with_distances else None
    c = _arrays.from_host(centroids, x, "float32") if _arrays.on_gpu(x) else centroids
    p = _ext.AssignParams()
    p.metric, p.precision, p.device, p.gpu_id = metric, precision(precision_), device, gpu_id
    _ext.assign(x, c, int(topk), labels, distances, p)
    return distances, labels
