"""Delayed-frame prediction: prompts of the first frame -> prompts of the delayed frame (same patient).

Both frames share one count scale (kinetics and decay decide the counts), so
the input needs no rescaling. The input-only baseline is the first frame's
OSEM image itself (no kinetic change).
"""

from __future__ import annotations

from typing import Any

from .spec import PETTask

__all__ = ["DelayedFrameTask", "TASK", "run"]


class DelayedFrameTask(PETTask):
    """See the module docstring."""

    name = "delayed_frame"
    summary = "first-frame prompts -> delayed-frame prompts"
    residual_decode = True
    autoencode_inputs = True


TASK = DelayedFrameTask()


def run(config: Any = None, out_dir: Any = None, progress: bool = True) -> Any:
    """:func:`tasks.pipeline.run_task` for this task."""
    from .pipeline import run_for

    return run_for(TASK, config, out_dir, progress)
