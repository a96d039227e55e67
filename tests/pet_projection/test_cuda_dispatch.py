"""GPU dispatch: CuPy arrays and torch CUDA tensors in, the same type and device out (needs a real GPU)."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import pytest

from pet_projection import DiagonalOperator, ImageGrid, ParallelBeamGeometry, ParallelBeamProjector

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(bool(numba.config.ENABLE_CUDASIM), reason="needs a CUDA GPU (CUDA simulator active)")]


@pytest.fixture
def projector() -> ParallelBeamProjector:
    return ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((3, 96, 80), (1.0, 1.0, 1.2)), 60, 131, 1.0))


def test_torch_cuda_in_torch_cuda_out(projector: ParallelBeamProjector, cuda_torch: Any) -> None:
    torch = cuda_torch
    x = torch.rand((2,) + projector.in_shape, dtype=torch.float64, device="cuda")
    y = torch.rand((2,) + projector.out_shape, dtype=torch.float64, device="cuda")
    forward, back = projector(x), projector.adjoint(y)
    assert forward.device.type == "cuda" and forward.dtype == torch.float64 and forward.shape == y.shape
    np.testing.assert_allclose(forward.cpu().numpy(), projector(x.cpu().numpy()), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(back.cpu().numpy(), projector.adjoint(y.cpu().numpy()), rtol=1e-12, atol=1e-10)
    lhs, rhs = float((forward * y).sum()), float((x * back).sum())
    assert abs(lhs - rhs) < 1e-12 * float(forward.norm() * y.norm())
    assert torch.equal(projector.adjoint(y), back)  # deterministic bits


def test_torch_cuda_on_a_side_stream_and_composed(projector: ParallelBeamProjector, cuda_torch: Any) -> None:
    torch = cuda_torch
    weights = np.random.default_rng(0).random(projector.out_shape)
    attenuated = DiagonalOperator(weights) @ projector
    x = torch.rand(projector.in_shape, device="cuda")
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        result = attenuated(x)
    stream.synchronize()
    np.testing.assert_allclose(result.cpu().numpy(), weights * projector(x.cpu().numpy()), rtol=1e-5, atol=1e-4)


def test_torch_cuda_gradcheck(projector: ParallelBeamProjector, cuda_torch: Any) -> None:
    torch = cuda_torch
    from pet_projection.autograd import project

    small = ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((5, 6), 1.0), 4, 9, 1.0))
    x = torch.rand(small.in_shape, dtype=torch.float64, device="cuda", requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: project(t, small), (x,))
    assert torch.autograd.gradgradcheck(lambda t: project(t, small), (x,))


def test_cupy_in_cupy_out(projector: ParallelBeamProjector) -> None:
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
    x = cupy.random.random(projector.in_shape, dtype=cupy.float32)
    y = projector(x)
    assert isinstance(y, cupy.ndarray) and y.dtype == cupy.float32
    np.testing.assert_allclose(cupy.asnumpy(y), projector(cupy.asnumpy(x)), rtol=1e-4, atol=1e-3)
    back = projector.adjoint(y)
    assert isinstance(back, cupy.ndarray) and back.shape == x.shape
    assert bool((projector.adjoint(y) == back).all())


def test_lor_projector_on_torch_cuda_is_exact_and_deterministic(cuda_torch: Any) -> None:
    torch = cuda_torch
    from pet_projection import LORProjector

    rng = np.random.default_rng(5)
    grid = ImageGrid((24, 40, 36), (2.0, 1.5, 1.5))
    op = LORProjector(grid, rng.uniform(-80, 80, (5000, 3)), rng.uniform(-80, 80, (5000, 3)))
    x = torch.rand(grid.shape, dtype=torch.float64, device="cuda")
    y = torch.rand(op.out_shape, dtype=torch.float64, device="cuda")
    forward, back = op(x), op.adjoint(y)
    np.testing.assert_allclose(forward.cpu().numpy(), op(x.cpu().numpy()), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(back.cpu().numpy(), op.adjoint(y.cpu().numpy()), rtol=1e-10, atol=1e-10)
    assert torch.equal(op.adjoint(y), back)  # fixed-point atomics: identical bits on every run
