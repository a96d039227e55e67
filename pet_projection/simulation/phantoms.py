"""Procedural, randomised phantoms of the body regions: label maps, lesions and 511 keV mu-maps, 2D or 3D.

Each phantom draws a random anatomy of its region (:mod:`.anatomy`: organ
shapes, their number, sizes, positions and orientations) and paints it into
an integer label map on an :class:`~pet_projection.ImageGrid`. A 3D grid
samples the anatomy around an axial position (the bed position); a 2D grid
is the axial slice at one ``z`` (both drawn at random within the region's
range unless given). Random hot and cold lesions are then painted inside
host organs (only over the host's voxels), and lymph nodes become hot
(metastatic) nodes with a probability the caller gives (the tracer's).

Label values are fixed (:data:`REGION_LABELS`); lesion ``k`` (1, 2, ...) has
label ``LESION_LABEL_OFFSET + k`` and the name ``"lesion_hot_k"`` or
``"lesion_cold_k"``, so ``RegionTable(phantom.labels, phantom.names)`` gives
TMA the organs and every lesion (names starting with ``"lesion"`` get
attention weight 1 by default). Label 0 is air. The names of a phantom are
every region its family can hold (:func:`~.anatomy.anatomy_regions`; some
may be absent from a slice) and its lesions: the ROI menu of the sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping, Optional, Sequence

import numpy as np
from scipy import ndimage

from ..attention import RegionTable
from ..grid import ImageGrid
from ..validation import check_real
from .anatomy import (ANATOMY_FAMILY, BED_RANGE_MM, FIELD_OF_VIEW_MM, SLICE_RANGE_MM, Superquadric,
                      anatomy_regions, check_anatomy, draw_anatomy)

REGION_LABELS: dict[str, int] = {
    # brain; "grey_matter" is the cortex of image phantoms (not split into lobes)
    "scalp": 1, "skull": 2, "csf": 3, "grey_matter": 4, "white_matter": 5, "deep_grey_matter": 6,
    "ventricles": 7, "cerebellum": 8, "brainstem": 9,
    "frontal_lobe": 10, "parietal_lobe": 11, "temporal_lobe": 12, "occipital_lobe": 13,
    # trunk
    "fat": 20, "soft_tissue": 21, "lungs": 22, "heart_wall": 23, "blood_pool": 24, "liver": 25, "spleen": 26,
    "kidneys": 27, "spine": 28, "bladder": 29, "bowel": 30, "salivary_glands": 31, "prostate": 32,
    "lymph_nodes_cervical": 40, "lymph_nodes_axillary": 41, "lymph_nodes_mediastinal": 42,
    "lymph_nodes_para_aortic": 43, "lymph_nodes_pelvic": 44, "lymph_nodes_inguinal": 45,
}
LESION_LABEL_OFFSET = 100
LESION_KINDS = ("hot", "cold")
LYMPH_NODE_PREFIX = "lymph_nodes_"

# Linear attenuation coefficients at 511 keV in 1/mm: mass attenuation coefficients of NIST XCOM
# (Berger et al.; water 0.0960 cm^2/g) times ICRU Report 46 densities, rounded. Water and soft
# tissues 0.096 /cm, adipose tissue (0.95 g/cm^3) about 0.092 /cm, inflated lung (about 0.3 g/cm^3)
# about 0.03 /cm, skull (cortical bone with diploe) about 0.15 /cm, vertebrae (mostly trabecular
# bone, about 1.3 g/cm^3) about 0.13 /cm; the values used for PET attenuation maps by e.g.
# Kinahan et al., Med Phys 25:2046, 1998 (water 0.096 /cm, cortical bone 0.172 /cm).
MU_SOFT_TISSUE_PER_MM = 0.0096
MU_511KEV_PER_MM: dict[str, float] = {
    **{name: MU_SOFT_TISSUE_PER_MM for name in REGION_LABELS},
    "skull": 0.0150, "fat": 0.0092, "lungs": 0.0030, "spine": 0.0130,
}

# Lesion host organs (per anatomy family) and their relative odds; lesion diameters (mm).
LESION_HOSTS = {"brain": {"frontal_lobe": 1.0, "parietal_lobe": 1.0, "temporal_lobe": 1.0, "occipital_lobe": 0.5,
                          "white_matter": 2.0, "deep_grey_matter": 1.0, "cerebellum": 1.0, "brainstem": 0.5},
                "trunk": {"liver": 3.0, "lungs": 3.0, "spleen": 1.0, "soft_tissue": 2.0, "spine": 1.0,
                          "prostate": 0.5}}
LESION_DIAMETER_MM = {"brain": (6.0, 30.0), "trunk": (8.0, 40.0)}
HOT_LESION_PROBABILITY = 0.7
# Lesions painted over fewer voxels than this are dropped (invisible in the slice or volume).
MIN_LESION_VOXELS = 3


@dataclass(frozen=True)
class Lesion:
    """A lesion painted into a phantom (anatomy frame, mm); a hot lymph node has its station as ``host``."""

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
        The body region imaged, one of :data:`~.anatomy.ANATOMIES` (also :attr:`region`).
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

    @property
    def region(self) -> str:
        """The body region imaged (the same as :attr:`anatomy`)."""
        return self.anatomy

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
    """The image grid of a body region: ``size`` x ``size`` pixels over :data:`~.anatomy.FIELD_OF_VIEW_MM`.

    2D without ``n_slices``; else 3D with ``n_slices`` slices of ``slice_mm``
    (default 3.29 mm, the ring pitch of
    :meth:`~pet_projection.RingScannerGeometry.clinical_whole_body`).
    """
    anatomy = check_anatomy(anatomy)
    pixel = FIELD_OF_VIEW_MM[anatomy] / size
    if n_slices is None:
        return ImageGrid((size, size), pixel)
    return ImageGrid((n_slices, size, size), (slice_mm, pixel, pixel))


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

    def paint(self, shape: Superquadric, label: int, only: Sequence[int] = ()) -> int:
        """Set voxels inside ``shape`` (and, if given, of the labels ``only``) to ``label``; returns their number."""
        box = self._box(shape)
        if box is None:
            return 0
        z, y, x = (axis[s] for axis, s in zip(self.axes, box))
        mask = shape.inside(x[None, None, :], y[None, :, None], z[:, None, None])
        region = self.labels[box]
        if len(only):
            mask &= np.isin(region, only)
        region[mask] = label
        return int(mask.sum())

    def centre_of(self, flat_index: int) -> tuple[float, float, float]:
        k, i, j = np.unravel_index(flat_index, self.labels.shape)
        z, y, x = self.axes
        return float(x[j]), float(y[i]), float(z[k])


def _add_lesions(canvas: _Canvas, family: str, rng: np.random.Generator, n_lesions: int) -> list[Lesion]:
    hosts = LESION_HOSTS[family]
    low, high = LESION_DIAMETER_MM[family]
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
        n_voxels = canvas.paint(shape, label, only=(REGION_LABELS[host],))
        if n_voxels < MIN_LESION_VOXELS:
            canvas.labels[canvas.labels == label] = REGION_LABELS[host]
            continue
        lesions.append(Lesion(shape.region, label, kind, host, center, diameter, n_voxels))
    return lesions


def _add_hot_nodes(canvas: _Canvas, nodes: Sequence[Superquadric], rng: np.random.Generator, probability: float,
                   lesions: list[Lesion]) -> None:
    """Turn each lymph node into a hot lesion with ``probability`` (one draw per node, only if it is > 0).

    A node in view becomes a lesion however few voxels it covers (it is the whole node).
    """
    if probability == 0.0:
        return
    for node in nodes:
        if rng.random() >= probability:
            continue
        number = len(lesions) + 1
        label = LESION_LABEL_OFFSET + number
        host = REGION_LABELS[node.region]
        n_voxels = canvas.paint(node, label, only=(host,))
        if n_voxels == 0:
            continue
        diameter = 2.0 * float(np.mean(node.semi_axes_mm))
        lesions.append(Lesion(f"lesion_hot_{number}", label, "hot", node.region, node.center_mm, diameter, n_voxels))


def lesion_mu_per_mm(lesion: Lesion) -> float:
    """A lesion attenuates like its host, except in the lungs (a solid nodule: soft tissue)."""
    return MU_SOFT_TISSUE_PER_MM if lesion.host == "lungs" else MU_511KEV_PER_MM[lesion.host]


def make_phantom(anatomy: str, grid: ImageGrid, rng: np.random.Generator, *, n_lesions: tuple[int, int] = (0, 3),
                 axial_position_mm: Optional[float] = None, hot_node_probability: float = 0.0) -> Phantom:
    """Draw a random phantom of the body region ``anatomy`` on ``grid``.

    Parameters
    ----------
    anatomy : {"brain", "trunk", "chest", "abdomen"}
        The body region (:mod:`.anatomy`).
    grid : ImageGrid
        2D (an axial slice) or 3D (a volume around an axial position); see :func:`anatomy_grid`.
    rng : numpy.random.Generator
        Draws, in this order: the axial position (if not given), the anatomy
        (:func:`~.anatomy.draw_anatomy`), the number of lesions and each
        lesion, then one draw per lymph node (if ``hot_node_probability > 0``).
    n_lesions : (int, int)
        Inclusive range of the number of lesions tried (uniform); lesions that
        cover fewer than ``MIN_LESION_VOXELS`` voxels are dropped.
    axial_position_mm : float, optional
        Anatomy-frame ``z`` of the slice (2D) or of the grid's ``z = 0`` (3D);
        default uniform in :data:`~.anatomy.SLICE_RANGE_MM` or :data:`~.anatomy.BED_RANGE_MM`.
    hot_node_probability : float in [0, 1]
        Probability that a lymph node is a hot (metastatic) node, a lesion
        ``lesion_hot_k`` whose host is its station.
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
    hot_node_probability = check_real("hot_node_probability", hot_node_probability, 0.0, 1.0)
    if axial_position_mm is None:
        axial_position_mm = float(rng.uniform(*(SLICE_RANGE_MM if grid.ndim == 2 else BED_RANGE_MM)[anatomy]))
    canvas = _Canvas(grid, axial_position_mm)
    shapes = draw_anatomy(anatomy, rng)
    for shape in shapes:
        canvas.paint(shape, REGION_LABELS[shape.region], [REGION_LABELS[name] for name in shape.within])
    family = ANATOMY_FAMILY[anatomy]
    lesions = _add_lesions(canvas, family, rng, int(rng.integers(low, high + 1)))
    nodes = [shape for shape in shapes if shape.region.startswith(LYMPH_NODE_PREFIX)]
    _add_hot_nodes(canvas, nodes, rng, hot_node_probability, lesions)
    names = {name: REGION_LABELS[name] for name in anatomy_regions(anatomy)}
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
