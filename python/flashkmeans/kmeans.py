"""flashkmeans.Kmeans: a drop-in for faiss.Kmeans that runs on the engine.

Same constructor keywords (faiss.ClusteringParameters' fields and `gpu`),
attributes (centroids, obj, iteration_stats, index) and methods (train,
assign); the same seed gives the same objective as Faiss up to rounding."""

from __future__ import annotations

import numpy as np

from . import _arrays, _engine
from . import _flashkmeans as _ext
from .clustering_parameters import ClusteringParameters
from .index_flat import METRIC_INNER_PRODUCT, METRIC_L2, IndexFlat


class Kmeans:
    """k-means on the rows of x.

    gpu: None (default) uses the GPU(s) when one is visible; False/0 the CPU;
    True or -1 every visible GPU from gpu_id (default 0) on, a count n >= 1
    that many, as in Faiss (host data is split over them, one shard each,
    partial sums all-reduced through NCCL); an error without a GPU.
    Other keywords are faiss.ClusteringParameters fields (niter=25, nredo=1,
    verbose=False, spherical=False, int_centroids=False, frozen_centroids,
    min/max_points_per_centroid, seed=1234, ...) plus precision, gpu_id,
    device_memory_budget, faiss_blas_blocking, deterministic and progress (see
    ClusteringParameters). An unknown keyword raises TypeError."""

    def __init__(self, d: int, k: int, **kwargs):
        self.d = int(d)
        self.gpu = kwargs.pop("gpu", None)
        if "progressive_dim_steps" in kwargs:
            raise ValueError("progressive_dim_steps is not supported (progressive-dimension "
                             "clustering is a different algorithm)")
        self.cp = ClusteringParameters()
        for name, value in kwargs.items():
            self.cp.set(name, value)
        self.reset(k)
        self._params()  # reject a bad gpu or precision now, not at train time

    def reset(self, k: int | None = None) -> None:
        """Forget the last training, optionally with a new number of centroids."""
        if k is not None:
            self.k = int(k)
        self.centroids = None
        self.obj = None
        self.iteration_stats = None
        device, gpu_id = _engine.device_choice(self.gpu, self.cp.gpu_id)
        self.index = IndexFlat(self.d, METRIC_INNER_PRODUCT if self.cp.spherical else METRIC_L2,
                               device=device, gpu_id=gpu_id)

    def _params(self) -> _ext.KMeansParams:
        # as faiss.Kmeans: spherical clustering assigns by inner product
        metric = _ext.Metric.inner_product if self.cp.spherical else _ext.Metric.L2
        return self.cp.to_engine(self.gpu, metric)

    def train(self, x, weights=None, init_centroids=None) -> float:
        """Cluster x (n, d): numpy (other float dtypes are converted to
        float32, as Faiss does), or a float32/float16/bfloat16 torch or cupy
        array read in place. Returns the final objective; fills centroids
        (k, d) float32 numpy, obj (per iteration), iteration_stats and index."""
        x = _arrays.as_input(x, "x", (2,))
        if x.shape[1] != self.d:
            raise ValueError(f"x: dimension {x.shape[1]} differs from d = {self.d}")
        if weights is not None:
            weights = _arrays.as_weights(weights, x)
        if init_centroids is not None:
            init_centroids = _arrays.as_host_float32(init_centroids, "init_centroids")
        self.reset()
        result = _engine.fit(x, self.k, self._params(), weights=weights,
                             init_centroids=init_centroids, progress=self.cp.progress)
        self.centroids = result["centroids"][0]
        self.iteration_stats = result["iteration_stats"][0]
        self.obj = np.array([s["obj"] for s in self.iteration_stats])
        self.index.add(self.centroids)
        return float(self.obj[-1]) if self.obj.size else 0.0

    def assign(self, x):
        """(D, I): distance to and id of the nearest centroid of each row of
        x, each (n,), in x's framework and device."""
        if self.centroids is None:
            raise RuntimeError("Kmeans.assign: train first")
        D, I = self.index.search(x, 1)
        return D.ravel(), I.ravel()
