"""A user's activity image and mu-map: which body region they show, and their regions and lesions.

**Region detection** (:func:`detect_region`), from the body's size and the
lungs: the body is where ``mu > 0.0015 /mm`` or there is activity; lungs are
body voxels with ``0.0015 <= mu < 0.006 /mm``, and a slice "has lungs" when
they fill more than 5 % of its body. A body at most 230 mm across (an adult
head is about 140-200 mm wide, a trunk 300 mm or more) with lungs in under
half of its slices is a ``brain``; otherwise lungs in at least 60 % of the
body's slices make it ``chest``, in at most 10 % ``abdomen``, and anything
between ``trunk``.

**Tissue classes** (:func:`segment_image`) follow the region. Bone is
``mu >= 0.0113 /mm`` (midpoints of the tabulated :data:`~.phantoms.MU_511KEV_PER_MM`):

- ``chest``, ``abdomen``, ``trunk``: ``lungs`` (as above), ``spine`` (bone)
  and ``soft_tissue`` (the rest of the body); the reference tissue is the
  soft tissue;
- ``brain`` (no lungs): ``skull`` (bone); the intracranial space (per axial
  slice, what the skull encloses); ``scalp`` (the rest of the body). Inside,
  the activity splits at Otsu's threshold into ``grey_matter`` (above) and a
  lower class, of which voxels under half its median are ``csf`` and the
  rest ``white_matter``; the reference tissue is the grey matter.

**Lesions**, relative to the mean activity ``m`` of the reference tissue,
each a connected component at least as large as a disc (2D) or ball (3D) of
:data:`MIN_LESION_MM`:

- *hot* (``lesion_hot_k``): activity above ``HYPER_RATIO[region] * m``
  (3 times the soft tissue of a trunk, whose organs and myocardium reach
  2-4 times it with FDG; 1.5 times the grey matter of a brain, above which no
  normal FDG brain tissue lies), outside bone and its one-voxel rim;
- *cold* (``lesion_cold_k``): enclosed pockets of low uptake, activity below
  ``HYPO_RATIO * m`` in the body outside bone and lungs, touching neither
  air, lungs, bone nor the image border, at most :data:`MAX_HYPO_LESION_MM`
  across, and with over half of their rim at or above that level (so white
  matter, CSF, fat and ventricles, which are large or touch the skull or the
  outside, are not lesions).

A lesion's host is the commonest class on its rim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..grid import ImageGrid
from .phantoms import LESION_LABEL_OFFSET, REGION_LABELS, Lesion

__all__ = ["HYPER_RATIO", "HYPO_RATIO", "ImageRegions", "body_mask", "detect_region", "segment_image"]

# region boundaries of the mu-map (1/mm): midpoints of lung 0.0030, soft tissue 0.0096 and vertebra 0.0130 (phantoms.py)
MU_AIR_PER_MM = 0.0015
MU_LUNG_PER_MM = 0.006
MU_BONE_PER_MM = 0.0113
# region detection (module notes)
HEAD_MAX_WIDTH_MM = 230.0
LUNG_SLICE_FRACTION = 0.05
CHEST_LUNG_SLICES, ABDOMEN_LUNG_SLICES, BRAIN_LUNG_SLICES = 0.6, 0.1, 0.5
# lesions (module notes)
HYPER_RATIO = {"brain": 1.5, "chest": 3.0, "abdomen": 3.0, "trunk": 3.0}
HYPO_RATIO = 0.5
MIN_LESION_MM = 10.0
MAX_HYPO_LESION_MM = 60.0


@dataclass(frozen=True, eq=False)
class ImageRegions:
    """The segmentation of an image (module notes).

    Attributes
    ----------
    labels : ndarray of int16, the image's shape
        Labels of :data:`~.phantoms.REGION_LABELS`, lesions from ``LESION_LABEL_OFFSET + 1``.
    names : dict of str to int
        The regions present and the lesions.
    lesions : tuple of Lesion
        Centres ``(x, y, z)`` in the grid's coordinates, ``z`` shifted by ``axial_position_mm``.
    """

    labels: np.ndarray
    names: dict
    lesions: tuple


def body_mask(activity: np.ndarray, mu_per_mm: np.ndarray) -> np.ndarray:
    """Voxels inside the body: ``mu > 0.0015 /mm`` or activity above ``1e-6`` of its maximum."""
    return (mu_per_mm > MU_AIR_PER_MM) | (activity > 1e-6 * max(float(activity.max()), 1e-30))


def detect_region(activity: np.ndarray, mu_per_mm: np.ndarray, grid: ImageGrid) -> tuple[str, str]:
    """The body region a 3D image shows, and a sentence saying why (module notes)."""
    body = body_mask(activity, mu_per_mm)
    lungs = body & (mu_per_mm < MU_LUNG_PER_MM)
    width_mm, n_body, n_lungs = 0.0, 0, 0
    for k in range(grid.shape[0]):
        if not body[k].any():
            continue
        n_body += 1
        rows, columns = np.nonzero(body[k])
        width_mm = max(width_mm, (np.ptp(rows) + 1) * grid.voxel_size_mm[1],
                       (np.ptp(columns) + 1) * grid.voxel_size_mm[2])
        n_lungs += int(lungs[k].sum() > LUNG_SLICE_FRACTION * body[k].sum())
    if n_body == 0:
        raise ValueError("the image phantom holds no body (no mu above 0.0015 /mm and no activity)")
    fraction = n_lungs / n_body
    if width_mm <= HEAD_MAX_WIDTH_MM and fraction < BRAIN_LUNG_SLICES:
        region = "brain"
    elif fraction >= CHEST_LUNG_SLICES:
        region = "chest"
    elif fraction <= ABDOMEN_LUNG_SLICES:
        region = "abdomen"
    else:
        region = "trunk"
    return region, (f"region {region!r} detected from the image: body {width_mm:.0f} mm across, lungs in {n_lungs} "
                    f"of {n_body} slices with body")


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold (between-class variance maximum) of ``values``."""
    counts, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2.0
    weight = np.cumsum(counts)
    mean = np.cumsum(counts * centres)
    total, total_mean = weight[-1], mean[-1]
    between = (total_mean * weight - mean * total) ** 2 / np.maximum(weight * (total - weight), 1e-30)
    return float(centres[int(np.argmax(between[:-1]))])


def _ball_voxels(diameter_mm: float, grid: ImageGrid) -> float:
    """Voxels in a disc (2D) or ball (3D) of ``diameter_mm``."""
    measure = math.pi * diameter_mm ** 2 / 4.0 if grid.ndim == 2 else math.pi * diameter_mm ** 3 / 6.0
    return measure / math.prod(grid.voxel_size_mm)


def _tissue_classes(activity: np.ndarray, mu: np.ndarray, region: str, grid: ImageGrid
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the tissue classes and the reference-tissue mask (module notes)."""
    body = body_mask(activity, mu)
    bone = body & (mu >= MU_BONE_PER_MM)
    labels = np.zeros(grid.shape, dtype=np.int16)
    if region != "brain":
        labels[body] = REGION_LABELS["soft_tissue"]
        labels[body & (mu < MU_LUNG_PER_MM)] = REGION_LABELS["lungs"]
        labels[bone] = REGION_LABELS["spine"]
        return labels, labels == REGION_LABELS["soft_tissue"]
    planes = bone.reshape((-1,) + grid.shape[-2:])  # axial slices (one in 2D)
    filled = np.stack([ndimage.binary_fill_holes(plane) for plane in planes]).reshape(grid.shape)
    inside = filled & ~bone & body
    labels[body] = REGION_LABELS["scalp"]
    labels[bone] = REGION_LABELS["skull"]
    if inside.sum() < 2:
        return labels, labels == REGION_LABELS["scalp"]
    threshold = _otsu(activity[inside])
    grey = inside & (activity > threshold)
    low = inside & ~grey
    csf = low & (activity < 0.5 * (float(np.median(activity[low])) if low.any() else 0.0))
    labels[low] = REGION_LABELS["white_matter"]
    labels[csf] = REGION_LABELS["csf"]
    labels[grey] = REGION_LABELS["grey_matter"]
    return labels, grey


def _host(labels: np.ndarray, mask: np.ndarray) -> str:
    rim = labels[ndimage.binary_dilation(mask) & ~mask]
    rim = rim[(rim > 0) & (rim < LESION_LABEL_OFFSET)]
    if rim.size == 0:
        return "soft_tissue"
    label = int(np.bincount(rim).argmax())
    return next(name for name, value in REGION_LABELS.items() if value == label)


def segment_image(activity: np.ndarray, mu_per_mm: np.ndarray, grid: ImageGrid, region: str,
                  axial_position_mm: float = 0.0) -> ImageRegions:
    """Tissue classes and hot and cold lesions of an image on ``grid`` (module notes).

    Parameters
    ----------
    activity, mu_per_mm : ndarray, ``grid.shape``
        Activity (any unit) and mu at 511 keV (1/mm), non-negative.
    grid : ImageGrid
        2D or 3D.
    region : {"brain", "chest", "abdomen", "trunk"}
    axial_position_mm : float
        Added to the grid's ``z`` (3D) in the lesion centres, or their ``z`` (2D).
    """
    labels, reference = _tissue_classes(activity, mu_per_mm, region, grid)
    names = {name: value for name, value in REGION_LABELS.items() if np.any(labels == value)}
    lesions: list[Lesion] = []
    if not reference.any():
        return ImageRegions(labels, names, ())
    level = float(activity[reference].mean())
    body = labels > 0
    bone = np.isin(labels, [REGION_LABELS["spine"], REGION_LABELS["skull"]])
    lungs = labels == REGION_LABELS["lungs"]
    smallest = _ball_voxels(MIN_LESION_MM, grid)
    hyper = (activity > HYPER_RATIO[region] * level) & body & ~ndimage.binary_dilation(bone)
    low = (activity < HYPO_RATIO * level) & body & ~bone & ~lungs
    barrier = ~body | bone | lungs
    border = np.zeros(grid.shape, dtype=bool)
    for axis in range(grid.ndim):
        index = [slice(None)] * grid.ndim
        for end in (0, -1):
            index[axis] = end
            border[tuple(index)] = True
    candidates = []
    for kind, mask in (("hot", hyper), ("cold", low)):
        components, n = ndimage.label(mask)
        sizes = np.bincount(components.ravel())
        for k in range(1, n + 1):
            if sizes[k] < smallest:
                continue
            lesion = components == k
            if kind == "cold":
                rim = ndimage.binary_dilation(lesion) & ~lesion
                if (sizes[k] > _ball_voxels(MAX_HYPO_LESION_MM, grid) or np.any(rim & barrier)
                        or np.any(lesion & border) or np.mean(activity[rim] >= HYPO_RATIO * level) <= 0.5):
                    continue
            candidates.append((kind, lesion))
    centres = grid.meshgrid_mm()
    voxel_volume = math.prod(grid.voxel_size_mm)
    for kind, lesion in candidates:
        host = _host(labels, lesion)
        number = len(lesions) + 1
        label = LESION_LABEL_OFFSET + number
        labels[lesion] = label
        n_voxels = int(lesion.sum())
        centre = [float(axis[lesion].mean()) for axis in centres] + [0.0]  # x, y[, z], 0
        volume = n_voxels * voxel_volume
        diameter = 2.0 * math.sqrt(volume / math.pi) if grid.ndim == 2 else (6.0 * volume / math.pi) ** (1.0 / 3.0)
        lesions.append(Lesion(f"lesion_{kind}_{number}", label, kind, host,
                              (centre[0], centre[1], centre[2] + axial_position_mm), diameter, n_voxels))
        names[lesions[-1].name] = label
    return ImageRegions(labels, names, tuple(lesions))
