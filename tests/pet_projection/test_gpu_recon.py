"""Reconstruction on a real GPU: MLEM, OSEM and FBP on torch CUDA tensors, TV-MAP on CuPy, give the NumPy results.

Skipped without a CUDA device. The system model's factors and the Gaussian
resolution are NumPy arrays handed to the device on first use
(:class:`pet_projection.physics.PETSystemModel`); the projectors' CUDA back
projection is deterministic, so two runs give the same bits.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.pet_projection.test_recon import phantom_problem

from pet_projection.recon import fbp, map_tv, mlem, osem

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cuda_device")]


@pytest.mark.parametrize("name", ["mlem", "osem"])
def test_em_on_cuda_tensors_equals_numpy_and_repeats_its_bits(name: str) -> None:
    system, truth = phantom_problem(3, resolution=True)
    data = np.random.default_rng(4).poisson(system.expected(truth)).astype(np.float64)
    reconstruct = {"mlem": lambda d: mlem(d, system, 4), "osem": lambda d: osem(d, system, 3, 2)}[name]
    on_device = reconstruct(torch.tensor(data, device="cuda"))
    assert isinstance(on_device, torch.Tensor) and on_device.is_cuda and on_device.dtype == torch.float64
    np.testing.assert_allclose(on_device.cpu().numpy(), reconstruct(data), rtol=1e-9, atol=1e-9 * truth.max())
    assert torch.equal(reconstruct(torch.tensor(data, device="cuda")), on_device)


def test_map_tv_on_cupy_equals_numpy_and_repeats_its_bits() -> None:
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (map_tv takes NumPy or CuPy arrays)")
    system, truth = phantom_problem(3, resolution=True)
    data = np.random.default_rng(4).poisson(system.expected(truth)).astype(np.float64)
    on_device = map_tv(cupy.asarray(data), system, 1.0, 20)
    assert isinstance(on_device, cupy.ndarray) and on_device.dtype == np.float64
    np.testing.assert_allclose(cupy.asnumpy(on_device), map_tv(data, system, 1.0, 20), rtol=1e-9,
                               atol=1e-9 * truth.max())
    assert bool((map_tv(cupy.asarray(data), system, 1.0, 20) == on_device).all())


def test_fbp_of_a_cuda_batch_equals_numpy() -> None:
    system, truth = phantom_problem(5)
    projector = system.projector
    sinograms = np.stack([projector(truth), 2.0 * projector(truth)])
    on_device = fbp(torch.tensor(sinograms, device="cuda"), projector)
    assert on_device.is_cuda and on_device.shape == (2,) + projector.in_shape
    np.testing.assert_allclose(on_device.cpu().numpy(), fbp(sinograms, projector), rtol=1e-9,
                               atol=1e-9 * truth.max())
