"""Transparent medical attention (TMA): parameter-free lesion attention in image and sinogram space.

TMA (ALL-PET, Huang et al., arXiv 2509.09130) turns a coarse segmentation of
hyper- and hypometabolic regions, or an anatomical label map, into weights on
the sinogram rays that pass through those regions. Nothing is learned: every
number is a documented threshold or a clinician's weight.

The pipeline:

1. :func:`segment_metabolic` thresholds an activity image against the mean
   activity of a reference region (a :class:`RegionTable` with the regions
   ``"hyper"`` and ``"hypo"``). Label maps from a simulator or an atlas are
   :class:`RegionTable` objects too.
2. :class:`AttentionRegions` holds named, possibly overlapping region masks and a
   weight in ``[0, 1]`` per region (by default 1 for lesions, 0 otherwise).
3. :class:`RoiEditSpec` is a clinician's declarative list of :class:`RoiEdit`
   operations (``add``, ``remove``, ``scale``), with a JSON form that round-trips
   exactly. Regions can be drawn as :class:`Circle`, :class:`Ellipse`,
   :class:`Polygon` (in mm) or :class:`ArrayMask` (voxels).
4. :class:`TransparentMedicalAttention` maps the regions to an image attention
   and, with one projector call, to a sinogram attention, both in ``[0, 1]``.

Conventions: lengths in mm; images ``(..., [nz,] ny, nx)`` with voxel centres as
in :class:`~pet_projection.grid.ImageGrid`; masks and label maps live on that
grid and may carry leading batch axes.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
from scipy import ndimage

from .arrays import as_host_array
from .grid import MAX_LENGTH_MM, MIN_SIZE_MM, ImageGrid, as_float_tuple
from .operators import LinearOperator

# PERCIST 1.0 (Wahl et al., J Nucl Med 2009;50 Suppl 1:122S-150S) calls a tumour measurable when its
# uptake exceeds 1.5 x the mean liver uptake (+ 2 SD of the liver); the default keeps the ratio.
DEFAULT_HYPER_RATIO = 1.5
# No single clinical threshold exists; uptake below half of the reference mean is a conventional choice.
DEFAULT_HYPO_RATIO = 0.5
# Soft-edge width: about the spatial resolution (FWHM) of clinical whole-body PET (4-7 mm), so rays through
# a lesion's partial-volume spill-out keep some attention.
DEFAULT_MARGIN_MM = 6.0

HYPER = "hyper"
HYPO = "hypo"
LESION_PREFIX = "lesion"
SPEC_VERSION = 1


# ----------------------------------------------------------------------------------------------- validation

def _finite_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        result = float(value)
    except OverflowError:
        raise ValueError(f"{name} is too large, got {value!r}") from None
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


def _in_range(name: str, value: Any, low: float, high: float) -> float:
    result = _finite_real(name, value)
    if not low <= result <= high:
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}], got {result!r}")
    return result


def _positive_mm(name: str, value: Any) -> float:
    result = _in_range(name, value, 0.0, MAX_LENGTH_MM)
    if result == 0.0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return result


def _point_mm(name: str, value: Any) -> tuple[float, float]:
    try:
        return as_float_tuple(name, value, 2)  # type: ignore[return-value]
    except OverflowError:
        raise ValueError(f"{name} holds a number too large for a float: {value!r}") from None


def _region_name(name: Any, what: str = "region name") -> str:
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {type(name).__name__} {name!r}")
    if not name:
        raise ValueError(f"{what} must not be empty")
    return name


def _bool_mask(name: str, mask: Any) -> np.ndarray:
    """``mask`` as a bool array; bool or 0/1 integer input (array_like or torch CPU tensor)."""
    array = as_host_array(mask, name)
    if array.dtype == bool:
        return array
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must be a bool (or 0/1 integer) mask, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() > 1):
        raise ValueError(f"{name} must hold only 0 and 1 (a mask), got values in [{array.min()}, {array.max()}]")
    return array.astype(bool)


def _batch_shape(name: str, shape: tuple[int, ...], grid: ImageGrid) -> tuple[int, ...]:
    """Leading batch axes of an array ``(..., *grid.shape)``; ``ValueError`` naming ``name`` otherwise."""
    n = grid.ndim
    if len(shape) < n or tuple(shape[len(shape) - n:]) != grid.shape:
        raise ValueError(f"{name} has shape {tuple(shape)}, expected (..., {', '.join(map(str, grid.shape))}) "
                         f"(any leading batch axes, then the grid shape {grid.shape})")
    return tuple(shape[:len(shape) - n])


def _check_keys(what: str, data: Any, required: Sequence[str], optional: Sequence[str] = ()) -> None:
    if not isinstance(data, Mapping):
        raise TypeError(f"{what} must be a JSON object (dict), got {type(data).__name__}")
    keys = set(data)
    for key in keys:
        if not isinstance(key, str):
            raise TypeError(f"{what} keys must be strings, got {key!r}")
    missing = [k for k in required if k not in keys]
    if missing:
        raise ValueError(f"{what} is missing {', '.join(map(repr, missing))}")
    unknown = sorted(keys - set(required) - set(optional))
    if unknown:
        raise ValueError(f"{what} has unknown key(s) {', '.join(map(repr, unknown))}; allowed: "
                         f"{', '.join(map(repr, list(required) + list(optional)))}")


# -------------------------------------------------------------------------------------- connected components

def _components(mask: np.ndarray, core_ndim: int) -> tuple[np.ndarray, int]:
    """Connected components of ``mask (..., *core)``, never joined across leading batch axes.

    Voxels touching by a face, edge or corner are connected (8-connectivity in
    2D, 26 in 3D). Labels run ``1..n`` over the whole array; 0 is background.
    """
    structure = np.zeros((3,) * mask.ndim, dtype=bool)
    centre = (1,) * (mask.ndim - core_ndim)
    structure[centre] = ndimage.generate_binary_structure(core_ndim, core_ndim)
    labels, n = ndimage.label(mask, structure=structure)
    return labels, int(n)


def _ball_measure(diameter_mm: float, ndim: int) -> float:
    """Area (2D) or volume (3D) of a disc or ball of ``diameter_mm``, in mm^ndim."""
    return math.pi ** (ndim / 2.0) / math.gamma(ndim / 2.0 + 1.0) * (diameter_mm / 2.0) ** ndim


def _drop_small(mask: np.ndarray, grid: ImageGrid, min_diameter_mm: float) -> np.ndarray:
    labels, _ = _components(mask, grid.ndim)
    sizes_mm = np.bincount(labels.reshape(-1)) * math.prod(grid.voxel_size_mm)
    keep = sizes_mm >= _ball_measure(min_diameter_mm, grid.ndim)
    keep[0] = False
    return keep[labels]


# ------------------------------------------------------------------------------------------------ label maps

@dataclass(frozen=True, eq=False, init=False)
class RegionTable:
    """An integer label map on an image grid and the names of its labels.

    This is the format in which segmentations, atlases and the simulator hand
    regions to TMA.

    Parameters
    ----------
    labels : array_like of int, shape ``(..., [nz,] ny, nx)``
        One label per voxel of the image grid, with any leading batch axes.
        0 conventionally means "no region".
    names : mapping of str to int
        Region name to label value, for example ``{"lesion": 10, "brainstem": 3,
        "liver": 5}``. Values are unique. A name whose value does not occur in
        ``labels`` is an empty region.

    Notes
    -----
    Naming convention (not enforced): ``"lesion"`` or ``"lesion_<k>"`` for
    lesions (default weight 1, see :func:`default_weight`), ``"hyper"`` and
    ``"hypo"`` from :func:`segment_metabolic`, and lower-case snake_case organ
    names such as ``"brainstem"``, ``"liver"``, ``"spleen"``,
    ``"lymph_node_4r"`` (IASLC station) or ``"frontal_lobe"``.
    """

    labels: np.ndarray
    names: Mapping[str, int]

    def __init__(self, labels: Any, names: Mapping[str, int]) -> None:
        array = as_host_array(labels, "labels")
        if array.dtype.kind not in "iu":
            raise TypeError(f"labels must be an integer label map, got dtype {array.dtype}")
        if not isinstance(names, Mapping):
            raise TypeError(f"names must be a mapping of region name to label value, got {type(names).__name__}")
        table: dict[str, int] = {}
        for name, value in names.items():
            _region_name(name, "names key")
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"names[{name!r}] must be an integer label value, got {value!r}")
            table[name] = int(value)
        values = list(table.values())
        if len(set(values)) != len(values):
            raise ValueError(f"names must give each region its own label value, got {table}")
        array = np.array(array)
        array.setflags(write=False)
        object.__setattr__(self, "labels", array)
        object.__setattr__(self, "names", table)

    def mask(self, name: str) -> np.ndarray:
        """Bool mask of region ``name``, same shape as ``labels``."""
        if name not in self.names:
            raise ValueError(f"unknown region {name!r}; the table has {sorted(self.names)}")
        return self.labels == self.names[name]


def segment_metabolic(activity: Any, reference_mask: Any, body_mask: Any, grid: ImageGrid, *,
                      hyper_ratio: float = DEFAULT_HYPER_RATIO, hypo_ratio: float = DEFAULT_HYPO_RATIO,
                      min_diameter_mm: float = 0.0) -> RegionTable:
    """Coarse segmentation of hyper- and hypometabolic regions by ratio to a reference region.

    With ``m`` the mean activity inside ``reference_mask`` (per batch item):
    ``hyper = activity > hyper_ratio * m`` and
    ``hypo = body_mask & (activity < hypo_ratio * m)``, so air outside the body
    is never hypometabolic. This is the SUV-ratio convention (uptake relative
    to a reference such as liver, cerebellum or pons, or the whole body).

    Parameters
    ----------
    activity : array_like, shape ``(..., [nz,] ny, nx)``
        Activity (any unit; only ratios matter) on ``grid``, with any leading
        batch axes. NumPy array, array_like or torch CPU tensor.
    reference_mask, body_mask : array_like of bool
        Shape ``activity.shape`` or ``grid.shape`` (then shared by the batch).
    grid : ImageGrid
        The image grid (2D or 3D).
    hyper_ratio : float, optional
        Default 1.5, the PERCIST 1.0 measurability ratio to mean liver uptake
        (Wahl et al., J Nucl Med 2009;50 Suppl 1:122S), without its 2 SD term.
    hypo_ratio : float, optional
        Default 0.5 (uptake below half the reference mean), a conventional
        choice; no single clinical threshold exists. ``0 <= hypo_ratio <
        hyper_ratio``.
    min_diameter_mm : float, optional
        Connected components (8-/26-connected) whose area (volume) is below that
        of a disc (ball) of this diameter are dropped. Default 0: keep all.

    Returns
    -------
    RegionTable
        Labels ``(..., [nz,] ny, nx)`` int32: 0 background, 1 ``"hyper"``, 2 ``"hypo"``.
    """
    if not isinstance(grid, ImageGrid):
        raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
    values = as_host_array(activity, "activity")
    if values.dtype.kind not in "iuf":
        raise TypeError(f"activity must hold real numbers, got dtype {values.dtype}")
    _batch_shape("activity", values.shape, grid)
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("activity must be finite")
    hyper_ratio = _in_range("hyper_ratio", hyper_ratio, 0.0, math.inf)
    hypo_ratio = _in_range("hypo_ratio", hypo_ratio, 0.0, math.inf)
    if hypo_ratio >= hyper_ratio:
        raise ValueError(f"hypo_ratio ({hypo_ratio}) must be below hyper_ratio ({hyper_ratio})")
    min_diameter_mm = _in_range("min_diameter_mm", min_diameter_mm, 0.0, MAX_LENGTH_MM)
    reference = _broadcast_mask("reference_mask", reference_mask, values.shape)
    body = _broadcast_mask("body_mask", body_mask, values.shape)
    axes = tuple(range(values.ndim - grid.ndim, values.ndim))
    count = reference.sum(axis=axes, keepdims=True)
    if np.any(count == 0):
        raise ValueError("reference_mask selects no voxel (in at least one batch item)")
    mean = np.where(reference, values, 0.0).sum(axis=axes, keepdims=True) / count
    if np.any(mean <= 0.0):
        raise ValueError(f"the mean activity in reference_mask must be positive, got {mean.min()}")
    hyper = values > hyper_ratio * mean
    hypo = body & (values < hypo_ratio * mean)
    if min_diameter_mm > 0.0:
        hyper, hypo = _drop_small(hyper, grid, min_diameter_mm), _drop_small(hypo, grid, min_diameter_mm)
    labels = hyper.astype(np.int32) + 2 * hypo.astype(np.int32)
    return RegionTable(labels, {HYPER: 1, HYPO: 2})


def _broadcast_mask(name: str, mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    array = _bool_mask(name, mask)
    try:
        return np.broadcast_to(array, shape)
    except ValueError:
        raise ValueError(f"{name} has shape {array.shape}, expected {shape} or the grid shape") from None


# ------------------------------------------------------------------------------------------- drawn regions

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
        object.__setattr__(self, "radius_mm", _positive_mm("radius_mm", self.radius_mm))

    def rasterize(self, grid: ImageGrid) -> np.ndarray:
        """Bool mask of shape ``grid.shape`` (on every slice of a 3D grid)."""
        cx, cy = self.center_mm
        return _inside(grid, lambda x, y: (x - cx) ** 2 + (y - cy) ** 2 <= self.radius_mm**2)

    def to_dict(self) -> dict:
        return {"shape": "circle", "center_mm": list(self.center_mm), "radius_mm": self.radius_mm}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Circle":
        _check_keys("circle", data, ("shape", "center_mm", "radius_mm"))
        return cls(data["center_mm"], data["radius_mm"])


@dataclass(frozen=True)
class Ellipse:
    """A drawn ellipse: centre ``(x, y)`` mm, semi-axes ``(a, b)`` mm, ``a`` rotated by ``angle_rad`` from +x."""

    center_mm: tuple[float, float]
    semi_axes_mm: tuple[float, float]
    angle_rad: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "center_mm", _point_mm("center_mm", self.center_mm))
        axes = tuple(_positive_mm("semi_axes_mm", a) for a in _point_mm("semi_axes_mm", self.semi_axes_mm))
        object.__setattr__(self, "semi_axes_mm", axes)
        object.__setattr__(self, "angle_rad", _in_range("angle_rad", self.angle_rad, -MAX_LENGTH_MM, MAX_LENGTH_MM))

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
        _check_keys("ellipse", data, ("shape", "center_mm", "semi_axes_mm"), ("angle_rad",))
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
        _check_keys("polygon", data, ("shape", "vertices_mm"))
        return cls(data["vertices_mm"])


@dataclass(frozen=True, eq=False)
class ArrayMask:
    """A drawn region given voxel by voxel: a bool array of the grid's shape ``([nz,] ny, nx)``."""

    values: np.ndarray

    def __post_init__(self) -> None:
        array = np.array(_bool_mask("drawn mask", self.values))
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
        _check_keys("mask", data, ("shape", "values"))
        try:
            values = np.array(data["values"])
        except ValueError:
            raise ValueError("mask values must be a rectangular nested list of 0/1") from None
        return cls(values)


DrawnRegion = Union[Circle, Ellipse, Polygon, ArrayMask]
_SHAPES: dict[str, Any] = {"circle": Circle, "ellipse": Ellipse, "polygon": Polygon, "mask": ArrayMask}


def _drawn_from_dict(data: Any) -> DrawnRegion:
    if not isinstance(data, Mapping):
        raise TypeError(f"drawn must be a JSON object with a 'shape', got {type(data).__name__}")
    kind = data.get("shape")
    if not isinstance(kind, str) or kind not in _SHAPES:
        raise ValueError(f"drawn 'shape' must be one of {sorted(_SHAPES)}, got {kind!r}")
    return _SHAPES[kind].from_dict(data)


# ---------------------------------------------------------------------------------------------- ROI edits

OPS = ("add", "remove", "scale")


@dataclass(frozen=True)
class RoiEdit:
    """One clinician edit of the attention regions.

    Parameters
    ----------
    op : {"add", "remove", "scale"}
        ``add``: set region ``region``'s weight to ``weight`` (default 1); with
        ``drawn``, its voxels are first added to the region (a new region if
        the name is new). Without ``drawn`` the region must exist (e.g. a label
        of the table such as ``"brainstem"``, whose default weight is 0).
        ``remove``: set the region's weight to 0 (a later ``add`` by name
        brings it back). ``scale``: multiply its weight by ``factor`` (at least
        0); weights saturate at 1.
    region : str
        Region name.
    weight : float in [0, 1], optional
        Only for ``add``.
    factor : float, optional
        Only for ``scale``; finite and non-negative.
    drawn : Circle, Ellipse, Polygon, ArrayMask or bool array, optional
        Only for ``add``. A bool array of the grid's shape becomes an :class:`ArrayMask`.

    Use the constructors :meth:`add`, :meth:`remove` and :meth:`scale` for brevity.
    """

    op: str
    region: str
    weight: Optional[float] = None
    factor: Optional[float] = None
    drawn: Optional[DrawnRegion] = None

    def __post_init__(self) -> None:
        if not isinstance(self.op, str) or self.op not in OPS:
            raise ValueError(f"op must be one of {OPS}, got {self.op!r}")
        _region_name(self.region)
        if self.op != "add" and (self.weight is not None or self.drawn is not None):
            raise ValueError(f"{self.op!r} takes no weight or drawn region (only 'add' does)")
        if self.op != "scale" and self.factor is not None:
            raise ValueError(f"{self.op!r} takes no factor (only 'scale' does)")
        if self.op == "add":
            weight = 1.0 if self.weight is None else self.weight
            object.__setattr__(self, "weight", _in_range("weight", weight, 0.0, 1.0))
            if isinstance(self.drawn, np.ndarray):
                object.__setattr__(self, "drawn", ArrayMask(self.drawn))
            elif self.drawn is not None and not isinstance(self.drawn, tuple(_SHAPES.values())):
                raise TypeError(f"drawn must be a Circle, Ellipse, Polygon, ArrayMask or bool array, "
                                f"got {type(self.drawn).__name__}")
        if self.op == "scale":
            if self.factor is None:
                raise ValueError("'scale' needs a factor")
            object.__setattr__(self, "factor", _in_range("factor", self.factor, 0.0, math.inf))

    @classmethod
    def add(cls, region: str, weight: float = 1.0, drawn: Optional[Union[DrawnRegion, np.ndarray]] = None) -> "RoiEdit":
        return cls("add", region, weight=weight, drawn=drawn)  # type: ignore[arg-type]

    @classmethod
    def remove(cls, region: str) -> "RoiEdit":
        return cls("remove", region)

    @classmethod
    def scale(cls, region: str, factor: float) -> "RoiEdit":
        return cls("scale", region, factor=factor)

    def to_dict(self) -> dict:
        """JSON-ready dict: ``op``, ``region``, then ``weight`` and ``drawn`` (add) or ``factor`` (scale)."""
        data: dict[str, Any] = {"op": self.op, "region": self.region}
        if self.op == "add":
            data["weight"] = self.weight
        if self.op == "scale":
            data["factor"] = self.factor
        if self.drawn is not None:
            data["drawn"] = self.drawn.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Any) -> "RoiEdit":
        _check_keys("edit", data, ("op", "region"), ("weight", "factor", "drawn"))
        op = data["op"]
        if not isinstance(op, str) or op not in OPS:
            raise ValueError(f"edit 'op' must be one of {OPS}, got {op!r}")
        allowed = {"add": ("weight", "drawn"), "remove": (), "scale": ("factor",)}[op]
        _check_keys(f"{op!r} edit", data, ("op", "region") + (("factor",) if op == "scale" else ()), allowed)
        drawn = _drawn_from_dict(data["drawn"]) if "drawn" in data else None
        return cls(op, data["region"], weight=data.get("weight"), factor=data.get("factor"), drawn=drawn)

    def _apply(self, masks: dict[str, np.ndarray], weights: dict[str, float], grid: ImageGrid) -> None:
        """Apply this edit in place to region ``masks`` and ``weights`` on ``grid``."""
        if self.drawn is not None:
            drawn = self.drawn.rasterize(grid)
            masks[self.region] = masks[self.region] | drawn if self.region in masks else drawn
        elif self.region not in masks:
            hint = "; draw a shape or mask to add a new region" if self.op == "add" else ""
            raise ValueError(f"{self.op!r} edit names unknown region {self.region!r}; known regions: "
                             f"{sorted(masks)}{hint}")
        if self.op == "add":
            weights[self.region] = self.weight  # type: ignore[assignment]
        elif self.op == "remove":
            weights[self.region] = 0.0
        else:
            weights[self.region] = min(1.0, weights[self.region] * self.factor)  # type: ignore[operator]


@dataclass(frozen=True)
class RoiEditSpec:
    """An ordered list of :class:`RoiEdit`, applied first to last.

    JSON form (``to_json`` / ``from_json`` round-trip exactly)::

        {"version": 1, "edits": [
            {"op": "add", "region": "brainstem", "weight": 0.5},
            {"op": "add", "region": "node_4r", "weight": 1.0,
             "drawn": {"shape": "circle", "center_mm": [12.0, -30.0], "radius_mm": 8.0}},
            {"op": "add", "region": "liver", "weight": 0.3,
             "drawn": {"shape": "polygon", "vertices_mm": [[0, 0], [40, 0], [40, 30]]}},
            {"op": "remove", "region": "hypo"},
            {"op": "scale", "region": "hyper", "factor": 0.5}]}

    Drawn shapes: ``circle`` (``center_mm``, ``radius_mm``), ``ellipse``
    (``center_mm``, ``semi_axes_mm``, optional ``angle_rad``), ``polygon``
    (``vertices_mm``) and ``mask`` (``values``: nested 0/1 lists of the grid
    shape). Coordinates are ``(x, y)`` in mm. Bad specs raise ``TypeError`` or
    ``ValueError`` naming the problem; unknown region names and masks of the
    wrong shape are found when the spec is applied to regions on a grid.
    ``version`` may be omitted (it defaults to 1).
    """

    edits: tuple[RoiEdit, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.edits, (str, bytes, Mapping)) or not isinstance(self.edits, Sequence):
            raise TypeError(f"edits must be a sequence of RoiEdit, got {type(self.edits).__name__}")
        for edit in self.edits:
            if not isinstance(edit, RoiEdit):
                raise TypeError(f"edits must contain RoiEdit objects, got {type(edit).__name__}")
        object.__setattr__(self, "edits", tuple(self.edits))

    def to_dict(self) -> dict:
        return {"version": SPEC_VERSION, "edits": [edit.to_dict() for edit in self.edits]}

    @classmethod
    def from_dict(cls, data: Any) -> "RoiEditSpec":
        _check_keys("spec", data, ("edits",), ("version",))
        version = data.get("version", SPEC_VERSION)
        if isinstance(version, bool) or version != SPEC_VERSION:
            raise ValueError(f"spec version must be {SPEC_VERSION}, got {version!r}")
        if not isinstance(data["edits"], list):
            raise TypeError(f"spec 'edits' must be a list, got {type(data['edits']).__name__}")
        return cls(tuple(RoiEdit.from_dict(edit) for edit in data["edits"]))

    def to_json(self, indent: Optional[int] = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: Union[str, bytes]) -> "RoiEditSpec":
        if not isinstance(text, (str, bytes, bytearray)):
            raise TypeError(f"spec JSON must be str or bytes, got {type(text).__name__}")
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as error:
            raise ValueError(f"spec is not valid JSON: {error}") from None
        except UnicodeDecodeError:
            raise ValueError("spec bytes are not UTF-8/16/32 encoded JSON") from None
        except RecursionError:
            raise ValueError("spec JSON is nested too deeply") from None
        return cls.from_dict(data)

    def apply(self, regions: "AttentionRegions", grid: ImageGrid) -> "AttentionRegions":
        """The regions after all edits, drawn shapes rasterised on ``grid``."""
        if not isinstance(regions, AttentionRegions):
            raise TypeError(f"regions must be AttentionRegions, got {type(regions).__name__}")
        if not isinstance(grid, ImageGrid):
            raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
        masks, weights = dict(regions.masks), dict(regions.weights)
        for edit in self.edits:
            edit._apply(masks, weights, grid)
        return AttentionRegions(masks, weights)


def _reject_constant(name: str) -> None:
    raise ValueError(f"spec JSON contains {name}; numbers must be finite")


# ------------------------------------------------------------------------------------------------- regions

def default_weight(name: str) -> float:
    """1 for lesions (``"hyper"``, ``"hypo"`` and names starting with ``"lesion"``), else 0."""
    return 1.0 if name in (HYPER, HYPO) or name.startswith(LESION_PREFIX) else 0.0


@dataclass(frozen=True, eq=False, init=False)
class AttentionRegions:
    """Named region masks (they may overlap) with a weight in ``[0, 1]`` each.

    Parameters
    ----------
    masks : mapping of str to bool array, each ``(..., [nz,] ny, nx)``
        Masks on the image grid; leading batch axes broadcast against each other.
    weights : mapping of str to float, optional
        Weight per region in ``[0, 1]``; regions not named get
        :func:`default_weight` (1 for lesions, 0 otherwise).
    """

    masks: Mapping[str, np.ndarray]
    weights: Mapping[str, float]

    def __init__(self, masks: Mapping[str, Any], weights: Optional[Mapping[str, float]] = None) -> None:
        if not isinstance(masks, Mapping):
            raise TypeError(f"masks must be a mapping of region name to mask, got {type(masks).__name__}")
        weights = {} if weights is None else weights
        if not isinstance(weights, Mapping):
            raise TypeError(f"weights must be a mapping of region name to weight, got {type(weights).__name__}")
        unknown = sorted(set(weights) - set(masks), key=str)
        if unknown:
            raise ValueError(f"weights name unknown region(s) {unknown}; regions: {sorted(masks, key=str)}")
        checked: dict[str, np.ndarray] = {}
        for name, mask in masks.items():
            array = np.array(_bool_mask(f"mask of {_region_name(name)!r}", mask))
            array.setflags(write=False)
            checked[name] = array
        object.__setattr__(self, "masks", checked)
        object.__setattr__(self, "weights", {
            name: _in_range(f"weight of {name!r}", weights.get(name, default_weight(name)), 0.0, 1.0)
            for name in checked})

    @classmethod
    def from_table(cls, table: RegionTable, weights: Optional[Mapping[str, float]] = None) -> "AttentionRegions":
        """One region per name of ``table``; weights default to :func:`default_weight`."""
        if not isinstance(table, RegionTable):
            raise TypeError(f"table must be a RegionTable, got {type(table).__name__}")
        return cls({name: table.mask(name) for name in table.names}, weights)


# ------------------------------------------------------------------------------------------------ attention

@dataclass(frozen=True)
class AttentionMaps:
    """TMA output, float64 in ``[0, 1]``.

    Attributes
    ----------
    image : ndarray, shape ``(..., *grid.shape)``
    sinogram : ndarray, shape ``(..., *projector.out_shape)``
    """

    image: np.ndarray
    sinogram: np.ndarray


@dataclass(frozen=True)
class _RegionField:
    """One region's soft mask ``(B, *core)`` and, per voxel of its support, the nearest component (0 outside)."""

    weight: float
    soft: np.ndarray
    component: np.ndarray
    n_components: int


def _grid_of(projector: LinearOperator) -> ImageGrid:
    geometry = getattr(projector, "geometry", None)
    grid = getattr(geometry, "grid", None) if geometry is not None else getattr(projector, "grid", None)
    if grid is None:
        raise TypeError(f"{type(projector).__name__} has no grid; pass grid=ImageGrid(...)")
    return grid


class TransparentMedicalAttention:
    """Parameter-free attention on the rays through weighted regions (TMA).

    Parameters
    ----------
    projector : LinearOperator
        Maps images ``(..., *grid.shape)`` to sinograms ``(..., *out_shape)``,
        e.g. :class:`~pet_projection.ParallelBeamProjector` or a composition.
    grid : ImageGrid, optional
        The image grid; default ``projector.geometry.grid`` or ``projector.grid``.
    margin_mm : float, optional
        Soft-edge width in mm (default 6, about the FWHM of clinical PET); 0 for hard edges.

    Notes
    -----
    **Image attention.** Each region ``r`` gets the soft mask
    ``s_r = max(0, 1 - d_r / margin_mm)``, with ``d_r`` the Euclidean distance in
    mm from the voxel centre to the nearest voxel centre of the region (0
    inside): 1 inside, falling linearly to 0 at ``margin_mm`` (``margin_mm = 0``:
    hard edges). The image attention is ``max_r w_r s_r``, so overlapping
    regions never exceed 1 and removing one leaves the others intact.

    **Sinogram attention.** Each connected component ``c`` (one lesion) of a
    region takes the part of ``s_r`` nearer to it than to the region's other
    components, ``s_c``. Its projection ``P s_c`` is the path length (mm) of a ray
    through the component, normalised by its own peak:
    ``a_c = P s_c / max(P s_c)``, so the ray along the lesion's longest chord
    gets 1 and every lesion, small or large, reaches its full weight. The
    sinogram attention is ``max_c w_r(c) a_c``. All components of all batch
    items go through the projector in one call (memory: one image per
    component). Consequences: rays that pass no region support (farther than
    one pixel, Joseph's interpolation reach) are exactly 0, and an edit of one
    region leaves every ray that does not meet that region bit-identical.
    A 3D grid with a slice-wise projector normalises each 3D component by its
    peak over all slices.
    """

    def __init__(self, projector: LinearOperator, grid: Optional[ImageGrid] = None,
                 margin_mm: float = DEFAULT_MARGIN_MM) -> None:
        if not isinstance(projector, LinearOperator):
            raise TypeError(f"projector must be a LinearOperator, got {type(projector).__name__}")
        grid = _grid_of(projector) if grid is None else grid
        if not isinstance(grid, ImageGrid):
            raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
        if tuple(projector.in_shape) != grid.shape:
            raise ValueError(f"projector takes images of shape {projector.in_shape}, but the grid has shape "
                             f"{grid.shape}")
        self.projector = projector
        self.grid = grid
        margin_mm = _in_range("margin_mm", margin_mm, 0.0, MAX_LENGTH_MM)
        if 0.0 < margin_mm < MIN_SIZE_MM:
            raise ValueError(f"margin_mm must be 0 (hard edges) or at least {MIN_SIZE_MM:g} mm, got {margin_mm!r}")
        self.margin_mm = margin_mm

    def __repr__(self) -> str:
        return f"TransparentMedicalAttention({self.projector!r}, margin_mm={self.margin_mm})"

    def __call__(self, regions: AttentionRegions) -> AttentionMaps:
        """Image and sinogram attention of ``regions``."""
        batch, fields = self._fields(regions)
        return AttentionMaps(self._image(batch, fields), self._sinogram(batch, fields))

    def image_attention(self, regions: AttentionRegions) -> np.ndarray:
        """Image attention ``(..., *grid.shape)`` of ``regions`` (no projection)."""
        return self._image(*self._fields(regions))

    def edit(self, regions: AttentionRegions, spec: RoiEditSpec) -> tuple[AttentionRegions, AttentionMaps]:
        """Apply a clinician's ``spec`` and recompute the attention: ``(edited regions, maps)``."""
        if not isinstance(spec, RoiEditSpec):
            raise TypeError(f"spec must be a RoiEditSpec, got {type(spec).__name__}")
        edited = spec.apply(regions, self.grid)
        return edited, self(edited)

    def _fields(self, regions: AttentionRegions) -> tuple[tuple[int, ...], list[_RegionField]]:
        if not isinstance(regions, AttentionRegions):
            raise TypeError(f"regions must be AttentionRegions, got {type(regions).__name__}")
        batches = {name: _batch_shape(f"mask of {name!r}", mask.shape, self.grid)
                   for name, mask in regions.masks.items()}
        try:
            batch = np.broadcast_shapes(*batches.values())
        except ValueError:
            raise ValueError(f"the masks' batch axes do not broadcast against each other: {batches}") from None
        core = self.grid.ndim
        fields = []
        for name, mask in regions.masks.items():
            weight = regions.weights[name]
            if weight == 0.0 or not mask.any():
                continue
            flat = np.broadcast_to(mask, batch + self.grid.shape).reshape((-1,) + self.grid.shape)
            labels, n = _components(flat, core)
            soft = np.zeros(flat.shape)
            component = np.zeros(flat.shape, dtype=labels.dtype)
            for b in np.flatnonzero(flat.reshape(flat.shape[0], -1).any(axis=1)):
                distance, nearest = ndimage.distance_transform_edt(~flat[b], sampling=self.grid.voxel_size_mm,
                                                                   return_indices=True)
                soft[b] = self._soft_edge(distance)
                component[b] = np.where(soft[b] > 0.0, labels[b][tuple(nearest)], 0)
            fields.append(_RegionField(weight, soft, component, n))
        return batch, fields

    def _soft_edge(self, distance_mm: np.ndarray) -> np.ndarray:
        """1 inside (distance 0), falling linearly to 0 at ``margin_mm``; the indicator when ``margin_mm = 0``."""
        if self.margin_mm == 0.0:
            return (distance_mm == 0.0).astype(np.float64)
        return np.clip(1.0 - distance_mm / self.margin_mm, 0.0, 1.0)

    def _image(self, batch: tuple[int, ...], fields: list[_RegionField]) -> np.ndarray:
        image = np.zeros((math.prod(batch),) + self.grid.shape)
        for field in fields:
            np.maximum(image, field.weight * field.soft, out=image)
        return image.reshape(batch + self.grid.shape)

    def _sinogram(self, batch: tuple[int, ...], fields: list[_RegionField]) -> np.ndarray:
        out_shape = tuple(self.projector.out_shape)
        sinogram = np.zeros((math.prod(batch),) + out_shape)
        n_total = sum(field.n_components for field in fields)
        if n_total == 0:
            return sinogram.reshape(batch + out_shape)
        stack = np.zeros((n_total,) + self.grid.shape)
        item = np.zeros(n_total, dtype=np.intp)
        weight = np.zeros(n_total)
        offset = 0
        for field in fields:
            support = np.nonzero(field.component)
            ids = field.component[support] - 1 + offset
            stack[(ids,) + support[1:]] = field.soft[support]
            item[ids] = support[0]
            weight[offset:offset + field.n_components] = field.weight
            offset += field.n_components
        projections = np.asarray(self.projector(stack), dtype=np.float64)
        axes = tuple(range(1, projections.ndim))
        peak = projections.max(axis=axes, keepdims=True)
        normalised = np.divide(projections, peak, out=np.zeros_like(projections), where=peak > 0.0)
        np.maximum.at(sinogram, item, weight.reshape((-1,) + (1,) * len(out_shape)) * normalised)
        return sinogram.reshape(batch + out_shape)
