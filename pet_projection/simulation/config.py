"""What defines a simulated dataset apart from the task, the seed and the number of samples.

:data:`TASKS` names the five tasks (:func:`check_task` accepts ``low-dose``
for ``low_dose``); :class:`SimulationConfig` holds the scanner size, body
region, counts, dose levels, tracers and frames, and reads and writes itself as a
plain dict (the dataset manifest's ``config``).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..config_dicts import dataclass_from_dict, dataclass_to_dict
from ..validation import check_non_negative, positive_int
from .acquisition import AcquisitionSettings, check_dose_reduction_factor, check_total_counts
from .anatomy import ANATOMIES, MIXED_ANATOMIES
from .image_phantom import MU_UNITS, ImagePhantomSource, cached_image_phantom, image_region
from .kinetics import check_frame
from .tracers import get_tracer

__all__ = ["ANATOMY_CHOICES", "DEFAULT_TOTAL_COUNTS", "DOSE_REDUCTION_FACTORS", "TASKS", "SimulationConfig",
           "check_task"]

TASKS = ("low_dose", "attenuation_correction", "delayed_frame", "tracer_separation", "tracer_conversion")
DOSE_REDUCTION_FACTORS = (4, 10, 20, 50, 100)
ANATOMY_CHOICES = ANATOMIES + ("mixed",)
# Full-dose expected prompts per sample when not given: about a clinical slice (2D) or bed position (3D).
DEFAULT_TOTAL_COUNTS = {2: 1e6, 3: 1e8}


def check_task(task: str) -> str:
    """The name in :data:`TASKS` of ``task``; hyphens stand for underscores (``"low-dose"`` is ``"low_dose"``)."""
    name = task.replace("-", "_") if isinstance(task, str) else task
    if name not in TASKS:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    return name


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines a simulated dataset apart from the task, the seed and the number of samples.

    Attributes
    ----------
    dim : int
        2 (axial slices, :class:`~pet_projection.ParallelBeamProjector`) or 3
        (volumes, :func:`~.acquisition.reduced_clinical_projector`).
    size : int
        Pixels across the transaxial field of view (256 mm brain; 500 mm trunk, chest and abdomen).
    n_views : int
        Parallel-beam views over 180 degrees (2D); bins = ``size`` of the pixel width.
    n_slices : int
        Slices of 3.29 mm (3D).
    view_step : int
        Keep every ``view_step``-th view of the clinical scanner (3D).
    span, max_ring_difference : int
        Michelogram of the clinical scanner (3D; default direct planes only).
    anatomy : {"brain", "trunk", "chest", "abdomen", "mixed"}
        The body region (:data:`~.anatomy.ANATOMIES`; ``allpet simulate
        --region``). ``"mixed"`` draws brain or trunk per sample
        (:data:`~.anatomy.MIXED_ANATOMIES`), or for an image phantom detects
        the image's region (:func:`~.image_segmentation.detect_region`).
    total_counts : float, optional
        Expected prompts of the full-dose / first / reference scan (default
        :data:`DEFAULT_TOTAL_COUNTS` by ``dim``).
    dose_reduction_factors : tuple of float
        ``low_dose`` draws one per sample; each ``>= 1``.
    tracer, second_tracer : str
        Tracers (see :data:`~.tracers.TRACERS`); the second is used by the
        dual-tracer and conversion tasks.
    first_frame_min, delayed_frame_min : (float, float)
        Frames of ``delayed_frame`` in min after injection.
    dual_frame_min : (float, float)
        Frame of ``tracer_separation`` (both tracers injected at time 0).
    second_tracer_activity_ratio : float
        Injected activity of the second tracer relative to the first (dual tracer).
    n_lesions : (int, int)
        Inclusive range of the number of lesions per sample.
    texture : float
        Amplitude of the smooth multiplicative activity texture (0 = none); one
        texture per sample, shared by all its frames and tracers.
    kinetic_variability : float
        Relative spread (log-normal) of every region's rate constants per sample;
        the uptake targets vary by half of it.
    acquisition : AcquisitionSettings
    activity_image, mu_map_image : str, optional
        An image phantom instead of the procedural ones: paths of an activity
        image (the first tracer's reference frame) and its mu-map (Interfile
        ``.hv``, NIfTI or ``.npz``), e.g. the STIR-exercises thorax; see
        :mod:`.image_phantom`. Any grid and field of view: the images are
        resampled onto the region's grid (``size`` pixels, in 3D ``n_slices``
        slices), ``n_lesions`` and ``texture`` are ignored (the image has its
        own), and ``anatomy`` says what it shows (``"mixed"``: detected).
    mu_map_unit : {"1/cm", "1/mm"}
        Unit of ``mu_map_image`` (default 1/cm, as STIR's and CT-derived maps).
    """

    dim: int = 2
    size: int = 128
    n_views: int = 128
    n_slices: int = 80
    view_step: int = 4
    span: int = 1
    max_ring_difference: int = 0
    anatomy: str = "mixed"
    total_counts: Optional[float] = None
    dose_reduction_factors: tuple[float, ...] = DOSE_REDUCTION_FACTORS
    tracer: str = "fdg"
    second_tracer: str = "met"
    first_frame_min: tuple[float, float] = (60.0, 70.0)
    delayed_frame_min: tuple[float, float] = (120.0, 130.0)
    dual_frame_min: tuple[float, float] = (20.0, 40.0)
    second_tracer_activity_ratio: float = 1.0
    n_lesions: tuple[int, int] = (0, 3)
    texture: float = 0.1
    kinetic_variability: float = 0.15
    acquisition: AcquisitionSettings = field(default_factory=AcquisitionSettings)
    activity_image: Optional[str] = None
    mu_map_image: Optional[str] = None
    mu_map_unit: str = "1/cm"

    def __post_init__(self) -> None:
        if self.dim not in (2, 3) or isinstance(self.dim, bool):
            raise ValueError(f"dim must be 2 or 3, got {self.dim!r}")
        for name in ("size", "n_views", "n_slices", "view_step", "span"):
            positive_int(name, getattr(self, name))
        positive_int("max_ring_difference", self.max_ring_difference, minimum=0)
        if self.size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {self.size}")
        if self.anatomy not in ANATOMY_CHOICES:
            raise ValueError(f"anatomy (body region) must be one of {ANATOMY_CHOICES}, got {self.anatomy!r}")
        if self.total_counts is not None:
            check_total_counts(self.total_counts)
        factors = tuple(self.dose_reduction_factors)
        if not factors:
            raise ValueError("dose_reduction_factors must not be empty")
        object.__setattr__(self, "dose_reduction_factors", tuple(check_dose_reduction_factor(f) for f in factors))
        get_tracer(self.tracer)
        get_tracer(self.second_tracer)
        for name in ("first_frame_min", "delayed_frame_min", "dual_frame_min"):
            object.__setattr__(self, name, check_frame(getattr(self, name), name))
        check_non_negative("second_tracer_activity_ratio", self.second_tracer_activity_ratio)
        low, high = self.n_lesions
        for n in (low, high):
            if isinstance(n, bool) or not isinstance(n, numbers.Integral):
                raise TypeError(f"n_lesions must be a pair of integers, got {self.n_lesions!r}")
        if not 0 <= low <= high:
            raise ValueError(f"n_lesions must satisfy 0 <= low <= high, got {self.n_lesions!r}")
        object.__setattr__(self, "n_lesions", (int(low), int(high)))
        check_non_negative("texture", self.texture)
        check_non_negative("kinetic_variability", self.kinetic_variability)
        if not isinstance(self.acquisition, AcquisitionSettings):
            raise TypeError(f"acquisition must be AcquisitionSettings, got {type(self.acquisition).__name__}")
        if (self.activity_image is None) != (self.mu_map_image is None):
            raise ValueError("an image phantom needs both activity_image and mu_map_image")
        if self.mu_map_unit not in MU_UNITS:
            raise ValueError(f"mu_map_unit must be one of {sorted(MU_UNITS)}, got {self.mu_map_unit!r}")
        for name in ("activity_image", "mu_map_image"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, str(value))

    @property
    def image_source(self) -> Optional[ImagePhantomSource]:
        """The image phantom (read once per process), or ``None`` for procedural phantoms."""
        if self.activity_image is None:
            return None
        return cached_image_phantom(self.activity_image, self.mu_map_image, self.mu_map_unit)

    @property
    def image_region(self) -> Optional[tuple[str, str]]:
        """The image phantom's body region and a sentence on where it came from (given or detected); ``None``
        for procedural phantoms."""
        source = self.image_source
        if source is None:
            return None
        if self.anatomy != "mixed":
            return self.anatomy, f"region {self.anatomy!r} given for the image"
        return image_region(source)

    @property
    def anatomies(self) -> tuple[str, ...]:
        """The body regions samples are drawn from (an image phantom's one region)."""
        if self.activity_image is not None:
            return (self.image_region[0],)
        return MIXED_ANATOMIES if self.anatomy == "mixed" else (self.anatomy,)

    @property
    def counts(self) -> float:
        """``total_counts`` or the default for ``dim``."""
        return DEFAULT_TOTAL_COUNTS[self.dim] if self.total_counts is None else float(self.total_counts)

    def draw_dose_reduction_factor(self, rng: np.random.Generator) -> float:
        """One of :attr:`dose_reduction_factors`, drawn uniformly (one integer draw of ``rng``)."""
        return float(self.dose_reduction_factors[int(rng.integers(len(self.dose_reduction_factors)))])

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists); :meth:`from_dict` inverts it."""
        return dataclass_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SimulationConfig":
        """The config of a dict of its fields (lists for tuples, ``acquisition`` as a dict; :meth:`to_dict`)."""
        return dataclass_from_dict(cls, data)
