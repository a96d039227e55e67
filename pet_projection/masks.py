"""Geometry-aware masks: Radon mask augmentation, dynamic multi-mask (DMM), positive/negative splits.

ALL-PET (Huang et al., arXiv 2509.09130, fig. 1) makes many structurally
different training samples from a few sinograms: a random image-domain mask is
projected into sinogram space, where it marks the rays that cross it, and the
full sinogram is split into ``positive = mask * full`` and
``negative = (1 - mask) * full``, tied by ``positive + negative = full``.

Image masks (2D grids only for now; for a 3D grid generate ``n * nz`` masks on
the slice grid and reshape) are float32 0/1 arrays ``(n, ny, nx)``, ready for
the projectors; pixel ``(i, j)`` is in a shape when its centre is:

- :class:`CellGrid`: DMM, square cells switched on in varying number and layout;
- :func:`random_ellipses`, :func:`random_polygons`: unions of random shapes
  (:func:`polygon_masks` rasterises given polygons);
- :func:`disc_image`: the disc that, with :func:`sinogram_window`, bounds the
  radial range of the sinogram masks (the paper's output-size controls).

Random shapes and DMM cells are placed relative to the grid centre
``(ox, oy)``; the disc and the window are centred on the rotation axis
``x = y = 0`` that the sinogram's radial coordinate ``s`` refers to.

Sinogram masks (any leading batch axes, one projector call per batch):
:func:`radon_mask`, :func:`soft_radon_mask`, :class:`CellSinogramBasis`,
:func:`body_support`.

The positive/negative functions (:func:`split_by_mask`,
:func:`consistency_residuals`, :func:`enforce_consistency`,
:func:`apply_support`) use only ``*``, ``+``, ``-``, ``~`` and ``!=``, so they
work unchanged on NumPy arrays, torch tensors (CPU or CUDA) and CuPy arrays.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import numpy as np

from .arrays import to_numpy
from .device import DeviceLibrary, cached_on_device, is_device_array
from .geometry import ParallelBeamGeometry
from .validation import positive_int
from .grid import ImageGrid, length_mm
from .operators import LinearOperator

__all__ = [
    "CellGrid",
    "CellSinogramBasis",
    "ConsistencyResiduals",
    "DEFAULT_THRESHOLD_PIXELS",
    "LAYOUTS",
    "apply_support",
    "body_support",
    "consistency_residuals",
    "default_threshold_mm",
    "disc_image",
    "enforce_consistency",
    "polygon_masks",
    "radon_mask",
    "random_ellipses",
    "random_polygons",
    "sinogram_window",
    "soft_radon_mask",
    "split_by_mask",
]

# A ray crosses a mask when its Joseph line integral through the 0/1 mask exceeds
# this many pixel lengths (smaller pixel side). For square pixels at 0 and 90
# degrees Joseph's footprint of one pixel is a triangle of height one pixel length
# and half-width one pixel, which reaches half a pixel length exactly where the
# ray leaves the pixel's square; at 45 degrees the footprint is the exact chord of
# the square. A ray marked by a single pixel passes within half a pixel of its
# centre (tests/test_masks.py); a ray running alongside a long mask edge sums
# interpolation weight over many planes and can be marked up to one pixel out.
DEFAULT_THRESHOLD_PIXELS = 0.5
LAYOUTS = ("random", "clustered", "rings")
# Polygon vertex k of V sits at angle phase + 2 pi (k + u / 2) / V, u in [0, 1):
# neighbouring vertices are less than 3 pi / V <= pi apart, so every polygon is
# star-shaped about its centre (hence simple).
_VERTEX_JITTER = 0.5

RngLike = Union[np.random.Generator, int]
CountRange = Union[tuple[int, int], Callable[[np.random.Generator, int], Any]]


# ----------------------------------------------------------------------------- validation

def _as_rng(rng: RngLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng seed must be non-negative, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator or a non-negative integer seed, got {type(rng).__name__}")


def _pair(name: str, value: Any) -> tuple[Any, Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise TypeError(f"{name} must be a (low, high) pair, got {value!r}")
    return value[0], value[1]


def int_range(name: str, value: Any, minimum: int, maximum: Optional[int] = None) -> tuple[int, int]:
    """``(low, high)`` integers with ``minimum <= low <= high [<= maximum]``."""
    low, high = _pair(name, value)
    for item in (low, high):
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{name} must hold integers, got {value!r}")
    if not minimum <= low <= high or (maximum is not None and high > maximum):
        upper = "" if maximum is None else f" <= {maximum}"
        raise ValueError(f"{name} must satisfy {minimum} <= low <= high{upper}, got {value!r}")
    return int(low), int(high)


def _length_range(name: str, value: Any) -> tuple[float, float]:
    """``(low, high)`` lengths in mm with ``0 < low <= high``."""
    low, high = (length_mm(name, item, positive=True) for item in _pair(name, value))
    if low > high:
        raise ValueError(f"{name} must satisfy low <= high, got {value!r}")
    return low, high


def _non_negative_mm(name: str, value: Any) -> float:
    value = length_mm(name, value)
    if value < 0.0:
        raise ValueError(f"{name} must be non-negative, got {value}")
    return value


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must hold real numbers, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _plane_grid(grid: Any) -> ImageGrid:
    if not isinstance(grid, ImageGrid):
        raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
    if grid.ndim != 2:
        raise ValueError(f"mask generators support 2D grids only, got shape {grid.shape}; generate n * nz masks "
                         "on the slice grid ImageGrid(shape[1:], voxel_size_mm[1:], origin_mm[1:]) and reshape")
    return grid


def _field_radius_mm(grid: ImageGrid) -> float:
    """Radius of the largest disc about the grid centre that fits in the grid, mm."""
    return min(grid.extent_mm) / 2.0


def _draw_counts(name: str, counts: CountRange, n: int, rng: np.random.Generator, maximum: int) -> np.ndarray:
    """``(n,)`` integers in ``[0, maximum]``: uniform over an inclusive ``(low, high)`` or ``counts(rng, n)``."""
    if callable(counts):
        drawn = np.asarray(counts(rng, n))
        if drawn.shape != (n,) or drawn.dtype.kind not in "iu":
            raise ValueError(f"{name}(rng, n) must return {n} integers, got dtype {drawn.dtype} shape {drawn.shape}")
        if drawn.min() < 0 or drawn.max() > maximum:
            raise ValueError(f"{name}(rng, n) must return values in [0, {maximum}], got [{drawn.min()}, {drawn.max()}]")
        return drawn.astype(np.int64)
    low, high = int_range(name, counts, 0, maximum)
    return rng.integers(low, high + 1, size=n)


def default_threshold_mm(projector: LinearOperator) -> float:
    """``DEFAULT_THRESHOLD_PIXELS`` times the smaller in-plane pixel side of the projector's grid, mm."""
    geometry = getattr(projector, "geometry", None)
    grid = getattr(geometry, "grid", None) or getattr(projector, "grid", None)
    if not isinstance(grid, ImageGrid):
        raise TypeError(f"{type(projector).__name__} has no image grid to take a default threshold from; "
                        "pass threshold_mm explicitly")
    return DEFAULT_THRESHOLD_PIXELS * min(grid.voxel_size_mm[-2:])


def _threshold_mm(projector: Any, threshold_mm: Optional[float]) -> float:
    if not isinstance(projector, LinearOperator):
        raise TypeError(f"projector must be a LinearOperator, got {type(projector).__name__}")
    if threshold_mm is None:
        return default_threshold_mm(projector)
    return _non_negative_mm("threshold_mm", threshold_mm)


# ----------------------------------------------------------------------------- DMM cells

@dataclass(frozen=True, eq=False, init=False)
class CellGrid:
    """Dynamic multi-mask (DMM) cells: ``cells_per_side`` x ``cells_per_side`` square cells on a 2D grid.

    Parameters
    ----------
    grid : ImageGrid
        2D image grid ``(ny, nx)``.
    cells_per_side : int
        Cells along each side of the field of view.
    fov_mm : float, optional
        Side in mm of the square field of view, centred on the grid centre
        ``(ox, oy)``; default (and maximum) the grid's smaller extent. A cell
        must be at least one pixel wide.

    Notes
    -----
    Cell ``c = row * cells_per_side + col`` covers ``x`` in
    ``[ox - fov/2 + col w, ox - fov/2 + (col + 1) w)`` and likewise ``y`` with
    ``row`` (rows grow with ``y``, like image rows), ``w = fov_mm /
    cells_per_side``. A pixel belongs to the cell holding its centre, so cells
    are disjoint and the projection of a union of cells is the sum of their
    projections.
    """

    grid: ImageGrid
    cells_per_side: int
    fov_mm: float
    labels: np.ndarray  # (ny, nx) cell index of every pixel, -1 outside the field of view

    def __init__(self, grid: ImageGrid, cells_per_side: int, fov_mm: Optional[float] = None) -> None:
        grid = _plane_grid(grid)
        cells_per_side = positive_int("cells_per_side", cells_per_side)
        largest = min(grid.extent_mm)
        fov_mm = largest if fov_mm is None else length_mm("fov_mm", fov_mm, positive=True)
        if fov_mm > largest:
            raise ValueError(f"fov_mm={fov_mm} exceeds the grid's smaller extent {largest} mm")
        width = fov_mm / cells_per_side
        if width < max(grid.voxel_size_mm):
            raise ValueError(f"cells_per_side={cells_per_side} gives cells {width:.4g} mm wide, narrower than a pixel "
                             f"({max(grid.voxel_size_mm)} mm)")
        x, y = grid.meshgrid_mm()
        oy, ox = grid.origin_mm
        col = np.floor((x - ox + fov_mm / 2.0) / width)
        row = np.floor((y - oy + fov_mm / 2.0) / width)
        inside = (col >= 0) & (col < cells_per_side) & (row >= 0) & (row < cells_per_side)
        labels = np.where(inside, row * cells_per_side + col, -1).astype(np.int64)
        if np.bincount(labels[inside], minlength=cells_per_side**2).min() == 0:
            raise ValueError(f"cells_per_side={cells_per_side} leaves a cell without a pixel centre")
        labels.setflags(write=False)
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "cells_per_side", cells_per_side)
        object.__setattr__(self, "fov_mm", fov_mm)
        object.__setattr__(self, "labels", labels)

    def __repr__(self) -> str:
        return f"CellGrid(grid={self.grid!r}, cells_per_side={self.cells_per_side}, fov_mm={self.fov_mm})"

    @property
    def n_cells(self) -> int:
        return self.cells_per_side**2

    @property
    def cell_width_mm(self) -> float:
        return self.fov_mm / self.cells_per_side

    def cell_centers_mm(self) -> np.ndarray:
        """Centre ``(x, y)`` of every cell in mm, shape ``(n_cells, 2)``."""
        offsets = (np.arange(self.cells_per_side) + 0.5) * self.cell_width_mm - self.fov_mm / 2.0
        row, col = np.divmod(np.arange(self.n_cells), self.cells_per_side)
        oy, ox = self.grid.origin_mm
        return np.stack([ox + offsets[col], oy + offsets[row]], axis=-1)

    def cell_images(self, dtype: Any = np.float32) -> np.ndarray:
        """Indicator image of every cell, shape ``(n_cells, ny, nx)``."""
        return (self.labels == np.arange(self.n_cells)[:, None, None]).astype(dtype)

    def images(self, activity: Any) -> np.ndarray:
        """Union of the active cells, float32 0/1, shape ``(..., ny, nx)`` for ``activity`` ``(..., n_cells)``."""
        active = self._activity(activity)
        padded = np.concatenate([active, np.zeros(active.shape[:-1] + (1,), dtype=bool)], axis=-1)
        return padded[..., self.labels].astype(np.float32, order="C")  # label -1 picks the padded False

    def _activity(self, activity: Any) -> np.ndarray:
        array = np.asarray(activity)
        if array.ndim < 1 or array.shape[-1] != self.n_cells:
            raise ValueError(f"activity must have shape (..., n_cells={self.n_cells}), got {array.shape}")
        if array.dtype.kind not in "biuf" or not np.all((array == 0) | (array == 1)):
            raise ValueError("activity must hold 0/1 (or bool) cell states")
        return array != 0

    def sample_activity(self, n: int, rng: RngLike, layout: str = "random",
                        n_active: CountRange = (1, 4)) -> np.ndarray:
        """Draw ``n`` cell-activity vectors, bool ``(n, n_cells)``.

        Parameters
        ----------
        n : int
            Batch size.
        rng : numpy.random.Generator or int
            Random source or seed; equal seeds give equal batches.
        layout : {"random", "clustered", "rings"}
            ``"random"``: any cells. ``"clustered"``: a 4-connected cluster grown
            from a random seed cell, one random neighbouring cell at a time.
            ``"rings"``: the cells whose centre distance from the field-of-view
            centre is closest to a radius drawn uniformly from ``[0, largest
            cell distance]`` (ties broken at random), so no inactive cell lies
            strictly between the nearest and the farthest active cell: an annulus.
        n_active : (int, int) or callable
            Number of active cells per sample: uniform over the inclusive range
            ``(low, high)``, ``0 <= low <= high <= n_cells``, or
            ``n_active(rng, n)`` returning ``n`` integers in ``[0, n_cells]``.
        """
        n = positive_int("n", n)
        rng = _as_rng(rng)
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        counts = _draw_counts("n_active", n_active, n, rng, self.n_cells)
        if layout == "clustered":
            return self._grow_clusters(counts, rng)
        if layout == "rings":
            centers = self.cell_centers_mm() - np.array(self.grid.origin_mm[::-1])
            distance = np.hypot(centers[:, 0], centers[:, 1])
            radius = rng.random((n, 1)) * distance.max()
            order = np.lexsort((rng.random((n, self.n_cells)), np.abs(distance - radius)), axis=-1)
        else:
            order = np.argsort(rng.random((n, self.n_cells)), axis=-1)
        rank = np.argsort(order, axis=-1)  # position of every cell in the drawn order
        return rank < counts[:, None]

    def _grow_clusters(self, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, m = counts.size, self.cells_per_side
        active = np.zeros((n, m, m), dtype=bool)
        flat = active.reshape(n, m * m)
        flat[np.arange(n), rng.integers(0, m * m, size=n)] = counts > 0
        for size in range(1, int(counts.max())):
            grown = active.copy()
            grown[:, 1:] |= active[:, :-1]
            grown[:, :-1] |= active[:, 1:]
            grown[:, :, 1:] |= active[:, :, :-1]
            grown[:, :, :-1] |= active[:, :, 1:]
            scores = np.where(grown & ~active, rng.random(active.shape), -1.0).reshape(n, m * m)
            growing = np.flatnonzero(counts > size)
            flat[growing, scores[growing].argmax(axis=-1)] = True
        return flat

    def sample(self, n: int, rng: RngLike, layout: str = "random",
               n_active: CountRange = (1, 4)) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` DMM masks: images float32 ``(n, ny, nx)`` and activity bool ``(n, n_cells)``.

        See :meth:`sample_activity` for the parameters.
        """
        activity = self.sample_activity(n, rng, layout, n_active)
        return self.images(activity), activity


class CellSinogramBasis:
    """The sinogram of every DMM cell, projected once; sinogram masks of activity batches by one matrix product.

    Parameters
    ----------
    cells : CellGrid
    projector : LinearOperator
        Projector of ``cells.grid`` images, e.g. :class:`ParallelBeamProjector`.
    threshold_mm : float, optional
        As in :func:`radon_mask`; default :func:`default_threshold_mm`.
    dtype : float32 or float64
        Precision of the stored basis ``(n_cells, n_rays)``.

    Notes
    -----
    Cells are disjoint, so the projection of a union of cells is the sum of the
    cells' projections, ``activity @ basis``, and :meth:`masks` equals
    :func:`radon_mask` of :meth:`CellGrid.images` except for rays whose value
    lies within rounding of the threshold (summation order differs); in
    float64 that is about 1e-15 relative.
    """

    def __init__(self, cells: CellGrid, projector: LinearOperator, threshold_mm: Optional[float] = None,
                 dtype: Any = np.float32) -> None:
        if not isinstance(cells, CellGrid):
            raise TypeError(f"cells must be a CellGrid, got {type(cells).__name__}")
        self.threshold_mm = _threshold_mm(projector, threshold_mm)
        if tuple(projector.in_shape) != cells.grid.shape:
            raise ValueError(f"projector takes images of shape {projector.in_shape}, the cells' grid has "
                             f"shape {cells.grid.shape}")
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
        self.cells = cells
        self.out_shape = tuple(projector.out_shape)
        self.matrix = projector(cells.cell_images(dtype)).reshape(cells.n_cells, -1)
        self.matrix.setflags(write=False)

    def projections(self, activity: Any) -> Any:
        """Projection of the union of active cells, ``(..., *out_shape)`` for ``activity`` ``(..., n_cells)``, mm.

        ``activity`` may be a NumPy array (0/1 or bool, checked) or a GPU array,
        a CuPy array or a torch CUDA tensor, where any non-zero value counts as
        active (not checked, which would synchronise with the device). A GPU
        activity is multiplied on its device with a copy of the basis kept
        there after the first call, and the result has its type and device.
        """
        if is_device_array(activity):
            return self._device_projections(activity)
        active = self.cells._activity(activity)
        values = active.reshape(-1, self.cells.n_cells).astype(self.matrix.dtype) @ self.matrix
        return values.reshape(active.shape[:-1] + self.out_shape)

    def masks(self, activity: Any) -> Any:
        """Binary sinogram masks (bool) of the unions of active cells, ``(..., *out_shape)``; types as in
        :meth:`projections`."""
        return self.projections(activity) > self.threshold_mm

    def _device_projections(self, activity: Any) -> Any:
        library = DeviceLibrary(activity)
        if library.kind == "numba":
            raise TypeError("activity is a numba device array; pass a CuPy array or a torch CUDA tensor (a matrix "
                            "product is needed)")
        shape = tuple(activity.shape)
        if len(shape) < 1 or shape[-1] != self.cells.n_cells:
            raise ValueError(f"activity must have shape (..., n_cells={self.cells.n_cells}), got {shape}")
        matrix = cached_on_device(self, library, lambda lib: lib.asarray(np.asarray(self.matrix)))
        active = library.astype(activity.reshape(-1, self.cells.n_cells) != 0, self.matrix.dtype)
        return (active @ matrix).reshape(shape[:-1] + self.out_shape)


# ----------------------------------------------------------------------------- random shapes

def _fill_rows(grid: ImageGrid, crossings_mm: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Rasterise closed outlines (even-odd rule) and unite them per sample.

    Parameters
    ----------
    crossings_mm : (n, k, c, ny) array
        ``x`` in mm where the ``c`` edges of shape ``k`` of sample ``n`` cross
        the line of pixel centres of row ``i`` (an even number per shape and row).
    valid : bool array, same shape
        Which crossings exist.

    Returns
    -------
    (n, ny, nx) float32
        1 where a pixel centre lies inside any shape. Sorted along a row, a
        shape's crossings alternately enter and leave it; counting +1 per entry
        and -1 per exit left of a pixel gives the number of shapes covering it.
    """
    n, _, n_edges, ny = crossings_mm.shape
    nx = grid.shape[1]
    ordered = np.sort(np.where(valid, crossings_mm, np.inf), axis=2)
    step = np.where(np.isfinite(ordered), np.where(np.arange(n_edges) % 2 == 0, 1.0, -1.0)[:, None], 0.0)
    # column of the first pixel centre right of the crossing; nx (a spare column) means none
    column = np.clip(np.floor((ordered - grid.centers_mm(1)[0]) / grid.voxel_size_mm[1]) + 1, 0, nx)
    row_start = (np.arange(n).reshape(n, 1, 1, 1) * ny + np.arange(ny)) * (nx + 1)
    steps = np.bincount((row_start + column.astype(np.int64)).ravel(), weights=step.ravel(),
                        minlength=n * ny * (nx + 1))
    coverage = np.cumsum(steps.reshape(n, ny, nx + 1)[..., :nx], axis=-1)
    return (coverage > 0.5).astype(np.float32)


def _shape_setup(grid: ImageGrid, n: int, rng: RngLike, n_shapes: tuple[int, int], center_radius_mm: Optional[float]
                 ) -> tuple[ImageGrid, np.random.Generator, np.ndarray, np.ndarray, np.ndarray]:
    """Validate the shared arguments; draw which of ``(n, n_shapes[1])`` shapes exist and their centres (mm)."""
    grid = _plane_grid(grid)
    n = positive_int("n", n)
    rng = _as_rng(rng)
    low, high = int_range("n_shapes", n_shapes, 0)
    radius = (0.6 * _field_radius_mm(grid) if center_radius_mm is None
              else _non_negative_mm("center_radius_mm", center_radius_mm))
    shape_valid = np.arange(high) < rng.integers(low, high + 1, size=(n, 1))
    distance = radius * np.sqrt(rng.random((n, high)))
    direction = rng.random((n, high)) * (2.0 * math.pi)
    oy, ox = grid.origin_mm
    return grid, rng, shape_valid, ox + distance * np.cos(direction), oy + distance * np.sin(direction)


def random_ellipses(grid: ImageGrid, n: int, rng: RngLike, *, n_shapes: tuple[int, int] = (1, 3),
                    semi_axes_mm: Optional[tuple[float, float]] = None,
                    center_radius_mm: Optional[float] = None) -> np.ndarray:
    """Masks that are unions of random ellipses, float32 0/1 of shape ``(n, ny, nx)``.

    Parameters
    ----------
    grid : ImageGrid
        2D grid.
    n : int
        Number of masks.
    rng : numpy.random.Generator or int
        Random source or seed.
    n_shapes : (int, int)
        Ellipses per mask, uniform over the inclusive range (``0 <= low <= high``).
    semi_axes_mm : (float, float), optional
        Range of each semi-axis in mm (uniform, independent); default
        ``(0.05, 0.3) * R`` with ``R`` half the grid's smaller extent.
    center_radius_mm : float, optional
        Centres are uniform in the disc of this radius about the grid centre;
        default ``0.6 * R``. Orientations are uniform in ``[0, pi)``.
    """
    grid, rng, valid, cx, cy = _shape_setup(grid, n, rng, n_shapes, center_radius_mm)
    field = _field_radius_mm(grid)
    low, high = (0.05 * field, 0.3 * field) if semi_axes_mm is None else _length_range("semi_axes_mm", semi_axes_mm)
    a, b = (rng.uniform(low, high, size=cx.shape)[..., None] for _ in range(2))
    phi = rng.random(cx.shape)[..., None] * math.pi
    cos, sin = np.cos(phi), np.sin(phi)
    # (x - cx, y - cy) = (u, dy) on row y: A u^2 + B dy u + C dy^2 = 1
    quad_a = (cos / a) ** 2 + (sin / b) ** 2
    quad_b = 2.0 * cos * sin * (1.0 / a**2 - 1.0 / b**2)
    quad_c = (sin / a) ** 2 + (cos / b) ** 2
    dy = grid.centers_mm(0) - cy[..., None]
    discriminant = (quad_b * dy) ** 2 - 4.0 * quad_a * (quad_c * dy**2 - 1.0)
    sqrt_disc = np.sqrt(np.maximum(discriminant, 0.0))
    offsets = np.stack([-quad_b * dy - sqrt_disc, -quad_b * dy + sqrt_disc], axis=2) / (2.0 * quad_a[:, :, None])
    crossings = cx[..., None, None] + offsets
    row_valid = (discriminant > 0.0) & valid[..., None]
    return _fill_rows(grid, crossings, np.broadcast_to(row_valid[:, :, None], crossings.shape))


def random_polygons(grid: ImageGrid, n: int, rng: RngLike, *, n_shapes: tuple[int, int] = (1, 3),
                    n_vertices: tuple[int, int] = (3, 8), radius_mm: Optional[tuple[float, float]] = None,
                    convex: bool = False, center_radius_mm: Optional[float] = None) -> np.ndarray:
    """Masks that are unions of random star-shaped or convex polygons, float32 0/1 of shape ``(n, ny, nx)``.

    Parameters
    ----------
    grid, n, rng, n_shapes, center_radius_mm
        As in :func:`random_ellipses`.
    n_vertices : (int, int)
        Vertices per polygon, uniform over the inclusive range, ``3 <= low``.
    radius_mm : (float, float), optional
        Range of the vertices' distance from the polygon centre in mm; default
        ``(0.1, 0.4) * R`` with ``R`` half the grid's smaller extent.
    convex : bool
        False: every vertex has its own distance (a star-shaped polygon).
        True: all vertices of a polygon share one distance, so they lie on a
        circle and the polygon is convex.

    Notes
    -----
    Vertex ``k`` of ``V`` lies at angle ``phase + 2 pi (k + u_k / 2) / V``
    about the centre (``phase`` uniform, ``u_k`` uniform in ``[0, 1)``), so
    neighbouring vertices are less than ``pi`` apart and the centre is inside.
    """
    if not isinstance(convex, (bool, np.bool_)):
        raise TypeError(f"convex must be a bool, got {convex!r}")
    v_low, v_high = int_range("n_vertices", n_vertices, 3)
    grid, rng, valid, cx, cy = _shape_setup(grid, n, rng, n_shapes, center_radius_mm)
    field = _field_radius_mm(grid)
    r_low, r_high = (0.1 * field, 0.4 * field) if radius_mm is None else _length_range("radius_mm", radius_mm)
    count = rng.integers(v_low, v_high + 1, size=cx.shape + (1,))
    vertex = np.arange(v_high)
    slot = np.minimum(vertex, count - 1)  # slots past the last vertex repeat it: zero-length edges
    angle = rng.random(count.shape) * (2.0 * math.pi) + (
        2.0 * math.pi * (vertex + _VERTEX_JITTER * rng.random(slot.shape)) / count)
    radius = rng.uniform(r_low, r_high, size=cx.shape + ((1,) if convex else (v_high,)))
    present = valid[..., None]  # absent polygons collapse to their centre: empty
    vx = cx[..., None] + present * np.take_along_axis(radius * np.cos(angle), slot, axis=-1)
    vy = cy[..., None] + present * np.take_along_axis(radius * np.sin(angle), slot, axis=-1)
    return polygon_masks(grid, np.stack([vx, vy], axis=-1))


def polygon_masks(grid: ImageGrid, vertices_mm: Any) -> np.ndarray:
    """Masks that are unions of given polygons, float32 0/1 of shape ``(..., ny, nx)``.

    Parameters
    ----------
    grid : ImageGrid
        2D grid.
    vertices_mm : array_like ``(..., k, V, 2)``
        ``k`` polygons per mask, each ``V`` vertices ``(x, y)`` in mm in order
        along the outline (either direction; the last joins the first). Pad a
        polygon with fewer vertices by repeating its last one; a polygon whose
        vertices coincide is empty. Self-intersecting outlines follow the
        even-odd rule.
    """
    grid = _plane_grid(grid)
    vertices = np.asarray(vertices_mm)
    if vertices.dtype.kind not in "iuf" or vertices.ndim < 3 or vertices.shape[-1] != 2:
        raise ValueError(f"vertices_mm must be real (..., k, V, 2) with (x, y) in mm, got dtype {vertices.dtype} "
                         f"shape {vertices.shape}")
    if not np.all(np.isfinite(vertices)):
        raise ValueError("vertices_mm must be finite")
    batch = vertices.shape[:-3]
    vertices = vertices.reshape((math.prod(batch),) + vertices.shape[-3:]).astype(np.float64)
    x0, y0 = vertices[..., 0, None], vertices[..., 1, None]  # edge starts, (n, k, V, 1)
    x1, y1 = np.roll(x0, -1, axis=2), np.roll(y0, -1, axis=2)
    rows = grid.centers_mm(0)
    crosses = (y0 <= rows) != (y1 <= rows)  # half-open: a vertex on a row counts once
    run = np.where(y1 == y0, 1.0, y1 - y0)
    masks = _fill_rows(grid, x0 + (rows - y0) * (x1 - x0) / run, crosses)
    return masks.reshape(batch + grid.shape)


# ----------------------------------------------------------------------------- output-size controls

def disc_image(grid: ImageGrid, radius_mm: float) -> np.ndarray:
    """1 for voxels whose centre lies within ``radius_mm`` of the rotation axis ``x = y = 0``, float32 ``grid.shape``.

    Multiplying masks by it bounds their sinogram masks radially: Joseph's
    method reaches one pixel, so a ray ``(v, b)`` can cross the restricted mask
    only when ``|s_b| < radius_mm + max(dx, dy)``.
    """
    if not isinstance(grid, ImageGrid):
        raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
    radius_mm = _non_negative_mm("radius_mm", radius_mm)
    x, y = grid.meshgrid_mm()[:2]
    return (np.hypot(x, y) <= radius_mm).astype(np.float32)


def sinogram_window(geometry: ParallelBeamGeometry, radius_mm: Optional[float] = None,
                    angle_range_rad: Optional[tuple[float, float]] = None) -> np.ndarray:
    """Sinogram-domain window, bool ``(n_views, n_bins)``: bins with ``|s_b| <= radius_mm`` and views in a range.

    Parameters
    ----------
    geometry : ParallelBeamGeometry
    radius_mm : float, optional
        Radial half-width in mm; default: all bins.
    angle_range_rad : (float, float), optional
        Inclusive range ``(start, stop)`` of ``theta_v`` in radians, compared
        with the geometry's angles as given (no wrap-around); default: all views.

    It broadcasts against sinograms ``(..., [nz,] n_views, n_bins)``: combine it
    with a sinogram mask by ``&`` or apply it with :func:`apply_support`.
    """
    if not isinstance(geometry, ParallelBeamGeometry):
        raise TypeError(f"geometry must be a ParallelBeamGeometry, got {type(geometry).__name__}")
    radial = np.ones(geometry.n_bins, dtype=bool)
    if radius_mm is not None:
        radial = np.abs(geometry.radial_positions_mm()) <= _non_negative_mm("radius_mm", radius_mm)
    views = np.ones(geometry.n_views, dtype=bool)
    if angle_range_rad is not None:
        start, stop = (_finite("angle_range_rad", value) for value in _pair("angle_range_rad", angle_range_rad))
        if start > stop:
            raise ValueError(f"angle_range_rad must satisfy start <= stop, got {angle_range_rad!r}")
        views = (geometry.angles_rad >= start) & (geometry.angles_rad <= stop)
    return views[:, None] & radial[None, :]


# ----------------------------------------------------------------------------- sinogram masks

def radon_mask(image_mask: Any, projector: LinearOperator, threshold_mm: Optional[float] = None) -> Any:
    """Binary sinogram mask of the rays that cross an image mask: ``projector(image_mask) > threshold_mm``.

    Parameters
    ----------
    image_mask : array ``(..., *projector.in_shape)``
        0/1 masks, float32 or float64, NumPy or torch CPU; leading axes are a
        batch, projected in one call.
    projector : LinearOperator
        e.g. :class:`ParallelBeamProjector`.
    threshold_mm : float, optional
        Path length in mm. The line integral of a 0/1 mask is the ray's path
        length through the mask in mm, as Joseph's method estimates it: rays
        passing within one pixel of the mask get a positive value by
        interpolation. Default ``0.5 * min(dy, dx)`` (half a pixel; see
        ``DEFAULT_THRESHOLD_PIXELS``): for square pixels at 0 and 90 degrees
        this marks exactly the rays through the squares of the mask's pixels;
        at 45 degrees a ray needs half a pixel of path. ``0`` marks every ray
        Joseph's method sees (up to one pixel from the mask).

    Returns
    -------
    bool array ``(..., *projector.out_shape)``, the input's type.
    """
    threshold = _threshold_mm(projector, threshold_mm)
    return projector(image_mask) > threshold


def soft_radon_mask(image_mask: Any, projector: LinearOperator) -> Any:
    """Fraction of each ray's path through the grid that lies in the mask, in ``[0, 1]``.

    ``projector(image_mask) / projector(ones)``, clipped to ``[0, 1]`` against
    rounding, and 0 for rays that miss the grid. Joseph's weights are
    non-negative, so for masks in ``[0, 1]`` the ratio lies in ``[0, 1]``; it
    is 1 for the rays that meet only mask pixels. Shapes and types as in
    :func:`radon_mask`.
    """
    if not isinstance(projector, LinearOperator):
        raise TypeError(f"projector must be a LinearOperator, got {type(projector).__name__}")
    array, wrap = to_numpy(image_mask, "image_mask")
    path = wrap(projector(np.ones(projector.in_shape, dtype=array.dtype)))
    ratio = projector(image_mask) / (path + (path == 0))
    return ratio.clip(0.0, 1.0)


def body_support(body_image_mask: Any, projector: LinearOperator, threshold_mm: float = 0.0) -> Any:
    """Rays that meet the body: :func:`radon_mask` of the body outline, bool ``(..., *out_shape)``.

    The default ``threshold_mm = 0`` keeps every ray Joseph's method sees
    within one pixel of the body, so the support never removes true counts.
    """
    return radon_mask(body_image_mask, projector, threshold_mm)


# ----------------------------------------------------------------------------- positive / negative

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
