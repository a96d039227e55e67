"""One task end to end, as a straight line: data -> model -> sample -> reconstruct -> score -> result.

:func:`run_task` is the whole job for one :class:`~tasks.pipeline_config.PipelineConfig`;
each step is a function of its own module: the samples (:mod:`tasks.sources`),
the models' examples and the task's prior (:func:`model_examples`), the LDM
(:mod:`tasks.ldm_runs`), the baselines (:mod:`tasks.baselines`,
:mod:`tasks.classical_baselines`), the post-filter tuning and the OSEM +
metrics of every method (:mod:`tasks.scoring`). What differs between tasks
sits behind :class:`~tasks.task.PETTask` (its outputs, prior and classical
baseline), so the steps are the same for all five. The result
(:class:`~tasks.results.TaskResult`) goes to :func:`tasks.report.write_report`.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from pet_projection.simulation import TaskSample

from .baselines import SinogramUNet
from .classical_baselines import ClassicalBaseline
from .examples import Examples, build_examples, with_resampled_inputs, with_warped_anatomies
from .ldm_runs import sample_ldm, torch_device, train_ldm, training_logs
from .pipeline_config import PipelineConfig
from .registry import get_task
from .results import METHOD_LDM, METHOD_UNET, TaskResult
from .scoring import score_test_set, tune_post_filter_fwhm
from .sources import select_samples
from .task import PETTask, sample_projector

__all__ = ["model_examples", "run_task", "train_unet"]


def run_task(config: PipelineConfig, work_dir: Any, progress: bool = True,
             samples: Optional[tuple[Sequence[TaskSample], Sequence[TaskSample]]] = None) -> TaskResult:
    """Run one task end to end (module docstring); ``work_dir`` receives the LDM run (logs, checkpoint).

    Parameters
    ----------
    config : PipelineConfig
    work_dir : path
        Folder for the training run (created): ``ldm/`` (logs, checkpoint)
        and the files the task's prior needs for new inputs
        (:meth:`~tasks.classical_baselines.ClassicalBaseline.prior_files`:
        for tracer separation with the prior, ``unmixing_weights.npy``
        ``(n_outputs, n_views, n_bins)`` float32).
    progress : bool
        tqdm progress bars.
    samples : (train, test), optional
        Samples to use instead of :func:`tasks.sources.make_samples` (e.g. shared by ablations).

    Raises
    ------
    ValueError
        Inconsistent data: another task, other sinogram shapes, a geometry
        mismatch between samples, missing folders or files.
    """
    if not isinstance(config, PipelineConfig):
        raise TypeError(f"config must be a PipelineConfig, got {type(config).__name__}")
    task = get_task(config.task)
    device = _torch_device_with_threads(config)
    timings: dict[str, float] = {}
    with _timed(timings, "data"):
        train, test = select_samples(config, samples, progress)
        baseline, train_ex, test_ex = model_examples(task, config, train, test, progress)
        projector = sample_projector(train[0])
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    if config.physics_prior:
        _keep_prior_files(baseline, work_dir)

    with _timed(timings, "LDM training"):
        model = train_ldm(task, train_ex, config, work_dir / "ldm", projector, progress)
    with _timed(timings, "LDM sampling"):
        sinograms: dict[str, np.ndarray] = {METHOD_LDM: sample_ldm(model, task, test_ex, config, progress)}
    info: dict[str, Any] = {"task_summary": task.summary, "device": str(device),
                            "ldm_parameters": sum(p.numel() for p in model.parameters()),
                            "latent_factor": model.config.autoencoder.downsampling_factor,
                            "denoiser_channels": model.config.denoiser.base_channels,
                            "n_train_examples": len(train_ex), "n_test_examples": len(test_ex)}
    logs = training_logs(work_dir / "ldm")

    if config.baselines and config.unet_steps > 0:
        with _timed(timings, "UNet baseline"):
            unet = train_unet(task, train_ex, config, device, progress)
            sinograms[METHOD_UNET] = unet.predict(test_ex.input, task.tracer_labels(test_ex))
        logs["UNet"] = {"step": list(range(1, len(unet.losses) + 1)), "loss": unet.losses}
        info["unet_parameters"] = unet.n_parameters
    if config.baselines:
        sinograms.update(baseline.sinograms(test_ex))
    with _timed(timings, "post-filter tuning"):
        fwhm_mm = tune_post_filter_fwhm(baseline, train, config) if config.baselines else 0.0
    if config.baselines:
        info["post_filter_fwhm_mm"] = fwhm_mm

    with _timed(timings, "reconstruction + metrics"):
        records, methods, example = score_test_set(task, baseline, test, test_ex, sinograms, config, fwhm_mm,
                                                   progress)
    info["filtered_baseline"] = baseline.filtered_method if config.baselines else None
    return TaskResult(config, records, methods, example, logs, timings, info)


def model_examples(task: PETTask, config: PipelineConfig, train: Sequence[TaskSample], test: Sequence[TaskSample],
                   progress: bool = True) -> tuple[ClassicalBaseline, Examples, Examples]:
    """The task's classical baseline fitted on the training examples, and the models' training and test examples.

    The training samples gain ``config.anatomy_warps`` warped patients each,
    then ``config.count_resampling`` fresh inputs each
    (:func:`~tasks.examples.with_warped_anatomies`,
    :func:`~tasks.examples.with_resampled_inputs`); the examples are
    conditioned on the run's model input (:meth:`PipelineConfig.model_input`)
    and, with ``config.physics_prior``, on the classical baseline's estimate
    where the task's prior uses it (:meth:`ClassicalBaseline.condition`:
    tracer separation's unmixing).
    """
    model_input = config.model_input(task)
    augmented = with_warped_anatomies(task, train, config.anatomy_warps, config.seed)
    train_ex, test_ex = (build_examples(task, samples, model_input, progress) for samples in
                         (with_resampled_inputs(task, augmented, config.count_resampling, config.seed), test))
    baseline = task.classical_baseline().fit(train_ex)
    if config.physics_prior:
        train_ex, test_ex = baseline.condition(train_ex), baseline.condition(test_ex)
    return baseline, train_ex, test_ex


def train_unet(task: PETTask, examples: Examples, config: PipelineConfig, device: Any,
               progress: bool = True) -> SinogramUNet:
    """The supervised sinogram UNet baseline trained on ``examples`` (``config``'s UNet steps, batch size, seed)."""
    unet = SinogramUNet(task.n_labels, device=device, seed=config.seed)
    unet.fit(examples.input, examples.target, task.tracer_labels(examples), steps=config.unet_steps,
             batch_size=config.batch_size, seed=config.seed, progress=progress)
    return unet


def _torch_device_with_threads(config: PipelineConfig) -> Any:
    """:func:`~tasks.ldm_runs.torch_device`; on the CPU torch also gets ``config.threads`` threads (if set)."""
    import torch

    device = torch_device(config)
    if device.type == "cpu" and config.threads:
        torch.set_num_threads(config.threads)
    return device


def _keep_prior_files(baseline: ClassicalBaseline, work_dir: Path) -> None:
    """Save what new inputs need to be conditioned as the run's examples were (``.npy`` files in ``work_dir``)."""
    for name, array in baseline.prior_files().items():
        np.save(work_dir / name, array)


@contextlib.contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Store the block's wall time in seconds as ``timings[name]`` (when it ends without an error)."""
    clock = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - clock
