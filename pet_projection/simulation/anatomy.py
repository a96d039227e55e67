"""The body regions' anatomies: superquadric organs in an anatomy frame (mm) and their random variation.

An anatomy is a list of superquadrics (ellipsoids, rounded boxes, elliptic
cylinders) in an anatomy frame (mm): ``x`` left-right, ``y`` posterior (-) to
anterior (+), ``z`` inferior to superior (the scanner axis). They are painted
in list order (later ones overwrite earlier ones, or only the regions named in
``within``) by :mod:`.phantoms`.

Body regions (:data:`ANATOMIES`) and the anatomy family each one images:

``brain``
    The head: scalp, skull, CSF, the cortex split into frontal, parietal,
    temporal and occipital lobes, white matter, deep grey matter (the
    striatum), ventricles, cerebellum and brainstem.
``trunk``
    Neck to groin (``z = 0`` near the diaphragm): body outline with a neck,
    lungs, heart, aorta, liver, spleen, kidneys, spine, bladder, prostate,
    salivary glands (submandibular and parotid), bowel loops and lymph nodes
    of six stations (cervical, axillary, mediastinal, para-aortic, pelvic,
    inguinal).
``chest``, ``abdomen``
    Axial ranges of the trunk family, not families of their own: ``chest``
    takes slices from the neck down to the diaphragm, ``abdomen`` from the
    diaphragm down to the groin (:data:`SLICE_RANGE_MM`), so the trunk holds
    both and a sample's region says which part of it was imaged.

Random variation of one phantom, drawn in this order (:func:`draw_anatomy`):
the random organs (number, positions and sizes of bowel loops and lymph nodes;
:func:`random_organs`), then a global scale per axis, rotation about ``z``
and shift, and per organ a position, size, rotation and superellipse exponent
(:data:`VARIATION`, scaled by each shape's ``variability``) and the thickness
of the fat layer (``widen_xy``). Shapes of one ``group`` (nested shells)
share one jitter. The ranges are illustrative choices that keep the organs
inside the body; measurements of the variety: docs/results/simulation.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np

__all__ = ["ANATOMIES", "ANATOMY_FAMILY", "BED_RANGE_MM", "FIELD_OF_VIEW_MM", "LYMPH_NODE_STATIONS",
           "MIXED_ANATOMIES", "SLICE_RANGE_MM", "Superquadric", "VARIATION", "Variation", "anatomy_regions",
           "check_anatomy", "draw_anatomy", "random_organs"]

ANATOMIES = ("brain", "trunk", "chest", "abdomen")
# What "mixed" draws from (one per sample, equal odds): the two families, the trunk whole.
MIXED_ANATOMIES = ("brain", "trunk")
ANATOMY_FAMILY = {"brain": "brain", "trunk": "trunk", "chest": "trunk", "abdomen": "trunk"}
# Transaxial field of view (diameter, mm): a head fits in 256 mm, an adult trunk in 500 mm.
FIELD_OF_VIEW_MM = {"brain": 256.0, "trunk": 500.0, "chest": 500.0, "abdomen": 500.0}
# Range of the anatomy-frame z of a 2D slice, and of the centre of a 3D field of view (mm); inside the body for
# every random scale and jitter (the shortest trunk reaches from z = -463 to 472 mm).
SLICE_RANGE_MM = {"brain": (-45.0, 55.0), "trunk": (-440.0, 440.0), "chest": (-20.0, 440.0),
                  "abdomen": (-440.0, -20.0)}
BED_RANGE_MM = {"brain": (-10.0, 10.0), "trunk": (-300.0, 300.0), "chest": (60.0, 300.0),
                "abdomen": (-330.0, -100.0)}
LYMPH_NODE_STATIONS = ("cervical", "axillary", "mediastinal", "para_aortic", "pelvic", "inguinal")


@dataclass(frozen=True)
class Superquadric:
    """The solid ``|u/a|^p + |v/b|^p + |w/c|^q <= 1`` in the frame rotated by ``angle_rad`` about ``z``.

    ``(u, v, w)`` are the coordinates relative to ``center_mm`` ``(x, y, z)``
    rotated by ``-angle_rad``; ``p = exponent_xy``, ``q = exponent_z`` (2 and 2:
    an ellipsoid; a large ``q``: an elliptic cylinder with flat ends).

    Attributes
    ----------
    region : str
        The region it paints.
    group : str
        Shapes with the same non-empty group (nested shells such as scalp,
        skull and CSF) share one random jitter, so the shells stay concentric.
    within : tuple of str
        Paint only over voxels of these regions (empty: everywhere).
    variability : float
        Factor on the family's per-organ jitter (:class:`Variation`).
    widen_xy : (float, float)
        Range of an extra uniform scale of the ``x`` and ``y`` semi-axes
        (the fat layer's thickness), drawn per shape.
    """

    region: str
    center_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]
    angle_rad: float = 0.0
    exponent_xy: float = 2.0
    exponent_z: float = 2.0
    group: str = ""
    within: tuple[str, ...] = ()
    variability: float = 1.0
    widen_xy: tuple[float, float] = (1.0, 1.0)

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


@dataclass(frozen=True)
class Variation:
    """Random variation of one anatomy family (uniform in ``[-r, r]`` unless said otherwise).

    Attributes
    ----------
    scale : (float, float)
        Range of the global scale per axis ``(x, y, z)``.
    rotation_rad, shift_mm : float
        Global rotation about ``z`` and shift in ``x`` and ``y``.
    position_sd_mm : float
        Standard deviation (normal) of each organ's position per axis.
    size : float
        Relative change of each organ's semi-axes (factor in ``[1 - size, 1 + size]``).
    angle_rad : float
        Rotation of each organ about ``z``.
    exponent : float
        Each organ's ``exponent_xy`` is multiplied by ``exp(u)``, ``u`` in ``[-exponent, exponent]``.
    """

    scale: tuple[float, float]
    rotation_rad: float
    shift_mm: float
    position_sd_mm: float
    size: float
    angle_rad: float
    exponent: float


# Illustrative ranges: the head is held in a head rest (small rotations and shifts) and its organs vary little
# between adults; trunk organs vary more in size and place (breathing, filling, habitus).
VARIATION = {"brain": Variation((0.9, 1.1), 0.25, 8.0, 3.0, 0.12, 0.15, 0.0),
             "trunk": Variation((0.85, 1.12), 0.08, 15.0, 6.0, 0.2, 0.25, 0.15)}


def _mirrored(region: str, center: tuple[float, float, float], semi: tuple[float, float, float],
              angle: float = 0.0, **options) -> list[Superquadric]:
    """A left/right pair of shapes at ``(+-x, y, z)``, rotated by ``+-angle``."""
    x, y, z = center
    return [Superquadric(region, (x, y, z), semi, angle, **options),
            Superquadric(region, (-x, y, z), semi, -angle, **options)]


def brain_anatomy() -> list[Superquadric]:
    """The mean head (mm), painted in this order: scalp, skull, CSF, the cerebral cortex (as ``parietal_lobe``)
    and the frontal, occipital and temporal lobes cut out of it, white matter, deep grey matter (striatum),
    ventricles, cerebellum, brainstem. Sizes approximate an adult head (about 160 x 200 x 180 mm); the lobe
    borders follow the central sulcus (frontal), the parieto-occipital line (occipital) and the lateral fissure
    (temporal) roughly."""
    head = dict(group="head", variability=0.5)
    lobes = ("frontal_lobe", "parietal_lobe", "temporal_lobe", "occipital_lobe")
    cerebrum = lobes + ("white_matter", "deep_grey_matter")
    inside = dict(within=("csf",) + cerebrum)  # brain tissue stays inside the skull whatever the jitter
    return [
        Superquadric("scalp", (0.0, 0.0, 0.0), (78.0, 98.0, 88.0), **head),
        Superquadric("skull", (0.0, 0.0, 0.0), (73.0, 93.0, 83.0), **head),
        Superquadric("csf", (0.0, 0.0, 0.0), (67.0, 87.0, 77.0), **head),
        Superquadric("parietal_lobe", (0.0, 3.0, 12.0), (62.0, 80.0, 60.0), within=("csf",)),
        Superquadric("frontal_lobe", (0.0, 68.0, 18.0), (80.0, 70.0, 78.0), within=("parietal_lobe",)),
        Superquadric("occipital_lobe", (0.0, -90.0, 8.0), (75.0, 40.0, 55.0), within=("parietal_lobe",)),
        *_mirrored("temporal_lobe", (52.0, 8.0, -22.0), (30.0, 50.0, 26.0), within=("parietal_lobe", "frontal_lobe")),
        Superquadric("white_matter", (0.0, 3.0, 15.0), (49.0, 66.0, 45.0), within=lobes),
        *_mirrored("deep_grey_matter", (14.0, 0.0, 8.0), (9.0, 16.0, 10.0), 0.2, within=cerebrum),
        *_mirrored("ventricles", (7.0, 8.0, 20.0), (5.0, 26.0, 9.0), -0.15, variability=2.0, within=cerebrum),
        Superquadric("cerebellum", (0.0, -46.0, -38.0), (46.0, 26.0, 21.0), **inside),
        Superquadric("brainstem", (0.0, -18.0, -40.0), (13.0, 15.0, 32.0), **inside),
    ]


def trunk_anatomy() -> list[Superquadric]:
    """The mean trunk (mm; ``z = 0`` near the diaphragm), painted in this order: neck and torso outlines (fat,
    then soft tissue), cervical spine, lungs, heart wall and blood pool, descending aorta, liver, spleen, kidneys,
    spine, bladder, prostate, submandibular and parotid glands. The torso is about 330 x 210 mm across and
    reaches from z = -580 to 300 mm, the neck about 125 x 115 mm up to z = 570 mm (it starts inside the torso, at
    z = 200 mm, so that no jitter opens a gap between them)."""
    torso = dict(exponent_xy=2.6, exponent_z=20.0, group="torso", variability=0.4)
    neck = dict(exponent_xy=2.2, exponent_z=20.0, group="neck", variability=0.4)
    body = ("soft_tissue", "fat")
    return [
        Superquadric("fat", (0.0, 5.0, 385.0), (62.0, 58.0, 185.0), widen_xy=(0.97, 1.2), **neck),
        Superquadric("fat", (0.0, 0.0, -140.0), (165.0, 105.0, 440.0), widen_xy=(0.97, 1.25), **torso),
        Superquadric("soft_tissue", (0.0, 0.0, -140.0), (150.0, 92.0, 435.0), **torso),
        Superquadric("soft_tissue", (0.0, 5.0, 385.0), (55.0, 51.0, 183.0), **neck),
        Superquadric("spine", (0.0, -22.0, 430.0), (12.0, 12.0, 138.0), exponent_z=20.0, group="neck",
                     variability=0.4),
        *_mirrored("lungs", (80.0, 5.0, 110.0), (58.0, 72.0, 140.0)),
        Superquadric("heart_wall", (20.0, 35.0, 40.0), (52.0, 45.0, 55.0), 0.5, group="heart"),
        Superquadric("blood_pool", (20.0, 35.0, 40.0), (38.0, 32.0, 40.0), 0.5, group="heart"),
        Superquadric("blood_pool", (22.0, -45.0, -100.0), (12.0, 12.0, 250.0), exponent_z=20.0, variability=0.5),
        Superquadric("liver", (-65.0, 10.0, -40.0), (95.0, 80.0, 75.0), 0.3),
        Superquadric("spleen", (90.0, -30.0, -30.0), (32.0, 48.0, 55.0), -0.4),
        *_mirrored("kidneys", (72.0, -45.0, -130.0), (30.0, 24.0, 55.0), 0.35),
        Superquadric("spine", (0.0, -72.0, -140.0), (20.0, 18.0, 440.0), exponent_z=20.0, variability=0.4),
        Superquadric("bladder", (0.0, 35.0, -380.0), (45.0, 35.0, 35.0)),
        Superquadric("prostate", (0.0, 25.0, -432.0), (18.0, 14.0, 16.0), within=body),
        *_mirrored("salivary_glands", (32.0, 38.0, 425.0), (14.0, 11.0, 11.0), within=body),
        *_mirrored("salivary_glands", (40.0, 0.0, 500.0), (12.0, 18.0, 26.0), within=body),
    ]


ANATOMY_PRIMITIVES = {"brain": brain_anatomy, "trunk": trunk_anatomy}

# Bowel loops: how many (inclusive), the box of their centres (x, y, z ranges, mm) and semi-axis ranges (mm).
BOWEL_LOOPS = (4, 9)
BOWEL_BOX_MM = ((-100.0, 100.0), (-15.0, 65.0), (-330.0, -120.0))
BOWEL_SEMI_AXES_MM = ((12.0, 24.0), (12.0, 24.0), (15.0, 40.0))
# Lymph nodes: per station the boxes of their centres (x, y, z ranges in mm; one per side), 2 to 4 nodes per box,
# semi-axes of 4 to 7 mm (normal nodes are under about 10 mm in short axis). Cervical: beside the neck's vessels;
# axillary: between lung apex and body wall; mediastinal: above the heart between the lungs; para-aortic: either
# side of the aorta (x = 22 mm); pelvic: beside the bladder (iliac vessels); inguinal: the groins.
LYMPH_NODE_BOXES_MM = {
    "cervical": (((-42.0, -22.0), (-5.0, 25.0), (330.0, 440.0)), ((22.0, 42.0), (-5.0, 25.0), (330.0, 440.0))),
    "axillary": (((-138.0, -118.0), (-25.0, 25.0), (190.0, 260.0)), ((118.0, 138.0), (-25.0, 25.0), (190.0, 260.0))),
    "mediastinal": (((-14.0, 14.0), (-5.0, 35.0), (100.0, 200.0)),),
    "para_aortic": (((0.0, 8.0), (-52.0, -28.0), (-250.0, -80.0)), ((36.0, 46.0), (-52.0, -28.0), (-250.0, -80.0))),
    "pelvic": (((-70.0, -48.0), (-20.0, 20.0), (-380.0, -300.0)), ((48.0, 70.0), (-20.0, 20.0), (-380.0, -300.0))),
    "inguinal": (((-95.0, -70.0), (30.0, 60.0), (-430.0, -390.0)), ((70.0, 95.0), (30.0, 60.0), (-430.0, -390.0))),
}
NODES_PER_BOX = (2, 4)
NODE_SEMI_AXIS_MM = (4.0, 7.0)


def check_anatomy(anatomy: str) -> str:
    """``anatomy`` if it is one of :data:`ANATOMIES`; ``ValueError`` naming them otherwise."""
    if not isinstance(anatomy, str) or anatomy not in ANATOMIES:
        raise ValueError(f"anatomy (body region) must be one of {ANATOMIES}, got {anatomy!r}")
    return anatomy


def _uniform(rng: np.random.Generator, ranges: Sequence[tuple[float, float]]) -> tuple[float, ...]:
    return tuple(float(rng.uniform(low, high)) for low, high in ranges)


def random_organs(family: str, rng: np.random.Generator) -> list[Superquadric]:
    """The organs whose number varies (mean anatomy frame): bowel loops, then the lymph nodes station by station.

    The brain family has none (no draws). Bowel loops are painted only over
    soft tissue, lymph nodes over soft tissue or fat (so neither overwrites an organ).
    """
    if family == "brain":
        return []
    shapes = []
    for _ in range(int(rng.integers(BOWEL_LOOPS[0], BOWEL_LOOPS[1] + 1))):
        shapes.append(Superquadric("bowel", _uniform(rng, BOWEL_BOX_MM), _uniform(rng, BOWEL_SEMI_AXES_MM),
                                   float(rng.uniform(0.0, math.pi)), within=("soft_tissue",)))
    for station in LYMPH_NODE_STATIONS:
        for box in LYMPH_NODE_BOXES_MM[station]:
            for _ in range(int(rng.integers(NODES_PER_BOX[0], NODES_PER_BOX[1] + 1))):
                semi = _uniform(rng, [NODE_SEMI_AXIS_MM] * 3)
                shapes.append(Superquadric(f"lymph_nodes_{station}", _uniform(rng, box), semi,
                                           float(rng.uniform(0.0, math.pi)), within=("soft_tissue", "fat")))
    return shapes


def anatomy_regions(anatomy: str) -> tuple[str, ...]:
    """Every region name a phantom of ``anatomy`` can hold (its family's), in painting order."""
    family = ANATOMY_FAMILY[check_anatomy(anatomy)]
    names = [shape.region for shape in ANATOMY_PRIMITIVES[family]()]
    if family == "trunk":
        names += ["bowel"] + [f"lymph_nodes_{station}" for station in LYMPH_NODE_STATIONS]
    return tuple(dict.fromkeys(names))


def _jitter(shapes: Sequence[Superquadric], variation: Variation, rng: np.random.Generator) -> list[Superquadric]:
    low, high = variation.scale
    scale = rng.uniform(low, high, size=3)
    phi = rng.uniform(-variation.rotation_rad, variation.rotation_rad)
    shift = rng.uniform(-variation.shift_mm, variation.shift_mm, size=2)
    cos, sin = math.cos(phi), math.sin(phi)
    out = []
    group_jitter: dict[str, tuple] = {}
    for shape in shapes:
        jitter: Optional[tuple] = group_jitter.get(shape.group) if shape.group else None
        if jitter is None:
            v = shape.variability
            jitter = (rng.normal(0.0, variation.position_sd_mm * v, size=3),
                      rng.uniform(1.0 - variation.size * v, 1.0 + variation.size * v, size=3),
                      rng.uniform(-variation.angle_rad * v, variation.angle_rad * v),
                      math.exp(rng.uniform(-variation.exponent * v, variation.exponent * v)))
            if shape.group:
                group_jitter[shape.group] = jitter
        widen = rng.uniform(*shape.widen_xy) if shape.widen_xy != (1.0, 1.0) else 1.0
        center = np.array(shape.center_mm) + jitter[0]
        semi = np.array(shape.semi_axes_mm) * jitter[1] * np.array([widen, widen, 1.0])
        x, y, z = center * scale
        center = (x * cos - y * sin + shift[0], x * sin + y * cos + shift[1], z)
        out.append(replace(shape, center_mm=tuple(float(c) for c in center),
                           semi_axes_mm=tuple(float(s) for s in semi * scale),
                           angle_rad=float(shape.angle_rad + jitter[2] + phi),
                           exponent_xy=float(shape.exponent_xy * jitter[3])))
    return out


def draw_anatomy(anatomy: str, rng: np.random.Generator) -> list[Superquadric]:
    """One random anatomy of ``anatomy``'s family (module notes): the shapes to paint, in order."""
    family = ANATOMY_FAMILY[check_anatomy(anatomy)]
    shapes = ANATOMY_PRIMITIVES[family]() + random_organs(family, rng)
    return _jitter(shapes, VARIATION[family], rng)
