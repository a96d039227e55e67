"""Regions a clinician draws: circles, ellipses and polygons in mm, or voxel masks; their plain-dict (JSON) form.

Coordinates are ``(x, y)`` in mm as in :class:`~pet_projection.grid.ImageGrid`;
a shape is rasterised at the voxel centres of every slice of a 3D grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Union

import numpy as np

from ..arrays import as_host_array
from ..grid import MAX_LENGTH_MM, ImageGrid, as_float_tuple
from ..validation import check_keys, check_real
from .regions import bool_mask

__all__ = ["ArrayMask", "Circle", "DrawnRegion", "Ellipse", "Polygon", "drawn_from_dict"]


def _point_mm(name: str, value: Any) -> tuple[float, float]:
    try:
        return as_float_tuple(name, value, 2)  # type: ignore[return-value]
    except OverflowError:
        raise ValueError(f"{name} holds a number too large for a float: {value!r}") from None


def _inside(grid: ImageGrid, test: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Voxels of ``grid`` whose centre ``(x, y)`` passes ``test``; a 3D grid gets the same test on every slice."""
    coords = grid.meshgrid_mm()
    return np.asarray(test(coords[0], coords[1]), dtype=bool)


@dataclass(frozen=True)
class Circle:
    """A drawn disc: voxels whose centre lies within ``radius_mm`` of ``center_mm = (x, y)``."""

    center_mm: tuple[float, float]
    radius_mm: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "center_mm", _point_mm("center_mm", self.center_mm))
        object.__setattr__(self, "radius_mm", check_real("radius_mm", self.radius_mm, 0.0, MAX_LENGTH_MM,
                                                         low_open=True))

    def rasterize(self, grid: ImageGrid) -> np.ndarray:
        """Bool mask of shape ``grid.shape`` (on every slice of a 3D grid)."""
        cx, cy = self.center_mm
        return _inside(grid, lambda x, y: (x - cx) ** 2 + (y - cy) ** 2 <= self.radius_mm**2)

    def to_dict(self) -> dict:
        return {"shape": "circle", "center_mm": list(self.center_mm), "radius_mm": self.radius_mm}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Circle":
        check_keys("circle", data, ("shape", "center_mm", "radius_mm"))
        return cls(data["center_mm"], data["radius_mm"])


@dataclass(frozen=True)
class Ellipse:
    """A drawn ellipse: centre ``(x, y)`` mm, semi-axes ``(a, b)`` mm, ``a`` rotated by ``angle_rad`` from +x."""

    center_mm: tuple[float, float]
    semi_axes_mm: tuple[float, float]
    angle_rad: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "center_mm", _point_mm("center_mm", self.center_mm))
        axes = tuple(check_real("semi_axes_mm", a, 0.0, MAX_LENGTH_MM, low_open=True)
                     for a in _point_mm("semi_axes_mm", self.semi_axes_mm))
        object.__setattr__(self, "semi_axes_mm", axes)
        object.__setattr__(self, "angle_rad", check_real("angle_rad", self.angle_rad, -MAX_LENGTH_MM, MAX_LENGTH_MM))

    def rasterize(self, grid: ImageGrid) -> np.ndarray:
        """Bool mask of shape ``grid.shape``: voxel centres with ``(u/a)^2 + (v/b)^2 <= 1``."""
        (cx, cy), (a, b) = self.center_mm, self.semi_axes_mm
        c, s = math.cos(self.angle_rad), math.sin(self.angle_rad)

        def test(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            u = (x - cx) * c + (y - cy) * s
            v = (y - cy) * c - (x - cx) * s
            return (u * b) ** 2 + (v * a) ** 2 <= (a * b) ** 2

        return _inside(grid, test)

    def to_dict(self) -> dict:
        return {"shape": "ellipse", "center_mm": list(self.center_mm), "semi_axes_mm": list(self.semi_axes_mm),
                "angle_rad": self.angle_rad}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Ellipse":
        check_keys("ellipse", data, ("shape", "center_mm", "semi_axes_mm"), ("angle_rad",))
        return cls(data["center_mm"], data["semi_axes_mm"], data.get("angle_rad", 0.0))


@dataclass(frozen=True)
class Polygon:
    """A drawn polygon, vertices ``((x, y), ...)`` in mm (at least 3, non-zero area); even-odd rule at voxel centres."""

    vertices_mm: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        array = as_host_array(self.vertices_mm, "vertices_mm")
        if array.dtype.kind not in "iuf" or array.dtype == bool:
            raise TypeError(f"vertices_mm must hold real coordinates in mm, got dtype {array.dtype}")
        if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] < 3:
            raise ValueError(f"vertices_mm must have shape (n, 2) with n >= 3 vertices (x, y), got {array.shape}")
        array = array.astype(np.float64)
        if not np.all(np.isfinite(array)) or np.abs(array).max() > MAX_LENGTH_MM:
            raise ValueError(f"vertices_mm must be finite and within +-{MAX_LENGTH_MM:g} mm")
        x, y = array[:, 0], array[:, 1]
        if np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)) == 0.0:
            raise ValueError("vertices_mm describe a polygon of zero area")
        object.__setattr__(self, "vertices_mm", tuple((float(a), float(b)) for a, b in array))

    def rasterize(self, grid: ImageGrid) -> np.ndarray:
        """Bool mask of shape ``grid.shape`` (even-odd rule, so self-intersecting outlines alternate)."""

        def test(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            inside = np.zeros(x.shape, dtype=bool)
            for (x0, y0), (x1, y1) in zip(self.vertices_mm, self.vertices_mm[1:] + self.vertices_mm[:1]):
                crosses = (y0 > y) != (y1 > y)
                with np.errstate(divide="ignore", invalid="ignore"):
                    x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
                inside ^= crosses & (x < x_cross)
            return inside

        return _inside(grid, test)

    def to_dict(self) -> dict:
        return {"shape": "polygon", "vertices_mm": [list(v) for v in self.vertices_mm]}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Polygon":
        check_keys("polygon", data, ("shape", "vertices_mm"))
        return cls(data["vertices_mm"])


@dataclass(frozen=True, eq=False)
class ArrayMask:
    """A drawn region given voxel by voxel: a bool array of the grid's shape ``([nz,] ny, nx)``."""

    values: np.ndarray

    def __post_init__(self) -> None:
        array = np.array(bool_mask("drawn mask", self.values))
        if array.ndim not in (2, 3):
            raise ValueError(f"drawn mask must be 2D (ny, nx) or 3D (nz, ny, nx), got shape {array.shape}")
        array.setflags(write=False)
        object.__setattr__(self, "values", array)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArrayMask) and np.array_equal(self.values, other.values)

    __hash__ = None  # type: ignore[assignment]

    def rasterize(self, grid: ImageGrid) -> np.ndarray:
        if self.values.shape != grid.shape:
            raise ValueError(f"drawn mask has shape {self.values.shape}, expected the grid shape {grid.shape}")
        return self.values

    def to_dict(self) -> dict:
        return {"shape": "mask", "values": self.values.astype(np.uint8).tolist()}

    @classmethod
    def from_dict(cls, data: Mapping) -> "ArrayMask":
        check_keys("mask", data, ("shape", "values"))
        try:
            values = np.array(data["values"])
        except ValueError:
            raise ValueError("mask values must be a rectangular nested list of 0/1") from None
        return cls(values)


DrawnRegion = Union[Circle, Ellipse, Polygon, ArrayMask]
SHAPES: dict[str, Any] = {"circle": Circle, "ellipse": Ellipse, "polygon": Polygon, "mask": ArrayMask}


def drawn_from_dict(data: Any) -> DrawnRegion:
    """The drawn shape of a plain dict ``{"shape": "circle" | "ellipse" | "polygon" | "mask", ...}``."""
    if not isinstance(data, Mapping):
        raise TypeError(f"drawn must be a JSON object with a 'shape', got {type(data).__name__}")
    kind = data.get("shape")
    if not isinstance(kind, str) or kind not in SHAPES:
        raise ValueError(f"drawn 'shape' must be one of {sorted(SHAPES)}, got {kind!r}")
    return SHAPES[kind].from_dict(data)
