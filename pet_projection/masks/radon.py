"""Sinogram masks of image masks: the rays that cross a mask (hard or soft), body supports and sinogram windows.

Sinogram masks take image masks with any leading batch axes, projected in one
projector call; the results have the input's array type.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..arrays import to_numpy
from ..geometry import ParallelBeamGeometry
from ..grid import ImageGrid
from ..operators import LinearOperator
from ..validation import check_pair, check_real
from .arguments import non_negative_mm

__all__ = ["DEFAULT_THRESHOLD_PIXELS", "body_support", "default_threshold_mm", "radon_mask", "sinogram_window",
           "soft_radon_mask"]

# A ray crosses a mask when its Joseph line integral through the 0/1 mask exceeds
# this many pixel lengths (smaller pixel side). For square pixels at 0 and 90
# degrees Joseph's footprint of one pixel is a triangle of height one pixel length
# and half-width one pixel, which reaches half a pixel length exactly where the
# ray leaves the pixel's square; at 45 degrees the footprint is the exact chord of
# the square. A ray marked by a single pixel passes within half a pixel of its
# centre (tests/pet_projection/test_masks.py); a ray running alongside a long mask edge sums
# interpolation weight over many planes and can be marked up to one pixel out.
DEFAULT_THRESHOLD_PIXELS = 0.5


def default_threshold_mm(projector: LinearOperator) -> float:
    """``DEFAULT_THRESHOLD_PIXELS`` times the smaller in-plane pixel side of the projector's grid, mm."""
    geometry = getattr(projector, "geometry", None)
    grid = getattr(geometry, "grid", None) or getattr(projector, "grid", None)
    if not isinstance(grid, ImageGrid):
        raise TypeError(f"{type(projector).__name__} has no image grid to take a default threshold from; "
                        "pass threshold_mm explicitly")
    return DEFAULT_THRESHOLD_PIXELS * min(grid.voxel_size_mm[-2:])


def check_threshold_mm(projector: Any, threshold_mm: Optional[float]) -> float:
    if not isinstance(projector, LinearOperator):
        raise TypeError(f"projector must be a LinearOperator, got {type(projector).__name__}")
    if threshold_mm is None:
        return default_threshold_mm(projector)
    return non_negative_mm("threshold_mm", threshold_mm)



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
        radial = np.abs(geometry.radial_positions_mm()) <= non_negative_mm("radius_mm", radius_mm)
    views = np.ones(geometry.n_views, dtype=bool)
    if angle_range_rad is not None:
        start, stop = (check_real("angle_range_rad", value) for value in check_pair("angle_range_rad", angle_range_rad))
        if start > stop:
            raise ValueError(f"angle_range_rad must satisfy start <= stop, got {angle_range_rad!r}")
        views = (geometry.angles_rad >= start) & (geometry.angles_rad <= stop)
    return views[:, None] & radial[None, :]



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
    threshold = check_threshold_mm(projector, threshold_mm)
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
