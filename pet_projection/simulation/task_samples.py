"""The five tasks' samplers: (input, target) sinogram pairs with image ground truth, one sample at a time.

:func:`simulate_sample` draws a patient (:mod:`.patient`), its tracers'
images, and the task's scans (:mod:`.scans`), and returns a
:class:`~.sample.TaskSample`. Tasks (:data:`~.config.TASKS`):

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

import numbers
from typing import Any, Callable, Optional, Union

import numpy as np

from ..validation import positive_int
from .acquisition import check_total_counts, describe_projector
from .config import SimulationConfig, check_task
from .patient import Patient, make_patient, tracer_images
from .sample import TaskSample
from .scans import Scan, scan_attenuation_correction, scan_independent, scan_low_dose, scan_tracer_separation
from .tracers import get_tracer

__all__ = ["TASK_FUNCTIONS", "attenuation_correction_sample", "delayed_frame_sample", "low_dose_sample",
           "sample_rng", "simulate_sample", "tracer_conversion_sample", "tracer_separation_sample"]

SeedLike = Union[int, np.random.SeedSequence, np.random.Generator]


def _metadata(task: str, config: SimulationConfig, patient: Patient, **extra: Any) -> dict:
    phantom = patient.phantom
    return {"task": task, "region": phantom.region, "anatomy": phantom.anatomy, "dim": config.dim,
            "axial_position_mm": phantom.axial_position_mm, "lesions": [lesion.to_dict() for lesion in phantom.lesions],
            "region_names": dict(phantom.names), "total_counts": config.counts,
            "projector": describe_projector(patient.acquisition.projector),
            **({"phantom_source": config.image_source.name} if config.image_source is not None else {}),
            "acquisition": config.acquisition.to_dict(),
            "image_units": "expected counts per voxel: the system model of projector, attenuation, normalisation "
                           "and resolution maps the image to expected trues", **extra}


def _sample(task: str, patient: Patient, scan: Scan, *, input_image: np.ndarray, target_image: np.ndarray,
            metadata: dict) -> TaskSample:
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    acquisition, phantom = patient.acquisition, patient.phantom
    return TaskSample(task, f32(scan.input), f32(scan.target), f32(input_image), f32(target_image),
                      f32(phantom.mu_map), phantom.labels, f32(acquisition.attenuation),
                      f32(acquisition.normalisation), f32(scan.input_background), f32(scan.target_background),
                      dict(phantom.names), metadata)


def low_dose_sample(config: SimulationConfig, rng: np.random.Generator) -> TaskSample:
    """Low-dose prompts (binomial thinning) -> full-dose prompts; see the module notes."""
    patient = make_patient(config, rng)
    tracer = get_tracer(config.tracer)
    (image,) = tracer_images(patient, tracer, [tracer.reference_frame_min], config, rng)
    unit = patient.acquisition.expected(image)
    scale = unit.scale_for(config.counts)
    expected = unit.scaled(scale)
    scan, factor = scan_low_dose(expected, rng, config.draw_dose_reduction_factor)
    metadata = _metadata("low_dose", config, patient, tracers=[tracer.name], frames_min=[tracer.reference_frame_min],
                         dose_reduction_factor=factor, count_scale=scale / factor, target_count_scale=scale)
    return _sample("low_dose", patient, scan, input_image=image * (scale / factor), target_image=image * scale,
                   metadata=metadata)


def attenuation_correction_sample(config: SimulationConfig, rng: np.random.Generator) -> TaskSample:
    """Prompts with attenuation -> noise-free attenuation-corrected sinogram ``P R (c x)``."""
    patient = make_patient(config, rng)
    tracer = get_tracer(config.tracer)
    (image,) = tracer_images(patient, tracer, [tracer.reference_frame_min], config, rng)
    acquisition = patient.acquisition
    unit = acquisition.expected(image)
    scale = unit.scale_for(config.counts)
    expected = unit.scaled(scale)
    metadata = _metadata("attenuation_correction", config, patient, tracers=[tracer.name],
                         frames_min=[tracer.reference_frame_min], count_scale=scale, target_count_scale=scale)
    scan = scan_attenuation_correction(expected, acquisition.attenuation_free(image, scale), rng)
    return _sample("attenuation_correction", patient, scan, input_image=image * scale, target_image=image * scale,
                   metadata=metadata)


def delayed_frame_sample(config: SimulationConfig, rng: np.random.Generator) -> TaskSample:
    """First-frame prompts -> delayed-frame prompts (same count scale: kinetics and decay decide the counts)."""
    patient = make_patient(config, rng)
    tracer = get_tracer(config.tracer)
    frames = [config.first_frame_min, config.delayed_frame_min]
    first, delayed = tracer_images(patient, tracer, frames, config, rng)
    unit_first, unit_delayed = (patient.acquisition.expected(image) for image in (first, delayed))
    scale = unit_first.scale_for(config.counts)
    expected_first, expected_delayed = unit_first.scaled(scale), unit_delayed.scaled(scale)
    metadata = _metadata("delayed_frame", config, patient, tracers=[tracer.name], frames_min=frames,
                         count_scale=scale, target_count_scale=scale,
                         expected_counts=[float(expected_first.prompts.sum()), float(expected_delayed.prompts.sum())])
    return _sample("delayed_frame", patient, scan_independent(expected_first, expected_delayed, rng),
                   input_image=first * scale, target_image=delayed * scale, metadata=metadata)


def tracer_separation_sample(config: SimulationConfig, rng: np.random.Generator) -> TaskSample:
    """Dual-tracer prompts (sum of the two single-tracer prompts) -> the two single-tracer prompts ``(2, ...)``."""
    _check_two_tracers(config)
    patient = make_patient(config, rng)
    tracers = (get_tracer(config.tracer), get_tracer(config.second_tracer))
    (image_a,) = tracer_images(patient, tracers[0], [config.dual_frame_min], config, rng)
    (image_b,) = tracer_images(patient, tracers[1], [config.dual_frame_min], config, rng)
    image_b = image_b * config.second_tracer_activity_ratio
    units = [patient.acquisition.expected(image) for image in (image_a, image_b)]
    scale = check_total_counts(config.counts) / sum(float(unit.prompts.sum()) for unit in units)
    expected = [unit.scaled(scale) for unit in units]
    scan = scan_tracer_separation(expected, rng)
    metadata = _metadata("tracer_separation", config, patient, tracers=[t.name for t in tracers],
                         frames_min=[config.dual_frame_min], count_scale=scale, target_count_scale=scale,
                         second_tracer_activity_ratio=config.second_tracer_activity_ratio,
                         expected_counts=[float(e.prompts.sum()) for e in expected])
    return _sample("tracer_separation", patient, scan, input_image=(image_a + image_b) * scale,
                   target_image=np.stack([image_a, image_b]) * scale, metadata=metadata)


def tracer_conversion_sample(config: SimulationConfig, rng: np.random.Generator) -> TaskSample:
    """Static scan with the first tracer -> static scan with the second tracer (same patient and scanner)."""
    _check_two_tracers(config)
    patient = make_patient(config, rng)
    tracers = (get_tracer(config.tracer), get_tracer(config.second_tracer))
    images = [tracer_images(patient, t, [t.reference_frame_min], config, rng)[0] for t in tracers]
    units = [patient.acquisition.expected(image) for image in images]
    scales = [unit.scale_for(config.counts) for unit in units]
    expected = [unit.scaled(scale) for unit, scale in zip(units, scales)]
    metadata = _metadata("tracer_conversion", config, patient, tracers=[t.name for t in tracers],
                         frames_min=[t.reference_frame_min for t in tracers], count_scale=scales[0],
                         target_count_scale=scales[1])
    return _sample("tracer_conversion", patient, scan_independent(expected[0], expected[1], rng),
                   input_image=images[0] * scales[0], target_image=images[1] * scales[1], metadata=metadata)


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
    seed, index = positive_int("seed", seed, minimum=0), positive_int("index", index, minimum=0)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


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
