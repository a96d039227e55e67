"""Low-dose reconstruction: binomially thinned prompts (dose reduction factor f) -> full-dose prompts.

The model sees the low-dose prompts times ``f`` (the full-dose count scale)
and generates full-dose prompts; both are reconstructed with OSEM on the
full-dose system model. Baselines: OSEM (and post-filtered OSEM) of the
low-dose data, times ``f``; the supervised sinogram UNet.

Its LDM keeps the tiny preset's autoencoder factor 4 (:attr:`latent_factor`;
the other tasks use 2): factor 2 scored no better here while training 1.5
times slower (measurements: docs/results/tasks.md).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pet_projection.simulation import Acquisition, TaskSample, scan_low_dose, thin_counts

from .task import PETTask

__all__ = ["LowDoseTask", "TASK"]


class LowDoseTask(PETTask):
    """See the module docstring."""

    name = "low_dose"
    summary = "low-dose prompts (binomial thinning) -> full-dose prompts"
    residual_decode = True
    latent_factor = 4

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

    def scan(self, sample: TaskSample, acquisition: Acquisition, input_image: np.ndarray, target_image: np.ndarray,
             rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict]:
        """New full-dose prompts (Poisson) of ``target_image`` and their binomial thinning by the sample's factor.

        The input image is the target's over the dose reduction factor
        (``input_image`` is not used: it is that up to rounding).
        """
        factor = self.input_scale(sample)
        scan, _ = scan_low_dose(acquisition.expected(target_image), rng, factor)
        return {**scan.arrays(), "input_image": target_image / factor, "target_image": target_image}, {}


TASK = LowDoseTask()
