"""Transparent medical attention (TMA): parameter-free lesion attention in image and sinogram space.

TMA (ALL-PET, Huang et al., arXiv 2509.09130) turns a coarse segmentation of
hyper- and hypometabolic regions, or an anatomical label map, into weights on
the sinogram rays that pass through those regions. Nothing is learned: every
number is a documented threshold or a clinician's weight.

The pipeline, one module per step:

1. :mod:`.segmentation`: :func:`segment_metabolic` thresholds an activity image
   against the mean activity of a reference region (a :class:`RegionTable`
   with the regions ``"hyper"`` and ``"hypo"``). Label maps from a simulator
   or an atlas are :class:`RegionTable` objects too (:mod:`.regions`).
2. :mod:`.regions`: :class:`AttentionRegions` holds named, possibly overlapping
   region masks and a weight in ``[0, 1]`` per region (by default 1 for
   lesions, 0 otherwise).
3. :mod:`.roi_edits`: :class:`RoiEditSpec` is a clinician's declarative list of
   :class:`RoiEdit` operations (``add``, ``remove``, ``scale``), with a JSON
   form that round-trips exactly. Regions can be drawn (:mod:`.shapes`) as
   :class:`Circle`, :class:`Ellipse`, :class:`Polygon` (in mm) or
   :class:`ArrayMask` (voxels).
4. :mod:`.tma`: :class:`TransparentMedicalAttention` maps the regions to an
   image attention and, with one projector call, to a sinogram attention,
   both in ``[0, 1]``.

Conventions: lengths in mm; images ``(..., [nz,] ny, nx)`` with voxel centres as
in :class:`~pet_projection.grid.ImageGrid`; masks and label maps live on that
grid and may carry leading batch axes.
"""

from .regions import HYPER, HYPO, LESION_PREFIX, AttentionRegions, RegionTable, default_weight
from .roi_edits import OPS, SPEC_VERSION, RoiEdit, RoiEditSpec
from .segmentation import DEFAULT_HYPER_RATIO, DEFAULT_HYPO_RATIO, segment_metabolic
from .shapes import ArrayMask, Circle, DrawnRegion, Ellipse, Polygon
from .tma import DEFAULT_MARGIN_MM, AttentionMaps, TransparentMedicalAttention

__all__ = [
    "DEFAULT_HYPER_RATIO",
    "DEFAULT_HYPO_RATIO",
    "DEFAULT_MARGIN_MM",
    "HYPER",
    "HYPO",
    "LESION_PREFIX",
    "OPS",
    "SPEC_VERSION",
    "ArrayMask",
    "AttentionMaps",
    "AttentionRegions",
    "Circle",
    "DrawnRegion",
    "Ellipse",
    "Polygon",
    "RegionTable",
    "RoiEdit",
    "RoiEditSpec",
    "TransparentMedicalAttention",
    "default_weight",
    "segment_metabolic",
]
