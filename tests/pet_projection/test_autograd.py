"""The torch autograd bridge: gradcheck, gradgradcheck, modules, and training through a projector."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pet_projection import (DiagonalOperator, ImageGrid, LORProjector, ParallelBeamGeometry,  # noqa: E402
                            ParallelBeamProjector)
from pet_projection.autograd import Projector, back_project, project  # noqa: E402


@pytest.fixture
def projector() -> ParallelBeamProjector:
    return ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((2, 7, 6), (1.0, 0.8, 1.3)), 5, 9, 1.1))


def test_gradcheck_and_gradgradcheck_projection(projector: ParallelBeamProjector) -> None:
    x = torch.rand((2,) + projector.in_shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: project(t, projector), (x,))
    assert torch.autograd.gradgradcheck(lambda t: project(t, projector), (x,))


def test_gradcheck_and_gradgradcheck_back_projection(projector: ParallelBeamProjector) -> None:
    y = torch.rand(projector.out_shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: back_project(t, projector), (y,))
    assert torch.autograd.gradgradcheck(lambda t: back_project(t, projector), (y,))


def test_gradcheck_composed_lor_operator() -> None:
    rng = np.random.default_rng(1)
    grid = ImageGrid((3, 5, 4), 1.5)
    lors = LORProjector(grid, rng.uniform(-9, 9, (11, 3)), rng.uniform(-9, 9, (11, 3)))
    op = DiagonalOperator(rng.random(11)) @ lors
    x = torch.rand(grid.shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: project(t, op), (x,))


def test_gradient_is_the_back_projection(projector: ParallelBeamProjector) -> None:
    x = torch.rand(projector.in_shape, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(projector.out_shape, dtype=torch.float64)
    (project(x, projector) * weights).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), projector.adjoint(weights.numpy()), rtol=1e-13)


def test_module_forward_and_adjoint(projector: ParallelBeamProjector) -> None:
    layer = Projector(projector)
    back = Projector(projector, adjoint=True)
    x = torch.rand(projector.in_shape)
    assert layer(x).shape == projector.out_shape
    assert back(layer(x)).shape == projector.in_shape
    assert "adjoint=True" in repr(back)
    with pytest.raises(TypeError, match="LinearOperator"):
        Projector(np.eye(3))


def test_training_through_the_projector_fits_a_sinogram() -> None:
    """Gradient descent on an image through the projector reduces the sinogram misfit (the point of the bridge)."""
    op = ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((16, 16), 1.0), 24, 23, 1.0))
    target = torch.from_numpy(op(np.random.default_rng(0).random((16, 16)).astype(np.float32)))
    image = torch.zeros((16, 16), requires_grad=True)
    optimiser = torch.optim.Adam([image], lr=0.05)
    losses = []
    for _ in range(60):
        optimiser.zero_grad()
        loss = torch.mean((Projector(op)(image) - target) ** 2)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
