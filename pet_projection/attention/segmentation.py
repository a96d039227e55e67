"""Metabolic segmentation: hyper- and hypometabolic regions of an activity image by ratio to a reference region."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..arrays import as_host_array
from ..grid import MAX_LENGTH_MM, ImageGrid
from ..validation import check_real
from .regions import HYPER, HYPO, RegionTable, batch_shape, bool_mask, connected_components

__all__ = ["DEFAULT_HYPER_RATIO", "DEFAULT_HYPO_RATIO", "segment_metabolic"]

# PERCIST 1.0 (Wahl et al., J Nucl Med 2009;50 Suppl 1:122S-150S) calls a tumour measurable when its
# uptake exceeds 1.5 x the mean liver uptake (+ 2 SD of the liver); the default keeps the ratio.
DEFAULT_HYPER_RATIO = 1.5
# No single clinical threshold exists; uptake below half of the reference mean is a conventional choice.
DEFAULT_HYPO_RATIO = 0.5


def _ball_measure(diameter_mm: float, ndim: int) -> float:
    """Area (2D) or volume (3D) of a disc or ball of ``diameter_mm``, in mm^ndim."""
    return math.pi ** (ndim / 2.0) / math.gamma(ndim / 2.0 + 1.0) * (diameter_mm / 2.0) ** ndim


def _drop_small(mask: np.ndarray, grid: ImageGrid, min_diameter_mm: float) -> np.ndarray:
    """``mask`` without its connected components smaller than a disc (ball) of ``min_diameter_mm``."""
    labels, _ = connected_components(mask, grid.ndim)
    sizes_mm = np.bincount(labels.reshape(-1)) * math.prod(grid.voxel_size_mm)
    keep = sizes_mm >= _ball_measure(min_diameter_mm, grid.ndim)
    keep[0] = False
    return keep[labels]


def _broadcast_mask(name: str, mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    array = bool_mask(name, mask)
    try:
        return np.broadcast_to(array, shape)
    except ValueError:
        raise ValueError(f"{name} has shape {array.shape}, expected {shape} or the grid shape") from None


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
    batch_shape("activity", values.shape, grid)
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("activity must be finite")
    hyper_ratio = check_real("hyper_ratio", hyper_ratio, 0.0, math.inf)
    hypo_ratio = check_real("hypo_ratio", hypo_ratio, 0.0, math.inf)
    if hypo_ratio >= hyper_ratio:
        raise ValueError(f"hypo_ratio ({hypo_ratio}) must be below hyper_ratio ({hyper_ratio})")
    min_diameter_mm = check_real("min_diameter_mm", min_diameter_mm, 0.0, MAX_LENGTH_MM)
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
