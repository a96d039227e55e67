"""One task end to end, as a straight line: data -> model -> sample -> reconstruct -> score -> result.

:func:`run_task` is the whole job for one :class:`~tasks.pipeline_config.PipelineConfig`;
each step is a function of its own module: the samples (:mod:`tasks.sources`:
training, in-distribution test and the unseen test sets), the models' examples
and the task's prior (:func:`model_examples`, :func:`evaluation_examples`), the LDM
(:mod:`tasks.ldm_runs`), the baselines (:mod:`tasks.baselines`,
:mod:`tasks.classical_baselines`), the post-filter tuning and the OSEM +
metrics of every method (:mod:`tasks.scoring`). What differs between tasks
sits behind :class:`~tasks.task.PETTask` (its outputs, prior and classical
baseline), so the steps are the same for all five. Every test set goes
through the same models, baselines and post-filter (all fitted on the
training data only) and the same scoring; the post-filter, tuned in voxels on
the training grid, keeps its width in voxels on an unseen set's grid, as the
physics prior's filter does. The result
(:class:`~tasks.results.TaskResult`) goes to :func:`tasks.report.write_report`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from pet_projection.simulation import TaskSample

from .baselines import SinogramUNet
from .classical_baselines import ClassicalBaseline
from .examples import Examples, build_examples, with_resampled_inputs, with_warped_anatomies
from .ldm_runs import sample_ldm, sample_unsupervised, torch_device, train_ldm, training_logs
from .pipeline_config import PipelineConfig
from .registry import get_task
from .results import IN_DISTRIBUTION, METHOD_LDM, METHOD_SCRATCH, METHOD_UNET, METHOD_UNSUPERVISED, TaskResult
from .scoring import score_test_set, tune_post_filter_fwhm
from .sources import EvaluationSet, select_samples, unseen_test_sets
from .task import PETTask, sample_projector

__all__ = ["evaluation_examples", "model_examples", "run_task", "train_unet"]


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
        unseen, skipped = unseen_test_sets(config, progress)
        for name, reason in skipped.items():
            print(f"unseen test set {name!r} skipped: {reason}")
        test_sets = [EvaluationSet(IN_DISTRIBUTION, _in_distribution(config, len(test)), test), *unseen]
        _check_sinogram_shape(train, unseen)
        baseline, train_ex, test_ex = model_examples(task, config, train, test, progress)
        examples = [test_ex] + [evaluation_examples(task, config, baseline, s.samples, progress) for s in unseen]
        projector = sample_projector(train[0])
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    if config.physics_prior:
        _keep_prior_files(baseline, work_dir)

    with _timed(timings, "LDM training"):
        model = train_ldm(task, train_ex, config, work_dir / "ldm", projector, progress)
    with _timed(timings, "LDM sampling"):
        sinograms: list[dict[str, np.ndarray]] = [{METHOD_LDM: sample_ldm(model, task, ex, config, progress,
                                                                          projector)} for ex in examples]
    if config.scratch_steps:
        with _timed(timings, "LDM from scratch"):
            fresh = dataclasses.replace(config, ldm_init=None, ldm_preset="foundation", scratch_steps=0,
                                        autoencoder_steps=config.scratch_steps, diffusion_steps=config.scratch_steps)
            scratch_model = train_ldm(task, train_ex, fresh, work_dir / "ldm_scratch", projector, progress)
            for outputs, ex in zip(sinograms, examples):
                outputs[METHOD_SCRATCH] = sample_ldm(scratch_model, task, ex, fresh, progress, projector)
    if config.unsupervised:
        with _timed(timings, "unsupervised sampling"):
            for outputs, test_set, ex in zip(sinograms, test_sets, examples):
                outputs[METHOD_UNSUPERVISED] = sample_unsupervised(task, test_set.samples, ex, config, projector,
                                                                   progress)
    info: dict[str, Any] = {"task_summary": task.summary, "device": str(device),
                            "ldm_parameters": sum(p.numel() for p in model.parameters()),
                            "latent_factor": model.config.autoencoder.downsampling_factor,
                            "denoiser_channels": model.config.denoiser.base_channels,
                            "n_train_examples": len(train_ex), "n_test_examples": len(test_ex),
                            "skipped_test_sets": skipped}
    logs = training_logs(work_dir / "ldm")

    if config.baselines and config.unet_steps > 0:
        with _timed(timings, "UNet baseline"):
            unet = train_unet(task, train_ex, config, device, progress)
            for outputs, ex in zip(sinograms, examples):
                outputs[METHOD_UNET] = unet.predict(ex.input, task.tracer_labels(ex))
        logs["UNet"] = {"step": list(range(1, len(unet.losses) + 1)), "loss": unet.losses}
        info["unet_parameters"] = unet.n_parameters
    if config.baselines:
        for outputs, ex in zip(sinograms, examples):
            outputs.update(baseline.sinograms(ex))
    with _timed(timings, "post-filter tuning"):
        fwhm_mm = tune_post_filter_fwhm(baseline, train, config) if config.baselines else 0.0
    if config.baselines:
        info["post_filter_fwhm_mm"] = fwhm_mm
        info["post_filter_fwhm_voxels"] = fwhm_mm / _voxel_mm(train[0])

    records: list[dict] = []
    methods: list[str] = []
    scored_examples: dict[str, dict] = {}
    with _timed(timings, "reconstruction + metrics"):
        for test_set, ex, outputs in zip(test_sets, examples, sinograms):
            set_fwhm_mm = fwhm_mm * _voxel_mm(test_set.samples[0]) / _voxel_mm(train[0])
            rows, seen, scored_examples[test_set.name] = score_test_set(
                task, baseline, test_set.samples, ex, outputs, config, set_fwhm_mm, progress, test_set.name)
            records += rows
            methods += [m for m in seen if m not in methods]
    info["filtered_baseline"] = baseline.filtered_method if config.baselines else None
    example = scored_examples.pop(IN_DISTRIBUTION)
    return TaskResult(config, records, methods, example, logs, timings, info,
                      {s.name: s.description for s in test_sets}, scored_examples)


def model_examples(task: PETTask, config: PipelineConfig, train: Sequence[TaskSample], test: Sequence[TaskSample],
                   progress: bool = True) -> tuple[ClassicalBaseline, Examples, Examples]:
    """The task's classical baseline fitted on the training examples, and the models' training and test examples.

    The training samples gain ``config.anatomy_warps`` warped patients each,
    then ``config.count_resampling`` fresh inputs each
    (:func:`~tasks.examples.with_warped_anatomies`,
    :func:`~tasks.examples.with_resampled_inputs`); the examples are
    conditioned on the run's model input (:meth:`PipelineConfig.model_input`)
    with the run's attention (``config.attention``, the same in training and
    testing) and, with ``config.physics_prior``, on the classical baseline's
    estimate where the task's prior uses it (:meth:`ClassicalBaseline.condition`:
    tracer separation's unmixing); the test examples are :func:`evaluation_examples`.
    """
    augmented = with_warped_anatomies(task, train, config.anatomy_warps, config.seed)
    train_ex = build_examples(task, with_resampled_inputs(task, augmented, config.count_resampling, config.seed),
                              config.model_input(task), progress, config.attention)
    baseline = task.classical_baseline().fit(train_ex)
    if config.physics_prior:
        train_ex = baseline.condition(train_ex)
    return baseline, train_ex, evaluation_examples(task, config, baseline, test, progress)


def evaluation_examples(task: PETTask, config: PipelineConfig, baseline: ClassicalBaseline,
                        samples: Sequence[TaskSample], progress: bool = True) -> Examples:
    """The models' examples of test ``samples``, conditioned as :func:`model_examples` conditions the training ones."""
    examples = build_examples(task, samples, config.model_input(task), progress, config.attention)
    return baseline.condition(examples) if config.physics_prior else examples


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


def _voxel_mm(sample: TaskSample) -> float:
    """The transaxial voxel size (mm) of a sample's image grid."""
    return float(sample_projector(sample).geometry.grid.voxel_size_mm[-1])


def _in_distribution(config: PipelineConfig, n_test: int) -> str:
    """One line on the in-distribution test set (for reports)."""
    source = f"from {config.test_data}" if config.test_data is not None else f"simulated {config.anatomy} samples"
    return f"{n_test} test samples of the training distribution ({source})"


def _check_sinogram_shape(train: Sequence[TaskSample], unseen: Sequence[EvaluationSet]) -> None:
    """``ValueError`` unless every unseen test sample has the training sinograms' shape (the model's input shape)."""
    shape = train[0].input.shape
    for test_set in unseen:
        for index, sample in enumerate(test_set.samples):
            if sample.input.shape != shape:
                raise ValueError(f"unseen test set {test_set.name!r}: sample {index} has sinograms of shape "
                                 f"{sample.input.shape}, the training samples {shape}")


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
