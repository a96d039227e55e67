"""Dual-tracer separation: one frame of two tracers -> the two single-tracer sinograms.

One model serves both outputs: its ``tracer`` label (``LDMConfig.n_tracers
= 2``) is the output channel (0: first tracer, 1: second). There is no
input-only OSEM baseline (the input is the sum of both tracers); the
task-specific baseline is linear unmixing
(:class:`tasks.classical_baselines.UnmixingBaseline`).

The prior: with ``PipelineConfig.physics_prior`` each output channel is
conditioned on its own linear-unmixing estimate of the measured sum (per-ray
weights fitted on the training examples,
:func:`tasks.classical_baselines.with_unmixed_inputs`), and the LDM outputs
that estimate plus a decoded correction (:attr:`residual_decode`, with
:attr:`autoencode_inputs`). The two tracers overlap in space, so the smooth
physics prior of the sum that serves the other tasks blurs away what tells
them apart (measurements of the alternatives: docs/results/tasks.md).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from pet_projection.physics import PETSystemModel
from pet_projection.simulation import Acquisition, TaskSample, scan_tracer_separation

from .classical_baselines import ClassicalBaseline, UnmixingBaseline
from .task import PETTask

__all__ = ["TASK", "TracerSeparationTask"]


class TracerSeparationTask(PETTask):
    """See the module docstring."""

    name = "tracer_separation"
    n_outputs = 2
    summary = "dual-tracer prompts -> the two single-tracer prompts"
    residual_decode = True
    autoencode_inputs = True
    prior_model_input = "unmixing"

    def classical_baseline(self) -> ClassicalBaseline:
        """Linear unmixing of the measured sum (fitted on the training examples), which also makes the prior."""
        return UnmixingBaseline(self)

    def scan(self, sample: TaskSample, acquisition: Acquisition, input_image: np.ndarray, target_image: np.ndarray,
             rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict]:
        """Poisson prompts of each tracer's image ``target_image`` ``(2, ny, nx)``; the input is their sum."""
        expected = [acquisition.expected(image) for image in target_image]
        scan = scan_tracer_separation(expected, rng)
        return {**scan.arrays(), "input_image": target_image.sum(axis=0), "target_image": target_image}, \
            {"expected_counts": [float(e.prompts.sum()) for e in expected]}

    def input_system(self, sample: TaskSample) -> Optional[PETSystemModel]:
        return None


TASK = TracerSeparationTask()
