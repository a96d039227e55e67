"""What the models are conditioned on: a task's physics prior, or the linear-unmixing estimate per tracer.

:func:`physics_prior_model_input` turns a task's
:meth:`~tasks.task.PETTask.physics_prior` into a ``model_input(sample,
attention_image)`` function (a run's is
:meth:`tasks.pipeline_config.PipelineConfig.model_input`); :func:`folder_model_input` and
:func:`fit_unmixing_weights` give :func:`ldm.training_data.build_training_data`
and ``allpet sample`` the conditioning a run's ``data.model_input`` asks for,
so that the LDM package itself needs no task physics.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from pet_projection.simulation import TaskSample

from .baselines import LinearUnmixing
from .registry import get_task
from .task import PETTask, sample_projector

__all__ = ["ModelInput", "fit_unmixing_weights", "folder_model_input", "physics_prior_model_input"]

ModelInput = Callable[[TaskSample, np.ndarray], np.ndarray]  # (sample, TMA image attention (ny, nx)) -> (V, R)


def physics_prior_model_input(task: PETTask, fwhm_voxels: float, n_subsets: int, n_iterations: int,
                              keep_lesions: bool = True) -> ModelInput:
    """A ``model_input`` that conditions on the physics prior.

    ``model_input(sample, attention_image)`` is :meth:`PETTask.physics_prior`
    of ``task`` with a Gaussian of ``fwhm_voxels`` voxels (of the sample's
    own image grid) and OSEM ``n_subsets`` x ``n_iterations``; with
    ``keep_lesions`` the TMA lesion attention ``(ny, nx)`` (clipped to
    [0, 1]) keeps the lesions unfiltered.
    """
    if not fwhm_voxels >= 0:
        raise ValueError(f"fwhm_voxels must be >= 0, got {fwhm_voxels!r}")

    def prior(sample: TaskSample, attention_image: np.ndarray) -> np.ndarray:
        voxel_mm = float(sample_projector(sample).geometry.grid.voxel_size_mm[-1])
        attention = np.clip(attention_image, 0.0, 1.0) if keep_lesions else None
        return task.physics_prior(sample, fwhm_voxels * voxel_mm, n_subsets, n_iterations, attention)

    return prior


def folder_model_input(data_config: Any) -> Optional[ModelInput]:
    """The ``model_input`` that ``data_config.model_input`` (an :class:`ldm.experiment.DataConfig`) asks for.

    ``"physics_prior"``: :meth:`~tasks.task.PETTask.physics_prior` of each
    sample's own task, with ``prior_fwhm_voxels`` and ``prior_osem`` of the
    config, lesions kept unfiltered; None for ``"measured"`` and
    ``"unmixing"`` (whose weights :func:`fit_unmixing_weights` fits).
    """
    if data_config.model_input != "physics_prior":
        return None

    def prior(sample: TaskSample, attention_image: np.ndarray) -> np.ndarray:
        of_task = physics_prior_model_input(get_task(sample.task), data_config.prior_fwhm_voxels,
                                            *data_config.prior_osem)
        return of_task(sample, attention_image)

    return prior


def fit_unmixing_weights(dataset: Any) -> np.ndarray:
    """Per-ray linear-unmixing weights ``(n_targets, V, R)`` float32 of a dataset with several targets per sample.

    ``dataset`` is an :class:`ldm.training_data.SimulatedTaskDataset`; the
    weights are fitted on its measured sums and targets by least squares per
    ray (:class:`tasks.baselines.LinearUnmixing`, the tracer-separation
    baseline); ``ValueError`` for one target per sample.
    """
    if dataset.n_targets < 2:
        raise ValueError(f"data.model_input 'unmixing' needs several targets per sample (tracer separation); the "
                         f"{dataset.data.task!r} task has one")
    measured, targets = dataset.measured_and_targets()
    return LinearUnmixing().fit(measured, targets).weights.astype(np.float32)
