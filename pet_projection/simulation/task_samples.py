"""Task data: (input, target) sinogram pairs with image ground truth, labels and metadata, one sample at a time.

Tasks (:data:`TASKS`):

``low_dose``
    input: binomial thinning of the full-dose prompts by a dose reduction
    factor drawn from ``config.dose_reduction_factors``; target: the full-dose prompts.
``attenuation_correction``
    input: prompts with attenuation (and normalisation, scatter, randoms);
    target: the attenuation-corrected sinogram, the noise-free expectation
    ``P R (c x)`` of the fully corrected data ``(y - b) / (a n)``.
``delayed_frame``
    input: prompts of the first frame (default 60-70 min after injection);
    target: prompts of the delayed frame (default 120-130 min), from the
    two-tissue kinetics and the physical decay with one count scale (the
    delayed frame has fewer counts).
``tracer_separation``
    input: a dual-tracer frame, the sum of the two single-tracer prompt
    sinograms (projection is linear and a sum of independent Poisson counts
    is Poisson); target: the two single-tracer sinograms, shape ``(2, ...)``.
``tracer_conversion``
    input: the first tracer's static scan; target: the second tracer's
    static scan of the same patient (each in its reference frame, each with
    the requested total counts).

Images (``input_image``, ``target_image``) are in expected-count units: with
``system = PETSystemModel(projector, attenuation=attenuation,
normalisation=normalisation, resolution=GaussianResolution(grid, fwhm_mm))``
the expected prompts are ``system.expected(image) + background``; the
metadata hold ``count_scale`` to convert back to SUV-like units times min.
For ``attenuation_correction`` the target is ``projector(resolution(target_image))``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from typing import Any, Callable, Optional, Union

import numpy as np

from ..attention import RegionTable
from ..validation import positive_int
from .acquisition import (Acquisition, AcquisitionSettings, Projector, check_dose_reduction_factor,
                          check_total_counts, describe_projector, parallel_beam_projector, poisson_counts,
                          projector_grid, reduced_clinical_projector, thin_counts)
from .kinetics import check_frame
from ..grid import ImageGrid
from .image_phantom import MU_UNITS, ImagePhantomSource, cached_image_phantom, image_phantom, phantom_grid
from .phantoms import ANATOMIES, Phantom, anatomy_grid, make_phantom, smooth_texture
from .tracers import RegionKinetics, Tracer, get_tracer

TASKS = ("low_dose", "attenuation_correction", "delayed_frame", "tracer_separation", "tracer_conversion")
DOSE_REDUCTION_FACTORS = (4, 10, 20, 50, 100)
ANATOMY_CHOICES = ANATOMIES + ("mixed",)
# Full-dose expected prompts per sample when not given: about a clinical slice (2D) or bed position (3D).
DEFAULT_TOTAL_COUNTS = {2: 1e6, 3: 1e8}

SeedLike = Union[int, np.random.SeedSequence, np.random.Generator]


def check_task(task: str) -> str:
    """The name in :data:`TASKS` of ``task``; hyphens stand for underscores (``"low-dose"`` is ``"low_dose"``)."""
    name = task.replace("-", "_") if isinstance(task, str) else task
    if name not in TASKS:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    return name


def _non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines a simulated dataset apart from the task, the seed and the number of samples.

    Attributes
    ----------
    dim : int
        2 (axial slices, :class:`~pet_projection.ParallelBeamProjector`) or 3
        (volumes, :func:`~.acquisition.reduced_clinical_projector`).
    size : int
        Pixels across the transaxial field of view (256 mm brain, 500 mm trunk).
    n_views : int
        Parallel-beam views over 180 degrees (2D); bins = ``size`` of the pixel width.
    n_slices : int
        Slices of 3.29 mm (3D).
    view_step : int
        Keep every ``view_step``-th view of the clinical scanner (3D).
    span, max_ring_difference : int
        Michelogram of the clinical scanner (3D; default direct planes only).
    anatomy : {"brain", "trunk", "mixed"}
        ``"mixed"`` draws one per sample.
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
        :mod:`.image_phantom`. ``size`` pixels span the images' extent, 3D
        keeps their slices (``n_slices`` is ignored), ``n_lesions`` and
        ``texture`` are ignored (the image has its own), and ``anatomy``
        says what it shows (``"mixed"`` means ``"trunk"``).
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
    dose_reduction_factors: tuple = DOSE_REDUCTION_FACTORS
    tracer: str = "fdg"
    second_tracer: str = "met"
    first_frame_min: tuple = (60.0, 70.0)
    delayed_frame_min: tuple = (120.0, 130.0)
    dual_frame_min: tuple = (20.0, 40.0)
    second_tracer_activity_ratio: float = 1.0
    n_lesions: tuple = (0, 3)
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
            raise ValueError(f"anatomy must be one of {ANATOMY_CHOICES}, got {self.anatomy!r}")
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
        _non_negative("second_tracer_activity_ratio", self.second_tracer_activity_ratio)
        low, high = self.n_lesions
        for n in (low, high):
            if isinstance(n, bool) or not isinstance(n, numbers.Integral):
                raise TypeError(f"n_lesions must be a pair of integers, got {self.n_lesions!r}")
        if not 0 <= low <= high:
            raise ValueError(f"n_lesions must satisfy 0 <= low <= high, got {self.n_lesions!r}")
        object.__setattr__(self, "n_lesions", (int(low), int(high)))
        _non_negative("texture", self.texture)
        _non_negative("kinetic_variability", self.kinetic_variability)
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
    def anatomies(self) -> tuple[str, ...]:
        """The anatomies samples are drawn from."""
        if self.anatomy != "mixed":
            return (self.anatomy,)
        return ("trunk",) if self.activity_image is not None else ANATOMIES

    @property
    def counts(self) -> float:
        """``total_counts`` or the default for ``dim``."""
        return DEFAULT_TOTAL_COUNTS[self.dim] if self.total_counts is None else float(self.total_counts)

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists); :meth:`from_dict` inverts it."""
        out = asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in out.items()}

    @classmethod
    def from_dict(cls, data: dict) -> "SimulationConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown SimulationConfig fields {unknown}")
        values = dict(data)
        if isinstance(values.get("acquisition"), dict):
            values["acquisition"] = AcquisitionSettings(**values["acquisition"])
        for key in ("dose_reduction_factors", "first_frame_min", "delayed_frame_min", "dual_frame_min", "n_lesions"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass(frozen=True, eq=False)
class TaskSample:
    """One simulated sample of a task.

    Attributes
    ----------
    task : str
    input : ndarray, float32, sinogram shape
        Measured prompts of the input acquisition (counts).
    target : ndarray, float32, sinogram shape, or ``(2, *sinogram shape)`` for ``tracer_separation``
    input_image, target_image : ndarray, float32, image shape (``(2, ...)`` for the separated tracers)
        Ground-truth activity in expected-count units (see the module notes).
    mu_map : ndarray, float32, image shape
        Attenuation map at 511 keV (1/mm).
    labels : ndarray, int16, image shape
        Region labels; ``names`` maps region names to them.
    attenuation, normalisation : ndarray, float32, sinogram shape
        ``a = exp(-P mu)`` and ``n`` of the system model.
    input_background, target_background : ndarray, float32
        Expected scatter + randoms of the input and target acquisitions
        (zeros for the corrected ``attenuation_correction`` target).
    names : dict of str to int
    metadata : dict
        JSON-ready: task, anatomy, tracers, frames, dose factor, count scales,
        lesions, projector description, acquisition settings.
    """

    task: str
    input: np.ndarray
    target: np.ndarray
    input_image: np.ndarray
    target_image: np.ndarray
    mu_map: np.ndarray
    labels: np.ndarray
    attenuation: np.ndarray
    normalisation: np.ndarray
    input_background: np.ndarray
    target_background: np.ndarray
    names: dict
    metadata: dict

    ARRAY_KEYS = ("input", "target", "input_image", "target_image", "mu_map", "labels", "attenuation",
                  "normalisation", "input_background", "target_background")

    def arrays(self) -> dict[str, np.ndarray]:
        """The array fields by name."""
        return {key: getattr(self, key) for key in self.ARRAY_KEYS}

    def region_table(self) -> RegionTable:
        """Labels and names as a :class:`~pet_projection.RegionTable` (for TMA)."""
        return RegionTable(self.labels, self.names)


# --- building blocks -----------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _projector(dim: int, anatomy: str, size: int, n_views: int, n_slices: int, view_step: int, span: int,
               max_ring_difference: int) -> Projector:
    grid = anatomy_grid(anatomy, size, n_slices if dim == 3 else None)
    if dim == 2:
        return parallel_beam_projector(grid, n_views)
    return reduced_clinical_projector(grid, view_step, span, max_ring_difference)


@lru_cache(maxsize=4)
def _grid_projector(grid: ImageGrid, n_views: int, view_step: int, span: int, max_ring_difference: int) -> Projector:
    if grid.ndim == 2:
        return parallel_beam_projector(grid, n_views)
    return reduced_clinical_projector(grid, view_step, span, max_ring_difference)


def projector_for(config: SimulationConfig, anatomy: str) -> Projector:
    """The (cached) projector of ``config`` for ``anatomy`` (or for its image phantom)."""
    source = config.image_source
    if source is not None:
        return _grid_projector(phantom_grid(source, config.size, config.dim), config.n_views, config.view_step,
                               config.span, config.max_ring_difference)
    return _projector(config.dim, anatomy, config.size, config.n_views, config.n_slices, config.view_step,
                      config.span, config.max_ring_difference)


@dataclass(frozen=True, eq=False)
class _Patient:
    phantom: Phantom
    acquisition: Acquisition
    texture: np.ndarray


def _patient(config: SimulationConfig, rng: np.random.Generator) -> _Patient:
    if config.image_source is not None:
        return _image_patient(config, rng)
    anatomy = config.anatomy if config.anatomy != "mixed" else ANATOMIES[int(rng.integers(len(ANATOMIES)))]
    projector = projector_for(config, anatomy)
    phantom = make_phantom(anatomy, projector_grid(projector), rng, n_lesions=config.n_lesions)
    acquisition = Acquisition(projector, phantom.mu_map, config.acquisition, rng)
    return _Patient(phantom, acquisition, smooth_texture(phantom.grid, rng, config.texture))


def _image_patient(config: SimulationConfig, rng: np.random.Generator) -> _Patient:
    """A patient from the image phantom: the first tracer's uptake table turns the activity into a texture."""
    anatomy = config.anatomies[0]
    projector = projector_for(config, anatomy)
    tracer = get_tracer(config.tracer)
    uptake = {name: tracer.uptake[name].suv for name in ("soft_tissue", "lungs", "spine")}
    phantom, texture = image_phantom(config.image_source, projector_grid(projector), rng, anatomy, uptake,
                                     float(np.mean(tracer.hot_contrast)))
    return _Patient(phantom, Acquisition(projector, phantom.mu_map, config.acquisition, rng), texture)


def region_kinetics(phantom: Phantom, tracer: Tracer, rng: np.random.Generator, variability: float
                    ) -> dict[str, RegionKinetics]:
    """Per-sample kinetics of every region and lesion of ``phantom`` for ``tracer``.

    Organ values are the tracer's table with log-normal jitter (rate
    constants: relative spread ``variability``; uptake: half of it). A hot
    lesion takes the tracer's lesion template and ``contrast`` times its
    host's uptake (contrast uniform in ``tracer.hot_contrast``); a cold lesion
    keeps its host's template with a contrast in ``tracer.cold_contrast``.
    """
    out: dict[str, RegionKinetics] = {}
    lesion_names = {lesion.name for lesion in phantom.lesions}
    for name in phantom.names:
        if name in lesion_names:
            continue
        base = tracer.uptake[name]
        out[name] = base.scaled(float(rng.lognormal(0.0, variability / 2.0)),
                                tuple(rng.lognormal(0.0, variability, size=3)))
    for lesion in phantom.lesions:
        host = out[lesion.host]
        if lesion.kind == "hot":
            contrast = rng.uniform(*tracer.hot_contrast)
            out[lesion.name] = RegionKinetics(host.suv * contrast, *tracer.hot_lesion)
        else:
            contrast = rng.uniform(*tracer.cold_contrast)
            out[lesion.name] = replace(host, suv=host.suv * contrast)
    return out


def frame_images(phantom: Phantom, tracer: Tracer, kinetics: dict[str, RegionKinetics],
                 frames_min: list[tuple[float, float]], texture: np.ndarray) -> list[np.ndarray]:
    """Activity x time images of each frame (decayed frame mean times the frame length, SUV-like x min), float64."""
    values = {name: tracer.frame_values(k, frames_min) * (np.diff(frames_min, axis=1)[:, 0])
              for name, k in kinetics.items()}
    return [phantom.region_image({name: v[f] for name, v in values.items()}).astype(np.float64) * texture
            for f in range(len(frames_min))]


def _tracer_images(patient: _Patient, tracer: Tracer, frames_min: list, config: SimulationConfig,
                   rng: np.random.Generator) -> list[np.ndarray]:
    kinetics = region_kinetics(patient.phantom, tracer, rng, config.kinetic_variability)
    return frame_images(patient.phantom, tracer, kinetics, frames_min, patient.texture)


def _metadata(task: str, config: SimulationConfig, patient: _Patient, **extra: Any) -> dict:
    phantom = patient.phantom
    return {"task": task, "anatomy": phantom.anatomy, "dim": config.dim,
            "axial_position_mm": phantom.axial_position_mm, "lesions": [lesion.to_dict() for lesion in phantom.lesions],
            "region_names": dict(phantom.names), "total_counts": config.counts,
            "projector": describe_projector(patient.acquisition.projector),
            **({"phantom_source": config.image_source.name} if config.image_source is not None else {}),
            "acquisition": config.acquisition.to_dict(),
            "image_units": "expected counts per voxel: the system model of projector, attenuation, normalisation "
                           "and resolution maps the image to expected trues", **extra}


def _sample(task: str, patient: _Patient, *, input: np.ndarray, target: np.ndarray, input_image: np.ndarray,
            target_image: np.ndarray, input_background: np.ndarray, target_background: np.ndarray,
            metadata: dict) -> TaskSample:
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    acquisition, phantom = patient.acquisition, patient.phantom
    return TaskSample(task, f32(input), f32(target), f32(input_image), f32(target_image), f32(phantom.mu_map),
                      phantom.labels, f32(acquisition.attenuation), f32(acquisition.normalisation),
                      f32(input_background), f32(target_background), dict(phantom.names), metadata)


# --- tasks ---------------------------------------------------------------------------------------

def low_dose_sample(config: SimulationConfig, rng: np.random.Generator) -> TaskSample:
    """Low-dose prompts (binomial thinning) -> full-dose prompts; see the module notes."""
    patient = _patient(config, rng)
    tracer = get_tracer(config.tracer)
    (image,) = _tracer_images(patient, tracer, [tracer.reference_frame_min], config, rng)
    unit = patient.acquisition.expected(image)
    scale = unit.scale_for(config.counts)
    expected = unit.scaled(scale)
    full = poisson_counts(expected.prompts, rng)
    factor = float(config.dose_reduction_factors[int(rng.integers(len(config.dose_reduction_factors)))])
    low = thin_counts(full, factor, rng)
    metadata = _metadata("low_dose", config, patient, tracers=[tracer.name], frames_min=[tracer.reference_frame_min],
                         dose_reduction_factor=factor, count_scale=scale / factor, target_count_scale=scale)
    return _sample("low_dose", patient, input=low, target=full, input_image=image * (scale / factor),
                   target_image=image * scale, input_background=expected.background / factor,
                   target_background=expected.background, metadata=metadata)


def attenuation_correction_sample(config: SimulationConfig, rng: np.random.Generator) -> TaskSample:
    """Prompts with attenuation -> noise-free attenuation-corrected sinogram ``P R (c x)``."""
    patient = _patient(config, rng)
    tracer = get_tracer(config.tracer)
    (image,) = _tracer_images(patient, tracer, [tracer.reference_frame_min], config, rng)
    acquisition = patient.acquisition
    unit = acquisition.expected(image)
    scale = unit.scale_for(config.counts)
    expected = unit.scaled(scale)
    metadata = _metadata("attenuation_correction", config, patient, tracers=[tracer.name],
                         frames_min=[tracer.reference_frame_min], count_scale=scale, target_count_scale=scale)
    return _sample("attenuation_correction", patient, input=poisson_counts(expected.prompts, rng),
                   target=acquisition.attenuation_free(image, scale), input_image=image * scale,
                   target_image=image * scale, input_background=expected.background,
                   target_background=np.zeros_like(expected.background), metadata=metadata)


def delayed_frame_sample(config: SimulationConfig, rng: np.random.Generator) -> TaskSample:
    """First-frame prompts -> delayed-frame prompts (same count scale: kinetics and decay decide the counts)."""
    patient = _patient(config, rng)
    tracer = get_tracer(config.tracer)
    frames = [config.first_frame_min, config.delayed_frame_min]
    first, delayed = _tracer_images(patient, tracer, frames, config, rng)
    unit_first, unit_delayed = (patient.acquisition.expected(image) for image in (first, delayed))
    scale = unit_first.scale_for(config.counts)
    expected_first, expected_delayed = unit_first.scaled(scale), unit_delayed.scaled(scale)
    metadata = _metadata("delayed_frame", config, patient, tracers=[tracer.name], frames_min=frames,
                         count_scale=scale, target_count_scale=scale,
                         expected_counts=[float(expected_first.prompts.sum()), float(expected_delayed.prompts.sum())])
    return _sample("delayed_frame", patient, input=poisson_counts(expected_first.prompts, rng),
                   target=poisson_counts(expected_delayed.prompts, rng), input_image=first * scale,
                   target_image=delayed * scale, input_background=expected_first.background,
                   target_background=expected_delayed.background, metadata=metadata)


def tracer_separation_sample(config: SimulationConfig, rng: np.random.Generator) -> TaskSample:
    """Dual-tracer prompts (sum of the two single-tracer prompts) -> the two single-tracer prompts ``(2, ...)``."""
    _check_two_tracers(config)
    patient = _patient(config, rng)
    tracers = (get_tracer(config.tracer), get_tracer(config.second_tracer))
    (image_a,) = _tracer_images(patient, tracers[0], [config.dual_frame_min], config, rng)
    (image_b,) = _tracer_images(patient, tracers[1], [config.dual_frame_min], config, rng)
    image_b = image_b * config.second_tracer_activity_ratio
    units = [patient.acquisition.expected(image) for image in (image_a, image_b)]
    scale = check_total_counts(config.counts) / sum(float(unit.prompts.sum()) for unit in units)
    expected = [unit.scaled(scale) for unit in units]
    counts = [poisson_counts(e.prompts, rng) for e in expected]
    metadata = _metadata("tracer_separation", config, patient, tracers=[t.name for t in tracers],
                         frames_min=[config.dual_frame_min], count_scale=scale, target_count_scale=scale,
                         second_tracer_activity_ratio=config.second_tracer_activity_ratio,
                         expected_counts=[float(e.prompts.sum()) for e in expected])
    return _sample("tracer_separation", patient, input=counts[0] + counts[1], target=np.stack(counts),
                   input_image=(image_a + image_b) * scale, target_image=np.stack([image_a, image_b]) * scale,
                   input_background=expected[0].background + expected[1].background,
                   target_background=np.stack([e.background for e in expected]), metadata=metadata)


def tracer_conversion_sample(config: SimulationConfig, rng: np.random.Generator) -> TaskSample:
    """Static scan with the first tracer -> static scan with the second tracer (same patient and scanner)."""
    _check_two_tracers(config)
    patient = _patient(config, rng)
    tracers = (get_tracer(config.tracer), get_tracer(config.second_tracer))
    images = [_tracer_images(patient, t, [t.reference_frame_min], config, rng)[0] for t in tracers]
    units = [patient.acquisition.expected(image) for image in images]
    scales = [unit.scale_for(config.counts) for unit in units]
    expected = [unit.scaled(scale) for unit, scale in zip(units, scales)]
    metadata = _metadata("tracer_conversion", config, patient, tracers=[t.name for t in tracers],
                         frames_min=[t.reference_frame_min for t in tracers], count_scale=scales[0],
                         target_count_scale=scales[1])
    return _sample("tracer_conversion", patient, input=poisson_counts(expected[0].prompts, rng),
                   target=poisson_counts(expected[1].prompts, rng), input_image=images[0] * scales[0],
                   target_image=images[1] * scales[1], input_background=expected[0].background,
                   target_background=expected[1].background, metadata=metadata)


def _check_two_tracers(config: SimulationConfig) -> None:
    if config.tracer == config.second_tracer:
        raise ValueError(f"this task needs two different tracers, got tracer = second_tracer = {config.tracer!r}")


TASK_FUNCTIONS: dict[str, Callable[[SimulationConfig, np.random.Generator], TaskSample]] = {
    "low_dose": low_dose_sample,
    "attenuation_correction": attenuation_correction_sample,
    "delayed_frame": delayed_frame_sample,
    "tracer_separation": tracer_separation_sample,
    "tracer_conversion": tracer_conversion_sample,
}


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of sample ``index`` of a dataset with ``seed``: independent streams, whatever the workers."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(index, bool) or not isinstance(index, numbers.Integral) or index < 0:
        raise ValueError(f"index must be a non-negative integer, got {index!r}")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))


def simulate_sample(task: str, config: Optional[SimulationConfig] = None, seed: SeedLike = 0) -> TaskSample:
    """Simulate one sample of ``task``.

    Parameters
    ----------
    task : str
        One of :data:`TASKS`.
    config : SimulationConfig, optional
        Default ``SimulationConfig()`` (2D, 128 x 128, 128 views).
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        The same seed gives the same sample, bit for bit.
    """
    task = check_task(task)
    config = SimulationConfig() if config is None else config
    if not isinstance(config, SimulationConfig):
        raise TypeError(f"config must be a SimulationConfig, got {type(config).__name__}")
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif isinstance(seed, np.random.SeedSequence):
        rng = np.random.default_rng(seed)
    elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
        rng = np.random.default_rng(int(seed))
    else:
        raise ValueError(f"seed must be a non-negative integer, SeedSequence or Generator, got {seed!r}")
    return TASK_FUNCTIONS[task](config, rng)
