"""Procedural, randomised brain and trunk phantoms: label maps, lesions and 511 keV mu-maps, 2D or 3D.

An anatomy is a list of superquadrics (ellipsoids, rounded boxes, elliptic
cylinders) in an anatomy frame (mm): ``x`` left-right, ``y`` posterior (-) to
anterior (+), ``z`` inferior to superior (the scanner axis). Each phantom
draws a random global scale, rotation about ``z`` and shift, jitters every
organ's position, size and orientation, and paints the organs in order (later
ones overwrite earlier ones) into an integer label map on an
:class:`~pet_projection.ImageGrid`. A 3D grid samples the anatomy around an
axial position (the bed position); a 2D grid is the axial slice at one
``z`` (both drawn at random unless given). Random hot and cold lesions are
then painted inside host organs (only over the host's voxels).

Label values are fixed (:data:`REGION_LABELS`); lesion ``k`` (1, 2, ...) has
label ``LESION_LABEL_OFFSET + k`` and the name ``"lesion_hot_k"`` or
``"lesion_cold_k"``, so ``RegionTable(phantom.labels, phantom.names)`` gives
TMA the organs and every lesion (names starting with ``"lesion"`` get
attention weight 1 by default). Label 0 is air.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping, Optional, Sequence

import numpy as np
from scipy import ndimage

from ..attention import RegionTable
from ..grid import ImageGrid

ANATOMIES = ("brain", "trunk")

REGION_LABELS: dict[str, int] = {
    # brain
    "scalp": 1, "skull": 2, "csf": 3, "grey_matter": 4, "white_matter": 5, "deep_grey_matter": 6,
    "ventricles": 7, "cerebellum": 8, "brainstem": 9,
    # trunk
    "fat": 20, "soft_tissue": 21, "lungs": 22, "heart_wall": 23, "blood_pool": 24, "liver": 25, "spleen": 26,
    "kidneys": 27, "spine": 28, "bladder": 29,
}
LESION_LABEL_OFFSET = 100
LESION_KINDS = ("hot", "cold")

# Linear attenuation coefficients at 511 keV in 1/mm: mass attenuation coefficients of NIST XCOM
# (Berger et al.; water 0.0960 cm^2/g) times ICRU Report 46 densities, rounded. Water and soft
# tissues 0.096 /cm, adipose tissue (0.95 g/cm^3) about 0.092 /cm, inflated lung (about 0.3 g/cm^3)
# about 0.03 /cm, skull (cortical bone with diploe) about 0.15 /cm, vertebrae (mostly trabecular
# bone, about 1.3 g/cm^3) about 0.13 /cm; the values used for PET attenuation maps by e.g.
# Kinahan et al., Med Phys 25:2046, 1998 (water 0.096 /cm, cortical bone 0.172 /cm).
MU_SOFT_TISSUE_PER_MM = 0.0096
MU_511KEV_PER_MM: dict[str, float] = {
    "scalp": MU_SOFT_TISSUE_PER_MM, "skull": 0.0150, "csf": MU_SOFT_TISSUE_PER_MM,
    "grey_matter": MU_SOFT_TISSUE_PER_MM, "white_matter": MU_SOFT_TISSUE_PER_MM,
    "deep_grey_matter": MU_SOFT_TISSUE_PER_MM, "ventricles": MU_SOFT_TISSUE_PER_MM,
    "cerebellum": MU_SOFT_TISSUE_PER_MM, "brainstem": MU_SOFT_TISSUE_PER_MM,
    "fat": 0.0092, "soft_tissue": MU_SOFT_TISSUE_PER_MM, "lungs": 0.0030, "heart_wall": MU_SOFT_TISSUE_PER_MM,
    "blood_pool": MU_SOFT_TISSUE_PER_MM, "liver": MU_SOFT_TISSUE_PER_MM, "spleen": MU_SOFT_TISSUE_PER_MM,
    "kidneys": MU_SOFT_TISSUE_PER_MM, "spine": 0.0130, "bladder": MU_SOFT_TISSUE_PER_MM,
}

# Transaxial field of view (diameter, mm): a head fits in 256 mm, an adult trunk in 500 mm.
FIELD_OF_VIEW_MM = {"brain": 256.0, "trunk": 500.0}
# Range of the anatomy-frame z of a 2D slice, and of the centre of a 3D field of view (mm); inside
# the body for every random scale and jitter (the shortest trunk reaches from z = -440 to 330 mm).
SLICE_RANGE_MM = {"brain": (-45.0, 55.0), "trunk": (-360.0, 240.0)}
BED_RANGE_MM = {"brain": (-10.0, 10.0), "trunk": (-250.0, 100.0)}
# Lesion host organs and their relative odds; lesion diameters (mm).
LESION_HOSTS = {"brain": {"grey_matter": 3.0, "white_matter": 2.0, "deep_grey_matter": 1.0, "cerebellum": 1.0},
                "trunk": {"liver": 3.0, "lungs": 3.0, "spleen": 1.0, "soft_tissue": 2.0, "spine": 1.0}}
LESION_DIAMETER_MM = {"brain": (6.0, 30.0), "trunk": (8.0, 40.0)}
HOT_LESION_PROBABILITY = 0.7
# Lesions painted over fewer voxels than this are dropped (invisible in the slice or volume).
MIN_LESION_VOXELS = 3


@dataclass(frozen=True)
class Superquadric:
    """The solid ``|u/a|^p + |v/b|^p + |w/c|^q <= 1`` in the frame rotated by ``angle_rad`` about ``z``.

    ``(u, v, w)`` are the coordinates relative to ``center_mm`` ``(x, y, z)``
    rotated by ``-angle_rad``; ``p = exponent_xy``, ``q = exponent_z`` (2 and 2:
    an ellipsoid; a large ``q``: an elliptic cylinder with flat ends).
    Shapes with the same non-empty ``group`` (nested shells such as scalp,
    skull and CSF) share one random jitter, so the shells stay concentric.
    """

    region: str
    center_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]
    angle_rad: float = 0.0
    exponent_xy: float = 2.0
    exponent_z: float = 2.0
    group: str = ""

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Bool array (broadcast shape of ``x, y, z`` in mm): which points lie inside."""
        cx, cy, cz = self.center_mm
        a, b, c = self.semi_axes_mm
        cos, sin = math.cos(self.angle_rad), math.sin(self.angle_rad)
        u = ((x - cx) * cos + (y - cy) * sin) / a
        v = ((y - cy) * cos - (x - cx) * sin) / b
        w = (z - cz) / c
        return np.abs(u) ** self.exponent_xy + np.abs(v) ** self.exponent_xy + np.abs(w) ** self.exponent_z <= 1.0

    def bounding_radius_xy_mm(self) -> float:
        """Radius about the centre of a cylinder around the solid."""
        return math.hypot(self.semi_axes_mm[0], self.semi_axes_mm[1])


def _mirrored(region: str, center: tuple[float, float, float], semi: tuple[float, float, float],
              angle: float = 0.0) -> list[Superquadric]:
    """A left/right pair of ellipsoids at ``(+-x, y, z)``, rotated by ``+-angle``."""
    x, y, z = center
    return [Superquadric(region, (x, y, z), semi, angle), Superquadric(region, (-x, y, z), semi, -angle)]


def brain_anatomy() -> list[Superquadric]:
    """The mean head (mm), painted in this order: scalp, skull, CSF, cerebrum, deep grey matter, ventricles,
    cerebellum, brainstem. Sizes approximate an adult head (about 160 x 200 x 180 mm)."""
    return [
        Superquadric("scalp", (0.0, 0.0, 0.0), (78.0, 98.0, 88.0), group="head"),
        Superquadric("skull", (0.0, 0.0, 0.0), (73.0, 93.0, 83.0), group="head"),
        Superquadric("csf", (0.0, 0.0, 0.0), (67.0, 87.0, 77.0), group="head"),
        Superquadric("grey_matter", (0.0, 3.0, 12.0), (62.0, 80.0, 60.0)),
        Superquadric("white_matter", (0.0, 3.0, 15.0), (49.0, 66.0, 45.0)),
        *_mirrored("deep_grey_matter", (14.0, 0.0, 8.0), (9.0, 16.0, 10.0), 0.2),
        *_mirrored("ventricles", (7.0, 8.0, 20.0), (5.0, 26.0, 9.0), -0.15),
        Superquadric("cerebellum", (0.0, -46.0, -38.0), (46.0, 26.0, 21.0)),
        Superquadric("brainstem", (0.0, -18.0, -40.0), (13.0, 15.0, 32.0)),
    ]


def trunk_anatomy() -> list[Superquadric]:
    """The mean trunk (mm; ``z = 0`` near the diaphragm), painted in this order: fat (the body outline), soft
    tissue, lungs, heart wall and blood pool, descending aorta, liver, spleen, kidneys, spine, bladder.
    The body is about 330 x 210 mm across."""
    body = dict(exponent_xy=2.6, exponent_z=20.0, group="body")
    return [
        Superquadric("fat", (0.0, 0.0, -50.0), (165.0, 105.0, 500.0), **body),
        Superquadric("soft_tissue", (0.0, 0.0, -50.0), (150.0, 92.0, 495.0), **body),
        *_mirrored("lungs", (80.0, 5.0, 110.0), (58.0, 72.0, 140.0)),
        Superquadric("heart_wall", (20.0, 35.0, 40.0), (52.0, 45.0, 55.0), 0.5, group="heart"),
        Superquadric("blood_pool", (20.0, 35.0, 40.0), (38.0, 32.0, 40.0), 0.5, group="heart"),
        Superquadric("blood_pool", (22.0, -45.0, -100.0), (12.0, 12.0, 250.0), exponent_z=20.0),
        Superquadric("liver", (-65.0, 10.0, -40.0), (95.0, 80.0, 75.0), 0.3),
        Superquadric("spleen", (90.0, -30.0, -30.0), (32.0, 48.0, 55.0), -0.4),
        *_mirrored("kidneys", (72.0, -45.0, -130.0), (30.0, 24.0, 55.0), 0.35),
        Superquadric("spine", (0.0, -72.0, -50.0), (20.0, 18.0, 480.0), exponent_z=20.0),
        Superquadric("bladder", (0.0, 35.0, -380.0), (45.0, 35.0, 35.0)),
    ]


ANATOMY_PRIMITIVES = {"brain": brain_anatomy, "trunk": trunk_anatomy}
# Random variation: global scale range (x, y, z), rotation about z (rad), shift (mm); per organ:
# position (mm, standard deviation), size (relative, uniform +-) and rotation (rad, uniform +-).
GLOBAL_JITTER = {"brain": ((0.9, 1.1), 0.25, 8.0), "trunk": ((0.85, 1.12), 0.08, 15.0)}
ORGAN_POSITION_SD_MM = 3.0
ORGAN_SIZE_JITTER = 0.1
ORGAN_ANGLE_JITTER_RAD = 0.15


@dataclass(frozen=True)
class Lesion:
    """A lesion painted into a phantom (anatomy frame, mm)."""

    name: str
    label: int
    kind: str
    host: str
    center_mm: tuple[float, float, float]
    diameter_mm: float
    n_voxels: int

    def to_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "kind": self.kind, "host": self.host,
                "center_mm": list(self.center_mm), "diameter_mm": self.diameter_mm, "n_voxels": self.n_voxels}


@dataclass(frozen=True, eq=False)
class Phantom:
    """A randomised patient: labels, mu-map and lesions on an image grid.

    Attributes
    ----------
    grid : ImageGrid
    anatomy : str
        ``"brain"`` or ``"trunk"``.
    labels : ndarray of int16, shape ``grid.shape``
        Region label per voxel (0 = air); see :data:`REGION_LABELS`.
    names : dict of str to int
        Region name to label, for the regions of this anatomy and the lesions drawn.
    mu_map : ndarray of float32, shape ``grid.shape``
        Linear attenuation coefficient at 511 keV in 1/mm.
    lesions : tuple of Lesion
    axial_position_mm : float
        Anatomy-frame ``z`` of the 2D slice, or of the 3D grid's ``z = 0``.
    """

    grid: ImageGrid
    anatomy: str
    labels: np.ndarray
    names: dict
    mu_map: np.ndarray
    lesions: tuple
    axial_position_mm: float

    def region_table(self) -> RegionTable:
        """The label map and names as a :class:`~pet_projection.RegionTable` (for TMA)."""
        return RegionTable(self.labels, self.names)

    def region_image(self, values: Mapping[str, float]) -> np.ndarray:
        """Piecewise-constant float32 image: ``values[name]`` on the voxels of each named region, 0 elsewhere.

        Every region present in the label map must have a value (``ValueError`` names the missing ones).
        """
        missing = sorted(name for name, label in self.names.items()
                         if name not in values and np.any(self.labels == label))
        if missing:
            raise ValueError(f"region_image needs a value for every region in the phantom; missing {missing}")
        table = np.zeros(int(self.labels.max()) + 1, dtype=np.float64)
        for name, value in values.items():
            label = self.names.get(name)
            if label is not None and label < table.size:
                table[label] = value
        return table[self.labels].astype(np.float32)

    @property
    def body_mask(self) -> np.ndarray:
        """Bool ``grid.shape``: voxels inside the body (label > 0)."""
        return self.labels > 0


def anatomy_grid(anatomy: str, size: int, n_slices: Optional[int] = None, slice_mm: float = 3.29) -> ImageGrid:
    """The image grid of an anatomy: ``size`` x ``size`` pixels over :data:`FIELD_OF_VIEW_MM`.

    2D without ``n_slices``; else 3D with ``n_slices`` slices of ``slice_mm``
    (default 3.29 mm, the ring pitch of
    :meth:`~pet_projection.RingScannerGeometry.clinical_whole_body`).
    """
    anatomy = check_anatomy(anatomy)
    pixel = FIELD_OF_VIEW_MM[anatomy] / size
    if n_slices is None:
        return ImageGrid((size, size), pixel)
    return ImageGrid((n_slices, size, size), (slice_mm, pixel, pixel))


def check_anatomy(anatomy: str) -> str:
    if anatomy not in ANATOMIES:
        raise ValueError(f"anatomy must be one of {ANATOMIES}, got {anatomy!r}")
    return anatomy


def _jitter(shapes: Sequence[Superquadric], anatomy: str, rng: np.random.Generator) -> list[Superquadric]:
    (low, high), max_angle, max_shift = GLOBAL_JITTER[anatomy]
    scale = rng.uniform(low, high, size=3)
    phi = rng.uniform(-max_angle, max_angle)
    shift = rng.uniform(-max_shift, max_shift, size=2)
    cos, sin = math.cos(phi), math.sin(phi)
    out = []
    group_jitter: dict[str, tuple] = {}
    for shape in shapes:
        jitter = group_jitter.get(shape.group) if shape.group else None
        if jitter is None:
            jitter = (rng.normal(0.0, ORGAN_POSITION_SD_MM, size=3),
                      rng.uniform(1.0 - ORGAN_SIZE_JITTER, 1.0 + ORGAN_SIZE_JITTER, size=3),
                      rng.uniform(-ORGAN_ANGLE_JITTER_RAD, ORGAN_ANGLE_JITTER_RAD))
            if shape.group:
                group_jitter[shape.group] = jitter
        center = np.array(shape.center_mm) + jitter[0]
        semi = np.array(shape.semi_axes_mm) * jitter[1]
        angle = shape.angle_rad + jitter[2]
        x, y, z = center * scale
        center = (x * cos - y * sin + shift[0], x * sin + y * cos + shift[1], z)
        out.append(replace(shape, center_mm=tuple(float(c) for c in center),
                           semi_axes_mm=tuple(float(s) for s in semi * scale), angle_rad=float(angle + phi)))
    return out


class _Canvas:
    """A label volume ``(nz, ny, nx)`` (``nz = 1`` for a 2D grid) and its voxel centres in the anatomy frame."""

    def __init__(self, grid: ImageGrid, axial_position_mm: float) -> None:
        self.grid = grid
        self.labels = np.zeros(grid.shape3d, dtype=np.int16)
        x, y = grid.centers_mm(-1), grid.centers_mm(-2)
        z = (grid.centers_mm(0) if grid.ndim == 3 else np.zeros(1)) + axial_position_mm
        self.axes = (z, y, x)

    def _box(self, shape: Superquadric) -> Optional[tuple[slice, slice, slice]]:
        """Index slices of the voxels within the shape's bounding box, or None if it misses the grid."""
        r = shape.bounding_radius_xy_mm()
        cx, cy, cz = shape.center_mm
        slices = []
        for axis, centre, half in zip(self.axes, (cz, cy, cx), (shape.semi_axes_mm[2], r, r)):
            hit = np.flatnonzero(np.abs(axis - centre) <= half)
            if hit.size == 0:
                return None
            slices.append(slice(hit[0], hit[-1] + 1))
        return tuple(slices)  # type: ignore[return-value]

    def paint(self, shape: Superquadric, label: int, only: Optional[int] = None) -> int:
        """Set voxels inside ``shape`` (and, if given, of label ``only``) to ``label``; returns their number."""
        box = self._box(shape)
        if box is None:
            return 0
        z, y, x = (axis[s] for axis, s in zip(self.axes, box))
        mask = shape.inside(x[None, None, :], y[None, :, None], z[:, None, None])
        region = self.labels[box]
        if only is not None:
            mask &= region == only
        region[mask] = label
        return int(mask.sum())

    def centre_of(self, flat_index: int) -> tuple[float, float, float]:
        k, i, j = np.unravel_index(flat_index, self.labels.shape)
        z, y, x = self.axes
        return float(x[j]), float(y[i]), float(z[k])


def _add_lesions(canvas: _Canvas, anatomy: str, rng: np.random.Generator, n_lesions: int) -> list[Lesion]:
    hosts = LESION_HOSTS[anatomy]
    low, high = LESION_DIAMETER_MM[anatomy]
    lesions: list[Lesion] = []
    for _ in range(n_lesions):
        present = [name for name in hosts if np.any(canvas.labels == REGION_LABELS[name])]
        if not present:
            break
        odds = np.array([hosts[name] for name in present])
        host = present[rng.choice(len(present), p=odds / odds.sum())]
        voxels = np.flatnonzero(canvas.labels == REGION_LABELS[host])
        center = canvas.centre_of(int(voxels[rng.integers(voxels.size)]))
        diameter = float(rng.uniform(low, high))
        semi = tuple(float(s) for s in diameter / 2.0 * rng.uniform(0.8, 1.2, size=3))
        kind = "hot" if rng.random() < HOT_LESION_PROBABILITY else "cold"
        number = len(lesions) + 1
        label = LESION_LABEL_OFFSET + number
        shape = Superquadric(f"lesion_{kind}_{number}", center, semi, float(rng.uniform(0.0, math.pi)))
        n_voxels = canvas.paint(shape, label, only=REGION_LABELS[host])
        if n_voxels < MIN_LESION_VOXELS:
            canvas.labels[canvas.labels == label] = REGION_LABELS[host]
            continue
        lesions.append(Lesion(shape.region, label, kind, host, center, diameter, n_voxels))
    return lesions


def lesion_mu_per_mm(lesion: Lesion) -> float:
    """A lesion attenuates like its host, except in the lungs (a solid nodule: soft tissue)."""
    return MU_SOFT_TISSUE_PER_MM if lesion.host == "lungs" else MU_511KEV_PER_MM[lesion.host]


def make_phantom(anatomy: str, grid: ImageGrid, rng: np.random.Generator, *, n_lesions: tuple[int, int] = (0, 3),
                 axial_position_mm: Optional[float] = None) -> Phantom:
    """Draw a random phantom of ``anatomy`` on ``grid``.

    Parameters
    ----------
    anatomy : {"brain", "trunk"}
    grid : ImageGrid
        2D (an axial slice) or 3D (a volume around an axial position); see :func:`anatomy_grid`.
    rng : numpy.random.Generator
    n_lesions : (int, int)
        Inclusive range of the number of lesions tried (uniform); lesions that
        cover fewer than ``MIN_LESION_VOXELS`` voxels are dropped.
    axial_position_mm : float, optional
        Anatomy-frame ``z`` of the slice (2D) or of the grid's ``z = 0`` (3D);
        default uniform in :data:`SLICE_RANGE_MM` or :data:`BED_RANGE_MM`.
    """
    anatomy = check_anatomy(anatomy)
    if not isinstance(grid, ImageGrid):
        raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    low, high = n_lesions
    if not 0 <= low <= high or not all(isinstance(n, (int, np.integer)) for n in n_lesions):
        raise ValueError(f"n_lesions must be an inclusive integer range (low, high) with 0 <= low <= high, "
                         f"got {n_lesions!r}")
    if axial_position_mm is None:
        axial_position_mm = float(rng.uniform(*(SLICE_RANGE_MM if grid.ndim == 2 else BED_RANGE_MM)[anatomy]))
    canvas = _Canvas(grid, axial_position_mm)
    for shape in _jitter(ANATOMY_PRIMITIVES[anatomy](), anatomy, rng):
        canvas.paint(shape, REGION_LABELS[shape.region])
    lesions = _add_lesions(canvas, anatomy, rng, int(rng.integers(low, high + 1)))
    names = {shape.region: REGION_LABELS[shape.region] for shape in ANATOMY_PRIMITIVES[anatomy]()}
    names.update({lesion.name: lesion.label for lesion in lesions})
    mu = {**MU_511KEV_PER_MM, **{lesion.name: lesion_mu_per_mm(lesion) for lesion in lesions}}
    labels = canvas.labels.reshape(grid.shape)
    phantom = Phantom(grid, anatomy, labels, names, np.zeros(grid.shape, np.float32), tuple(lesions),
                      float(axial_position_mm))
    return replace(phantom, mu_map=phantom.region_image({name: mu[name] for name in names}))


def smooth_texture(grid: ImageGrid, rng: np.random.Generator, amplitude: float, correlation_mm: float = 10.0
                   ) -> np.ndarray:
    """A positive multiplicative texture ``1 + amplitude * g`` (float32, ``grid.shape``), mean about 1.

    ``g`` is white Gaussian noise smoothed by a Gaussian of standard deviation
    ``correlation_mm`` and scaled to unit standard deviation; the result is
    clipped at 0.1. ``amplitude = 0`` gives ones (no random draw).
    """
    if not math.isfinite(amplitude) or amplitude < 0:
        raise ValueError(f"texture amplitude must be finite and non-negative, got {amplitude!r}")
    if amplitude == 0:
        return np.ones(grid.shape, np.float32)
    noise = ndimage.gaussian_filter(rng.standard_normal(grid.shape),
                                    [correlation_mm / d for d in grid.voxel_size_mm], mode="wrap")
    noise /= max(float(noise.std()), np.finfo(np.float64).tiny)
    return np.maximum(1.0 + amplitude * noise, 0.1).astype(np.float32)
