"""Tracer conversion: a static scan with the first tracer -> the same patient's scan with the second tracer.

The input is brought to the second scan's count scale
(``target_count_scale / count_scale``); the input-only baseline is the first
tracer's OSEM image at that scale.
"""

from __future__ import annotations

from .task import PETTask

__all__ = ["TASK", "TracerConversionTask"]


class TracerConversionTask(PETTask):
    """See the module docstring."""

    name = "tracer_conversion"
    summary = "first-tracer static scan -> second-tracer static scan"


TASK = TracerConversionTask()
