import numpy as np
import pytest

import flashkmeans


def pytest_collection_modifyitems(config, items):
    # GPU tests need a CUDA build, a visible GPU and torch with CUDA.
    reason = None
    if not flashkmeans.cuda_available():
        reason = "no CUDA GPU visible to flashkmeans (or a build without the CUDA backend)"
    else:
        try:
            import torch
            if not torch.cuda.is_available():
                reason = "torch has no CUDA"
        except ImportError:
            reason = "torch is not installed"
    if reason:
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def data():
    """10,000 float32 points in 16 dimensions around 50 centres."""
    rs = np.random.RandomState(123)
    centres = rs.randn(50, 16) * 4
    x = centres[rs.randint(50, size=10000)] + rs.randn(10000, 16)
    return x.astype(np.float32)


@pytest.fixture(scope="session")
def batch():
    rs = np.random.RandomState(7)
    return rs.randn(3, 2000, 8).astype(np.float32)
