"""The record of one simulated sample: its input and target sinograms, ground-truth images and metadata.

Images are in expected-count units (see :mod:`.task_samples`); the metadata
are JSON-ready.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..attention import RegionTable

__all__ = ["TaskSample"]


@dataclass(frozen=True, eq=False)
class TaskSample:
    """One simulated sample of a task.

    Attributes
    ----------
    task : str
    input : ndarray, float32, sinogram shape
        Measured prompts of the input acquisition (counts).
    target : ndarray, float32, sinogram shape, or ``(2, *sinogram shape)`` for ``tracer_separation``
    input_image, target_image : ndarray, float32, image shape (``(2, ...)`` for the separated tracers)
        Ground-truth activity in expected-count units (see the module notes).
    mu_map : ndarray, float32, image shape
        Attenuation map at 511 keV (1/mm).
    labels : ndarray, int16, image shape
        Region labels; ``names`` maps region names to them.
    attenuation, normalisation : ndarray, float32, sinogram shape
        ``a = exp(-P mu)`` and ``n`` of the system model.
    input_background, target_background : ndarray, float32
        Expected scatter + randoms of the input and target acquisitions
        (zeros for the corrected ``attenuation_correction`` target).
    names : dict of str to int
    metadata : dict
        JSON-ready: task, region (the body region; also under its older key
        ``anatomy``), tracers, frames, dose factor, count scales, lesions,
        projector description, acquisition settings.
    """

    task: str
    input: np.ndarray
    target: np.ndarray
    input_image: np.ndarray
    target_image: np.ndarray
    mu_map: np.ndarray
    labels: np.ndarray
    attenuation: np.ndarray
    normalisation: np.ndarray
    input_background: np.ndarray
    target_background: np.ndarray
    names: dict
    metadata: dict

    ARRAY_KEYS = ("input", "target", "input_image", "target_image", "mu_map", "labels", "attenuation",
                  "normalisation", "input_background", "target_background")

    def arrays(self) -> dict[str, np.ndarray]:
        """The array fields by name."""
        return {key: getattr(self, key) for key in self.ARRAY_KEYS}

    def region_table(self) -> RegionTable:
        """Labels and names as a :class:`~pet_projection.RegionTable` (for TMA)."""
        return RegionTable(self.labels, self.names)
