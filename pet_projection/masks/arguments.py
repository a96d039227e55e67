"""Argument checks shared by the mask generators: random sources, 2D plane grids, non-negative lengths (mm)."""

from __future__ import annotations

import numbers
from typing import Any, Union

import numpy as np

from ..grid import ImageGrid, length_mm
from ..validation import check_non_negative

RngLike = Union[np.random.Generator, int]


def as_rng(rng: RngLike) -> np.random.Generator:
    """``rng`` itself, or a new generator seeded with the non-negative integer ``rng``."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng seed must be non-negative, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator or a non-negative integer seed, got {type(rng).__name__}")


def plane_grid(grid: Any) -> ImageGrid:
    """``grid`` if it is a 2D :class:`~pet_projection.grid.ImageGrid`, the only kind the generators take."""
    if not isinstance(grid, ImageGrid):
        raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
    if grid.ndim != 2:
        raise ValueError(f"mask generators support 2D grids only, got shape {grid.shape}; generate n * nz masks "
                         "on the slice grid ImageGrid(shape[1:], voxel_size_mm[1:], origin_mm[1:]) and reshape")
    return grid


def non_negative_mm(name: str, value: Any) -> float:
    """``value`` as a length in mm in ``[0, MAX_LENGTH_MM]``."""
    return check_non_negative(name, length_mm(name, value))
