"""Positive/negative sinogram splits by a sinogram mask and the constraints that tie them to the full sinogram.

With a binary sinogram mask the full sinogram splits into ``positive = mask * full``
and ``negative = (1 - mask) * full``, tied by ``positive + negative = full``.
These functions use only ``*``, ``+``, ``-``, ``~`` and ``!=``, so they work
unchanged on NumPy arrays, torch tensors (CPU or CUDA) and CuPy arrays.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["ConsistencyResiduals", "apply_support", "consistency_residuals", "enforce_consistency", "split_by_mask"]


class ConsistencyResiduals(NamedTuple):
    """Residuals of the positive/negative constraints; all zero for a consistent split. Same shapes as the data."""

    total: Any
    """``positive + negative - full``."""
    positive_outside: Any
    """``positive`` on rays outside the mask (should be 0)."""
    negative_inside: Any
    """``negative`` on rays inside the mask (should be 0)."""


def split_by_mask(sinogram: Any, sino_mask: Any) -> tuple[Any, Any]:
    """``(positive, negative) = (mask * full, (1 - mask) * full)`` for a binary sinogram mask.

    Parameters
    ----------
    sinogram : array ``(..., n_views, n_bins)``
        The full sinogram, finite (``inf * 0`` is NaN).
    sino_mask : array broadcasting against ``sinogram``
        bool, or numbers where non-zero means inside.

    For finite data ``positive + negative == sinogram`` bit for bit: every
    element is a value plus an exact zero. Works on NumPy, torch and CuPy.
    """
    inside = sino_mask != 0
    return sinogram * inside, sinogram * ~inside


def consistency_residuals(positive: Any, negative: Any, full: Any, sino_mask: Any) -> ConsistencyResiduals:
    """Residuals a loss can penalise (e.g. mean squares): sum, positive outside, negative inside the mask."""
    inside = sino_mask != 0
    return ConsistencyResiduals(positive + negative - full, positive * ~inside, negative * inside)


def enforce_consistency(positive: Any, negative: Any, sino_mask: Any, full: Any = None) -> tuple[Any, Any]:
    """Project a (positive, negative) pair onto the consistent pairs, exactly.

    With ``full`` the constraints ``positive = 0`` outside the mask,
    ``negative = 0`` inside and ``positive + negative = full`` leave one pair,
    :func:`split_by_mask` ``(full, mask)``. Without ``full`` the first two
    constraints fix a set of coordinates to zero, a linear subspace; the
    squared distance ``|p' - p|^2 + |q' - q|^2`` separates per element, so the
    closest pair keeps the free elements and zeroes the fixed ones:
    ``(mask * positive, (1 - mask) * negative)``. Its sum is the implied full
    sinogram. Both results are idempotent.
    """
    if full is not None:
        return split_by_mask(full, sino_mask)
    inside = sino_mask != 0
    return positive * inside, negative * ~inside


def apply_support(sinogram: Any, support: Any) -> Any:
    """Zero the rays outside ``support`` (bool or non-zero = keep), broadcasting against ``sinogram``."""
    return sinogram * (support != 0)
