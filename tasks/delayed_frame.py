"""Delayed-frame prediction: prompts of the first frame -> prompts of the delayed frame (same patient).

Both frames share one count scale (kinetics and decay decide the counts), so
the input needs no rescaling. The input-only baseline is the first frame's
OSEM image itself (no kinetic change).
"""

from __future__ import annotations

from .task import PETTask

__all__ = ["DelayedFrameTask", "TASK"]


class DelayedFrameTask(PETTask):
    """See the module docstring."""

    name = "delayed_frame"
    summary = "first-frame prompts -> delayed-frame prompts"
    residual_decode = True
    autoencode_inputs = True


TASK = DelayedFrameTask()
