"""Argument types shared by the ``allpet`` commands."""

from __future__ import annotations

import argparse

from pet_projection.simulation import TASKS
from pet_projection.simulation.config import check_task

__all__ = ["ATTENTION_HELP", "TASK_HELP", "UNSEEN_TEST_HELP", "task_name"]

TASK_HELP = f"one of {', '.join(TASKS)} (hyphens work too: low-dose)"
ATTENTION_HELP = ("TMA attention in training and testing: segmentation (default; hyper- and hypometabolic regions "
                  "segmented in each sample's measured input, what a user has) or oracle (the simulator's lesion "
                  "labels: an upper bound)")
UNSEEN_TEST_HELP = ("test sets of anatomy never trained on, scored beside the in-distribution one: stir_thorax (the "
                    "STIR-exercises thorax as an image phantom; skipped where its files are missing), "
                    "left_out_region (the region family the training data lack); default both, none if the option "
                    "is given without names")


def task_name(text: str) -> str:
    """argparse type of a task name: ``low-dose`` and ``low_dose`` both give ``"low_dose"``."""
    try:
        return check_task(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
