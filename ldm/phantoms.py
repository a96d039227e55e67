"""Random ellipse activity phantoms with their sinograms, TMA attention and body support (training data).

Each phantom is a body ellipse with warm and cold organs and hot lesions,
projected by a :class:`~pet_projection.ParallelBeamProjector`; the lesions'
TMA attention and the rays that meet the body come with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pet_projection import ParallelBeamProjector
from pet_projection.attention import AttentionRegions, TransparentMedicalAttention, segment_metabolic
from pet_projection.masks import body_support, random_ellipses
from pet_projection.validation import positive_int

__all__ = ["EllipsePhantoms", "ellipse_phantoms"]

# Phantom activities relative to the body background (1.0). Lesions at 4-8x the background
# are well above the PERCIST measurability ratio 1.5 (Wahl et al., J Nucl Med 2009;50:122S),
# so TMA's hypermetabolic segmentation finds them; organs span cold (0.3) to warm (2.5).
BODY_SEMI_AXES = (0.55, 0.9)       # fraction of the field radius
ORGAN_SEMI_AXES = (0.1, 0.3)
LESION_SEMI_AXES = (0.04, 0.1)
WARM_ORGAN_ACTIVITY = (1.2, 2.5)
COLD_ORGAN_ACTIVITY = (0.3, 0.8)
LESION_ACTIVITY = (4.0, 8.0)


@dataclass(frozen=True)
class EllipsePhantoms:
    """Random ellipse activity phantoms and their sinogram-space companions.

    Attributes
    ----------
    activity : ndarray ``(n, ny, nx)`` float32
        Activity images (body background 1).
    body : ndarray ``(n, ny, nx)`` bool
        Body outline.
    sinograms : ndarray ``(n, n_views, n_bins)`` float32
        Line integrals of ``activity`` (activity x mm).
    attention : ndarray ``(n, n_views, n_bins)`` float32
        TMA sinogram attention in ``[0, 1]`` of the hypermetabolic regions.
    support : ndarray ``(n, n_views, n_bins)`` bool
        Rays that meet the body (:func:`~pet_projection.masks.body_support`).
    """

    activity: np.ndarray
    body: np.ndarray
    sinograms: np.ndarray
    attention: np.ndarray
    support: np.ndarray


def ellipse_phantoms(projector: ParallelBeamProjector, n: int, seed: int) -> EllipsePhantoms:
    """``n`` random phantoms on the projector's grid, deterministic in ``seed``.

    Each phantom is a body ellipse of activity 1 with up to three warm and
    three cold organ ellipses and up to two hot lesions (activities in the
    module constants), cut to the body. The attention is TMA's
    (:class:`~pet_projection.attention.TransparentMedicalAttention`) for the regions
    :func:`~pet_projection.attention.segment_metabolic` finds with the body as the
    reference region (weight 1 for ``"hyper"``, 0 for ``"hypo"``).
    """
    positive_int("n", n)
    grid = projector.geometry.grid
    rng = np.random.default_rng(np.random.SeedSequence([seed]))
    field_mm = 0.5 * min(grid.extent_mm)

    def ellipses(count: tuple[int, int], semi_axes: tuple[float, float], center_fraction: float) -> np.ndarray:
        return random_ellipses(grid, n, rng, n_shapes=count, semi_axes_mm=tuple(f * field_mm for f in semi_axes),
                               center_radius_mm=center_fraction * field_mm) != 0

    def level(bounds: tuple[float, float]) -> np.ndarray:
        return rng.uniform(*bounds, size=(n, 1, 1)).astype(np.float32)

    body = ellipses((1, 1), BODY_SEMI_AXES, 0.05)
    warm, cold = ellipses((0, 3), ORGAN_SEMI_AXES, 0.5) & body, ellipses((0, 3), ORGAN_SEMI_AXES, 0.5) & body
    lesions = ellipses((0, 2), LESION_SEMI_AXES, 0.5) & body
    activity = body.astype(np.float32)
    activity = np.where(warm, level(WARM_ORGAN_ACTIVITY), activity)
    activity = np.where(cold, level(COLD_ORGAN_ACTIVITY), activity)
    activity = np.where(lesions, level(LESION_ACTIVITY), activity).astype(np.float32)
    sinograms = projector(activity).astype(np.float32)
    regions = AttentionRegions.from_table(segment_metabolic(activity, body, body, grid), {"hyper": 1.0, "hypo": 0.0})
    attention = TransparentMedicalAttention(projector)(regions).sinogram.astype(np.float32)
    support = np.asarray(body_support(body.astype(np.float32), projector), dtype=bool)
    return EllipsePhantoms(activity, body, sinograms, attention, support)
