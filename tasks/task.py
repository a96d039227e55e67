"""What makes one PET task: its model input, targets, system models, its scans, prior and classical baseline.

:class:`PETTask` is the shared definition; each task module
(:mod:`tasks.low_dose`, :mod:`tasks.attenuation_correction`,
:mod:`tasks.delayed_frame`, :mod:`tasks.tracer_separation`,
:mod:`tasks.tracer_conversion`) subclasses it where its physics differs.

Units: every sinogram the model sees or makes is in the target's counts
(``TaskSample.target``); every image is in the target's expected-count units
(``TaskSample.target_image``), so one system model per output channel maps
images to the model's sinograms (:meth:`PETTask.target_system`).

What :func:`tasks.pipeline.run_task` asks of a task, so that it runs every
task the same way: :attr:`PETTask.n_outputs` and :meth:`PETTask.tracer_labels`
(the models' output channels), :meth:`PETTask.physics_prior` and
:attr:`PETTask.prior_model_input` (what the models are conditioned on), and
:meth:`PETTask.classical_baseline` (the estimate without a learnt model, which
tracer separation's prior refines).
"""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from typing import Any, Optional

import numpy as np

from pet_projection.physics import PETSystemModel
from pet_projection.simulation import (Acquisition, AcquisitionSettings, TaskSample, scan_independent,
                                      system_model)
from pet_projection.simulation.acquisition import projector_from_description, projector_grid
from pet_projection.simulation.deformation import (DeformationSettings, random_deformation, relocate_lesions,
                                                   warp_nearest, warp_regions)

from .classical_baselines import ClassicalBaseline, InputReconstruction

__all__ = ["PETTask", "sample_projector"]


@lru_cache(maxsize=16)
def _projector(description: str):
    return projector_from_description(json.loads(description))


def sample_projector(sample: TaskSample):
    """The (cached) projector of a sample, from its metadata."""
    return _projector(json.dumps(sample.metadata["projector"], sort_keys=True))


class PETTask:
    """A task: input sinogram -> ``n_outputs`` target sinograms (one model call per output channel).

    Attributes
    ----------
    name : str
        The simulator's task name (:data:`pet_projection.simulation.TASKS`).
    n_outputs : int
        Output channels (2 for the two tracers of ``tracer_separation``); the
        model tells them apart by its ``tracer`` label = channel index.
    summary : str
        One line for reports.
    residual_decode : bool
        Whether the LDM outputs its input, the physics prior, plus a decoded
        latent correction (``LDMConfig.residual_decode``), which keeps the
        prior's full-resolution content. It suits an input that is the same
        kind of sinogram as the target at about its count scale: low dose,
        the delayed frame (the first frame), attenuation correction (the
        attenuation-free forward model of the NAC image) and tracer
        separation (each tracer's linear-unmixing estimate,
        :func:`tasks.classical_baselines.with_unmixed_inputs`). Tracer
        conversion's input has about 4.6 times the target's counts, so its
        LDM decodes ``D(z0)`` directly. Measurements: docs/results/tasks.md.
    autoencode_inputs : bool
        Whether the autoencoder also learns the model inputs
        (``LDMConfig.autoencode_inputs``), so that it reconstructs an input of
        another kind than the targets and the residual decode's ``D(y)`` is
        right: on for the delayed frame, attenuation correction and tracer
        separation; low dose's prior is already like its targets, so it stays
        off there. Measurements: docs/results/tasks.md.
    latent_factor : int
        The LDM autoencoder's downsampling factor for this task when
        ``PipelineConfig.latent_factor`` is None (the default): 2, which keeps
        more of the target's detail than the tiny preset's 4; low dose keeps 4
        (:mod:`tasks.low_dose`). Measurements: docs/results/tasks.md.
    prior_fwhm_voxels : float
        Post-filter FWHM (voxels) of this task's physics prior when
        ``PipelineConfig.prior_fwhm_voxels`` is None (the default): 2, the
        FWHM that the post-filter tuning picks for low dose at the demo scale,
        or 0 (no filter) for attenuation correction, whose input holds
        full-dose counts.
    prior_model_input : str
        What the models are conditioned on when ``PipelineConfig.physics_prior``
        is on, as ``ldm.experiment.DataConfig.model_input`` names it:
        ``"physics_prior"`` (:meth:`physics_prior` of each sample) or, for
        tracer separation, ``"unmixing"`` (each channel's linear unmixing of
        the measured sum, :meth:`classical_baseline`).
    """

    name = ""
    n_outputs = 1
    summary = ""
    residual_decode = False
    autoencode_inputs = False
    latent_factor = 2
    prior_fwhm_voxels = 2.0
    prior_model_input = "physics_prior"

    @property
    def n_labels(self) -> int:
        """Classes of the models' ``tracer`` label: ``n_outputs`` for several outputs, else 0 (no label)."""
        return self.n_outputs if self.n_outputs > 1 else 0

    def tracer_labels(self, examples: Any) -> Optional[np.ndarray]:
        """The models' ``tracer`` label ``(N,)`` int64 of each example (its output channel); None without labels."""
        return examples.channel if self.n_labels else None

    def classical_baseline(self) -> ClassicalBaseline:
        """The task's estimate without a learnt model: here OSEM of the measured input by its own physics."""
        return InputReconstruction(self)

    def check_sample(self, sample: TaskSample) -> None:
        """``ValueError`` unless ``sample`` is a 2D sample of this task with matching array shapes."""
        if not isinstance(sample, TaskSample):
            raise TypeError(f"expected a TaskSample, got {type(sample).__name__}")
        if sample.task != self.name:
            raise ValueError(f"sample is of task {sample.task!r}, expected {self.name!r}")
        shape = tuple(sample.metadata["projector"].get("sinogram_shape", ()))
        if sample.input.ndim != 2 or sample.input.shape != shape:
            raise ValueError(f"the sinogram LDM takes 2D sinograms (n_views, n_bins); the sample's input has shape "
                             f"{sample.input.shape}, its projector {shape}")
        expected = (self.n_outputs,) + shape if self.n_outputs > 1 else shape
        if sample.target.shape != expected:
            raise ValueError(f"the sample's target has shape {sample.target.shape}, expected {expected}")

    # ------------------------------------------------------------------ model data
    def input_scale(self, sample: TaskSample) -> float:
        """Factor bringing the input to the target's count scale (e.g. the dose reduction factor)."""
        metadata = sample.metadata
        return float(metadata.get("target_count_scale", 1.0)) / float(metadata.get("count_scale", 1.0))

    def model_input(self, sample: TaskSample) -> np.ndarray:
        """The model's input ``(n_views, n_bins)`` float32: the measured input at the target's count scale."""
        return (sample.input * self.input_scale(sample)).astype(np.float32)

    def target(self, sample: TaskSample, channel: int = 0) -> np.ndarray:
        """Training target ``(n_views, n_bins)`` of output ``channel`` (the simulated target)."""
        return sample.target[channel] if self.n_outputs > 1 else sample.target

    def reference_image(self, sample: TaskSample, channel: int = 0) -> np.ndarray:
        """Ground-truth image of output ``channel`` (target expected-count units)."""
        return sample.target_image[channel] if self.n_outputs > 1 else sample.target_image

    def target_system(self, sample: TaskSample, channel: int = 0) -> PETSystemModel:
        """System model whose expectation of :meth:`reference_image` is the mean of :meth:`target`."""
        return system_model(sample, "target", channel if self.n_outputs > 1 else None)

    def reference_sinogram(self, sample: TaskSample, channel: int = 0) -> np.ndarray:
        """Noise-free target sinogram ``A x + b`` of the ground truth: the reference of sinogram metrics."""
        image = self.reference_image(sample, channel).astype(np.float64)
        return np.asarray(self.target_system(sample, channel).expected(image))

    def resample_input(self, sample: TaskSample, rng: np.random.Generator) -> Optional[TaskSample]:
        """``sample`` with a new, equally distributed realization of its input (None: the task has none).

        Count-level augmentation: tasks whose input is drawn from the target
        itself (low dose: binomial thinning of the full-dose prompts) can draw
        any number of fresh inputs for one target, exactly as a scanner would
        record them; the other tasks return None.
        """
        return None

    def warp_sample(self, sample: TaskSample, rng: np.random.Generator,
                    settings: DeformationSettings = DeformationSettings()) -> TaskSample:
        """A new patient: ``sample``'s anatomy deformed at random, then scanned again through its own physics.

        Anatomy-level augmentation (:mod:`pet_projection.simulation.deformation`).
        The input and target images (in their count units) and the labels are
        warped region by region and the attenuation map by nearest neighbour,
        all with one random deformation, so edges stay sharp. The warped images
        go through the sample's own physics: its projector, resolution and
        normalisation, the new attenuation, and the simulator's scatter and
        randoms model with the sample's acquisition settings; :meth:`scan`
        draws the task's sinograms from them. Activity concentrations and
        count scales are kept, so a larger anatomy gives more counts, as on a
        scanner. The metadata's lesion entries get their warped centres and
        voxel counts (:func:`~pet_projection.simulation.deformation.relocate_lesions`);
        ``anatomy_warp`` records the deformation settings.
        """
        self.check_sample(sample)
        projector = sample_projector(sample)
        grid = projector_grid(projector)
        coordinates = random_deformation(grid, rng, settings)
        stacked = np.concatenate([sample.target_image.reshape((-1,) + grid.shape), sample.input_image[None]])
        images, labels = warp_regions(stacked, sample.labels, coordinates)
        mu_map = warp_nearest(sample.mu_map, coordinates)
        acquisition = Acquisition(projector, mu_map, AcquisitionSettings(**sample.metadata["acquisition"]), rng,
                                  normalisation=sample.normalisation)
        target_image = images[:-1] if self.n_outputs > 1 else images[0]
        arrays, metadata = self.scan(sample, acquisition, images[-1], target_image, rng)
        f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
        return dataclasses.replace(
            sample, **{key: f32(value) for key, value in arrays.items()}, mu_map=f32(mu_map), labels=labels,
            attenuation=f32(acquisition.attenuation),
            metadata={**sample.metadata, **metadata, "anatomy_warp": settings.to_dict(),
                      "lesions": relocate_lesions(sample.metadata.get("lesions", []), labels, grid,
                                                  sample.metadata.get("axial_position_mm", 0.0))})

    def scan(self, sample: TaskSample, acquisition: Acquisition, input_image: np.ndarray, target_image: np.ndarray,
             rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict]:
        """The task's sinograms of new input and target images (count units) on ``acquisition`` (:meth:`warp_sample`).

        Returns the sample's new arrays (``input``, ``target``, ``input_image``,
        ``target_image``, ``input_background``, ``target_background``) and
        metadata entries to update. Here (delayed frame, tracer conversion) the
        input and target are independent Poisson scans of their images, drawn
        as the simulator draws them
        (:func:`pet_projection.simulation.scan_independent`); tasks with other
        physics override it.
        """
        first, second = acquisition.expected(input_image), acquisition.expected(target_image)
        scan = scan_independent(first, second, rng)
        arrays = {**scan.arrays(), "input_image": input_image, "target_image": target_image}
        metadata = {"expected_counts": [float(first.prompts.sum()), float(second.prompts.sum())]}
        return arrays, ({} if "expected_counts" not in sample.metadata else metadata)

    # ------------------------------------------------------------------ input-only baseline and physics prior
    def input_system(self, sample: TaskSample) -> Optional[PETSystemModel]:
        """System model to reconstruct the input by itself (None: no input-only baseline)."""
        return system_model(sample, "input")

    def input_image_scale(self, sample: TaskSample) -> float:
        """Factor from the input reconstruction's units to the target image units."""
        return self.input_scale(sample)

    def physics_prior(self, sample: TaskSample, fwhm_mm: float, n_subsets: int, n_iterations: int,
                      attention: Optional[np.ndarray] = None) -> np.ndarray:
        """The input denoised by its own physics, ``(n_views, n_bins)`` float32 at the target's count scale.

        ``A x_p + b`` of the input's system model (:meth:`input_system`),
        times :meth:`input_scale`, where ``x_p = (1 - a) G x_hat + a x_hat``:
        ``x_hat`` is the OSEM image (``n_subsets`` x ``n_iterations``) of the
        measured input, ``G`` a Gaussian post-filter of ``fwhm_mm`` (mm), and
        ``a`` the TMA image attention ``(ny, nx)`` in ``[0, 1]`` (default 0):
        the measured sinogram with its Poisson noise replaced by the smooth
        model fit, except that regions the attention marks (lesions, a
        clinician's ROIs) keep OSEM's unfiltered contrast. Tasks without an
        input system model give :meth:`model_input` unchanged.
        """
        from .baselines import osem_image, post_filter

        system = self.input_system(sample)
        if system is None:
            return self.model_input(sample)
        image = osem_image(sample.input, system, n_subsets, n_iterations)
        smooth = post_filter(image, system, fwhm_mm)
        if attention is not None:
            weight = np.asarray(attention, dtype=np.float64)
            if weight.shape != image.shape:
                raise ValueError(f"attention has shape {weight.shape}, the input's image grid {image.shape}")
            if not ((weight >= 0.0) & (weight <= 1.0)).all():
                raise ValueError("attention must lie in [0, 1] (and not be NaN)")
            smooth = (1.0 - weight) * smooth + weight * image
        fit = np.asarray(system.expected(np.ascontiguousarray(smooth, dtype=np.float64)))
        return (fit * self.input_scale(sample)).astype(np.float32)
