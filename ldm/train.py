"""Training loop for staged models: AdamW, autocast, EMA, atomic checkpoints, exact resume, DDP.

:class:`Trainer` trains any ``torch.nn.Module`` with

- ``stages``: tuple of stage names, trained in this order (e.g.
  ``("autoencoder", "diffusion")``);
- ``parameters_for(stage)``: the parameters that stage trains (the others are
  frozen: ``requires_grad`` is switched off while the stage runs);
- ``loss(batch, stage) -> dict``: ``"loss"`` (a scalar to minimise) plus
  scalar components to log, deterministic given torch's global RNG state.

Each stage gets its own AdamW optimiser, warm-up + cosine learning-rate
schedule (:class:`~ldm.config.StageConfig`) and exponential moving average
(EMA, :class:`diffusers.training_utils.EMAModel`) of its parameters. When a
stage ends and another follows, its EMA weights are copied into the model, so
the next stage (e.g. the diffusion stage with a frozen autoencoder) trains on
exactly the weights that the EMA model will use at sampling time.

Checkpoints (``OUT/checkpoints/step_NNNNNNNN/``, written to a temporary
folder and renamed, so a kill never leaves a half-written checkpoint under a
final name): ``model.safetensors`` (weights), ``ema.safetensors`` (the EMA
model: the current stage's averaged weights, the other parameters as in the
model), ``state.pt`` (optimiser, LR scheduler, gradient scaler, EMA counters,
step and data position, and the RNG states of torch, CUDA, NumPy and Python
for every process) and ``config.yaml`` (the run's configuration, if given).
Resuming restores all of it, and the data order is a function of
``(seed, epoch)`` (:class:`~ldm.training_data.EpochBatchSampler`), so on the CPU the
steps after a resume are bit-identical to those of an uninterrupted run (on
CUDA too when torch runs with deterministic algorithms).

Distributed data parallel: start one process per GPU with ``torchrun``
(:func:`init_distributed` reads its ``env://`` variables; NCCL on CUDA, gloo
on the CPU). Each process takes ``batch_size / world_size`` items of every
global batch; gradients are averaged across processes, so the update equals
that of one process on the whole batch. Process ``r`` draws its diffusion
noise from its own seed ``(seed, r)``. Only process 0 writes files and shows
the progress bar.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .config import StageConfig, TrainConfig
from .training_data import EpochBatchSampler, collate

__all__ = ["CHECKPOINT_DIR", "DistributedEnv", "TrainState", "Trainer", "checkpoint_step", "find_checkpoint",
           "init_distributed", "load_weights", "lr_factor", "resolve_device", "seed_everything", "seed_for",
           "set_cpu_threads"]

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_PREFIX = "step_"
MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
STATE_FILE = "state.pt"
CONFIG_FILE = "config.yaml"
STATE_FORMAT = 1
AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


# ----------------------------------------------------------------------------------------------- seeds, RNG

def set_cpu_threads(n: int) -> None:
    """Use ``n`` CPU threads in torch and in Numba (the projectors).

    Both must be set: with Numba's OpenMP threading layer every parallel
    Numba call sets the thread count of the OpenMP runtime that torch shares,
    which would undo ``torch.set_num_threads`` alone.
    """
    import numba

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of CPU threads must be a positive integer, got {n!r}")
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def seed_for(*words: int) -> int:
    """A 63-bit seed mixed from non-negative integers (NumPy ``SeedSequence``), e.g. ``seed_for(seed, rank)``."""
    return int(np.random.SeedSequence(list(words)).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), NumPy's global RNG and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _rng_state() -> dict[str, Any]:
    """This process's RNG states in types ``torch.load(weights_only=True)`` accepts."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached))}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------------- distributed

@dataclass(frozen=True)
class DistributedEnv:
    """This process's place in a (possibly single-process) run and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device


def resolve_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` (CUDA device ``local_rank`` if CUDA is present, else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.

    A CUDA device becomes torch's current device.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        chosen = torch.device(f"cuda:{local_rank}" if device == "cuda" else device)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for, but torch sees no CUDA device")
        torch.cuda.set_device(chosen)
    return chosen


def init_distributed(device: str = "auto") -> DistributedEnv:
    """Join the ``torchrun`` process group (``env://``) when ``WORLD_SIZE > 1``, and pick this process's device.

    Parameters
    ----------
    device : str
        ``"auto"`` (CUDA device ``LOCAL_RANK`` if CUDA is present, else the
        CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Uses NCCL for CUDA devices and gloo for the CPU. An already initialised
    process group (e.g. from a test) is used as it is.
    """
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = resolve_device(device, local_rank)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and dist.is_available() and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo", init_method="env://")
    if dist.is_available() and dist.is_initialized():
        return DistributedEnv(dist.get_rank(), dist.get_world_size(), local_rank, chosen)
    return DistributedEnv(0, 1, 0, chosen)


def _current_env(device: Optional[torch.device]) -> DistributedEnv:
    import torch.distributed as dist

    device = torch.device("cpu") if device is None else torch.device(device)
    if dist.is_available() and dist.is_initialized():
        return DistributedEnv(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), device)
    return DistributedEnv(0, 1, 0, device)


# ----------------------------------------------------------------------------------------------- checkpoints

def checkpoint_step(path: Path) -> int:
    """Global step of checkpoint folder ``path`` (``step_NNNNNNNN``)."""
    return int(Path(path).name[len(CHECKPOINT_PREFIX):])


def find_checkpoint(path: Any) -> Optional[Path]:
    """The checkpoint folder ``path`` names: itself, or the newest one in ``path`` or ``path/checkpoints``.

    Returns None when there is none (only complete checkpoints count: the
    unfinished ones have temporary names).
    """
    path = Path(path)
    if (path / STATE_FILE).is_file() and (path / MODEL_FILE).is_file():
        return path
    for folder in (path / CHECKPOINT_DIR, path):
        if folder.is_dir():
            found = [child for child in folder.iterdir()
                     if child.is_dir() and child.name.startswith(CHECKPOINT_PREFIX)
                     and child.name[len(CHECKPOINT_PREFIX):].isdigit()]
            if found:
                return max(found, key=checkpoint_step)
    return None


def load_weights(model: nn.Module, checkpoint: Any, *, ema: bool = True) -> Path:
    """Load a checkpoint's EMA (default) or raw weights into ``model``; returns the checkpoint folder used."""
    from safetensors.torch import load_file

    folder = find_checkpoint(checkpoint)
    if folder is None:
        raise ValueError(f"no checkpoint found at {checkpoint}")
    weights = load_file(str(folder / (EMA_FILE if ema else MODEL_FILE)))
    model.load_state_dict(weights, strict=True)
    return folder


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as stream:
        os.fsync(stream.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:  # not every platform can open a directory
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_tree(path: Path) -> None:
    """Delete a folder so that a kill part-way leaves no half-deleted checkpoint under a valid name."""
    trash = path.with_name(f".trash-{path.name}-{os.getpid()}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _plain_state_dict(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies (safetensors refuses shared or strided storage)."""
    return {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in tensors.items()}


# ----------------------------------------------------------------------------------------------- schedule

def lr_factor(step: int, stage: StageConfig) -> float:
    """Learning-rate factor at step ``step`` (0-based) of a stage: linear warm-up, then cosine to ``min_lr_ratio``."""
    if step < stage.warmup_steps:
        return (step + 1) / stage.warmup_steps
    progress = min(1.0, (step - stage.warmup_steps) / max(1, stage.steps - stage.warmup_steps))
    return stage.min_lr_ratio + (1.0 - stage.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


# ----------------------------------------------------------------------------------------------- trainer

@dataclass
class TrainState:
    """Where training stands: global step, stage and step within it, data position (epoch, global batch)."""

    step: int = 0
    stage_index: int = 0
    stage_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


class _StageLoss(nn.Module):
    """``forward(batch) = model.loss(batch, stage)``, so DistributedDataParallel can wrap the loss."""

    def __init__(self, model: nn.Module, stage: str) -> None:
        super().__init__()
        self.model, self.stage = model, stage

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.model.loss(batch, self.stage)


@dataclass
class _StageRun:
    """The optimisation state of the running stage."""

    name: str
    config: StageConfig
    names: list[str]
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    ema: Any
    loss: nn.Module


class _CsvLog:
    """One CSV file per stage; columns fixed by the stage's first row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: Optional[list[str]] = None
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as stream:
                self.columns = next(csv.reader(stream), None)

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (from a run killed after its last checkpoint)."""
        if not self.path.is_file():
            return
        with open(self.path, newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
        kept = [row for row in rows if int(row["step"]) <= step]
        if len(kept) < len(rows):
            with open(self.path, "w", newline="", encoding="utf-8") as stream:
                writer = csv.DictWriter(stream, fieldnames=self.columns)
                writer.writeheader()
                writer.writerows(kept)

    def write(self, row: Mapping[str, Any]) -> None:
        new = self.columns is None
        if new:
            self.columns = list(row)
        with open(self.path, "a", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=self.columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)


class Trainer:
    """Train a staged model (see the module docstring) on a dataset of batch-dict items.

    Parameters
    ----------
    model : torch.nn.Module
        With ``stages``, ``parameters_for(stage)`` and ``loss(batch, stage)``.
        Build it with the same seed on every process (DDP also copies
        process 0's weights to the others at the start of each stage).
    config : TrainConfig
        Stages, batch size, optimiser, precision, EMA, checkpoint and log settings.
    dataset : torch Dataset
        Items are dicts of tensors (one sample each; see :mod:`ldm.data`);
        ``set_epoch(epoch)`` is called before each epoch when it exists.
    collate_fn : callable
        Items to a batch dict (default :func:`ldm.training_data.collate`).
    out_dir : str or Path, optional
        Default ``config.out_dir``.
    run_config : mapping, optional
        Plain-data description of the run (e.g. the experiment config),
        written as ``config.yaml`` into the output folder and every checkpoint.
    device : torch.device or str, optional
        Default: the CPU; use :func:`init_distributed` to pick the process's GPU.
    progress : bool
        Show a tqdm progress bar (process 0 only).

    Notes
    -----
    Logs: ``OUT/log_<stage>.csv`` with ``step``, ``epoch``, ``lr``,
    ``samples_per_s``, ``elapsed_s`` and the mean of every loss component
    over the last ``log_every`` steps (averaged over processes), and the same
    scalars for TensorBoard in ``OUT/tensorboard`` when the ``tensorboard``
    package is installed.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, dataset: Dataset, *,
                 collate_fn: Callable[[Sequence[Mapping[str, torch.Tensor]]], dict[str, torch.Tensor]] = collate,
                 out_dir: Any = None, run_config: Optional[Mapping[str, Any]] = None,
                 device: Any = None, progress: bool = True) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        for attribute in ("stages", "parameters_for", "loss"):
            if not hasattr(model, attribute):
                raise TypeError(f"model must have {attribute!r} (see ldm.train); {type(model).__name__} has not")
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        unknown = sorted(set(config.stages) - set(model.stages))
        if unknown:
            raise ValueError(f"train.stages names {unknown}, but the model's stages are {list(model.stages)}")
        self.env = _current_env(device)
        if config.precision == "fp16" and self.env.device.type != "cuda":
            raise ValueError("precision 'fp16' needs a CUDA device (loss scaling); use 'bf16' on the CPU")
        self.model = model.to(self.env.device)
        self.config = config
        self.dataset = dataset
        self.collate_fn = collate_fn
        self.out_dir = Path(config.out_dir if out_dir is None else out_dir)
        self.run_config = None if run_config is None else dict(run_config)
        self.progress = progress
        self.stage_names = [name for name in model.stages if config.stages.get(name, StageConfig()).steps > 0]
        self.sampler = EpochBatchSampler(len(dataset), config.batch_size, seed=config.seed, rank=self.env.rank,
                                         world_size=self.env.world_size)
        self.state = TrainState()
        self._run: Optional[_StageRun] = None
        self._resumed: Optional[dict[str, Any]] = None
        self._ema_weights: Optional[dict[str, torch.Tensor]] = None
        self._logs: dict[str, _CsvLog] = {}
        self._tensorboard: Any = None

    # ------------------------------------------------------------------ properties

    @property
    def is_main(self) -> bool:
        """Whether this is process 0 (the one that writes files)."""
        return self.env.rank == 0

    @property
    def total_steps(self) -> int:
        """Steps of all stages."""
        return sum(self.config.stages[name].steps for name in self.stage_names)

    @property
    def checkpoint_dir(self) -> Path:
        """``out_dir / "checkpoints"``."""
        return self.out_dir / CHECKPOINT_DIR

    # ------------------------------------------------------------------ stages

    def start_stage(self, name: str) -> None:
        """Freeze all but the stage's parameters; new optimiser, schedule, scaler, EMA (restored on resume).

        :meth:`fit` calls it; call it yourself only to drive :meth:`train_step` by hand.
        """
        from diffusers.training_utils import EMAModel

        self._run = None  # drop the previous stage's DDP hooks and optimiser state first
        stage = self.config.stages[name]
        params = list(self.model.parameters_for(name))
        chosen = {id(param) for param in params}
        if not params or len(chosen) != len(params):
            raise ValueError(f"model.parameters_for({name!r}) must give distinct parameters, at least one")
        by_id = {id(param): key for key, param in self.model.named_parameters()}
        if not chosen <= by_id.keys():
            raise ValueError(f"model.parameters_for({name!r}) gives parameters that are not the model's")
        names = [by_id[id(param)] for param in params]
        for param in self.model.parameters():
            param.requires_grad_(id(param) in chosen)
        optimizer = torch.optim.AdamW(params, lr=stage.lr, betas=self.config.betas, eps=self.config.eps,
                                      weight_decay=self.config.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, stage))
        scaler = torch.amp.GradScaler(self.env.device.type, enabled=self.config.precision == "fp16")
        ema = EMAModel(params, decay=self.config.ema_decay)
        loss: nn.Module = _StageLoss(self.model, name)
        if self.env.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.env.device.index] if self.env.device.type == "cuda" else None
            loss = DistributedDataParallel(loss, device_ids=ids,
                                           find_unused_parameters=self.config.find_unused_parameters)
        self._run = _StageRun(name, stage, names, params, optimizer, scheduler, scaler, ema, loss)
        resumed = self._resumed
        if resumed is not None and resumed["stage"] == name:
            optimizer.load_state_dict(resumed["optimizer"])
            scheduler.load_state_dict(resumed["scheduler"])
            if resumed["scaler"] and scaler.is_enabled():
                scaler.load_state_dict(resumed["scaler"])
            ema.load_state_dict({**resumed["ema"], "shadow_params": [
                self._ema_weights[key].to(self.env.device) for key in names]})
        self._resumed, self._ema_weights = None, None

    def _finish_stage(self) -> None:
        """Copy the stage's EMA weights into the model (what the later stages build on)."""
        self._run.ema.copy_to(self._run.params)

    def ema_state_dict(self) -> dict[str, torch.Tensor]:
        """The model's state dict with the running stage's parameters replaced by their EMA."""
        state = dict(self.model.state_dict())
        if self._run is not None:
            state.update(zip(self._run.names, self._run.ema.shadow_params))
        return state

    # ------------------------------------------------------------------ data

    def batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """This process's batches from the current data position on, epoch after epoch (endless)."""
        epoch, start = self.state.epoch, self.state.batch_in_epoch
        while True:
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            self.sampler.set_position(epoch, start)
            loader = DataLoader(self.dataset, batch_sampler=self.sampler, num_workers=self.config.num_workers,
                                collate_fn=self.collate_fn, pin_memory=self.env.device.type == "cuda",
                                generator=torch.Generator().manual_seed(seed_for(self.config.seed, epoch)))
            yield from loader
            epoch, start = epoch + 1, 0

    def _advance(self) -> None:
        state = self.state
        state.step += 1
        state.stage_step += 1
        state.batch_in_epoch += 1
        if state.batch_in_epoch == self.sampler.batches_per_epoch:
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0

    # ------------------------------------------------------------------ one step

    def compute_gradients(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Forward and backward pass of the running stage on this process's part of a global batch.

        Leaves the gradients (averaged over processes, times the fp16 loss
        scale) in the parameters' ``.grad``; returns the detached scalar losses.
        """
        run = self._run
        if run is None:
            raise RuntimeError("no stage is running; call start_stage(name) or fit()")
        batch = {key: value.to(self.env.device, non_blocking=True) for key, value in batch.items()}
        dtype = AUTOCAST_DTYPES[self.config.precision]
        with torch.autocast(device_type=self.env.device.type, dtype=dtype, enabled=dtype is not None):
            out = run.loss(batch)
        if not isinstance(out, Mapping) or "loss" not in out:
            raise TypeError(f"model.loss must return a dict with key 'loss', got {type(out).__name__}")
        run.scaler.scale(out["loss"]).backward()
        return {key: value.detach().float() for key, value in out.items()
                if isinstance(value, torch.Tensor) and value.numel() == 1}

    def apply_gradients(self) -> None:
        """Clip, optimiser step (skipped by the fp16 scaler on overflow), zero the gradients, LR schedule, EMA."""
        run = self._run
        if self.config.grad_clip_norm > 0:
            run.scaler.unscale_(run.optimizer)
            torch.nn.utils.clip_grad_norm_(run.params, self.config.grad_clip_norm)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.optimizer.zero_grad(set_to_none=True)
        run.scheduler.step()
        run.ema.step(run.params)

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """:meth:`compute_gradients` then :meth:`apply_gradients`; returns the detached scalar losses."""
        losses = self.compute_gradients(batch)
        self.apply_gradients()
        return losses

    # ------------------------------------------------------------------ the loop

    def fit(self, max_steps: Optional[int] = None) -> TrainState:
        """Train all stages (from the resumed position, if any); stop early after global step ``max_steps``.

        Checkpoints are written every ``checkpoint_every`` steps and at the
        end of each stage.
        """
        if self._resumed is None and self.state.step == 0:
            seed_everything(seed_for(self.config.seed, self.env.rank))
        self.model.train()
        self._open_logs()
        from tqdm.auto import tqdm

        bar = tqdm(total=self.total_steps, initial=self.state.step, disable=not (self.progress and self.is_main),
                   dynamic_ncols=True, file=sys.stderr)
        batches = self.batches()
        try:
            for index, name in enumerate(self.stage_names):
                steps = self.config.stages[name].steps
                if index < self.state.stage_index or (index == self.state.stage_index and
                                                      self.state.stage_step >= steps):
                    continue
                if index > self.state.stage_index:
                    self.state.stage_index, self.state.stage_step = index, 0
                self.start_stage(name)
                bar.set_description(name)
                sums: dict[str, torch.Tensor] = {}
                window_start, window_steps = time.perf_counter(), 0
                while self.state.stage_step < steps:
                    if max_steps is not None and self.state.step >= max_steps:
                        return self.state
                    losses = self.train_step(next(batches))
                    for key, value in losses.items():
                        sums[key] = sums[key] + value if key in sums else value
                    window_steps += 1
                    self._advance()
                    bar.update(1)
                    stage_done = self.state.stage_step == steps
                    if self.state.step % self.config.log_every == 0 or stage_done:
                        elapsed = time.perf_counter() - window_start
                        row = self._log(name, sums, window_steps, elapsed)
                        bar.set_postfix(loss=f"{row['loss']:.4g}", samples_per_s=f"{row['samples_per_s']:.1f}")
                        sums, window_start, window_steps = {}, time.perf_counter(), 0
                    if stage_done and index < len(self.stage_names) - 1:
                        self._finish_stage()
                    if self.state.step % self.config.checkpoint_every == 0 or stage_done:
                        self.save_checkpoint()
            return self.state
        finally:
            bar.close()
            if self._tensorboard:
                self._tensorboard.flush()

    # ------------------------------------------------------------------ logs

    def _open_logs(self) -> None:
        if not self.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.run_config is not None and not (self.out_dir / CONFIG_FILE).exists():
            self._write_config(self.out_dir / CONFIG_FILE)
        self._logs = {name: _CsvLog(self.out_dir / f"log_{name}.csv") for name in self.stage_names}
        if self._tensorboard is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                print("ldm.train: tensorboard is not installed; logging to CSV only", file=sys.stderr)
                self._tensorboard = False
            else:
                self._tensorboard = SummaryWriter(str(self.out_dir / "tensorboard"))

    def _log(self, stage: str, sums: Mapping[str, torch.Tensor], n_steps: int, elapsed_s: float) -> dict[str, Any]:
        """Mean losses of the window (over steps and processes) to the CSV/TensorBoard logs; returns the row."""
        keys = ["loss"] + sorted(key for key in sums if key != "loss")
        means = torch.stack([sums[key] for key in keys]) / n_steps
        if self.env.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(means)
            means = means / self.env.world_size
        values = means.tolist()
        if not math.isfinite(values[0]):
            raise FloatingPointError(f"the {stage} loss is {values[0]} at step {self.state.step}; lower the "
                                     f"learning rate or use precision fp32")
        row = {"step": self.state.step, "epoch": self.state.epoch, "lr": self._run.scheduler.get_last_lr()[0],
               "samples_per_s": n_steps * self.config.batch_size / max(elapsed_s, 1e-9), "elapsed_s": elapsed_s}
        row.update(zip(keys, values))
        if self.is_main:
            self._logs[stage].write(row)
            if self._tensorboard:
                for key in keys + ["lr", "samples_per_s"]:
                    self._tensorboard.add_scalar(f"{stage}/{key}", row[key], self.state.step)
        return row

    def _write_config(self, path: Path) -> None:
        import yaml

        with open(path, "w", encoding="utf-8") as stream:
            yaml.safe_dump(self.run_config, stream, sort_keys=False)

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self) -> Optional[Path]:
        """Write ``checkpoints/step_NNNNNNNN`` atomically (process 0; all processes must call it).

        Returns the folder on process 0, None on the others.
        """
        from safetensors.torch import save_file

        if self._run is None:
            raise RuntimeError("save_checkpoint needs a running stage (call it from fit)")
        rng = [_rng_state()]
        if self.env.world_size > 1:
            import torch.distributed as dist

            rng = [None] * self.env.world_size
            dist.all_gather_object(rng, _rng_state())
        if not self.is_main:
            return None
        run = self._run
        state = {"format": STATE_FORMAT, "state": dataclasses.asdict(self.state), "stage": run.name,
                 "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
                 "scaler": run.scaler.state_dict(),
                 "ema": {key: value for key, value in run.ema.state_dict().items() if key != "shadow_params"},
                 "rng": rng, "world_size": self.env.world_size,
                 "sampler": {"seed": self.sampler.seed, "batch_size": self.sampler.batch_size,
                             "n_samples": self.sampler.n_samples}}
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.checkpoint_dir.glob(".tmp-*"):  # left by a kill during a save
            shutil.rmtree(stale, ignore_errors=True)
        final = self.checkpoint_dir / f"{CHECKPOINT_PREFIX}{self.state.step:08d}"
        temporary = self.checkpoint_dir / f".tmp-{final.name}-{os.getpid()}"
        temporary.mkdir()
        save_file(_plain_state_dict(self.model.state_dict()), str(temporary / MODEL_FILE))
        save_file(_plain_state_dict(self.ema_state_dict()), str(temporary / EMA_FILE))
        torch.save(state, temporary / STATE_FILE)
        if self.run_config is not None:
            self._write_config(temporary / CONFIG_FILE)
        for file in temporary.iterdir():
            _fsync_file(file)
        _fsync_dir(temporary)
        if final.exists():
            _remove_tree(final)
        os.replace(temporary, final)
        _fsync_dir(self.checkpoint_dir)
        found = sorted((path for path in self.checkpoint_dir.iterdir()
                        if path.is_dir() and path.name.startswith(CHECKPOINT_PREFIX)), key=checkpoint_step)
        for old in found[:-self.config.keep_checkpoints]:
            _remove_tree(old)
        return final

    def resume(self, checkpoint: Any = None) -> Optional[Path]:
        """Restore weights, optimiser, schedule, EMA, RNG and data position from a checkpoint.

        Parameters
        ----------
        checkpoint : path, optional
            A checkpoint folder or a run folder (its newest checkpoint);
            default: the newest in ``out_dir``.

        Returns the checkpoint folder, or None when there is none (a fresh start).
        """
        from safetensors.torch import load_file

        folder = find_checkpoint(self.out_dir if checkpoint is None else checkpoint)
        if folder is None:
            if checkpoint is not None:
                raise ValueError(f"no checkpoint found at {checkpoint}")
            return None
        saved = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
        if saved.get("format") != STATE_FORMAT:
            raise ValueError(f"{folder / STATE_FILE} has format {saved.get('format')!r}, expected {STATE_FORMAT}")
        sampler = saved["sampler"]
        if sampler["n_samples"] != self.sampler.n_samples or sampler["batch_size"] != self.sampler.batch_size:
            raise ValueError(f"checkpoint {folder} was trained with {sampler['n_samples']} samples per epoch and "
                             f"batch size {sampler['batch_size']}; this run has {self.sampler.n_samples} and "
                             f"{self.sampler.batch_size}, so its data order cannot continue")
        self.model.load_state_dict(load_file(str(folder / MODEL_FILE), device=str(self.env.device)), strict=True)
        self._ema_weights = load_file(str(folder / EMA_FILE))
        self.state = TrainState(**saved["state"])
        self._resumed = saved
        self._run = None
        if saved["world_size"] == self.env.world_size:
            _set_rng_state(saved["rng"][self.env.rank])
        else:
            print(f"ldm.train: checkpoint saved by {saved['world_size']} processes, resumed by "
                  f"{self.env.world_size}: RNG streams restart from the seed (not bit-identical)", file=sys.stderr)
            seed_everything(seed_for(self.config.seed, self.env.rank, self.state.step))
        if self.is_main:
            for name in self.stage_names:
                _CsvLog(self.out_dir / f"log_{name}.csv").truncate_after(self.state.step)
        return folder
