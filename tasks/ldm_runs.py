"""The LDM of a task run: its experiment config, its training and its sampling.

:func:`ldm_experiment` derives the model and training settings from the
``tiny`` preset (:mod:`ldm.presets`) and a :class:`~tasks.pipeline_config.PipelineConfig`,
or, with ``ldm_init``, from pretrained weights (the shipped foundation model:
the same architecture, fine-tuned as the task's bridge; its items carry the
prompt labels and the sinogram window, :class:`PromptedItems`);
:func:`train_ldm` trains it on a task's examples (:mod:`tasks.examples`),
keeping a checkpoint that ``allpet sample`` can apply (:func:`ldm_data_config`);
:func:`sample_ldm` draws its sinograms for test examples.
:func:`sample_unsupervised` uses the pretrained model with no paired
example at all (low dose: a posterior sample of the measured counts).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pet_projection.simulation import TaskSample

from .examples import ExampleDataset, Examples, MixedDataset
from .pipeline_config import PipelineConfig
from .task import PETTask

__all__ = ["PromptedItems", "autoencoder_steps", "example_items", "ldm_data_config", "ldm_experiment", "sample_ldm",
           "sample_unsupervised", "torch_device", "train_ldm", "training_logs"]


def torch_device(config: PipelineConfig) -> Any:
    """The torch device of ``config.device`` (``"auto"``: CUDA when torch sees it); ``ValueError`` if absent."""
    import torch

    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(config.device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {config.device!r} was asked for, but torch sees no CUDA device")
    return torch.device(config.device)


class PromptedItems:
    """A dataset of model items with the prompt labels and the sinogram window a pretrained model takes.

    Each item gains ``task`` (the task's index in :data:`ldm.prompts.PROMPT_TASKS`,
    or ``"inpainting"`` for an RMAS item, whose mask is not all ones),
    ``region`` and, unless the item has one, ``tracer`` (fixed ids, ``-1``:
    unspecified), and ``window`` (``row``, :func:`ldm.windows.window_row`).
    """

    def __init__(self, items: Any, task: str, tracer: int, region: int, row: np.ndarray) -> None:
        from ldm.prompts import PROMPT_TASKS

        self.items, self.row = items, np.asarray(row, dtype=np.float64)
        self.task, self.inpainting = PROMPT_TASKS.index(task), PROMPT_TASKS.index("inpainting")
        self.tracer, self.region = tracer, region

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.items, "set_epoch"):
            self.items.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        import torch

        item = dict(self.items[index])
        task = self.task if bool(item["mask"].all()) else self.inpainting
        item["task"] = torch.tensor(task, dtype=torch.int64)
        item["region"] = torch.tensor(self.region, dtype=torch.int64)
        item.setdefault("tracer", torch.tensor(self.tracer, dtype=torch.int64))
        item["window"] = torch.from_numpy(self.row.copy())
        return item


def _prompted(items: Any, task: PETTask, config: PipelineConfig, projector: Any) -> Any:
    """``items`` as :class:`PromptedItems` for the foundation architecture (``ldm_init`` or ``ldm_preset``)."""
    if config.ldm_init is None and config.ldm_preset != "foundation":
        return items
    return PromptedItems(items, task.name, *_prompt_ids(config, projector))


def example_items(task: PETTask, examples: Examples, config: PipelineConfig, projector: Any,
                  with_target: bool = True) -> Any:
    """``examples`` as LDM batch items of ``config``'s model (with prompt labels and window where it takes them)."""
    return _prompted(ExampleDataset(examples, labels=task.n_labels > 0, with_target=with_target), task, config,
                     projector)


def _prompt_ids(config: PipelineConfig, projector: Any) -> tuple[int, int, np.ndarray]:
    """Tracer and region ids of the run's prompt (-1: unspecified) and the window row of ``projector``."""
    from ldm.windows import window_row
    from pet_projection.simulation import ANATOMIES, TRACERS

    tracer = config.simulation_config().tracer
    region = ANATOMIES.index(config.anatomy) if config.anatomy in ANATOMIES else -1
    return list(TRACERS).index(tracer), region, window_row(projector.geometry)


def autoencoder_steps(task: PETTask, config: PipelineConfig) -> int:
    """Autoencoder training steps of ``task``'s LDM run under ``config`` (:func:`ldm_experiment`)."""
    if config.ldm_init is None:
        return config.autoencoder_steps
    fine_tuned = config.physics_prior and task.residual_decode and task.autoencode_inputs
    return config.finetune_autoencoder_steps if fine_tuned else 0


def ldm_experiment(task: PETTask, config: PipelineConfig, n_items: int, out_dir: Path):
    """``(LDMConfig, TrainConfig)`` of ``task``'s LDM from the tiny preset (or ``ldm_init``) and the pipeline settings.

    ``n_items`` is the training set's size (the batch is at most that), ``out_dir`` the run folder.
    With ``ldm_init`` the model is the pretrained one (its architecture,
    scales and condition channels) run as the task's bridge; its autoencoder
    is kept, or fine-tuned for ``config.finetune_autoencoder_steps`` on the
    examples' targets and inputs where the task's inputs are another kind of
    sinogram (:attr:`~tasks.task.PETTask.autoencode_inputs`: the pretrained
    autoencoder reconstructs attenuation-corrected targets with about twice
    the relative error of one fine-tuned for 200 steps, docs/foundation.md); with
    ``ldm_preset="foundation"`` it is the same architecture with fresh
    weights, both stages trained.
    """
    from ldm.experiment import StageConfig
    from ldm.presets import load_config

    preset = load_config("tiny")
    if config.ldm_init is not None or config.ldm_preset == "foundation":
        from ldm.weights import SHIPPED_MODELS, load_model, shipped_weights

        source = None
        if config.ldm_init is not None:
            source = shipped_weights(config.ldm_init) if config.ldm_init in SHIPPED_MODELS else config.ldm_init
            architecture = load_model(source)[1]
        else:
            architecture = load_config("foundation")
        residual = config.physics_prior and task.residual_decode
        autoencode_inputs = residual and task.autoencode_inputs
        model = dataclasses.replace(architecture.model_config(), mode="bridge", prediction_type="sample",
                                    use_constraints=config.use_constraints, residual_decode=residual,
                                    autoencode_inputs=autoencode_inputs)
        steps = {"autoencoder": autoencoder_steps(task, config), "diffusion": config.diffusion_steps}
        # fine-tuning starts from trained weights: a smaller peak learning rate than training from scratch
        lr_scale = 0.4 if source is not None else 1.0
        stages = {name: StageConfig(steps=n, lr=lr_scale * architecture.train.stages[name].lr,
                                    warmup_steps=min(architecture.train.stages[name].warmup_steps, n // 10),
                                    min_lr_ratio=architecture.train.stages[name].min_lr_ratio)
                  for name, n in steps.items()}
        total = sum(steps.values())
        train = dataclasses.replace(preset.train, stages=stages, batch_size=min(config.batch_size, n_items),
                                    out_dir=str(out_dir), seed=config.seed, checkpoint_every=max(total, 1),
                                    log_every=max(1, min(10, total // 20 or 1)), keep_checkpoints=1,
                                    cpu_threads=config.threads, num_workers=0,
                                    init_from=None if source is None else str(source),
                                    calibrate_sinogram_scale=source is not None)
        return model, train
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
                                n_tracers=task.n_labels,
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


def ldm_data_config(task: PETTask, config: PipelineConfig, projector: Any):
    """The ``ldm.experiment.DataConfig`` under which ``allpet sample`` conditions new inputs as this pipeline does.

    It names the samples' parallel-beam geometry (``projector``) and the
    model input: the task's prior with ``config.physics_prior``
    (:attr:`~tasks.task.PETTask.prior_model_input`: ``"physics_prior"`` with
    the pipeline's filter and OSEM settings, or ``"unmixing"`` for tracer
    separation, whose run keeps the weights in ``unmixing_weights.npy``),
    else ``"measured"``, and the attention's source (``config.attention``).
    Its ``path`` is ``config.train_data``, or a note that the training
    samples were simulated in memory. With ``use_tma`` off the pipeline filters the
    lesions too, which a folder's prior does not: such a model's inputs differ
    from ``allpet sample``'s at the lesions.
    """
    from ldm.experiment import DataConfig

    geometry = projector.geometry
    model_input = task.prior_model_input if config.physics_prior else "measured"
    return DataConfig(source="folder", task="paired",
                      path=config.train_data or "(simulated in memory by tasks.pipeline.run_task)",
                      image_size=int(geometry.grid.shape[-1]), voxel_size_mm=float(geometry.grid.voxel_size_mm[-1]),
                      n_views=int(geometry.n_views), n_bins=int(geometry.n_bins),
                      bin_width_mm=float(geometry.bin_width_mm), seed=config.seed, model_input=model_input,
                      attention=config.attention,
                      prior_fwhm_voxels=float(config.prior_fwhm_voxels_for(task)),
                      prior_osem=(config.osem_subsets, config.osem_iterations))


def train_ldm(task: PETTask, examples: Examples, config: PipelineConfig, out_dir: Path, projector: Any,
              progress: bool = True):
    """Train the tiny sinogram LDM on ``examples`` (+ RMAS/DMM samples if ``use_rmas``); returns the model.

    Its checkpoint in ``out_dir/checkpoints`` holds ``config.yaml`` (model,
    training and :func:`ldm_data_config`), so ``allpet sample`` can apply it.
    """
    from ldm.experiment import ExperimentConfig, config_to_dict
    from ldm.model import SinogramLDM
    from ldm.runtime import seed_everything, seed_for
    from ldm.trainer import Trainer

    dataset = ExampleDataset(examples, labels=task.n_labels > 0)
    if config.use_rmas:
        dataset = MixedDataset(dataset, projector, config.rmas_per_example, seed=config.seed)
    dataset = _prompted(dataset, task, config, projector)
    model_config, train_config = ldm_experiment(task, config, len(dataset), out_dir)
    run_config = config_to_dict(ExperimentConfig(model_config, train_config, ldm_data_config(task, config, projector)))
    seed_everything(seed_for(config.seed))
    model = SinogramLDM(model_config)
    if train_config.init_from is not None:
        from ldm.weights import init_weights

        init_weights(model, train_config.init_from, train_config.calibrate_sinogram_scale)
    trainer = Trainer(model, train_config, dataset, out_dir=out_dir, run_config=run_config, device=torch_device(config),
                      progress=progress)
    trainer.fit()
    model.eval()
    return model


def sample_ldm(model: Any, task: PETTask, examples: Examples, config: PipelineConfig, progress: bool = True,
               projector: Any = None) -> np.ndarray:
    """LDM sinograms ``(N, n_views, n_bins)`` for the examples' inputs (deterministic in ``config.seed``).

    ``projector`` (the samples' geometry) is needed with ``config.ldm_init``: it gives the sinogram window.
    """
    import torch
    from tqdm.auto import tqdm

    from ldm.batches import collate
    from ldm.sampling import sample

    dataset = example_items(task, examples, config, projector, with_target=False)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    size = max(1, min(16, len(dataset)))
    out = []
    for start in tqdm(range(0, len(dataset), size), desc=f"LDM sampling ({config.sampler}, {config.sampling_steps} "
                      "steps)", disable=not progress, unit="batch"):
        batch = collate([dataset[i] for i in range(start, min(start + size, len(dataset)))])
        batch = {key: value.to(device) for key, value in batch.items()}
        sinograms = sample(model, batch, sampler=config.sampler, n_steps=config.sampling_steps, generator=generator,
                           guidance_scale=config.guidance_scale)
        out.append(sinograms[:, 0].float().cpu().numpy())
    return np.concatenate(out)


def sample_unsupervised(task: PETTask, samples: Sequence[TaskSample], examples: Examples, config: PipelineConfig,
                        projector: Any, progress: bool = True) -> np.ndarray:
    """Full-dose sinograms ``(N, n_views, n_bins)`` of low-dose examples from the pretrained prior alone.

    The pretrained model (``config.ldm_init``, else the shipped
    ``"foundation"``) is prompted for synthesis of the run's tracer and region
    in the samples' window and sampled as the posterior of each example's
    measured counts (``samples[sample_index].input``, Poisson;
    :func:`ldm.sampling.sample_poisson_posterior`, ``config.sampling_steps``
    steps, likelihood step ``config.unsupervised_step_size``); the expected
    counts are brought to the target's count scale
    (:meth:`~tasks.task.PETTask.input_scale`). No paired example and no
    training: what the prior knows of the anatomy and the counts alone.
    Deterministic in ``config.seed``.
    """
    import torch
    from tqdm.auto import tqdm

    from ldm.prompts import PROMPT_TASKS
    from ldm.sampling import sample_poisson_posterior
    from ldm.weights import SHIPPED_MODELS, load_model, shipped_weights

    source = config.ldm_init or "foundation"
    device = torch_device(config)
    model = load_model(shipped_weights(source) if source in SHIPPED_MODELS else source, str(device))[0]
    tracer, region, row = _prompt_ids(config, projector)
    labels = {"task": PROMPT_TASKS.index("synthesis"), "tracer": tracer, "region": region}
    picked = [samples[int(i)] for i in examples.sample_index]
    counts = np.stack([sample.input for sample in picked]).astype(np.float32)
    scales = np.array([task.input_scale(sample) for sample in picked], dtype=np.float32)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    out = []
    size = 8
    for start in tqdm(range(0, len(picked), size), desc="unsupervised sampling (Poisson posterior)",
                      disable=not progress, unit="batch"):
        chunk = torch.from_numpy(counts[start:start + size, None]).to(device)
        n = chunk.shape[0]
        batch = {"input": torch.zeros_like(chunk), "mask": torch.zeros_like(chunk),
                 "window": torch.from_numpy(np.repeat(row[None], n, axis=0)).to(device),
                 **{key: torch.full((n,), value, dtype=torch.long, device=device) for key, value in labels.items()}}
        expected = sample_poisson_posterior(model, batch, chunk, config.sampling_steps,
                                            config.unsupervised_step_size, generator=generator)
        out.append(expected[:, 0].float().cpu().numpy())
    return np.concatenate(out) * scales[:, None, None]


def training_logs(run_dir: Path) -> dict[str, dict[str, list[float]]]:
    """The LDM's training curves in ``run_dir``: ``"LDM autoencoder"``, ``"LDM diffusion"`` (step, loss; {} if none)."""
    return {f"LDM {stage}": _read_log(Path(run_dir) / f"log_{stage}.csv") for stage in ("autoencoder", "diffusion")}


def _read_log(path: Path) -> dict:
    import csv

    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    return {"step": [float(r["step"]) for r in rows], "loss": [float(r["loss"]) for r in rows]}
