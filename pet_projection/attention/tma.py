"""Transparent medical attention (TMA): parameter-free attention on the sinogram rays through weighted regions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage

from ..grid import MAX_LENGTH_MM, MIN_SIZE_MM, ImageGrid
from ..operators import LinearOperator
from ..validation import check_real
from .regions import AttentionRegions, batch_shape, connected_components
from .roi_edits import RoiEditSpec

__all__ = ["DEFAULT_MARGIN_MM", "AttentionMaps", "TransparentMedicalAttention"]

# Soft-edge width: about the spatial resolution (FWHM) of clinical whole-body PET (4-7 mm), so rays through
# a lesion's partial-volume spill-out keep some attention.
DEFAULT_MARGIN_MM = 6.0


@dataclass(frozen=True)
class AttentionMaps:
    """TMA output, float64 in ``[0, 1]``.

    Attributes
    ----------
    image : ndarray, shape ``(..., *grid.shape)``
    sinogram : ndarray, shape ``(..., *projector.out_shape)``
    """

    image: np.ndarray
    sinogram: np.ndarray


@dataclass(frozen=True)
class _RegionField:
    """One region's soft mask ``(B, *core)`` and, per voxel of its support, the nearest component (0 outside)."""

    weight: float
    soft: np.ndarray
    component: np.ndarray
    n_components: int


def _grid_of(projector: LinearOperator) -> ImageGrid:
    geometry = getattr(projector, "geometry", None)
    grid = getattr(geometry, "grid", None) if geometry is not None else getattr(projector, "grid", None)
    if grid is None:
        raise TypeError(f"{type(projector).__name__} has no grid; pass grid=ImageGrid(...)")
    return grid


class TransparentMedicalAttention:
    """Parameter-free attention on the rays through weighted regions (TMA).

    Parameters
    ----------
    projector : LinearOperator
        Maps images ``(..., *grid.shape)`` to sinograms ``(..., *out_shape)``,
        e.g. :class:`~pet_projection.ParallelBeamProjector` or a composition.
    grid : ImageGrid, optional
        The image grid; default ``projector.geometry.grid`` or ``projector.grid``.
    margin_mm : float, optional
        Soft-edge width in mm (default 6, about the FWHM of clinical PET); 0 for hard edges.

    Notes
    -----
    **Image attention.** Each region ``r`` gets the soft mask
    ``s_r = max(0, 1 - d_r / margin_mm)``, with ``d_r`` the Euclidean distance in
    mm from the voxel centre to the nearest voxel centre of the region (0
    inside): 1 inside, falling linearly to 0 at ``margin_mm`` (``margin_mm = 0``:
    hard edges). The image attention is ``max_r w_r s_r``, so overlapping
    regions never exceed 1 and removing one leaves the others intact.

    **Sinogram attention.** Each connected component ``c`` (one lesion) of a
    region takes the part of ``s_r`` nearer to it than to the region's other
    components, ``s_c``. Its projection ``P s_c`` is the path length (mm) of a ray
    through the component, normalised by its own peak:
    ``a_c = P s_c / max(P s_c)``, so the ray along the lesion's longest chord
    gets 1 and every lesion, small or large, reaches its full weight. The
    sinogram attention is ``max_c w_r(c) a_c``. All components of all batch
    items go through the projector in one call (memory: one image per
    component). Consequences: rays that pass no region support (farther than
    one pixel, Joseph's interpolation reach) are exactly 0, and an edit of one
    region leaves every ray that does not meet that region bit-identical.
    A 3D grid with a slice-wise projector normalises each 3D component by its
    peak over all slices.
    """

    def __init__(self, projector: LinearOperator, grid: Optional[ImageGrid] = None,
                 margin_mm: float = DEFAULT_MARGIN_MM) -> None:
        if not isinstance(projector, LinearOperator):
            raise TypeError(f"projector must be a LinearOperator, got {type(projector).__name__}")
        grid = _grid_of(projector) if grid is None else grid
        if not isinstance(grid, ImageGrid):
            raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
        if tuple(projector.in_shape) != grid.shape:
            raise ValueError(f"projector takes images of shape {projector.in_shape}, but the grid has shape "
                             f"{grid.shape}")
        self.projector = projector
        self.grid = grid
        margin_mm = check_real("margin_mm", margin_mm, 0.0, MAX_LENGTH_MM)
        if 0.0 < margin_mm < MIN_SIZE_MM:
            raise ValueError(f"margin_mm must be 0 (hard edges) or at least {MIN_SIZE_MM:g} mm, got {margin_mm!r}")
        self.margin_mm = margin_mm

    def __repr__(self) -> str:
        return f"TransparentMedicalAttention({self.projector!r}, margin_mm={self.margin_mm})"

    def __call__(self, regions: AttentionRegions) -> AttentionMaps:
        """Image and sinogram attention of ``regions``."""
        batch, fields = self._fields(regions)
        return AttentionMaps(self._image(batch, fields), self._sinogram(batch, fields))

    def image_attention(self, regions: AttentionRegions) -> np.ndarray:
        """Image attention ``(..., *grid.shape)`` of ``regions`` (no projection)."""
        return self._image(*self._fields(regions))

    def edit(self, regions: AttentionRegions, spec: RoiEditSpec) -> tuple[AttentionRegions, AttentionMaps]:
        """Apply a clinician's ``spec`` and recompute the attention: ``(edited regions, maps)``."""
        if not isinstance(spec, RoiEditSpec):
            raise TypeError(f"spec must be a RoiEditSpec, got {type(spec).__name__}")
        edited = spec.apply(regions, self.grid)
        return edited, self(edited)

    def _fields(self, regions: AttentionRegions) -> tuple[tuple[int, ...], list[_RegionField]]:
        if not isinstance(regions, AttentionRegions):
            raise TypeError(f"regions must be AttentionRegions, got {type(regions).__name__}")
        batches = {name: batch_shape(f"mask of {name!r}", mask.shape, self.grid)
                   for name, mask in regions.masks.items()}
        try:
            batch = np.broadcast_shapes(*batches.values())
        except ValueError:
            raise ValueError(f"the masks' batch axes do not broadcast against each other: {batches}") from None
        core = self.grid.ndim
        fields = []
        for name, mask in regions.masks.items():
            weight = regions.weights[name]
            if weight == 0.0 or not mask.any():
                continue
            flat = np.broadcast_to(mask, batch + self.grid.shape).reshape((-1,) + self.grid.shape)
            labels, n = connected_components(flat, core)
            soft = np.zeros(flat.shape)
            component = np.zeros(flat.shape, dtype=labels.dtype)
            for b in np.flatnonzero(flat.reshape(flat.shape[0], -1).any(axis=1)):
                distance, nearest = ndimage.distance_transform_edt(~flat[b], sampling=self.grid.voxel_size_mm,
                                                                   return_indices=True)
                soft[b] = self._soft_edge(distance)
                component[b] = np.where(soft[b] > 0.0, labels[b][tuple(nearest)], 0)
            fields.append(_RegionField(weight, soft, component, n))
        return batch, fields

    def _soft_edge(self, distance_mm: np.ndarray) -> np.ndarray:
        """1 inside (distance 0), falling linearly to 0 at ``margin_mm``; the indicator when ``margin_mm = 0``."""
        if self.margin_mm == 0.0:
            return (distance_mm == 0.0).astype(np.float64)
        return np.clip(1.0 - distance_mm / self.margin_mm, 0.0, 1.0)

    def _image(self, batch: tuple[int, ...], fields: list[_RegionField]) -> np.ndarray:
        image = np.zeros((math.prod(batch),) + self.grid.shape)
        for field in fields:
            np.maximum(image, field.weight * field.soft, out=image)
        return image.reshape(batch + self.grid.shape)

    def _sinogram(self, batch: tuple[int, ...], fields: list[_RegionField]) -> np.ndarray:
        out_shape = tuple(self.projector.out_shape)
        sinogram = np.zeros((math.prod(batch),) + out_shape)
        n_total = sum(field.n_components for field in fields)
        if n_total == 0:
            return sinogram.reshape(batch + out_shape)
        stack = np.zeros((n_total,) + self.grid.shape)
        item = np.zeros(n_total, dtype=np.intp)
        weight = np.zeros(n_total)
        offset = 0
        for field in fields:
            support = np.nonzero(field.component)
            ids = field.component[support] - 1 + offset
            stack[(ids,) + support[1:]] = field.soft[support]
            item[ids] = support[0]
            weight[offset:offset + field.n_components] = field.weight
            offset += field.n_components
        projections = np.asarray(self.projector(stack), dtype=np.float64)
        axes = tuple(range(1, projections.ndim))
        peak = projections.max(axis=axes, keepdims=True)
        normalised = np.divide(projections, peak, out=np.zeros_like(projections), where=peak > 0.0)
        np.maximum.at(sinogram, item, weight.reshape((-1,) + (1,) * len(out_shape)) * normalised)
        return sinogram.reshape(batch + out_shape)
