"""Each task's classical baseline: its estimate without a learnt model, and the same post-filtered.

:meth:`tasks.task.PETTask.classical_baseline` names a task's; the pipeline
(:func:`tasks.pipeline.run_task`) runs every task's through this one interface
(:class:`ClassicalBaseline`):

- :class:`InputReconstruction` (every task whose input has its own system
  model): OSEM of the measured input by its own physics, at the target's
  scale; its sinogram row is the measured input itself.
- :class:`UnmixingBaseline` (tracer separation): per-ray linear unmixing of
  the measured dual-tracer sum (:class:`tasks.baselines.LinearUnmixing`,
  fitted on the training examples), reconstructed with OSEM like the models'
  sinograms; each channel's unmixing is also that task's prior
  (:func:`with_unmixed_inputs`).

Both have a post-filtered variant: the image smoothed by a Gaussian whose
FWHM is tuned on training samples (:func:`tasks.baselines.tune_post_filter`
on :meth:`ClassicalBaseline.tuning_set`), and its forward model as sinogram.
Examples are :class:`tasks.examples.Examples`; sinograms ``(n_views, n_bins)``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from pet_projection.physics import PETSystemModel
from pet_projection.simulation import TaskSample

from .baselines import LinearUnmixing, forward_sinogram, osem_image, post_filter
from .results import METHOD_INPUT, METHOD_INPUT_FILTERED, METHOD_UNMIXING, METHOD_UNMIXING_FILTERED

__all__ = ["ClassicalBaseline", "InputReconstruction", "UnmixingBaseline", "with_unmixed_inputs"]

Row = tuple[np.ndarray, np.ndarray]  # (sinogram (n_views, n_bins), image (ny, nx)) of one method and example


class ClassicalBaseline:
    """The estimate of a task's targets without a learnt model, and the same post-filtered.

    Parameters
    ----------
    task : PETTask

    Attributes
    ----------
    method, filtered_method : str
        Names of its two rows in the results (:mod:`tasks.results`).
    """

    method = ""
    filtered_method = ""

    def __init__(self, task: Any) -> None:
        self.task = task

    def fit(self, examples: Any) -> "ClassicalBaseline":
        """Learn what the baseline needs from the training examples (here nothing); returns ``self``."""
        return self

    def condition(self, examples: Any) -> Any:
        """``examples`` conditioned on this baseline's estimate, the task's prior (here unchanged)."""
        return examples

    def prior_files(self) -> dict[str, np.ndarray]:
        """Arrays by file name that new inputs need to be conditioned as :meth:`condition` does (here none)."""
        return {}

    def tuning_set(self, samples: list[TaskSample], n_subsets: int,
                   n_iterations: int) -> tuple[list[np.ndarray], list[np.ndarray], list[PETSystemModel]]:
        """``(images, reference images, target system models)`` of ``samples`` on which the post-filter is tuned."""
        raise NotImplementedError

    def sinograms(self, examples: Any) -> dict[str, np.ndarray]:
        """Target-sinogram estimates ``(N, n_views, n_bins)`` by row name, reconstructed as the models' are.

        Empty by default: the input reconstruction has none (its rows come from :meth:`input_rows`).
        """
        return {}

    def input_rows(self, sample: TaskSample, measured: np.ndarray, system: PETSystemModel, n_subsets: int,
                   n_iterations: int, fwhm_mm: float) -> dict[str, Row]:
        """Rows made from the sample's measured input by itself, by name (here none).

        ``measured`` is the input at the target's count scale, ``system`` the
        target's system model, ``fwhm_mm`` the tuned post-filter FWHM.
        """
        return {}


class InputReconstruction(ClassicalBaseline):
    """OSEM of the measured input on :meth:`PETTask.input_system`, times :meth:`PETTask.input_image_scale`."""

    method = METHOD_INPUT
    filtered_method = METHOD_INPUT_FILTERED

    def _image(self, sample: TaskSample, n_subsets: int, n_iterations: int) -> np.ndarray:
        task = self.task
        return osem_image(sample.input, task.input_system(sample), n_subsets, n_iterations) \
            * task.input_image_scale(sample)

    def tuning_set(self, samples: list[TaskSample], n_subsets: int,
                   n_iterations: int) -> tuple[list[np.ndarray], list[np.ndarray], list[PETSystemModel]]:
        task = self.task
        images = [self._image(s, n_subsets, n_iterations) for s in samples]
        systems = [task.target_system(s) for s in samples]
        references = [task.reference_image(s) for s in samples]
        return images, references, systems

    def input_rows(self, sample: TaskSample, measured: np.ndarray, system: PETSystemModel, n_subsets: int,
                   n_iterations: int, fwhm_mm: float) -> dict[str, Row]:
        """The input's OSEM image with the measured input as sinogram, and its post-filtered forward model."""
        image = self._image(sample, n_subsets, n_iterations)
        filtered = post_filter(image, system, fwhm_mm)
        return {self.method: (measured, image), self.filtered_method: (forward_sinogram(system, filtered), filtered)}


class UnmixingBaseline(ClassicalBaseline):
    """Linear unmixing of the measured sum into the task's output channels (tracer separation)."""

    method = METHOD_UNMIXING
    filtered_method = METHOD_UNMIXING_FILTERED

    def __init__(self, task: Any) -> None:
        super().__init__(task)
        self.unmixing = LinearUnmixing()

    def fit(self, examples: Any) -> "UnmixingBaseline":
        """Per-ray weights of each channel, least squares over the training examples' measured sums and targets."""
        self.unmixing.fit(examples.measured[examples.channel == 0],
                          np.stack([examples.target[examples.channel == c] for c in range(self.task.n_outputs)],
                                   axis=1))
        return self

    def condition(self, examples: Any) -> Any:
        """Each example conditioned on its own channel's unmixing (:func:`with_unmixed_inputs`)."""
        return with_unmixed_inputs(examples, self.unmixing.weights)

    def prior_files(self) -> dict[str, np.ndarray]:
        """``unmixing_weights.npy``: the weights ``(n_outputs, n_views, n_bins)`` float32."""
        return {"unmixing_weights.npy": self.unmixing.weights.astype(np.float32)}

    def tuning_set(self, samples: list[TaskSample], n_subsets: int,
                   n_iterations: int) -> tuple[list[np.ndarray], list[np.ndarray], list[PETSystemModel]]:
        """OSEM of each (sample, channel)'s unmixing on the channel's target system (channels innermost)."""
        task = self.task
        measured = np.stack([task.model_input(s) for s in samples]).astype(np.float32)
        guess = self.unmixing.predict(measured).reshape(-1, *measured.shape[1:])
        pairs = [(i, c) for i in range(len(samples)) for c in range(task.n_outputs)]
        systems = [task.target_system(samples[i], c) for i, c in pairs]
        images = [osem_image(g, system, n_subsets, n_iterations) for g, system in zip(guess, systems)]
        references = [task.reference_image(samples[i], c) for i, c in pairs]
        return images, references, systems

    def sinograms(self, examples: Any) -> dict[str, np.ndarray]:
        """The unmixing of each example's measured sum, for its own channel (channels innermost)."""
        mixed = self.unmixing.predict(examples.measured[examples.channel == 0])
        return {self.method: mixed.reshape(-1, *mixed.shape[2:])}


def with_unmixed_inputs(examples: Any, weights: np.ndarray) -> Any:
    """``examples`` conditioned per output channel: input ``weights[channel] * measured``.

    The prior of a task with several outputs from one measured sum (tracer
    separation): each example's condition is the linear-unmixing estimate of
    its own channel (:class:`tasks.baselines.LinearUnmixing`, ``weights``
    ``(n_outputs, n_views, n_bins)`` fitted on the training examples), at the
    target's count scale like the target itself.
    """
    weights = np.asarray(weights, dtype=np.float32)
    last_channel = int(examples.channel.max(initial=0))
    if weights.ndim != 3 or weights.shape[1:] != examples.measured.shape[1:] or last_channel >= weights.shape[0]:
        raise ValueError(f"unmixing weights of shape {weights.shape} do not fit examples with sinograms "
                         f"{examples.measured.shape[1:]} and channels up to {last_channel}")
    return replace(examples, input=weights[examples.channel] * examples.measured)
