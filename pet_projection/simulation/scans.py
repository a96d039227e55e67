"""Count drawing, one home per task: a task's sinograms from the expected counts of its acquisitions.

Each ``scan_<task>`` function turns expected counts
(:class:`~.acquisition.ExpectedCounts`) into the task's measured input and
target sinograms and their expected backgrounds (:class:`Scan`). The
simulator's samples (:mod:`.task_samples`) and the tasks layer's new scans of
warped anatomies (``PETTask.warp_sample``) both draw through them, so each
task's noise model is written once. Every function draws from ``rng`` in the
order its docstring states; the same generator state gives the same arrays.

Sinograms have the projector's output shape (``(n_views, n_bins)`` in 2D);
the two tracers of ``tracer_separation`` stack on a leading axis of 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, Union

import numpy as np

from .acquisition import ExpectedCounts, poisson_counts, thin_counts

__all__ = ["Scan", "scan_attenuation_correction", "scan_independent", "scan_low_dose", "scan_tracer_separation"]


@dataclass(frozen=True, eq=False)
class Scan:
    """The sinograms of one sample of a task.

    Attributes
    ----------
    input : ndarray, float32, sinogram shape
        Measured prompts of the input acquisition (counts).
    target : ndarray, sinogram shape, or ``(2, *sinogram shape)`` for ``tracer_separation``
        Measured prompts (float32) or, for ``attenuation_correction``, the
        noise-free corrected sinogram as given.
    input_background, target_background : ndarray, float64
        Expected scatter + randoms of the input and target acquisitions
        (zeros for the corrected ``attenuation_correction`` target).
    """

    input: np.ndarray
    target: np.ndarray
    input_background: np.ndarray
    target_background: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """The four sinograms by their :class:`~.sample.TaskSample` field names."""
        return {"input": self.input, "target": self.target, "input_background": self.input_background,
                "target_background": self.target_background}


def scan_low_dose(full_dose: ExpectedCounts, rng: np.random.Generator,
                  dose_reduction_factor: Union[float, Callable[[np.random.Generator], float]]) -> tuple[Scan, float]:
    """Full-dose Poisson prompts (the target) and their binomial thinning by the dose reduction factor (the input).

    Parameters
    ----------
    full_dose : ExpectedCounts
        Expected counts of the full-dose acquisition.
    rng : numpy.random.Generator
        Draws the full-dose prompts, then (if ``dose_reduction_factor`` is a
        function) the factor, then the thinning.
    dose_reduction_factor : float or callable
        The factor ``f >= 1``, or a function of ``rng`` that draws it (the
        simulator's random factor per sample).

    Returns
    -------
    scan : Scan
        The input's background is the full dose's over ``f``.
    factor : float
        The dose reduction factor used.
    """
    full = poisson_counts(full_dose.prompts, rng)
    factor = dose_reduction_factor(rng) if callable(dose_reduction_factor) else dose_reduction_factor
    return Scan(thin_counts(full, factor, rng), full, full_dose.background / factor, full_dose.background), factor


def scan_attenuation_correction(measured: ExpectedCounts, corrected: np.ndarray, rng: np.random.Generator) -> Scan:
    """Poisson prompts of the attenuated acquisition (the input); the noise-free ``corrected`` sinogram (the target).

    ``corrected`` is ``P R (c x)`` (:meth:`~.acquisition.Acquisition.attenuation_free`);
    its background is zero. One draw from ``rng``: the input's prompts.
    """
    return Scan(poisson_counts(measured.prompts, rng), corrected, measured.background,
                np.zeros_like(measured.background))


def scan_independent(first: ExpectedCounts, second: ExpectedCounts, rng: np.random.Generator) -> Scan:
    """Two independent Poisson scans: the input of ``first``, then the target of ``second``.

    The scans of ``delayed_frame`` (first and delayed frame) and
    ``tracer_conversion`` (first and second tracer's static scan).
    """
    return Scan(poisson_counts(first.prompts, rng), poisson_counts(second.prompts, rng), first.background,
                second.background)


def scan_tracer_separation(tracers: Sequence[ExpectedCounts], rng: np.random.Generator) -> Scan:
    """Poisson prompts of each of the two tracers (the target, stacked) and their sum (the dual-tracer input).

    A sum of independent Poisson counts is Poisson, so the sum is the
    dual-tracer frame's prompts. Draws the first tracer's prompts, then the second's.
    """
    counts = [poisson_counts(expected.prompts, rng) for expected in tracers]
    return Scan(counts[0] + counts[1], np.stack(counts), tracers[0].background + tracers[1].background,
                np.stack([expected.background for expected in tracers]))
