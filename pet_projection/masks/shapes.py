"""Random and given image masks: unions of random ellipses or polygons, polygon rasterisation, centred discs.

Masks are float32 0/1 arrays ``(n, ny, nx)`` on a 2D grid, ready for the
projectors; pixel ``(i, j)`` is in a shape when its centre is. Random shapes
are placed relative to the grid centre ``(ox, oy)``; :func:`disc_image` is
centred on the rotation axis ``x = y = 0``.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from ..grid import ImageGrid, length_mm
from ..validation import check_pair, int_range, positive_int
from .arguments import RngLike, as_rng, non_negative_mm, plane_grid

__all__ = ["disc_image", "polygon_masks", "random_ellipses", "random_polygons"]

# Polygon vertex k of V sits at angle phase + 2 pi (k + u / 2) / V, u in [0, 1):
# neighbouring vertices are less than 3 pi / V <= pi apart, so every polygon is
# star-shaped about its centre (hence simple).
_VERTEX_JITTER = 0.5


def _length_range(name: str, value: Any) -> tuple[float, float]:
    """``(low, high)`` lengths in mm with ``0 < low <= high``."""
    low, high = (length_mm(name, item, positive=True) for item in check_pair(name, value))
    if low > high:
        raise ValueError(f"{name} must satisfy low <= high, got {value!r}")
    return low, high


def _field_radius_mm(grid: ImageGrid) -> float:
    """Radius of the largest disc about the grid centre that fits in the grid, mm."""
    return min(grid.extent_mm) / 2.0



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
    grid = plane_grid(grid)
    n = positive_int("n", n)
    rng = as_rng(rng)
    low, high = int_range("n_shapes", n_shapes, 0)
    radius = (0.6 * _field_radius_mm(grid) if center_radius_mm is None
              else non_negative_mm("center_radius_mm", center_radius_mm))
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
    grid = plane_grid(grid)
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



def disc_image(grid: ImageGrid, radius_mm: float) -> np.ndarray:
    """1 for voxels whose centre lies within ``radius_mm`` of the rotation axis ``x = y = 0``, float32 ``grid.shape``.

    Multiplying masks by it bounds their sinogram masks radially: Joseph's
    method reaches one pixel, so a ray ``(v, b)`` can cross the restricted mask
    only when ``|s_b| < radius_mm + max(dx, dy)``.
    """
    if not isinstance(grid, ImageGrid):
        raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
    radius_mm = non_negative_mm("radius_mm", radius_mm)
    x, y = grid.meshgrid_mm()[:2]
    return (np.hypot(x, y) <= radius_mm).astype(np.float32)
