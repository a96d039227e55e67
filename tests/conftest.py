"""Fixtures of the package tests (the setup they share with benchmarks/tests is in ../conftest.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


@pytest.fixture
def torch_one_thread() -> Any:
    """torch on one CPU thread for the test (tiny convolutions run fastest so, above all on shared cores)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def cuda_device() -> None:
    """Skip unless torch sees a real CUDA device (kernels in the CUDA simulator do not count): the GPU tests."""
    import numba

    if numba.config.ENABLE_CUDASIM:
        pytest.skip("needs a CUDA GPU (CUDA simulator active)")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")


@pytest.fixture(scope="session")
def cuda_torch(cuda_device: None) -> Any:
    """The torch module, for tests of torch CUDA tensors (skips as :func:`cuda_device` does)."""
    import torch

    return torch
