"""Random anatomy deformations: new patients from the images of a few.

A deformation sends every voxel centre ``p`` of the new image (in-plane
coordinates ``(y, x)`` in mm, relative to the scanner axis) to the point

    q = R(angle) diag(1 / s) p + t + d(p)

of the source image: a rotation about the scanner axis, a scale per axis, a
shift, and a smooth elastic displacement ``d`` (white noise filtered by a
Gaussian of standard deviation ``correlation_mm``, scaled to an RMS of
``elastic_mm`` per axis). The same in-plane map applies to every slice of a 3D
grid; the axial coordinate is left alone.

Images are warped region by region (:func:`warp_regions`): the label map by
nearest neighbour, and inside every region the activity is the region's
mean times the linearly interpolated relative texture. Edges therefore stay
as sharp as in the source; interpolating the activity itself would blur them,
and a network trained on such targets would learn to blur. Attenuation maps
are warped by nearest neighbour (:func:`warp_nearest`), so tissue classes stay
pure.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from ..grid import ImageGrid
from ..validation import check_finite_real

__all__ = ["DeformationSettings", "random_deformation", "relocate_lesions", "warp_nearest", "warp_regions"]


@dataclass(frozen=True)
class DeformationSettings:
    """Ranges of the random deformation (module notes); all draws are uniform in ``[-r, r]`` except ``elastic_mm``.

    Attributes
    ----------
    rotation_rad : float
        Largest rotation about the scanner axis (radians).
    scale : float
        Largest relative change of size per axis (``s`` in ``[1 - scale, 1 + scale]``), below 1.
    shift_mm : float
        Largest shift per axis (mm).
    elastic_mm : float
        RMS of the elastic displacement per axis (mm).
    correlation_mm : float
        Standard deviation of the Gaussian that smooths the elastic displacement (mm), > 0.

    Notes
    -----
    The defaults are a choice, not a measurement of anatomy: somewhat milder
    than the simulator's own variation between brain patients (rotation up
    to 0.25 rad, scale 0.9-1.1, shift 8 mm; ``anatomy.VARIATION``), so
    that warped patients stay plausible. Measurements: docs/results/simulation.md.
    """

    rotation_rad: float = 0.15
    scale: float = 0.08
    shift_mm: float = 8.0
    elastic_mm: float = 4.0
    correlation_mm: float = 32.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            check_finite_real(name, value, 0.0)
        if self.scale >= 1.0:
            raise ValueError(f"scale must be below 1, got {self.scale}")
        if self.correlation_mm == 0.0:
            raise ValueError("correlation_mm must be positive")

    def to_dict(self) -> dict:
        return asdict(self)


def random_deformation(grid: ImageGrid, rng: np.random.Generator,
                       settings: DeformationSettings = DeformationSettings()) -> np.ndarray:
    """Source voxel indices ``(grid.ndim, *grid.shape)`` of one random deformation (module notes).

    Index ``[:, k]`` is where output voxel ``k`` reads the source image, in
    fractional array indices, for :func:`scipy.ndimage.map_coordinates`.
    """
    if not isinstance(grid, ImageGrid):
        raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
    if not isinstance(settings, DeformationSettings):
        raise TypeError(f"settings must be DeformationSettings, got {type(settings).__name__}")
    plane = grid.shape[-2:]
    voxel = np.asarray(grid.voxel_size_mm[-2:], dtype=np.float64)[:, None, None]
    origin = np.asarray(grid.origin_mm[-2:], dtype=np.float64)[:, None, None]
    centre_index = (np.asarray(plane, dtype=np.float64)[:, None, None] - 1.0) / 2.0
    index = np.indices(plane, dtype=np.float64)
    points = (index - centre_index) * voxel + origin  # (y, x) in mm
    angle = rng.uniform(-settings.rotation_rad, settings.rotation_rad)
    scale = 1.0 + rng.uniform(-settings.scale, settings.scale, 2)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    source = np.einsum("ij,jyx->iyx", rotation / scale[None, :], points)
    source += rng.uniform(-settings.shift_mm, settings.shift_mm, 2)[:, None, None]
    if settings.elastic_mm > 0:
        for axis in range(2):
            field = ndimage.gaussian_filter(rng.standard_normal(plane), settings.correlation_mm / voxel[:, 0, 0],
                                            mode="wrap")
            source[axis] += field * (settings.elastic_mm / max(float(field.std()), 1e-12))
    in_plane = (source - origin) / voxel + centre_index
    if grid.ndim == 2:
        return in_plane
    nz = grid.shape[0]
    axial = np.broadcast_to(np.arange(nz, dtype=np.float64)[:, None, None], grid.shape)
    return np.stack([axial, *np.broadcast_to(in_plane[:, None], (2, *grid.shape))])


def _check_coordinates(shape: tuple[int, ...], coordinates: np.ndarray) -> np.ndarray:
    coordinates = np.asarray(coordinates, dtype=np.float64)
    if coordinates.shape != (len(shape), *shape):
        raise ValueError(f"coordinates have shape {coordinates.shape}, expected {(len(shape), *shape)} for images "
                         f"of shape {shape}")
    return coordinates


def warp_nearest(image: np.ndarray, coordinates: np.ndarray) -> np.ndarray:
    """``image`` read at ``coordinates`` by nearest neighbour (zero outside), same dtype."""
    image = np.asarray(image)
    coordinates = _check_coordinates(image.shape, coordinates)
    return ndimage.map_coordinates(image, coordinates, order=0, mode="constant", cval=0).astype(image.dtype)


def warp_regions(image: np.ndarray, labels: np.ndarray, coordinates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Warp an activity image and its label map region by region (module notes).

    Parameters
    ----------
    image : ndarray, shape ``(..., *labels.shape)``, >= 0
        Activity; leading axes (frames, tracers) share the labels.
    labels : integer ndarray
        Region labels (0: outside the body).
    coordinates : ndarray ``(labels.ndim, *labels.shape)``
        From :func:`random_deformation`.

    Returns
    -------
    image, labels : ndarray
        The warped activity (float64) and labels (the input's dtype). Inside
        every region the activity is the source region's mean times the
        warped relative texture ``image / mean``, so the warped image of a
        piecewise-constant image takes only the source's region values.
    """
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be an integer array, got {labels.dtype}")
    image = np.asarray(image, dtype=np.float64)
    if image.shape[image.ndim - labels.ndim:] != labels.shape:
        raise ValueError(f"image has shape {image.shape}, which does not end in the labels' shape {labels.shape}")
    coordinates = _check_coordinates(labels.shape, coordinates)
    new_labels = warp_nearest(labels, coordinates)
    present, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.ravel()
    flat = image.reshape(-1, labels.size)
    counts = np.bincount(inverse, minlength=len(present))
    means = np.stack([np.bincount(inverse, row, minlength=len(present)) / counts for row in flat])
    region_value = means[:, inverse]
    texture = np.divide(flat, region_value, out=np.ones_like(flat), where=region_value > 0)
    # Voxels read from outside the grid get label 0, which the source may lack: their activity is 0.
    slot = np.minimum(np.searchsorted(present, new_labels.ravel()), len(present) - 1)
    known = present[slot] == new_labels.ravel()
    out = np.empty_like(flat)
    for row in range(flat.shape[0]):
        smooth = ndimage.map_coordinates(texture[row].reshape(labels.shape), coordinates, order=1, mode="nearest")
        out[row] = np.where(known, means[row, slot], 0.0) * smooth.ravel()
    return out.reshape(image.shape), new_labels


def relocate_lesions(lesions: list, labels: np.ndarray, grid: ImageGrid, axial_position_mm: float) -> list:
    """Lesion metadata entries (``Lesion.to_dict()``) updated to a warped label map.

    ``center_mm`` ``(x, y, z)`` becomes the centroid of the lesion's voxels in
    the anatomy frame (the grid's voxel centres, ``z`` shifted by
    ``axial_position_mm``) and ``n_voxels`` their count; a lesion warped out
    of the grid gets ``n_voxels`` 0 and ``center_mm`` None. ``diameter_mm``
    stays the diameter it was painted with.
    """
    labels = np.asarray(labels)
    if labels.shape != grid.shape:
        raise ValueError(f"labels have shape {labels.shape}, the grid {grid.shape}")
    out = []
    for lesion in lesions:
        index = np.nonzero(labels == lesion["label"])
        n = int(index[0].size)
        centre = None
        if n:
            x, y = (float(grid.centers_mm(axis)[index[axis]].mean()) for axis in (-1, -2))
            z = float(grid.centers_mm(0)[index[0]].mean()) if grid.ndim == 3 else 0.0
            centre = [x, y, z + axial_position_mm]
        out.append({**lesion, "center_mm": centre, "n_voxels": n})
    return out
