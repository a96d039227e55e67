"""Projection geometries: which rays a projector traces."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .grid import ImageGrid, length_mm
from .validation import positive_int


@dataclass(frozen=True, eq=False, init=False)
class ParallelBeamGeometry:
    """Parallel-beam (2D Radon) sinogram geometry of a 2D image or a stack of slices.

    Parameters
    ----------
    grid : ImageGrid
        The image grid. For a 3D grid ``(nz, ny, nx)`` every slice ``k`` is
        projected on its own: the geometry is a stack of ``nz`` 2D sinograms.
    n_views : int
        Number of projection angles.
    n_bins : int
        Number of radial detector bins per view.
    bin_width_mm : float
        Radial bin spacing in mm.
    angles_rad : sequence of float, optional
        View angles in radians, shape ``(n_views,)``; default ``v * pi / n_views``.
    radial_offset_mm : float, optional
        Shift ``s0`` of the radial axis in mm (default 0).

    Notes
    -----
    Ray ``(v, b)`` is the line ``x cos(theta_v) + y sin(theta_v) = s_b`` with
    ``s_b = (b - (n_bins-1)/2) * bin_width_mm + radial_offset_mm``; its value is
    the line integral of the image in image units times mm. Sinograms have the
    shape ``(..., [nz,] n_views, n_bins)``.
    """

    grid: ImageGrid
    n_views: int
    n_bins: int
    bin_width_mm: float
    angles_rad: np.ndarray
    radial_offset_mm: float

    def __init__(self, grid: ImageGrid, n_views: int, n_bins: int, bin_width_mm: float,
                 angles_rad: Optional[Sequence[float]] = None, radial_offset_mm: float = 0.0) -> None:
        if not isinstance(grid, ImageGrid):
            raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
        n_views = positive_int("n_views", n_views)
        n_bins = positive_int("n_bins", n_bins)
        if n_views * n_bins > 2**40:
            raise ValueError(f"n_views * n_bins = {n_views * n_bins} rays is beyond any sinogram that fits in memory")
        bin_width_mm = length_mm("bin_width_mm", bin_width_mm, positive=True)
        radial_offset_mm = length_mm("radial_offset_mm", radial_offset_mm)
        if angles_rad is None:
            angles = np.arange(n_views, dtype=np.float64) * (math.pi / n_views)
        else:
            try:
                angles = np.array(angles_rad, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise TypeError(f"angles_rad must be a sequence of numbers, got {angles_rad!r}") from None
            if angles.shape != (n_views,):
                raise ValueError(f"angles_rad must have n_views={n_views} entries, got {angles.size}")
            if not np.all(np.isfinite(angles)):
                raise ValueError("angles_rad must be finite")
        angles.setflags(write=False)
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "n_views", n_views)
        object.__setattr__(self, "n_bins", n_bins)
        object.__setattr__(self, "bin_width_mm", bin_width_mm)
        object.__setattr__(self, "angles_rad", angles)
        object.__setattr__(self, "radial_offset_mm", radial_offset_mm)

    def __repr__(self) -> str:
        return (f"ParallelBeamGeometry(grid={self.grid!r}, n_views={self.n_views}, n_bins={self.n_bins}, "
                f"bin_width_mm={self.bin_width_mm}, angles_rad=[{self.angles_rad[0]:.4g} .. "
                f"{self.angles_rad[-1]:.4g}], radial_offset_mm={self.radial_offset_mm})")

    @property
    def sinogram_shape(self) -> tuple[int, ...]:
        """``(n_views, n_bins)`` for a 2D grid, ``(nz, n_views, n_bins)`` for a 3D grid."""
        return self.grid.shape[:-2] + (self.n_views, self.n_bins)

    def radial_positions_mm(self) -> np.ndarray:
        """Radial coordinate ``s_b`` of every bin in mm, shape ``(n_bins,)``."""
        return (np.arange(self.n_bins) - (self.n_bins - 1) / 2.0) * self.bin_width_mm + self.radial_offset_mm


def segment_box_lengths(xstart: np.ndarray, xend: np.ndarray, half_extent: np.ndarray) -> np.ndarray:
    """Exact lengths (mm) of the parts of segments inside the box ``|x_k| <= half_extent_k`` (slab clipping).

    ``xstart``, ``xend``: ``(..., D)`` segment end points in mm; ``half_extent``:
    ``(D,)``. The analytic reference for line integrals of a uniform box (a
    segment's part beyond its end points does not count).
    """
    delta = xend - xstart
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = (-half_extent - xstart) / delta, (half_extent - xstart) / delta
    inside = np.abs(xstart) <= half_extent
    t_low = np.where(delta == 0, np.where(inside, -np.inf, np.inf), np.minimum(low, high)).max(-1)
    t_high = np.where(delta == 0, np.where(inside, np.inf, -np.inf), np.maximum(low, high)).min(-1)
    return np.clip(np.clip(t_high, 0.0, 1.0) - np.clip(t_low, 0.0, 1.0), 0.0, None) * np.linalg.norm(delta, axis=-1)
