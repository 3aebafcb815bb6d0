"""faiss.ClusteringParameters' fields, with Faiss's defaults, plus the few
engine settings a Kmeans user may want. Values the engine cannot honour are
rejected by name rather than silently ignored."""

from __future__ import annotations

from dataclasses import dataclass, fields

from . import _engine
from . import _flashkmeans as _ext

# Faiss fields whose only supported value is the default, with the reason.
_FIXED = {
    "init_method": (0, "only random seeding (ClusteringInitMethod_RANDOM = 0) is implemented"),
    "use_faster_subsampling": (False, "subsampling uses Faiss's default permutation only"),
    "use_super_kmeans": (False, "SuperKMeans is a different algorithm"),
}


@dataclass
class ClusteringParameters:
    # faiss.ClusteringParameters (Faiss 1.7 .. 1.15), same names and defaults
    niter: int = 25
    nredo: int = 1
    verbose: bool = False
    spherical: bool = False
    int_centroids: bool = False
    update_index: bool = False  # accepted; our index is always rebuilt from the centroids
    frozen_centroids: bool = False
    min_points_per_centroid: int = 39
    max_points_per_centroid: int = 256
    seed: int = 1234
    decode_block_size: int = 32768  # accepted; only used by Faiss for encoded data
    check_input_data_for_NaNs: bool = True
    use_faster_subsampling: bool = False
    init_method: int = 0
    afkmc2_chain_length: int = 50  # accepted; only used by init_method AFK-MC2
    early_stop_threshold: float = 0.0
    use_super_kmeans: bool = False
    # flashkmeans additions
    precision: str = "automatic"  # automatic | exact | tf32 | fp16 | bf16 (GPU only)
    gpu_id: int = 0
    device_memory_budget: int = 0  # bytes of GPU memory for resident data; 0 = most of it
    faiss_blas_blocking: bool = False  # CPU: Faiss's BLAS layout, breaks exact ties as Faiss
    deterministic: bool = False  # GPU: small codebooks summed in a fixed order too (bitwise reproducible)
    progress: bool = False  # tqdm progress bar, when tqdm is installed

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def set(self, name: str, value) -> None:
        """Set a field by name; unknown names and unsupported values raise."""
        if name not in self.names():
            raise TypeError(f"unexpected keyword argument {name!r}; accepted: gpu, "
                            f"{', '.join(self.names())}")
        if name in _FIXED and value != _FIXED[name][0]:
            raise ValueError(f"{name}={value!r} is not supported: {_FIXED[name][1]}")
        setattr(self, name, value)

    @classmethod
    def from_faiss(cls, faiss_cp, **overrides) -> "ClusteringParameters":
        """A copy of a faiss.ClusteringParameters (any Faiss version: fields
        it lacks keep our defaults), then `overrides`."""
        cp = cls()
        for name in cp.names():
            if hasattr(faiss_cp, name):
                cp.set(name, getattr(faiss_cp, name))
        for name, value in overrides.items():
            cp.set(name, value)
        return cp

    def to_engine(self, gpu, metric: _ext.Metric) -> _ext.KMeansParams:
        """The engine's KMeansParams; gpu as in Kmeans (None, False, True, n)."""
        device, gpu_id = _engine.device_choice(gpu, self.gpu_id)
        return _engine.make_params(
            niter=self.niter, nredo=self.nredo, verbose=self.verbose,
            spherical=self.spherical, int_centroids=self.int_centroids,
            frozen_centroids=self.frozen_centroids,
            min_points_per_centroid=self.min_points_per_centroid,
            max_points_per_centroid=self.max_points_per_centroid, seed=self.seed,
            check_finite=self.check_input_data_for_NaNs, metric=metric,
            precision=_engine.precision(self.precision), device=device, gpu_id=gpu_id,
            num_gpus=_engine.num_gpus(gpu),
            device_memory_budget=self.device_memory_budget,
            faiss_blas_blocking=self.faiss_blas_blocking,
            deterministic=self.deterministic,
            early_stop_threshold=self.early_stop_threshold)
