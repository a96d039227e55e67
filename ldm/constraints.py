"""Positive/negative mask constraints for generated sinograms: training penalties and exact projections.

ALL-PET (Huang et al., arXiv 2509.09130) ties a sinogram mask ``m`` (rays that
cross an image-domain mask) to a split of the full sinogram ``f`` into
``positive = m f`` and ``negative = (1 - m) f``. The latent diffusion model
generates the pair as two channels ``(B, 2, n_views, n_radial)``:

- in training, :func:`constraint_losses` penalises the residuals of
  ``positive + negative = full``, ``positive = 0`` outside the mask,
  ``negative = 0`` inside, negative counts, and counts outside the body support;
- at sampling time, :func:`project_pair` makes every constraint hold exactly
  and :func:`insert_known` replaces the known rays by the measured data.

The residuals and projections are :mod:`pet_projection.masks`' functions
(:func:`~pet_projection.masks.consistency_residuals`,
:func:`~pet_projection.masks.enforce_consistency`,
:func:`~pet_projection.masks.apply_support`), which work on torch tensors.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from pet_projection.masks import apply_support, consistency_residuals, enforce_consistency, split_by_mask

__all__ = ["PAIR_CHANNELS", "constraint_losses", "insert_known", "pair_from_full", "project_pair"]

PAIR_CHANNELS = 2  # (positive, negative)


def pair_from_full(full: Tensor, mask: Tensor) -> Tensor:
    """``(B, 2, n_views, n_radial)`` pair ``(m f, (1 - m) f)`` of sinograms ``full`` ``(B, 1, ...)``; exact split."""
    return torch.cat(split_by_mask(full, mask), dim=1)


def constraint_losses(pair: Tensor, full: Tensor, mask: Tensor,
                      support: Optional[Tensor] = None) -> dict[str, Tensor]:
    """Mean-square penalties of a generated (positive, negative) pair; all zero for a consistent, physical pair.

    Parameters
    ----------
    pair : tensor ``(B, 2, n_views, n_radial)``
        Generated positive (channel 0) and negative (channel 1) sinograms.
    full : tensor ``(B, 1, n_views, n_radial)``
        The full sinogram the pair must add up to.
    mask : tensor ``(B, 1, n_views, n_radial)``
        Sinogram mask; non-zero means inside.
    support : tensor ``(B, 1, n_views, n_radial)``, optional
        Body support; non-zero means a ray that meets the body.

    Returns
    -------
    dict of scalars
        ``sum`` (``p + n - f``), ``positive_outside``, ``negative_inside``,
        ``negative_counts`` (``min(p, 0)``, ``min(n, 0)``) and, with a support,
        ``outside_support``: each the mean of the squared residual.
    """
    positive, negative = pair[:, :1], pair[:, 1:]
    residuals = consistency_residuals(positive, negative, full, mask)
    losses = {"sum": residuals.total.square().mean(),
              "positive_outside": residuals.positive_outside.square().mean(),
              "negative_inside": residuals.negative_inside.square().mean(),
              "negative_counts": pair.clamp(max=0.0).square().mean()}
    if support is not None:
        losses["outside_support"] = (pair - apply_support(pair, support)).square().mean()
    return losses


def project_pair(pair: Tensor, mask: Tensor, support: Optional[Tensor] = None) -> Tensor:
    """Closest pair that meets the mask, non-negativity and support constraints exactly.

    ``(m p, (1 - m) n)`` (:func:`~pet_projection.masks.enforce_consistency`,
    the Euclidean projection), then negative values set to 0, then rays outside
    ``support`` set to 0. The three sets are coordinate-wise, so the composition
    is the Euclidean projection onto their intersection; it is idempotent.
    Afterwards ``p == 0`` outside the mask and ``n == 0`` inside, bit for bit.
    """
    positive, negative = enforce_consistency(pair[:, :1], pair[:, 1:], mask)
    pair = torch.cat([positive, negative], dim=1).clamp(min=0.0)
    return pair if support is None else apply_support(pair, support)


def insert_known(full: Tensor, known: Tensor, mask: Tensor) -> Tensor:
    """Data consistency: ``known`` on the rays where ``mask != 0``, ``full`` elsewhere (exact)."""
    inside = mask != 0
    return torch.where(inside, known, full)
