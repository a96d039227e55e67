"""Image grids: where every voxel of an image array sits in space (mm)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

Number = Union[int, float]

# Lengths (mm) are kept within this range so that index arithmetic in float64
# stays exact to far below a voxel; PET and CT geometries are millimetres to metres.
MAX_LENGTH_MM = 1e6
MIN_SIZE_MM = 1e-6


def _as_int_tuple(name: str, values: Sequence[int]) -> tuple[int, ...]:
    try:
        items = tuple(values)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of integers, got {values!r}") from None
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{name} must contain integers, got {item!r} in {values!r}")
        if item < 1:
            raise ValueError(f"{name} must contain positive sizes, got {values!r}")
    return tuple(int(item) for item in items)


def length_mm(name: str, value: float, positive: bool = False) -> float:
    """``value`` as a finite length in mm within +-MAX_LENGTH_MM (at least MIN_SIZE_MM if ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if abs(value) > MAX_LENGTH_MM:
        raise ValueError(f"{name} must lie within +-{MAX_LENGTH_MM:g} mm, got {value!r}")
    value = float(value)
    if positive and value < MIN_SIZE_MM:
        raise ValueError(f"{name} must be positive (at least {MIN_SIZE_MM:g} mm), got {value}")
    return value


def as_float_tuple(name: str, values: Number | Sequence[Number], length: int) -> tuple[float, ...]:
    """Return ``values`` as ``length`` finite floats; a scalar is repeated.

    Raises ``TypeError`` for non-numbers and ``ValueError`` for a wrong length
    or non-finite entries, naming ``name`` in the message.
    """
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a number or a sequence of numbers, got {values!r}")
    if isinstance(values, numbers.Real) and not isinstance(values, bool):
        items: tuple = (values,) * length
    else:
        try:
            items = tuple(np.asarray(values).reshape(-1).tolist())
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a number or a sequence of numbers, got {values!r}") from None
        if len(items) != length:
            raise ValueError(f"{name} must have {length} entries (one per image axis), got {len(items)}: {values!r}")
    for item in items:
        length_mm(name, item)
    return tuple(float(item) for item in items)


@dataclass(frozen=True, init=False)
class ImageGrid:
    """A regular 2D or 3D voxel grid placed in patient/scanner space.

    Parameters
    ----------
    shape : tuple of int
        Array shape ``(ny, nx)`` for 2D or ``(nz, ny, nx)`` for 3D (C order).
    voxel_size_mm : float or sequence of float
        Voxel size in mm, one per array axis in the same order as ``shape``
        (``(dy, dx)`` or ``(dz, dy, dx)``); a scalar means isotropic voxels.
    origin_mm : float or sequence of float, optional
        Position in mm of the grid centre, one per array axis in the order of
        ``shape`` (``(oy, ox)`` or ``(oz, oy, ox)``). Default 0.

    Notes
    -----
    Voxel ``(k, i, j)`` has its centre at ``x = (j - (nx-1)/2) dx + ox``,
    ``y = (i - (ny-1)/2) dy + oy``, ``z = (k - (nz-1)/2) dz + oz``.
    A 2D grid is the plane ``z = 0``.
    """

    shape: tuple[int, ...]
    voxel_size_mm: tuple[float, ...]
    origin_mm: tuple[float, ...] = ()

    def __init__(self, shape: Sequence[int], voxel_size_mm: Number | Sequence[Number] = 1.0,
                 origin_mm: Number | Sequence[Number] = 0.0) -> None:
        shape_t = _as_int_tuple("shape", shape)
        if len(shape_t) not in (2, 3):
            raise ValueError(f"shape must be (ny, nx) or (nz, ny, nx), got {shape_t}")
        voxel = as_float_tuple("voxel_size_mm", voxel_size_mm, len(shape_t))
        if min(voxel) < MIN_SIZE_MM:
            raise ValueError(f"voxel_size_mm must be positive (at least {MIN_SIZE_MM:g} mm), got {voxel}")
        origin = as_float_tuple("origin_mm", origin_mm, len(shape_t))
        object.__setattr__(self, "shape", shape_t)
        object.__setattr__(self, "voxel_size_mm", voxel)
        object.__setattr__(self, "origin_mm", origin)

    @property
    def ndim(self) -> int:
        """2 or 3."""
        return len(self.shape)

    @property
    def n_voxels(self) -> int:
        return math.prod(self.shape)

    @property
    def shape3d(self) -> tuple[int, int, int]:
        """``(nz, ny, nx)``, with ``nz = 1`` for a 2D grid."""
        return (1,) * (3 - self.ndim) + self.shape  # type: ignore[return-value]

    @property
    def voxel_size3d_mm(self) -> tuple[float, float, float]:
        """``(dz, dy, dx)`` in mm; ``dz = 1`` for a 2D grid (it never enters a length)."""
        return (1.0,) * (3 - self.ndim) + self.voxel_size_mm  # type: ignore[return-value]

    @property
    def origin3d_mm(self) -> tuple[float, float, float]:
        """``(oz, oy, ox)`` in mm; ``oz = 0`` for a 2D grid."""
        return (0.0,) * (3 - self.ndim) + self.origin_mm  # type: ignore[return-value]

    @property
    def extent_mm(self) -> tuple[float, ...]:
        """Edge length of the grid's bounding box per array axis, in mm."""
        return tuple(n * d for n, d in zip(self.shape, self.voxel_size_mm))

    def index_offsets(self) -> tuple[float, float, float]:
        """``(ck, ci, cj)`` such that index ``j = x / dx + cj`` (likewise ``i``, ``k``)."""
        return tuple((n - 1) / 2.0 - o / d  # type: ignore[return-value]
                     for n, d, o in zip(self.shape3d, self.voxel_size3d_mm, self.origin3d_mm))

    def centers_mm(self, axis: int) -> np.ndarray:
        """Voxel centre coordinates in mm along array ``axis`` (negative axes allowed)."""
        n = self.shape[axis]
        return (np.arange(n) - (n - 1) / 2.0) * self.voxel_size_mm[axis] + self.origin_mm[axis]

    def meshgrid_mm(self) -> tuple[np.ndarray, ...]:
        """Coordinate arrays of all voxel centres, returned as ``(x, y)`` or ``(x, y, z)``, each of ``shape``."""
        axes = np.meshgrid(*(self.centers_mm(a) for a in range(self.ndim)), indexing="ij")
        return tuple(reversed(axes))

    def bounding_radius_mm(self) -> float:
        """Distance in mm from the coordinate origin to the farthest corner of the grid."""
        half = [e / 2.0 + abs(o) for e, o in zip(self.extent_mm, self.origin_mm)]
        return math.sqrt(sum(h * h for h in half))
