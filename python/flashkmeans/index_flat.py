"""A flat (exhaustive) index over the centroids, searched by the engine.

It has the part of faiss.IndexFlat's interface that code around faiss.Kmeans
uses (d, ntotal, metric_type, is_trained, add, reset, search, reconstruct_n)
and converts to a real faiss index with to_faiss()."""

from __future__ import annotations

import numpy as np

from . import _arrays, _engine
from . import _flashkmeans as _ext

# faiss.METRIC_INNER_PRODUCT and faiss.METRIC_L2
METRIC_INNER_PRODUCT = 0
METRIC_L2 = 1


class IndexFlat:
    def __init__(self, d: int, metric_type: int = METRIC_L2, *, device=None, gpu_id: int = 0):
        if metric_type not in (METRIC_L2, METRIC_INNER_PRODUCT):
            raise ValueError(f"metric_type: expected METRIC_L2 (1) or METRIC_INNER_PRODUCT (0), "
                             f"got {metric_type!r}")
        self.d = int(d)
        self.metric_type = metric_type
        self.is_trained = True
        self._device = device if device is not None else _ext.DeviceChoice.automatic
        self._gpu_id = gpu_id
        self._xb = np.empty((0, self.d), dtype=np.float32)

    @property
    def ntotal(self) -> int:
        return self._xb.shape[0]

    def add(self, x) -> None:
        x = _arrays.as_host_float32(x, "x")
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ValueError(f"x: expected shape (n, {self.d}), got {x.shape}")
        self._xb = np.concatenate([self._xb, x])

    def reset(self) -> None:
        self._xb = self._xb[:0]

    def reconstruct_n(self, i0: int = 0, n: int | None = None) -> np.ndarray:
        return self._xb[i0:None if n is None else i0 + n].copy()

    def search(self, x, k: int):
        """(D, I), each (n, k): squared L2 distances (or inner products) and
        ids of the k nearest vectors, in x's framework and device; -1 where
        fewer than k vectors exist."""
        x = _arrays.as_input(x, "x", (2,))
        if x.shape[1] != self.d:
            raise ValueError(f"x: dimension {x.shape[1]} differs from the index's d = {self.d}")
        if self.ntotal == 0:
            raise ValueError("search: the index is empty (train or add first)")
        metric = _ext.Metric.inner_product if self.metric_type == METRIC_INNER_PRODUCT \
            else _ext.Metric.L2
        return _engine.assign(x, self._xb, k, metric=metric, device=self._device,
                              gpu_id=self._gpu_id)

    def to_faiss(self):
        """The same vectors in a faiss.IndexFlatL2 / IndexFlatIP (needs faiss)."""
        import faiss
        index = (faiss.IndexFlatIP if self.metric_type == METRIC_INNER_PRODUCT
                 else faiss.IndexFlatL2)(self.d)
        index.add(self._xb)
        return index
