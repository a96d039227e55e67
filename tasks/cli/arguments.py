"""Argument types shared by the ``allpet`` commands."""

from __future__ import annotations

import argparse

from pet_projection.simulation import TASKS
from pet_projection.simulation.config import check_task

__all__ = ["TASK_HELP", "task_name"]

TASK_HELP = f"one of {', '.join(TASKS)} (hyphens work too: low-dose)"


def task_name(text: str) -> str:
    """argparse type of a task name: ``low-dose`` and ``low_dose`` both give ``"low_dose"``."""
    try:
        return check_task(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
