"""The five tasks by name: :func:`get_task` gives a task's :class:`~tasks.task.PETTask`."""

from __future__ import annotations

from pet_projection.simulation import check_task

from .attenuation_correction import TASK as ATTENUATION_CORRECTION
from .delayed_frame import TASK as DELAYED_FRAME
from .low_dose import TASK as LOW_DOSE
from .task import PETTask
from .tracer_conversion import TASK as TRACER_CONVERSION
from .tracer_separation import TASK as TRACER_SEPARATION

__all__ = ["get_task"]

_BY_NAME = {task.name: task for task in (LOW_DOSE, ATTENUATION_CORRECTION, DELAYED_FRAME, TRACER_SEPARATION,
                                         TRACER_CONVERSION)}


def get_task(name: str) -> PETTask:
    """The task object of ``name``, one of :data:`pet_projection.simulation.TASKS` (``low-dose`` works too)."""
    return _BY_NAME[check_task(name)]
