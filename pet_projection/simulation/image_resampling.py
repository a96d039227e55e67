"""Images of any grid and field of view onto the simulation grid: voxel-exact where the grids line up, else
a conservative remap.

Placement (:func:`placement_shift_mm`): the source image's field-of-view
centre goes to the target grid's centre; where the voxel sizes of an axis
agree, the shift is rounded (by at most half a voxel) so that the voxels line up.

Resampling (:func:`resample_to_grid`), axis by axis (the grids are
axis-aligned boxes, so the remap is separable):

- **voxel-exact** along an axis whose voxel size agrees (to 1e-6) and whose
  offset is a whole number of voxels: the values are copied, the image
  cropped or padded with zeros;
- **conservative** along any other axis: the cumulative integral of the
  image along the axis (exact at the source voxel edges) is interpolated at
  the target voxel edges with a monotone cubic (PCHIP, Fritsch and Carlson,
  SIAM J Numer Anal 17:238, 1980) and differenced. Each target voxel then
  holds the integral of the source over its own interval, so the total
  activity (value times voxel volume) is conserved exactly for the part of
  the image inside the target grid; a non-negative image stays non-negative
  (a monotone interpolant of a non-decreasing integral), and, unlike
  averaging overlaps only, an upsampled image stays smooth.

Values are concentrations (activity per volume, or mu in 1/mm), so a region
of uniform value keeps its value away from its edges.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator

from ..grid import ImageGrid

__all__ = ["placement_shift_mm", "resample_to_grid"]

# Relative tolerance of "the same voxel size" and of "a whole number of voxels".
EXACT_TOLERANCE = 1e-6


def _same_size(source_mm: float, target_mm: float) -> bool:
    return abs(source_mm - target_mm) <= EXACT_TOLERANCE * target_mm


def placement_shift_mm(source: ImageGrid, target: ImageGrid) -> tuple[float, ...]:
    """Per axis, source coordinate minus target coordinate of one point (mm) that centres the source on the target.

    ``source.origin - target.origin`` (the field-of-view centres), plus half a
    voxel along axes with the same voxel size where the voxel counts differ
    in parity, so that the voxels line up (:func:`resample_to_grid` then
    copies them).
    """
    if source.ndim != target.ndim:
        raise ValueError(f"source and target grids must have one dimension, got {source.ndim} and {target.ndim}")
    shift = []
    for n_s, n_t, d_s, d_t, o_s, o_t in zip(source.shape, target.shape, source.voxel_size_mm,
                                            target.voxel_size_mm, source.origin_mm, target.origin_mm):
        value = o_s - o_t
        if _same_size(d_s, d_t) and (n_s - n_t) % 2:
            value += d_t / 2.0
        shift.append(float(value))
    return tuple(shift)


def _whole_offset(n_s: int, n_t: int, d: float, o_s: float, o_t: float, shift: float) -> int | None:
    """Index ``k`` with target voxel ``j`` at source voxel ``j + k``, or None if not a whole number."""
    offset = ((o_t + shift - o_s) / d) + (n_s - n_t) / 2.0
    nearest = round(offset)
    return int(nearest) if abs(offset - nearest) <= EXACT_TOLERANCE else None


def _copy_axis(image: np.ndarray, axis: int, n_target: int, offset: int) -> np.ndarray:
    """Target voxel ``j`` of ``axis`` takes source voxel ``j + offset`` (zeros outside the source)."""
    index = np.arange(n_target) + offset
    inside = (index >= 0) & (index < image.shape[axis])
    out = np.zeros(image.shape[:axis] + (n_target,) + image.shape[axis + 1:], dtype=np.float64)
    target = [slice(None)] * image.ndim
    target[axis] = np.flatnonzero(inside)
    out[tuple(target)] = np.take(image, index[inside], axis=axis)
    return out


def _remap_axis(image: np.ndarray, axis: int, source_edges: np.ndarray, target_edges: np.ndarray) -> np.ndarray:
    """Conservative remap of ``axis`` (module notes); edges in one coordinate, increasing."""
    widths_s = np.diff(source_edges)
    shape = [1] * image.ndim
    shape[axis] = -1
    cumulative = np.cumsum(image * widths_s.reshape(shape), axis=axis)
    cumulative = np.concatenate([np.zeros_like(np.take(cumulative, [0], axis=axis)), cumulative], axis=axis)
    interpolant = PchipInterpolator(source_edges, cumulative, axis=axis, extrapolate=False)
    clipped = np.clip(target_edges, source_edges[0], source_edges[-1])
    at_edges = interpolant(clipped)
    return np.diff(at_edges, axis=axis) / np.diff(target_edges).reshape(shape)


def resample_to_grid(image: np.ndarray, source: ImageGrid, target: ImageGrid,
                     shift_mm: tuple[float, ...] | None = None) -> np.ndarray:
    """``image`` (on ``source``) on the voxels of ``target`` (module notes), float64, ``target.shape``.

    Parameters
    ----------
    image : ndarray, ``source.shape``
        Concentration values (e.g. activity per volume, or mu in 1/mm).
    source, target : ImageGrid
        Grids of one dimension (2D or 3D).
    shift_mm : tuple of float, optional
        Per axis (array order), the source coordinate of a point minus its
        target coordinate; default :func:`placement_shift_mm`.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.shape != source.shape:
        raise ValueError(f"image has shape {image.shape}, its grid {source.shape}")
    shift = placement_shift_mm(source, target) if shift_mm is None else tuple(float(s) for s in shift_mm)
    if len(shift) != source.ndim:
        raise ValueError(f"shift_mm needs {source.ndim} values, got {shift}")
    out = image
    for axis in range(source.ndim):
        n_s, n_t = source.shape[axis], target.shape[axis]
        d_s, d_t = source.voxel_size_mm[axis], target.voxel_size_mm[axis]
        o_s, o_t = source.origin_mm[axis], target.origin_mm[axis]
        offset = _whole_offset(n_s, n_t, d_t, o_s, o_t, shift[axis]) if _same_size(d_s, d_t) else None
        if offset is not None:
            out = _copy_axis(out, axis, n_t, offset)
            continue
        source_edges = (np.arange(n_s + 1) - n_s / 2.0) * d_s + o_s
        target_edges = (np.arange(n_t + 1) - n_t / 2.0) * d_t + o_t + shift[axis]
        out = _remap_axis(out, axis, source_edges, target_edges)
    return np.ascontiguousarray(out)
