"""torch bridge: differentiate through any :class:`~pet_projection.LinearOperator`.

Importing this module imports torch; ``import pet_projection`` alone does not.

The forward of :class:`ApplyOperator` applies the operator and its backward
applies the adjoint *through* :class:`ApplyAdjoint` (and vice versa), so the
backward is itself differentiable: ``gradcheck`` and ``gradgradcheck`` pass
in float64.

Examples
--------
>>> import torch
>>> from pet_projection import ImageGrid, ParallelBeamGeometry, ParallelBeamProjector
>>> from pet_projection.autograd import Projector
>>> grid = ImageGrid((64, 64), 2.0)
>>> layer = Projector(ParallelBeamProjector(ParallelBeamGeometry(grid, 60, 91, 2.0)))
>>> sino = layer(torch.rand(8, 64, 64, requires_grad=True))  # (8, 60, 91)
"""

from __future__ import annotations

from typing import Any

import torch

from .operators import LinearOperator


def _checked(op: Any) -> LinearOperator:
    if not isinstance(op, LinearOperator):
        raise TypeError(f"op must be a pet_projection LinearOperator, got {type(op).__name__}")
    return op


class ApplyOperator(torch.autograd.Function):
    """``y = A x`` with gradient ``A^H g``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, op: LinearOperator) -> torch.Tensor:
        ctx.op = op
        return op.apply(x.detach().contiguous())

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return ApplyAdjoint.apply(grad.contiguous(), ctx.op), None


class ApplyAdjoint(torch.autograd.Function):
    """``x = A^H y`` with gradient ``A g``."""

    @staticmethod
    def forward(ctx: Any, y: torch.Tensor, op: LinearOperator) -> torch.Tensor:
        ctx.op = op
        return op.adjoint(y.detach().contiguous())

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return ApplyOperator.apply(grad.contiguous(), ctx.op), None


def project(x: torch.Tensor, op: LinearOperator) -> torch.Tensor:
    """Differentiable ``op.apply(x)`` for a tensor ``x`` of shape ``(..., *op.in_shape)``."""
    return ApplyOperator.apply(x, _checked(op))


def back_project(y: torch.Tensor, op: LinearOperator) -> torch.Tensor:
    """Differentiable ``op.adjoint(y)`` for a tensor ``y`` of shape ``(..., *op.out_shape)``."""
    return ApplyAdjoint.apply(y, _checked(op))


class Projector(torch.nn.Module):
    """An ``nn.Module`` applying a fixed linear operator (or its adjoint with ``adjoint=True``).

    Parameters
    ----------
    op : LinearOperator
        For example a :class:`~pet_projection.ParallelBeamProjector`.
    adjoint : bool, optional
        Apply ``op.H`` instead of ``op`` (a back-projection layer).
    """

    def __init__(self, op: LinearOperator, adjoint: bool = False) -> None:
        super().__init__()
        self.op = _checked(op)
        self.adjoint = bool(adjoint)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return back_project(x, self.op) if self.adjoint else project(x, self.op)

    def extra_repr(self) -> str:
        return f"op={self.op!r}, adjoint={self.adjoint}"
