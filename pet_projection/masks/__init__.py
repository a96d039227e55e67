"""Geometry-aware masks: Radon mask augmentation, dynamic multi-mask (DMM), positive/negative splits.

ALL-PET (Huang et al., arXiv 2509.09130, fig. 1) makes many structurally
different training samples from a few sinograms: a random image-domain mask is
projected into sinogram space, where it marks the rays that cross it, and the
full sinogram is split into ``positive = mask * full`` and
``negative = (1 - mask) * full``, tied by ``positive + negative = full``.

Image masks (2D grids only; for a 3D grid generate ``n * nz`` masks on the
slice grid and reshape) are float32 0/1 arrays ``(n, ny, nx)``, ready for the
projectors; pixel ``(i, j)`` is in a shape when its centre is:

- :mod:`.cells`: :class:`CellGrid`, DMM, square cells switched on in varying
  number and layout;
- :mod:`.shapes`: :func:`random_ellipses`, :func:`random_polygons`, unions of
  random shapes (:func:`polygon_masks` rasterises given polygons), and
  :func:`disc_image`, the disc that, with :func:`sinogram_window`, bounds the
  radial range of the sinogram masks (the paper's output-size controls).

Random shapes and DMM cells are placed relative to the grid centre
``(ox, oy)``; the disc and the window are centred on the rotation axis
``x = y = 0`` that the sinogram's radial coordinate ``s`` refers to.

Sinogram masks (any leading batch axes, one projector call per batch):
:mod:`.radon` (:func:`radon_mask`, :func:`soft_radon_mask`,
:func:`body_support`, :func:`sinogram_window`) and :class:`CellSinogramBasis`.

:mod:`.constraints`: the positive/negative functions (:func:`split_by_mask`,
:func:`consistency_residuals`, :func:`enforce_consistency`,
:func:`apply_support`) work unchanged on NumPy arrays, torch tensors (CPU or
CUDA) and CuPy arrays.
"""

from ..validation import int_range
from .cells import LAYOUTS, CellGrid, CellSinogramBasis
from .constraints import ConsistencyResiduals, apply_support, consistency_residuals, enforce_consistency, split_by_mask
from .radon import (DEFAULT_THRESHOLD_PIXELS, body_support, default_threshold_mm, radon_mask, sinogram_window,
                    soft_radon_mask)
from .shapes import disc_image, polygon_masks, random_ellipses, random_polygons

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
    "int_range",
    "polygon_masks",
    "radon_mask",
    "random_ellipses",
    "random_polygons",
    "sinogram_window",
    "soft_radon_mask",
    "split_by_mask",
]
