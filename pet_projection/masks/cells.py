"""Dynamic multi-mask (DMM): square cells on a 2D grid switched on in varying number and layout, and their sinograms.

Cells are placed relative to the grid centre ``(ox, oy)``; cell images are
float32 0/1 arrays ``(n, ny, nx)``. :class:`CellSinogramBasis` projects every
cell once, so the sinogram masks of a batch of cell activities take one matrix
product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import numpy as np

from ..device import DeviceLibrary, cached_on_device, is_device_array
from ..grid import ImageGrid, length_mm
from ..operators import LinearOperator
from ..validation import int_range, positive_int
from .arguments import RngLike, as_rng, plane_grid
from .radon import check_threshold_mm

__all__ = ["LAYOUTS", "CellGrid", "CellSinogramBasis"]

LAYOUTS = ("random", "clustered", "rings")

CountRange = Union[tuple[int, int], Callable[[np.random.Generator, int], Any]]


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
        grid = plane_grid(grid)
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
        rng = as_rng(rng)
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
        self.threshold_mm = check_threshold_mm(projector, threshold_mm)
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
