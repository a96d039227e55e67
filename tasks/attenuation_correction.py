"""Attenuation correction without a mu-map: measured prompts -> attenuation-corrected sinogram ``P R (c x)``.

The target is noise-free and free of attenuation, normalisation and
background, so its system model is the projector and resolution only. The
input-only baseline reconstructs the prompts without attenuation correction
(NAC: normalisation, background and resolution, no mu-map), which is what a
scanner without CT/MR attenuation data gives.

The input holds full-dose counts, so its physics prior is not post-filtered
(:attr:`prior_fwhm_voxels` 0; measurements: docs/results/tasks.md).
"""

from __future__ import annotations

import numpy as np

from pet_projection.physics import PETSystemModel
from pet_projection.simulation import Acquisition, TaskSample, scan_attenuation_correction, system_model

from .task import PETTask

__all__ = ["AttenuationCorrectionTask", "TASK"]


class AttenuationCorrectionTask(PETTask):
    """See the module docstring."""

    name = "attenuation_correction"
    summary = "prompts with attenuation -> attenuation-corrected sinogram (no mu-map)"
    residual_decode = True
    autoencode_inputs = True
    prior_fwhm_voxels = 0.0

    def target_system(self, sample: TaskSample, channel: int = 0) -> PETSystemModel:
        full = system_model(sample, "target")
        return PETSystemModel(full.projector, resolution=full.resolution)

    def scan(self, sample: TaskSample, acquisition: Acquisition, input_image: np.ndarray, target_image: np.ndarray,
             rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict]:
        """Poisson prompts of ``input_image`` with the new attenuation; the target ``P R x`` of ``target_image``."""
        scan = scan_attenuation_correction(acquisition.expected(input_image),
                                           acquisition.attenuation_free(target_image, 1.0), rng)
        return {**scan.arrays(), "input_image": input_image, "target_image": target_image}, {}

    def input_system(self, sample: TaskSample) -> PETSystemModel:
        full = system_model(sample, "input")
        return PETSystemModel(full.projector, normalisation=sample.normalisation, background=sample.input_background,
                              resolution=full.resolution)


TASK = AttenuationCorrectionTask()
