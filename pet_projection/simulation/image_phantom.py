"""Phantoms from a user's images: an activity image and a mu-map of any grid and field of view as simulator input.

The simulator's tasks need regions with kinetics, not one activity image, so
an image phantom (e.g. the STIR-exercises thorax, or a brain scan) becomes:

- **a region**: the body region it shows, given (``SimulationConfig.anatomy``,
  ``allpet simulate --region``) or detected from the body's size and the lungs
  (:func:`~.image_segmentation.detect_region`);
- **a grid**: the simulation grid of that region, the procedural phantoms'
  (:func:`~.phantoms.anatomy_grid`, e.g. 256 mm across for a brain), so its
  samples share the projector of the region's other data. The image's
  field-of-view centre goes to the grid's centre; 2D samples take one of the
  image's axial slices that hold body (drawn per sample), 3D ones the grid's
  slices around the image's axial centre. The images are resampled by
  :mod:`.image_resampling`: a voxel-exact copy (crop or pad) along axes whose
  voxel size agrees, elsewhere a conservative remap that keeps the total
  activity (and mean mu) of the part of the image inside the grid;
- **regions and lesions** segmented following the region
  (:func:`~.image_segmentation.segment_image`: a brain gets skull, scalp, grey
  and white matter and CSF, no lungs; a trunk lungs, bone and soft tissue;
  hot and cold lesions by their ratio to the region's reference tissue);
- **a texture**: the activity divided by the reference tracer's uptake of
  each voxel's region (a lesion's: its host's uptake times the tracer's mean
  hot or cold contrast), so that the reference tracer's reference frame
  reproduces the activity image (up to the per-sample kinetic jitter), and
  other frames and tracers scale each region by their own uptake.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Union

import numpy as np

from ..grid import ImageGrid
from .image_resampling import placement_shift_mm, resample_to_grid
from .image_segmentation import MU_AIR_PER_MM, MU_LUNG_PER_MM, detect_region, segment_image
from .phantoms import Phantom

PathLike = Union[str, os.PathLike]

MU_UNITS = {"1/mm": 1.0, "1/cm": 0.1}
# largest plausible mu at 511 keV (1/mm): cortical bone is about 0.017; metal implants are not modelled
MU_MAX_PER_MM = 0.05


@dataclass(frozen=True, eq=False)
class ImagePhantomSource:
    """An activity image and its mu-map on one 3D grid (any voxel size and field of view).

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
    """Read an activity image and a mu-map (Interfile ``.hv``, NIfTI, ``.npz``, or a folder holding a PET DICOM
    series, read in Bq/ml: :func:`~pet_projection.io.read_dicom_series`) on the same grid.

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


@lru_cache(maxsize=2)
def image_region(source: ImagePhantomSource) -> tuple[str, str]:
    """The body region ``source`` shows and why (:func:`~.image_segmentation.detect_region`), once per source."""
    return detect_region(source.activity, source.mu_map_per_mm, source.grid)


def _placed(source: ImagePhantomSource, grid: ImageGrid, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray, float]:
    """Activity and mu-map on ``grid`` and the axial position (module notes); 2D draws the slice with ``rng``."""
    if grid.ndim == 3:
        shift = placement_shift_mm(source.grid, grid)
        return (resample_to_grid(source.activity, source.grid, grid, shift),
                resample_to_grid(source.mu_map_per_mm, source.grid, grid, shift), shift[0])
    body_slices = np.flatnonzero((source.mu_map_per_mm > MU_AIR_PER_MM).any(axis=(1, 2)))
    k = int(rng.choice(body_slices))
    plane = ImageGrid(source.grid.shape[1:], source.grid.voxel_size_mm[1:], source.grid.origin_mm[1:])
    shift = placement_shift_mm(plane, grid)
    return (resample_to_grid(source.activity[k], plane, grid, shift),
            resample_to_grid(source.mu_map_per_mm[k], plane, grid, shift), float(source.grid.centers_mm(0)[k]))


def image_phantom(source: ImagePhantomSource, grid: ImageGrid, rng: np.random.Generator, region: str,
                  reference_uptake: Mapping[str, float], hot_contrast: float, cold_contrast: float
                  ) -> tuple[Phantom, np.ndarray]:
    """A :class:`~.phantoms.Phantom` and its texture from an image phantom (see the module notes).

    Parameters
    ----------
    source : ImagePhantomSource
    grid : ImageGrid
        The simulation grid of ``region`` (:func:`~.phantoms.anatomy_grid`; 2D: a slice is drawn with ``rng``).
    rng : numpy.random.Generator
    region : {"brain", "chest", "abdomen", "trunk"}
        What the image shows; the segmentation follows it.
    reference_uptake : mapping of str to float
        The reference tracer's reference-frame uptake per region name.
    hot_contrast, cold_contrast : float
        The reference tracer's mean hot- and cold-lesion-to-host uptake
        ratios: a lesion's texture is its activity over ``host uptake *
        contrast``, so samples draw lesion contrasts around the image's own.

    Returns
    -------
    phantom : Phantom
        Labels, the resampled mu-map, lesions; ``axial_position_mm`` is the
        image's ``z`` of the slice (2D) or of the grid's centre (3D).
    texture : ndarray, float64, shape ``grid.shape``
    """
    activity, mu, axial = _placed(source, grid, rng)
    activity, mu = np.clip(activity, 0.0, None), np.clip(mu, 0.0, None)
    regions = segment_image(activity, mu, grid, region, axial)
    labels = regions.labels
    uptake = np.zeros(grid.shape)
    for name, label in regions.names.items():
        if not name.startswith("lesion"):
            uptake[labels == label] = reference_uptake[name]
    for lesion in regions.lesions:
        contrast = hot_contrast if lesion.kind == "hot" else cold_contrast
        uptake[labels == lesion.label] = reference_uptake[lesion.host] * contrast
    texture = np.divide(activity, uptake, out=np.zeros(grid.shape), where=uptake > 0)
    inside = labels > 0
    if inside.any():
        texture /= texture[inside].mean()
    phantom = Phantom(grid, region, labels, regions.names, mu.astype(np.float32), regions.lesions, axial)
    return phantom, texture
