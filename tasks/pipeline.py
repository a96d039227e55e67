"""One task end to end: data -> LDM training -> sampling -> OSEM -> metrics against the baselines.

:func:`run_task` is the whole job for one :class:`PipelineConfig`; the
results (:class:`TaskResult`) go to :func:`tasks.report.write_report`.
Data are simulated (:func:`pet_projection.simulation.simulate_sample`;
training sample ``i`` from ``sample_rng(seed, i)``, test sample ``j`` from
``sample_rng(seed + 1, j)``) or read from ``allpet simulate`` folders
(``train_data``, ``test_data``; the documented npz + manifest format of
:mod:`pet_projection.simulation.dataset`, which also takes a user's own
sinograms written with :func:`~pet_projection.simulation.save_sample`).

Every method's sinograms are reconstructed with the same OSEM settings on the
task's target system model and compared with the ground truth (metrics:
:mod:`tasks.metrics`): sinograms against the noise-free target ``A x + b``,
images against the true target image ``x``. The image-domain baselines'
sinograms are the forward model ``A x + b`` of their image (the input-OSEM
row uses the input sinogram itself, at the target's count scale).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from pet_projection.simulation import (SimulatedDataset, SimulationConfig, TaskSample, lesion_attention,
                                      simulate_sample)
from pet_projection.simulation.task_samples import sample_rng

from .examples import (ExampleDataset, Examples, MixedDataset, build_examples, check_same_geometry,
                       with_resampled_inputs, with_unmixed_inputs, with_warped_anatomies)
from .metrics import image_metrics, similarity_metrics, summarise
from .model_inputs import ModelInput, physics_prior_model_input
from .registry import get_task
from .spec import PETTask, sample_projector

__all__ = ["METHOD_LDM", "PipelineConfig", "TaskResult", "load_samples", "make_samples", "physics_prior_input",
           "run_task"]

METHOD_LDM = "LDM (ALL-PET)"
METHOD_INPUT = "OSEM of input"
METHOD_INPUT_FILTERED = "OSEM of input + post-filter"
METHOD_UNET = "UNet regression (supervised)"
METHOD_UNMIXING = "Linear unmixing + OSEM"
METHOD_UNMIXING_FILTERED = "Linear unmixing + OSEM + post-filter"
METHOD_TARGET = "reference: OSEM of target data"
# full-dose counts of a 128 x 128 clinical slice: about 1e8 prompts of a brain scan over about 100 slices
COUNTS_PER_128_SLICE = 1e6


@dataclass
class PipelineConfig:
    """Settings of one task run (defaults: the ``allpet demo`` scale, minutes on a 2-core CPU).

    Data: ``size`` pixels and ``n_views`` views of one ``anatomy`` (2D), low-dose
    factor ``dose_reduction_factor``, ``n_lesions`` per sample, ``n_train`` /
    ``n_test`` samples, ``seed``; or ``train_data`` / ``test_data`` folders.
    ``total_counts``: full-dose expected prompts per slice; default
    ``COUNTS_PER_128_SLICE * (size / 128) ** 2``, the counts per pixel of a
    128 x 128 clinical slice with 1e6 counts (a brain scan of about 1e8
    prompts over about 100 slices), so that a coarse demo grid is as noisy
    per pixel as clinical data. With 1e6 counts on a 32 x 32 grid instead,
    OSEM of the low-dose data is within 1.4 dB of OSEM of noise-free data
    (26.96 against 28.33 dB on the demo's test set), which leaves no room
    for the issue's +3 dB target.
    Model input: with ``physics_prior`` (default), the LDM and the UNet
    baseline are conditioned on the input's physics prior
    (:meth:`~tasks.spec.PETTask.physics_prior`: the forward model of the
    post-filtered OSEM image of the input, filter FWHM ``prior_fwhm_voxels``
    voxels; None, the default: the task's own,
    :attr:`~tasks.spec.PETTask.prior_fwhm_voxels`, 2 voxels as the
    post-filter tuning picks for low dose at the demo scale, none for
    attenuation correction;
    with ``use_tma`` the lesions' attention keeps them unfiltered;
    tracer separation: each output channel's linear-unmixing estimate of
    the measured sum, :mod:`tasks.tracer_separation`)
    instead of the raw measured sinogram; on low-dose at the demo scale with
    500 training samples the prior lifted the residual UNet (300 steps) from
    23.1 to 23.5 dB image PSNR, and the LDM on it scores 23.5 dB against
    22.6 dB for post-filtered OSEM (``python -m benchmarks.bench_physics_prior``,
    benchmarks/results/physics_prior_low_dose.md). Where the prior is like
    the target (:attr:`~tasks.spec.PETTask.residual_decode`) the LDM outputs
    it plus a decoded correction, with an autoencoder that also learns the
    inputs where the task asks for it (:attr:`~tasks.spec.PETTask.autoencode_inputs`;
    ``python -m benchmarks.bench_tasks``).
    Count-level augmentation: ``count_resampling`` fresh inputs per
    training sample (:func:`~tasks.examples.with_resampled_inputs`; low dose
    only: new binomial thinnings of the full-dose prompts, which real data
    allow too). Off by default: at the demo's short training it changed the
    LDM by +0.04 dB and the UNet by +0.03 dB (K = 3); it pays when training
    is long enough to overfit the inputs' noise (500 samples, residual UNet,
    3,000 steps: 24.06 dB image PSNR with K = 7 against 23.72 dB without;
    ``python -m benchmarks.bench_count_resampling``).
    Anatomy-level augmentation: ``anatomy_warps`` new patients per training
    sample (:func:`~tasks.examples.with_warped_anatomies`, every task: the
    sample's anatomy under a random deformation, scanned again through its
    own physics), before the count resampling. Off by default: at the demo
    scale on low dose (W = 7, one run) the LDM scored 23.52 dB against 23.36 dB without,
    the UNet 23.51 against 23.58, both inside the run-to-run spread; it pays
    when training is long enough to learn the anatomies by heart
    (``python -m benchmarks.bench_training_phantoms``).
    Model: the ``tiny`` preset (:mod:`ldm.configs`) with an autoencoder of
    downsampling factor ``latent_factor`` (2, 4 or 8; None, the default:
    the task's own, :attr:`~tasks.spec.PETTask.latent_factor`: 2, except
    the preset's 4 for low dose, where factor 2 scored the same image PSNR
    at the demo scale, 23.37 against 23.36 dB in one run each, and again
    when trained longer, 23.33 against 23.40 dB, while training 1.5 times
    slower; ``python -m benchmarks.bench_ldm_latent``) and a denoiser of
    ``denoiser_channels`` channels on its first level (None, the default: the
    preset's 32; a multiple of 8, its GroupNorm groups) in ``ldm_mode`` (``"ddpm"``:
    noise -> target conditioned on the input; ``"bridge"``: input -> target
    diffusion bridge, which predicts ``z0``; the default: at the demo scale it
    scored 3.3 dB higher image PSNR than ``"ddpm"`` on low-dose) with ``use_tma``,
    ``use_constraints``, and RMAS/DMM augmentation ``use_rmas``
    (``rmas_per_example`` inpainting samples per paired example);
    ``autoencoder_steps``, ``diffusion_steps``, ``batch_size``. Sampling:
    ``sampler``, ``sampling_steps``, ``guidance_scale`` (TMA guidance).
    Baselines: ``unet_steps``; OSEM ``osem_subsets`` x ``osem_iterations``;
    post-filter FWHMs tried, in voxels (``post_filter_fwhm_voxels``).
    ``device``: ``"auto"`` (CUDA when torch sees it) or ``"cpu"``/``"cuda"``;
    ``threads``: torch CPU threads (1 is fastest on a shared 2-core machine).
    """

    task: str = "low_dose"
    size: int = 32
    n_views: int = 32
    anatomy: str = "brain"
    dose_reduction_factor: float = 20.0
    n_lesions: tuple = (1, 3)
    total_counts: Optional[float] = None
    n_train: int = 128
    n_test: int = 16
    seed: int = 0
    train_data: Optional[str] = None
    test_data: Optional[str] = None
    physics_prior: bool = True
    prior_fwhm_voxels: Optional[float] = None
    count_resampling: int = 0
    anatomy_warps: int = 0
    use_tma: bool = True
    use_constraints: bool = True
    use_rmas: bool = True
    rmas_per_example: float = 1.0
    ldm_mode: str = "bridge"
    latent_factor: Optional[int] = None
    denoiser_channels: Optional[int] = None
    autoencoder_steps: int = 900
    diffusion_steps: int = 1400
    batch_size: int = 8
    sampler: str = "ddim"
    sampling_steps: int = 25
    guidance_scale: float = 0.0
    unet_steps: int = 300
    baselines: bool = True
    osem_subsets: int = 4
    osem_iterations: int = 4
    post_filter_fwhm_voxels: tuple = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
    device: str = "auto"
    threads: Optional[int] = 1

    def __post_init__(self) -> None:
        self.task = get_task(self.task).name
        for name in ("size", "n_views", "n_train", "n_test", "batch_size", "sampling_steps", "osem_subsets",
                     "osem_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("autoencoder_steps", "diffusion_steps", "unet_steps", "count_resampling", "anatomy_warps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.autoencoder_steps + self.diffusion_steps == 0:
            raise ValueError("autoencoder_steps + diffusion_steps must be positive")
        if self.prior_fwhm_voxels is not None and not self.prior_fwhm_voxels >= 0:
            raise ValueError(f"prior_fwhm_voxels must be >= 0 (or None: the task's), got {self.prior_fwhm_voxels!r}")
        if self.osem_subsets > self.n_views:
            raise ValueError(f"osem_subsets ({self.osem_subsets}) must be at most n_views ({self.n_views})")
        if self.latent_factor is not None and (self.latent_factor not in (2, 4, 8)
                                               or isinstance(self.latent_factor, bool)):
            raise ValueError(f"latent_factor must be 2, 4 or 8 (or None: the task's), got {self.latent_factor!r}")
        if self.denoiser_channels is not None and (isinstance(self.denoiser_channels, bool)
                                                   or not isinstance(self.denoiser_channels, int)
                                                   or self.denoiser_channels < 8 or self.denoiser_channels % 8):
            raise ValueError("denoiser_channels must be a positive multiple of 8 (or None: the preset's), got "
                             f"{self.denoiser_channels!r}")
        if self.ldm_mode not in ("ddpm", "bridge"):
            raise ValueError(f"ldm_mode must be 'ddpm' or 'bridge', got {self.ldm_mode!r}")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")

    @classmethod
    def quick(cls, task: str = "low_dose", **changes: Any) -> "PipelineConfig":
        """CI-sized run (well under a minute of compute after Numba's first compilation)."""
        values = dict(task=task, size=16, n_views=16, n_train=8, n_test=2, autoencoder_steps=4, diffusion_steps=4,
                      batch_size=4, sampling_steps=2, unet_steps=4, osem_subsets=2, osem_iterations=2,
                      post_filter_fwhm_voxels=(0.0, 1.0))
        values.update(changes)
        return cls(**values)

    @property
    def counts(self) -> float:
        """Full-dose expected prompts per slice (see the class notes)."""
        if self.total_counts is not None:
            return float(self.total_counts)
        return COUNTS_PER_128_SLICE * (self.size / 128.0) ** 2

    def simulation_config(self) -> SimulationConfig:
        return SimulationConfig(size=self.size, n_views=self.n_views, anatomy=self.anatomy,
                                dose_reduction_factors=(self.dose_reduction_factor,), n_lesions=tuple(self.n_lesions),
                                total_counts=self.counts)

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}


@dataclass
class TaskResult:
    """What :func:`run_task` measured.

    Attributes
    ----------
    config : PipelineConfig
    records : list of dict
        One per (method, test sample, channel): ``method``, ``sample``,
        ``channel`` and every metric of :mod:`tasks.metrics`.
    methods : list of str
        In table order.
    example : dict
        Arrays of test sample 0 for figures: ``input`` sinogram, ``reference_sinogram``,
        ``reference_image``, ``labels``, ``attention_image``, ``attention_sinogram`` and
        per method ``sinograms[method]``, ``images[method]`` (channel 0).
    logs : dict of str to dict of str to list of float
        Training curves: ``"LDM autoencoder"``, ``"LDM diffusion"`` (step, loss), ``"UNet"``.
    timings_s : dict of str to float
    info : dict
        Parameter counts, device, post-filter FWHM, task summary.
    """

    config: PipelineConfig
    records: list
    methods: list
    example: dict
    logs: dict
    timings_s: dict
    info: dict

    def summary(self, metric: str, method: str):
        """:func:`tasks.metrics.summarise` of ``metric`` over the test set for ``method``."""
        return summarise([r[metric] for r in self.records if r["method"] == method])

    def paired_difference(self, metric: str, method: str, baseline: str):
        """Summary of ``metric(method) - metric(baseline)`` per test (sample, channel)."""
        values = {(r["sample"], r["channel"]): r[metric] for r in self.records if r["method"] == baseline}
        return summarise([r[metric] - values[(r["sample"], r["channel"])] for r in self.records
                          if r["method"] == method and (r["sample"], r["channel"]) in values])


# ----------------------------------------------------------------------------------------------- data

def make_samples(config: PipelineConfig, progress: bool = True) -> tuple[list[TaskSample], list[TaskSample]]:
    """Training and test samples: read from ``train_data``/``test_data`` or simulated (module docstring)."""
    from tqdm.auto import tqdm

    if (config.train_data is None) != (config.test_data is None):
        raise ValueError("give both train_data and test_data (dataset folders), or neither to simulate")
    if config.train_data is not None:
        return (load_samples(config.train_data, config.task, config.n_train, progress),
                load_samples(config.test_data, config.task, config.n_test, progress))
    simulation = config.simulation_config()
    out = []
    for label, seed, n in (("training", config.seed, config.n_train), ("test", config.seed + 1, config.n_test)):
        out.append([simulate_sample(config.task, simulation, sample_rng(seed, i))
                    for i in tqdm(range(n), desc=f"simulate {label} {config.task}", disable=not progress,
                                  unit="sample")])
    return out[0], out[1]


def load_samples(path: Any, task: str, n: Optional[int] = None, progress: bool = True) -> list[TaskSample]:
    """The first ``n`` (default all) samples of a dataset folder written by ``allpet simulate`` for ``task``."""
    from tqdm.auto import tqdm

    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"dataset folder {str(path)!r} does not exist")
    dataset = SimulatedDataset(folder)
    if dataset.task != task:
        raise ValueError(f"{folder} holds a {dataset.task!r} dataset, but the task is {task!r}")
    n = len(dataset) if n is None else n
    if n > len(dataset):
        raise ValueError(f"{folder} holds {len(dataset)} samples, {n} were asked for")
    return [dataset[i] for i in tqdm(range(n), desc=f"read {folder.name}", disable=not progress, unit="sample")]


# ----------------------------------------------------------------------------------------------- LDM

def _device(config: PipelineConfig) -> Any:
    import torch

    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(config.device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {config.device!r} was asked for, but torch sees no CUDA device")
    return torch.device(config.device)


def _ldm_experiment(task: PETTask, config: PipelineConfig, n_items: int, out_dir: Path):
    """(LDMConfig, TrainConfig) from the tiny preset and the pipeline settings."""
    from ldm.config import StageConfig, load_config

    preset = load_config("tiny")
    mode = {"mode": "bridge", "prediction_type": "sample"} if config.ldm_mode == "bridge" else {"mode": "ddpm"}
    preset_model = preset.model_config()
    factor = task.latent_factor if config.latent_factor is None else config.latent_factor
    levels = (1,) + (2,) * (factor.bit_length() - 1)  # one stride-2 level per factor of 2
    autoencoder = dataclasses.replace(preset_model.autoencoder, channel_mults=levels)
    denoiser = preset_model.denoiser
    if config.denoiser_channels is not None:
        denoiser = dataclasses.replace(denoiser, base_channels=config.denoiser_channels)
    # the residual decode adds the input's full-resolution content to the output: right for the smooth physics
    # prior of an input like the target (PETTask.residual_decode), wrong for a raw noisy input, whose Poisson noise
    # it would pass through (ablation "no physics prior")
    residual = config.physics_prior and task.residual_decode
    model = dataclasses.replace(preset_model, autoencoder=autoencoder, denoiser=denoiser,
                                use_tma=config.use_tma, use_constraints=config.use_constraints,
                                n_tracers=task.n_outputs if task.n_outputs > 1 else 0,
                                residual_decode=residual, autoencode_inputs=residual and task.autoencode_inputs,
                                **mode)
    stages = {}
    for name, steps in (("autoencoder", config.autoencoder_steps), ("diffusion", config.diffusion_steps)):
        base = preset.train.stages[name]
        stages[name] = StageConfig(steps=steps, lr=base.lr, warmup_steps=min(base.warmup_steps, steps // 10),
                                   min_lr_ratio=base.min_lr_ratio)
    total = config.autoencoder_steps + config.diffusion_steps
    train = dataclasses.replace(preset.train, stages=stages, batch_size=min(config.batch_size, n_items),
                                out_dir=str(out_dir), seed=config.seed, checkpoint_every=max(total, 1),
                                log_every=max(1, min(10, total // 20 or 1)), keep_checkpoints=1,
                                cpu_threads=config.threads, num_workers=0)
    return model, train


def _prior_fwhm_voxels(task: PETTask, config: PipelineConfig) -> float:
    """Post-filter FWHM (voxels) of the physics prior: the config's, else the task's own."""
    return task.prior_fwhm_voxels if config.prior_fwhm_voxels is None else config.prior_fwhm_voxels


def ldm_data_config(task: PETTask, config: PipelineConfig, projector: Any):
    """The ``ldm.config.DataConfig`` under which ``allpet sample`` conditions new inputs as this pipeline does.

    It names the samples' parallel-beam geometry (``projector``) and the
    model input: ``"physics_prior"`` with the pipeline's filter and OSEM
    settings, ``"unmixing"`` for tracer separation with the prior (the run's
    ``unmixing_weights.npy`` holds the weights), else ``"measured"``. Its
    ``path`` is ``config.train_data``, or a note that the training samples
    were simulated in memory. With ``use_tma`` off the pipeline filters the
    lesions too, which a folder's prior does not: such a model's inputs differ
    from ``allpet sample``'s at the lesions.
    """
    from ldm.config import DataConfig

    geometry = projector.geometry
    if not config.physics_prior:
        model_input = "measured"
    else:
        model_input = "unmixing" if task.n_outputs > 1 else "physics_prior"
    return DataConfig(source="folder", task="paired",
                      path=config.train_data or "(simulated in memory by tasks.pipeline.run_task)",
                      image_size=int(geometry.grid.shape[-1]), voxel_size_mm=float(geometry.grid.voxel_size_mm[-1]),
                      n_views=int(geometry.n_views), n_bins=int(geometry.n_bins),
                      bin_width_mm=float(geometry.bin_width_mm), seed=config.seed, model_input=model_input,
                      prior_fwhm_voxels=float(_prior_fwhm_voxels(task, config)),
                      prior_osem=(config.osem_subsets, config.osem_iterations))


def train_ldm(task: PETTask, examples: Examples, config: PipelineConfig, out_dir: Path, projector: Any,
              progress: bool = True):
    """Train the tiny sinogram LDM on ``examples`` (+ RMAS/DMM samples if ``use_rmas``); returns the model.

    Its checkpoint in ``out_dir/checkpoints`` holds ``config.yaml`` (model,
    training and :func:`ldm_data_config`), so ``allpet sample`` can apply it.
    """
    from ldm.config import ExperimentConfig, config_to_dict
    from ldm.diffusion import SinogramLDM
    from ldm.train import Trainer, seed_everything, seed_for

    dataset = ExampleDataset(examples, labels=task.n_outputs > 1)
    if config.use_rmas:
        dataset = MixedDataset(dataset, projector, config.rmas_per_example, seed=config.seed)
    model_config, train_config = _ldm_experiment(task, config, len(dataset), out_dir)
    run_config = config_to_dict(ExperimentConfig(model_config, train_config, ldm_data_config(task, config, projector)))
    seed_everything(seed_for(config.seed))
    model = SinogramLDM(model_config)
    trainer = Trainer(model, train_config, dataset, out_dir=out_dir, run_config=run_config, device=_device(config),
                      progress=progress)
    trainer.fit()
    model.eval()
    return model


def sample_ldm(model: Any, task: PETTask, examples: Examples, config: PipelineConfig,
               progress: bool = True) -> np.ndarray:
    """LDM sinograms ``(N, n_views, n_bins)`` for the examples' inputs (deterministic in ``config.seed``)."""
    import torch
    from tqdm.auto import tqdm

    from ldm.training_data import collate

    dataset = ExampleDataset(examples, labels=task.n_outputs > 1, with_target=False)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    size = max(1, min(16, len(dataset)))
    out = []
    for start in tqdm(range(0, len(dataset), size), desc=f"LDM sampling ({config.sampler}, {config.sampling_steps} "
                      "steps)", disable=not progress, unit="batch"):
        batch = collate([dataset[i] for i in range(start, min(start + size, len(dataset)))])
        batch = {key: value.to(device) for key, value in batch.items()}
        sinograms = model.sample(batch, sampler=config.sampler, n_steps=config.sampling_steps, generator=generator,
                                 guidance_scale=config.guidance_scale)
        out.append(sinograms[:, 0].float().cpu().numpy())
    return np.concatenate(out)


def physics_prior_input(task: PETTask, config: PipelineConfig) -> Optional[ModelInput]:
    """The ``model_input`` of :func:`~tasks.examples.build_examples` for ``config`` (None: the measured inputs).

    With ``config.physics_prior``: :func:`tasks.model_inputs.physics_prior_model_input`
    with the config's filter (``prior_fwhm_voxels``, else the task's) and OSEM settings; with
    ``config.use_tma`` the lesions' TMA image attention keeps them unfiltered.
    """
    if not config.physics_prior:
        return None
    return physics_prior_model_input(task, _prior_fwhm_voxels(task, config), config.osem_subsets,
                                     config.osem_iterations, config.use_tma)


def _read_log(path: Path) -> dict:
    import csv

    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    return {"step": [float(r["step"]) for r in rows], "loss": [float(r["loss"]) for r in rows]}


# ----------------------------------------------------------------------------------------------- evaluation

def _grid(sample: TaskSample):
    return sample_projector(sample).geometry.grid


def _forward(system: Any, image: np.ndarray) -> np.ndarray:
    return np.asarray(system.expected(np.ascontiguousarray(image, dtype=np.float64)))


def run_task(config: PipelineConfig, work_dir: Any, progress: bool = True,
             samples: Optional[tuple[Sequence[TaskSample], Sequence[TaskSample]]] = None) -> TaskResult:
    """Run one task end to end (module docstring); ``work_dir`` receives the LDM run (logs, checkpoint).

    Parameters
    ----------
    config : PipelineConfig
    work_dir : path
        Folder for the training run (created): ``ldm/`` (logs, checkpoint)
        and, where the model is conditioned on linear unmixing (tracer
        separation with the prior), ``unmixing_weights.npy``
        ``(n_outputs, n_views, n_bins)`` float32, which new inputs need too
        (:func:`tasks.examples.with_unmixed_inputs`).
    progress : bool
        tqdm progress bars.
    samples : (train, test), optional
        Samples to use instead of :func:`make_samples` (e.g. shared by ablations).

    Raises
    ------
    ValueError
        Inconsistent data: another task, other sinogram shapes, a geometry
        mismatch between samples, missing folders or files.
    """
    import torch
    from tqdm.auto import tqdm

    from .baselines import LinearUnmixing, SinogramUNet, osem_image, post_filter, tune_post_filter

    if not isinstance(config, PipelineConfig):
        raise TypeError(f"config must be a PipelineConfig, got {type(config).__name__}")
    task = get_task(config.task)
    device = _device(config)
    if device.type == "cpu" and config.threads:
        torch.set_num_threads(config.threads)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    train, test = samples if samples is not None else make_samples(config, progress)
    train, test = list(train)[:config.n_train], list(test)[:config.n_test]
    if not train or not test:
        raise ValueError("need at least one training and one test sample")
    check_same_geometry(train, test)
    osem_args = (config.osem_subsets, config.osem_iterations)
    voxel_mm = float(_grid(train[0]).voxel_size_mm[-1])
    model_input = physics_prior_input(task, config)
    augmented = with_warped_anatomies(task, train, config.anatomy_warps, config.seed)
    train_ex, test_ex = (build_examples(task, samples, model_input, progress) for samples in
                         (with_resampled_inputs(task, augmented, config.count_resampling, config.seed), test))
    unmixing = None
    if task.n_outputs > 1:  # tracer separation: linear unmixing is its baseline and, with the prior on, its prior
        unmixing = LinearUnmixing().fit(train_ex.measured[train_ex.channel == 0],
                                        np.stack([train_ex.target[train_ex.channel == c]
                                                  for c in range(task.n_outputs)], axis=1))
        if config.physics_prior:
            train_ex, test_ex = (with_unmixed_inputs(ex, unmixing.weights) for ex in (train_ex, test_ex))
    projector = sample_projector(train[0])
    timings["data"] = time.perf_counter() - clock

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    if unmixing is not None and config.physics_prior:
        np.save(work_dir / "unmixing_weights.npy", unmixing.weights.astype(np.float32))
    clock = time.perf_counter()
    model = train_ldm(task, train_ex, config, work_dir / "ldm", projector, progress)
    timings["LDM training"] = time.perf_counter() - clock
    clock = time.perf_counter()
    ldm_sinograms = sample_ldm(model, task, test_ex, config, progress)
    timings["LDM sampling"] = time.perf_counter() - clock

    sinograms: dict[str, np.ndarray] = {METHOD_LDM: ldm_sinograms}
    info: dict[str, Any] = {"task_summary": task.summary, "device": str(device),
                            "ldm_parameters": sum(p.numel() for p in model.parameters()),
                            "latent_factor": model.config.autoencoder.downsampling_factor,
                            "denoiser_channels": model.config.denoiser.base_channels,
                            "n_train_examples": len(train_ex), "n_test_examples": len(test_ex)}
    logs = {f"LDM {stage}": _read_log(work_dir / "ldm" / f"log_{stage}.csv") for stage in ("autoencoder", "diffusion")}
    labels = test_ex.channel if task.n_outputs > 1 else None
    if config.baselines and config.unet_steps > 0:
        clock = time.perf_counter()
        unet = SinogramUNet(task.n_outputs if task.n_outputs > 1 else 0, device=device, seed=config.seed)
        unet.fit(train_ex.input, train_ex.target, train_ex.channel if task.n_outputs > 1 else None,
                 steps=config.unet_steps, batch_size=config.batch_size, seed=config.seed, progress=progress)
        sinograms[METHOD_UNET] = unet.predict(test_ex.input, labels)
        logs["UNet"] = {"step": list(range(1, len(unet.losses) + 1)), "loss": unet.losses}
        info["unet_parameters"] = unet.n_parameters
        timings["UNet baseline"] = time.perf_counter() - clock
    if config.baselines and unmixing is not None:
        mixed = unmixing.predict(test_ex.measured[test_ex.channel == 0])
        sinograms[METHOD_UNMIXING] = mixed.reshape(-1, *mixed.shape[2:])  # channels innermost, like the examples

    clock = time.perf_counter()
    fwhm_grid = [f * voxel_mm for f in config.post_filter_fwhm_voxels]
    tuned = 0.0
    filtered_method = None
    if config.baselines:
        tune = train[:min(len(train), 16)]
        if task.n_outputs == 1:
            images = [osem_image(s.input, task.input_system(s), *osem_args)
                      * task.input_image_scale(s) for s in tune]
            systems = [task.target_system(s) for s in tune]
            references = [task.reference_image(s) for s in tune]
            filtered_method = METHOD_INPUT_FILTERED
        else:
            tune_ex = build_examples(task, tune)
            guess = unmixing.predict(tune_ex.measured[tune_ex.channel == 0]).reshape(-1, *tune_ex.input.shape[1:])
            pairs = list(zip(tune_ex.sample_index, tune_ex.channel))
            systems = [task.target_system(tune[i], c) for i, c in pairs]
            images = [osem_image(g, sys, *osem_args) for g, sys in zip(guess, systems)]
            references = [task.reference_image(tune[i], c) for i, c in pairs]
            filtered_method = METHOD_UNMIXING_FILTERED
        tuned = tune_post_filter(images, references, systems, fwhm_grid)
        info["post_filter_fwhm_mm"] = tuned
    timings["post-filter tuning"] = time.perf_counter() - clock

    clock = time.perf_counter()
    records: list[dict] = []
    example: dict[str, Any] = {"sinograms": {}, "images": {}}
    methods: list[str] = []
    for k in tqdm(range(len(test_ex)), desc="OSEM + metrics", disable=not progress, unit="image"):
        sample, channel = test[int(test_ex.sample_index[k])], int(test_ex.channel[k])
        system = task.target_system(sample, channel)
        reference_image = task.reference_image(sample, channel)
        reference_sinogram = task.reference_sinogram(sample, channel)
        hosts = {lesion["name"]: lesion["host"] for lesion in sample.metadata.get("lesions", [])}
        results: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if config.baselines and task.input_system(sample) is not None:
            image = osem_image(sample.input, task.input_system(sample), *osem_args) * task.input_image_scale(sample)
            results[METHOD_INPUT] = (test_ex.measured[k], image)
            filtered = post_filter(image, system, tuned)
            results[METHOD_INPUT_FILTERED] = (_forward(system, filtered), filtered)
        for method, values in sinograms.items():
            image = osem_image(values[k], system, *osem_args)
            results[method] = (values[k], image)
            if method == METHOD_UNMIXING:
                filtered = post_filter(image, system, tuned)
                results[METHOD_UNMIXING_FILTERED] = (_forward(system, filtered), filtered)
        results[METHOD_TARGET] = (test_ex.target[k], osem_image(test_ex.target[k], system, *osem_args))
        for method, (sinogram, image) in results.items():
            if method not in methods:
                methods.append(method)
            record = {"method": method, "sample": int(test_ex.sample_index[k]), "channel": channel,
                      **similarity_metrics(reference_sinogram, sinogram, "sino_"),
                      **image_metrics(reference_image, image, sample.labels, sample.names, hosts)}
            records.append(record)
            if k == 0:
                example["sinograms"][method], example["images"][method] = np.asarray(sinogram), np.asarray(image)
        if k == 0:
            attention_image, attention_sinogram = lesion_attention(sample)
            example.update(input=test_ex.measured[k], reference_sinogram=reference_sinogram,
                           reference_image=reference_image, labels=sample.labels, attention_image=attention_image,
                           attention_sinogram=attention_sinogram, names=sample.names)
    timings["reconstruction + metrics"] = time.perf_counter() - clock
    order = [METHOD_INPUT, METHOD_INPUT_FILTERED, METHOD_UNMIXING, METHOD_UNMIXING_FILTERED, METHOD_UNET, METHOD_LDM,
             METHOD_TARGET]
    methods = [m for m in order if m in methods]
    info["filtered_baseline"] = filtered_method
    return TaskResult(config, records, methods, example, logs, timings, info)
