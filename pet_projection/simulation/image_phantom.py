"""Phantoms from images: an activity image and a mu-map (e.g. the STIR-exercises thorax) as simulator input.

The simulator's tasks need regions with kinetics, not only one activity image,
so an image phantom is segmented into the regions the tracer tables know and
keeps its own detail as a texture:

- **regions** from the mu-map at 511 keV (midpoints between the tabulated
  values of :data:`~.phantoms.MU_511KEV_PER_MM`): air (``mu < 0.0015 /mm`` and
  no activity), ``lungs`` (below 0.006 /mm), ``spine`` (bone, from 0.0113
  /mm) and ``soft_tissue`` (the rest of the body);
- **hot lesions**: hypermetabolic regions outside bone
  and its one-voxel rim (:func:`~pet_projection.segment_metabolic`, over
  :data:`HYPER_RATIO` times the soft-tissue mean, connected components at least as large as a disc or
  ball of :data:`MIN_LESION_MM`), one ``lesion_hot_k`` per component, with
  the tracer's lesion kinetics (in the STIR thorax: the lung nodule, and
  parts of the myocardium, whose FDG uptake is as high);
- **texture**: the activity divided by the reference tracer's uptake of each
  voxel's region, so that the reference tracer's reference frame reproduces
  the activity image (up to the per-sample kinetic jitter), and other frames
  and tracers scale each region by their own uptake.

The images are resampled (linear interpolation) to ``size`` pixels across
their transaxial extent; 3D keeps their slices, 2D takes one slice per sample
(drawn among the slices that hold body).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Union

import numpy as np
from scipy import ndimage

from ..attention import segment_metabolic
from ..grid import ImageGrid
from .phantoms import LESION_LABEL_OFFSET, REGION_LABELS, Lesion, Phantom

PathLike = Union[str, os.PathLike]

MU_UNITS = {"1/mm": 1.0, "1/cm": 0.1}
# region boundaries of the mu-map (1/mm): midpoints of lung 0.0030, soft tissue 0.0096 and vertebra 0.0130 (phantoms.py)
MU_AIR_PER_MM = 0.0015
MU_LUNG_PER_MM = 0.006
MU_BONE_PER_MM = 0.0113
# largest plausible mu at 511 keV (1/mm): cortical bone is about 0.017; metal implants are not modelled
MU_MAX_PER_MM = 0.05
HYPER_RATIO = 3.0
MIN_LESION_MM = 10.0


@dataclass(frozen=True, eq=False)
class ImagePhantomSource:
    """An activity image and its mu-map on one 3D grid.

    Attributes
    ----------
    activity : ndarray, shape ``grid.shape``
        Activity of the reference tracer in its reference frame (any unit: counts are scaled per sample).
    mu_map_per_mm : ndarray, shape ``grid.shape``
        Linear attenuation coefficient at 511 keV in 1/mm.
    grid : ImageGrid
    name : str
        Where it came from (for metadata).
    """

    activity: np.ndarray
    mu_map_per_mm: np.ndarray
    grid: ImageGrid
    name: str


def load_image_phantom(activity_path: PathLike, mu_map_path: PathLike, mu_map_unit: str = "1/cm"
                       ) -> ImagePhantomSource:
    """Read an activity image and a mu-map (Interfile ``.hv``, NIfTI or ``.npz``) on the same grid.

    ``mu_map_unit`` is ``"1/cm"`` (STIR's and most CT-derived maps) or
    ``"1/mm"``. Raises ``ValueError`` when the grids differ, values are
    negative or not finite, or the mu-map is implausible for its unit.
    """
    from ..io.formats import load_image

    if mu_map_unit not in MU_UNITS:
        raise ValueError(f"mu_map_unit must be one of {sorted(MU_UNITS)}, got {mu_map_unit!r}")
    activity, grid = load_image(activity_path)
    mu, mu_grid = load_image(mu_map_path)
    if grid.ndim != 3 or mu_grid.shape != grid.shape or not np.allclose(mu_grid.voxel_size_mm, grid.voxel_size_mm) \
            or not np.allclose(mu_grid.origin_mm, grid.origin_mm, atol=1e-3):
        raise ValueError(f"the activity image ({grid}) and the mu-map ({mu_grid}) must share one 3D grid")
    mu = mu.astype(np.float64) * MU_UNITS[mu_map_unit]
    for name, values in (("activity", activity), ("mu-map", mu)):
        if not np.all(np.isfinite(values)) or values.min() < 0:
            raise ValueError(f"the {name} image must be finite and non-negative")
    if mu.max() > MU_MAX_PER_MM:
        raise ValueError(f"the mu-map reaches {mu.max():.4g} /mm at 511 keV, more than bone's ~0.017 /mm: is its "
                         f"unit {mu_map_unit!r} right?")
    if mu.max() < MU_LUNG_PER_MM:
        raise ValueError(f"the mu-map stays below {mu.max():.4g} /mm, less than soft tissue's 0.0096 /mm: is its "
                         f"unit {mu_map_unit!r} right?")
    return ImagePhantomSource(activity.astype(np.float64), mu, grid, f"{activity_path} + {mu_map_path}")


@lru_cache(maxsize=2)
def cached_image_phantom(activity_path: str, mu_map_path: str, mu_map_unit: str) -> ImagePhantomSource:
    """:func:`load_image_phantom`, read once per process."""
    return load_image_phantom(activity_path, mu_map_path, mu_map_unit)


def phantom_grid(source: ImagePhantomSource, size: int, dim: int) -> ImageGrid:
    """The simulation grid: ``size`` x ``size`` pixels over the images' transaxial extent (the larger of x, y);
    3D keeps the images' slices, 2D is one slice at ``z = 0``."""
    grid = source.grid
    pixel = max(grid.extent_mm[1:]) / size
    if dim == 2:
        return ImageGrid((size, size), pixel, grid.origin_mm[1:])
    return ImageGrid((grid.shape[0], size, size), (grid.voxel_size_mm[0], pixel, pixel), grid.origin_mm)


def _resample(image: np.ndarray, source: ImageGrid, grid: ImageGrid, slice_index: int | None) -> np.ndarray:
    """Linear interpolation of ``image`` (on ``source``) at the voxel centres of ``grid`` (0 outside)."""
    coordinates = []
    axes = range(3) if slice_index is None else (1, 2)
    target_axes = [a - (3 - grid.ndim) for a in axes]
    for axis, target in zip(axes, target_axes):
        centres = grid.centers_mm(target)
        coordinates.append((centres - source.origin_mm[axis]) / source.voxel_size_mm[axis]
                           + (source.shape[axis] - 1) / 2.0)
    mesh = np.meshgrid(*coordinates, indexing="ij")
    if slice_index is not None:
        image = image[slice_index]
    return ndimage.map_coordinates(image, mesh, order=1, mode="constant", cval=0.0)


def image_phantom(source: ImagePhantomSource, grid: ImageGrid, rng: np.random.Generator, anatomy: str,
                  reference_uptake: dict[str, float], lesion_contrast: float) -> tuple[Phantom, np.ndarray]:
    """A :class:`~.phantoms.Phantom` and its texture from an image phantom (see the module notes).

    Parameters
    ----------
    source : ImagePhantomSource
    grid : ImageGrid
        From :func:`phantom_grid` (2D: a slice is drawn with ``rng``).
    rng : numpy.random.Generator
    anatomy : {"brain", "trunk"}
        What the image shows (for the model's region label).
    reference_uptake : dict of str to float
        The reference tracer's reference-frame uptake of ``soft_tissue``, ``lungs`` and ``spine``.
    lesion_contrast : float
        The reference tracer's mean hot-lesion-to-host uptake ratio: a
        lesion's texture is its activity over ``host uptake * lesion_contrast``,
        so samples draw lesion contrasts around the image's own.

    Returns
    -------
    phantom : Phantom
        Labels, the resampled mu-map, hot lesions; ``axial_position_mm`` is the slice's ``z`` (2D) or 0.
    texture : ndarray, float64, shape ``grid.shape``
    """
    slice_index = None
    axial = 0.0
    if grid.ndim == 2:
        body_slices = np.flatnonzero((source.mu_map_per_mm > MU_AIR_PER_MM).any(axis=(1, 2)))
        slice_index = int(rng.choice(body_slices))
        axial = float(source.grid.centers_mm(0)[slice_index])
    activity = np.clip(_resample(source.activity, source.grid, grid, slice_index), 0.0, None)
    mu = np.clip(_resample(source.mu_map_per_mm, source.grid, grid, slice_index), 0.0, None)
    body = (mu > MU_AIR_PER_MM) | (activity > 1e-6 * max(float(activity.max()), 1e-30))
    labels = np.zeros(grid.shape, dtype=np.int16)
    labels[body] = REGION_LABELS["soft_tissue"]
    labels[body & (mu < MU_LUNG_PER_MM)] = REGION_LABELS["lungs"]
    labels[body & (mu >= MU_BONE_PER_MM)] = REGION_LABELS["spine"]
    soft = labels == REGION_LABELS["soft_tissue"]
    names = {name: REGION_LABELS[name] for name in ("soft_tissue", "lungs", "spine")
             if np.any(labels == REGION_LABELS[name])}
    lesions = []
    if soft.any():
        # bone and its rim (partial volume of bone uptake and mu) never count as lesions
        not_bone = body & ~ndimage.binary_dilation(labels == REGION_LABELS["spine"])
        hyper = segment_metabolic(activity, soft, not_bone, grid, hyper_ratio=HYPER_RATIO).mask("hyper") & not_bone
        components, n = ndimage.label(hyper)
        voxel_volume = math.prod(grid.voxel_size_mm)
        smallest = (math.pi * MIN_LESION_MM ** 2 / 4.0 if grid.ndim == 2 else math.pi * MIN_LESION_MM ** 3 / 6.0)
        for k in range(1, n + 1):
            mask = components == k
            if mask.sum() * voxel_volume < smallest:
                continue
            host_labels = labels[ndimage.binary_dilation(mask) & ~mask]
            host = "soft_tissue" if host_labels.size == 0 else next(
                name for name, label in REGION_LABELS.items() if label == np.bincount(host_labels).argmax())
            label = LESION_LABEL_OFFSET + len(lesions) + 1
            labels[mask] = label
            centre = [float((axis * mask).sum() / mask.sum()) for axis in grid.meshgrid_mm()]
            volume = mask.sum() * voxel_volume
            diameter = (2.0 * math.sqrt(volume / math.pi) if grid.ndim == 2
                        else (6.0 * volume / math.pi) ** (1.0 / 3.0))
            lesion = Lesion(f"lesion_hot_{len(lesions) + 1}", label, "hot", host,
                            (centre[0], centre[1], centre[2] if grid.ndim == 3 else axial), diameter, int(mask.sum()))
            lesions.append(lesion)
            names[lesion.name] = label
    uptake = np.zeros(grid.shape)
    for name, label in names.items():
        if not name.startswith("lesion"):
            uptake[labels == label] = reference_uptake[name]
    for lesion in lesions:
        uptake[labels == lesion.label] = reference_uptake[lesion.host] * lesion_contrast
    texture = np.divide(activity, uptake, out=np.zeros(grid.shape), where=uptake > 0)
    inside = labels > 0
    if inside.any():
        texture /= texture[inside].mean()
    phantom = Phantom(grid, anatomy, labels, names, mu.astype(np.float32), tuple(lesions), axial)
    return phantom, texture
