"""Low-dose reconstruction: binomially thinned prompts (dose reduction factor f) -> full-dose prompts.

The model sees the low-dose prompts times ``f`` (the full-dose count scale)
and generates full-dose prompts; both are reconstructed with OSEM on the
full-dose system model. Baselines: OSEM (and post-filtered OSEM) of the
low-dose data, times ``f``; the supervised sinogram UNet.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from pet_projection.simulation import Acquisition, AcquisitionSettings, TaskSample, poisson_counts, thin_counts
from pet_projection.simulation.acquisition import projector_grid
from pet_projection.simulation.deformation import (DeformationSettings, random_deformation, relocate_lesions,
                                                   warp_nearest, warp_regions)

from .spec import PETTask, sample_projector

__all__ = ["LowDoseTask", "TASK", "run"]


class LowDoseTask(PETTask):
    """See the module docstring."""

    name = "low_dose"
    summary = "low-dose prompts (binomial thinning) -> full-dose prompts"

    def resample_input(self, sample: TaskSample, rng: np.random.Generator) -> TaskSample:
        """``sample`` with new low-dose prompts: a fresh binomial thinning of its full-dose prompts.

        The factor is the sample's own (:meth:`input_scale`). Thinning a
        Poisson sinogram by ``1/f`` gives a Poisson sinogram of mean ``1/f``
        times the full dose, the same law as the measured input (for a user's
        own data too: it needs only the full-dose prompts, which must be
        non-negative integer counts: :func:`thin_counts` raises otherwise).
        """
        self.check_sample(sample)
        return dataclasses.replace(sample, input=thin_counts(sample.target, self.input_scale(sample), rng))

    def warp_sample(self, sample: TaskSample, rng: np.random.Generator,
                    settings: DeformationSettings = DeformationSettings()) -> TaskSample:
        """A new patient: ``sample``'s anatomy deformed at random, then scanned at full and at low dose.

        The ground-truth image and labels are warped region by region and the
        attenuation map by nearest neighbour, all with one random deformation
        (:mod:`pet_projection.simulation.deformation`). The warped image, in
        the target's expected-count units, goes through the sample's own
        physics: its projector, resolution and normalisation, the new
        attenuation, and the simulator's scatter and randoms model with the
        sample's acquisition settings. Activity concentrations are kept, so a
        larger anatomy gives more counts, as on a scanner. New full-dose
        prompts are Poisson draws; the low-dose input is their binomial
        thinning by the sample's own dose reduction factor. The metadata's
        lesion entries get their warped centres and voxel counts
        (:func:`~pet_projection.simulation.deformation.relocate_lesions`);
        ``anatomy_warp`` records the deformation settings.
        """
        self.check_sample(sample)
        projector = sample_projector(sample)
        grid = projector_grid(projector)
        coordinates = random_deformation(grid, rng, settings)
        image, labels = warp_regions(sample.target_image, sample.labels, coordinates)
        mu_map = warp_nearest(sample.mu_map, coordinates)
        acquisition = Acquisition(projector, mu_map, AcquisitionSettings(**sample.metadata["acquisition"]), rng,
                                  normalisation=sample.normalisation)
        expected = acquisition.expected(image)
        full = poisson_counts(expected.prompts, rng)
        factor = self.input_scale(sample)
        f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
        return dataclasses.replace(
            sample, input=thin_counts(full, factor, rng), target=full, input_image=f32(image / factor),
            target_image=f32(image), mu_map=f32(mu_map), labels=labels, attenuation=f32(acquisition.attenuation),
            input_background=f32(expected.background / factor), target_background=f32(expected.background),
            metadata={**sample.metadata, "anatomy_warp": settings.to_dict(),
                      "lesions": relocate_lesions(sample.metadata.get("lesions", []), labels, grid,
                                                  sample.metadata.get("axial_position_mm", 0.0))})


TASK = LowDoseTask()


def run(config: Any = None, out_dir: Any = None, progress: bool = True) -> Any:
    """:func:`tasks.pipeline.run_task` for this task (``config``: a :class:`~tasks.pipeline.PipelineConfig`)."""
    from .pipeline import run_for

    return run_for(TASK, config, out_dir, progress)
