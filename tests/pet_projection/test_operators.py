"""The LinearOperator algebra: adjoint, composition, diagonal operators, norms, torch CPU tensors."""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import dot_test_error

from pet_projection import (AdjointOperator, ComposedOperator, DiagonalOperator, ImageGrid, ParallelBeamGeometry,
                            ParallelBeamProjector)


@pytest.fixture
def projector() -> ParallelBeamProjector:
    return ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((16, 12), (1.0, 1.5)), 9, 21, 1.1))


def test_attenuated_projector_is_diagonal_after_projection(projector: ParallelBeamProjector, rng) -> None:
    factors = np.exp(-rng.random(projector.out_shape))
    attenuated = DiagonalOperator(factors) @ projector
    assert isinstance(attenuated, ComposedOperator)
    assert attenuated.in_shape == projector.in_shape and attenuated.out_shape == projector.out_shape
    x = rng.random((3,) + projector.in_shape)
    np.testing.assert_allclose(attenuated(x), factors * projector(x), rtol=1e-14)
    y = rng.random((3,) + projector.out_shape)
    np.testing.assert_allclose(attenuated.adjoint(y), projector.adjoint(factors * y), rtol=1e-14)
    assert dot_test_error(attenuated, x, y) < 1e-12


def test_adjoint_operator_swaps_and_round_trips(projector: ParallelBeamProjector, rng) -> None:
    adjoint = projector.H
    assert isinstance(adjoint, AdjointOperator) and adjoint.H is projector
    assert adjoint.in_shape == projector.out_shape and adjoint.out_shape == projector.in_shape
    y = rng.random(projector.out_shape)
    np.testing.assert_array_equal(adjoint(y), projector.adjoint(y))
    normal = projector.H @ projector
    x = rng.random(projector.in_shape)
    np.testing.assert_allclose(normal(x), projector.adjoint(projector(x)), rtol=1e-14)
    assert np.vdot(x, normal(x)) > 0


def test_matmul_with_an_array_applies(projector: ParallelBeamProjector, rng) -> None:
    x = rng.random(projector.in_shape)
    np.testing.assert_array_equal(projector @ x, projector(x))


def test_diagonal_keeps_input_dtype_and_has_norm_max_abs(rng) -> None:
    weights = rng.standard_normal((4, 5))
    op = DiagonalOperator(weights)
    assert op(np.ones((2, 4, 5), np.float32)).dtype == np.float32
    np.testing.assert_allclose(op.norm(n_iter=2000, rtol=1e-12), np.abs(weights).max(), rtol=1e-4)
    assert dot_test_error(op, rng.random((4, 5)), rng.random((4, 5))) < 1e-15


def test_composition_checks_shapes(projector: ParallelBeamProjector) -> None:
    with pytest.raises(ValueError, match=r"cannot compose.*\(16, 12\).*\(9, 21\)"):
        projector @ projector


def test_torch_cpu_tensors_in_and_out(projector: ParallelBeamProjector) -> None:
    torch = pytest.importorskip("torch")
    x = torch.rand((2,) + projector.in_shape, dtype=torch.float32)
    y = projector(x)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and y.shape == (2,) + projector.out_shape
    np.testing.assert_array_equal(y.numpy(), projector(x.numpy()))
    back = projector.adjoint(y)
    assert isinstance(back, torch.Tensor) and back.shape == x.shape
    attenuated = DiagonalOperator(torch.full(projector.out_shape, 0.5, dtype=torch.float64)) @ projector
    np.testing.assert_allclose(attenuated(x).numpy(), 0.5 * y.numpy(), rtol=1e-6)


def test_empty_batches_give_empty_results(projector: ParallelBeamProjector) -> None:
    from pet_projection import LORProjector

    lors = LORProjector(ImageGrid((4, 5, 6), 1.0), np.zeros((7, 3)), np.ones((7, 3)))
    for op in (projector, lors):
        assert op(np.zeros((0,) + op.in_shape)).shape == (0,) + op.out_shape
        assert op.adjoint(np.zeros((2, 0) + op.out_shape)).shape == (2, 0) + op.in_shape
