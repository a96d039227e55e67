"""Dual-tracer separation: one frame of two tracers -> the two single-tracer sinograms.

One model serves both outputs: its ``tracer`` label (``LDMConfig.n_tracers
= 2``) is the output channel (0: first tracer, 1: second). There is no
input-only OSEM baseline (the input is the sum of both tracers); the
task-specific baseline is linear unmixing (:class:`tasks.baselines.LinearUnmixing`).
"""

from __future__ import annotations

from typing import Any, Optional

from pet_projection.physics import PETSystemModel
from pet_projection.simulation import TaskSample

from .spec import PETTask

__all__ = ["TASK", "TracerSeparationTask", "run"]


class TracerSeparationTask(PETTask):
    """See the module docstring."""

    name = "tracer_separation"
    n_outputs = 2
    summary = "dual-tracer prompts -> the two single-tracer prompts"

    def input_system(self, sample: TaskSample) -> Optional[PETSystemModel]:
        return None


TASK = TracerSeparationTask()


def run(config: Any = None, out_dir: Any = None, progress: bool = True) -> Any:
    """:func:`tasks.pipeline.run_task` for this task."""
    from .pipeline import run_for

    return run_for(TASK, config, out_dir, progress)
