"""Low-dose reconstruction: binomially thinned prompts (dose reduction factor f) -> full-dose prompts.

The model sees the low-dose prompts times ``f`` (the full-dose count scale)
and generates full-dose prompts; both are reconstructed with OSEM on the
full-dose system model. Baselines: OSEM (and post-filtered OSEM) of the
low-dose data, times ``f``; the supervised sinogram UNet.
"""

from __future__ import annotations

from typing import Any

from .spec import PETTask

__all__ = ["LowDoseTask", "TASK", "run"]


class LowDoseTask(PETTask):
    """See the module docstring."""

    name = "low_dose"
    summary = "low-dose prompts (binomial thinning) -> full-dose prompts"


TASK = LowDoseTask()


def run(config: Any = None, out_dir: Any = None, progress: bool = True) -> Any:
    """:func:`tasks.pipeline.run_task` for this task (``config``: a :class:`~tasks.pipeline.PipelineConfig`)."""
    from .pipeline import run_for

    return run_for(TASK, config, out_dir, progress)
