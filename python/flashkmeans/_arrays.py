"""Framework-neutral handling of the arrays users pass in: numpy arrays,
torch tensors and cupy arrays. Inputs reach the engine through DLPack with
zero copies; outputs are allocated here in the input's own framework and
device, so that results come back where the data lives."""

from __future__ import annotations

import numpy as np

SUPPORTED_DTYPES = ("float32", "float16", "bfloat16")


def framework(x) -> str:
    """'numpy', 'torch' or 'cupy' (the module that owns x's type)."""
    module = type(x).__module__.split(".")[0]
    if module in ("torch", "cupy"):
        return module
    return "numpy"


def dtype_name(x) -> str:
    return str(x.dtype).replace("torch.", "")


def on_gpu(x) -> bool:
    fw = framework(x)
    if fw == "torch":
        return x.device.type == "cuda"
    return fw == "cupy"


def as_input(x, name: str, ndim: tuple[int, ...]):
    """x ready for the engine, or a TypeError/ValueError naming `name`.

    numpy (and array-likes such as lists) of another real dtype are converted
    to float32, as faiss.Kmeans does; torch and cupy arrays are never copied
    behind the user's back, so their dtype must already be supported."""
    if framework(x) == "numpy":
        x = np.asarray(x)
        if x.dtype.kind == "f" and dtype_name(x) not in SUPPORTED_DTYPES:
            x = x.astype(np.float32)
        elif x.dtype.kind in "iu":
            x = x.astype(np.float32)
    if dtype_name(x) not in SUPPORTED_DTYPES:
        raise TypeError(f"{name}: dtype {x.dtype} is not supported; expected one of "
                        f"{', '.join(SUPPORTED_DTYPES)}")
    if x.ndim not in ndim:
        shapes = " or ".join({2: "(n, d)", 3: "(B, n, d)", 1: "(n,)"}[k] for k in ndim)
        raise ValueError(f"{name}: expected shape {shapes}, got {tuple(x.shape)}")
    if any(s < 0 for s in _strides(x)):
        raise ValueError(f"{name}: negative strides (a reversed view) are not supported; "
                         "pass a contiguous copy")
    return x


def _strides(x):
    return x.stride() if framework(x) == "torch" else x.strides


def as_host_float32(a, name: str) -> np.ndarray:
    """A small array (centroids, weights of host data) as contiguous float32
    numpy: the engine reads initial centroids from host memory."""
    fw = framework(a)
    if fw == "torch":
        a = a.detach().float().cpu().numpy()
    elif fw == "cupy":
        a = a.get()
    a = np.asarray(a)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected real numbers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float32)


def as_weights(w, x, name: str = "weights"):
    """Weights must be float32 in the memory x lives in (engine contract)."""
    if on_gpu(x):
        if framework(w) != framework(x) or dtype_name(w) != "float32":
            raise TypeError(f"{name}: for GPU data, pass a float32 {framework(x)} array "
                            "on the same device")
        return w
    return as_host_float32(w, name)


def empty(like, shape, dtype: str):
    """Uninitialised array of `dtype` ('int64' or 'float32') in like's
    framework, on like's device."""
    fw = framework(like)
    if fw == "torch":
        import torch
        return torch.empty(shape, dtype=getattr(torch, dtype), device=like.device)
    if fw == "cupy":
        import cupy
        with like.device:
            return cupy.empty(shape, dtype=dtype)
    return np.empty(shape, dtype=dtype)


def from_host(a: np.ndarray, like, dtype: str | None = None):
    """Host numpy array `a` moved into like's framework and device, cast to
    like's dtype unless `dtype` names another."""
    fw = framework(like)
    if fw == "torch":
        import torch
        t = torch.from_numpy(a).to(like.device)
        return t.to(getattr(torch, dtype) if dtype else like.dtype)
    if fw == "cupy":
        import cupy
        with like.device:
            return cupy.asarray(a).astype(dtype or like.dtype)
    return a.astype(dtype or like.dtype, copy=False)


def normalize_rows(x):
    """Rows scaled to unit L2 norm (a new array in x's framework; zero rows
    stay zero)."""
    fw = framework(x)
    if fw == "torch":
        import torch.nn.functional as F
        return F.normalize(x, p=2, dim=-1)
    xp = np
    if fw == "cupy":
        import cupy as xp
    norms = xp.sqrt((x.astype(xp.float32) ** 2).sum(axis=-1, keepdims=True))
    return (x / xp.maximum(norms, 1e-12)).astype(x.dtype)
