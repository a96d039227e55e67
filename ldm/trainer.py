"""Training loop for staged models: AdamW, autocast, EMA, atomic checkpoints, exact resume, DDP.

:class:`Trainer` trains any ``torch.nn.Module`` with ``stages`` (stage names,
trained in this order, e.g. ``("autoencoder", "diffusion")``),
``parameters_for(stage)`` (the parameters that stage trains; the others are
frozen while it runs) and ``loss(batch, stage) -> dict`` (``"loss"``, a scalar
to minimise, plus scalar components to log, deterministic given torch's
global RNG state).

Each stage gets its own AdamW optimiser, warm-up + cosine learning-rate
schedule (:class:`~ldm.experiment.StageConfig`) and exponential moving average
(EMA, :class:`diffusers.training_utils.EMAModel`) of its parameters. When a
stage ends and another follows, its EMA weights are copied into the model, so
the next stage (e.g. the diffusion stage with a frozen autoencoder) trains on
exactly the weights that the EMA model will use at sampling time.

Checkpoints (:mod:`ldm.checkpoints`) hold the weights, the EMA model (the
current stage's averaged weights, the other parameters as in the model), the
optimiser, LR scheduler, gradient scaler, EMA counters, step, data position
and every process's RNG states. Resuming restores all of it, and the data
order is a function of ``(seed, epoch)`` (:class:`~ldm.batch_order.EpochBatchSampler`),
so on the CPU the steps after a resume are bit-identical to those of an
uninterrupted run (on CUDA too with torch's deterministic algorithms).

Distributed data parallel (``torchrun``, :func:`ldm.runtime.init_distributed`):
each process takes ``batch_size / world_size`` items of every global batch;
gradients are averaged across processes, so the update equals that of one
process on the whole batch. Process ``r`` draws its diffusion noise from its
own seed ``(seed, r)``. Only process 0 writes files and shows the progress bar.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .batch_order import EpochBatchSampler
from .batches import collate
from .checkpoints import (CHECKPOINT_DIR, CONFIG_FILE, print_skipped, read_newest_checkpoint, save_checkpoint,
                          write_config)
from .experiment import StageConfig, TrainConfig
from .runtime import AUTOCAST_DTYPES, current_env, rng_state, seed_everything, seed_for, set_rng_state

__all__ = ["TrainState", "Trainer", "lr_factor"]


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
        Items are dicts of tensors (one sample each; see :mod:`ldm.batches`);
        ``set_epoch(epoch)`` is called before each epoch when it exists.
    collate_fn : callable
        Items to a batch dict (default :func:`ldm.batches.collate`).
    out_dir : str or Path, optional
        Default ``config.out_dir``.
    run_config : mapping, optional
        Plain-data description of the run (e.g. the experiment config),
        written as ``config.yaml`` into the output folder and every checkpoint.
    device : torch.device or str, optional
        Default: the CPU; use :func:`ldm.runtime.init_distributed` to pick the process's GPU.
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
                raise TypeError(f"model must have {attribute!r} (see ldm.trainer); {type(model).__name__} has not")
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        unknown = sorted(set(config.stages) - set(model.stages))
        if unknown:
            raise ValueError(f"train.stages names {unknown}, but the model's stages are {list(model.stages)}")
        self.env = current_env(device)
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
            write_config(self.out_dir / CONFIG_FILE, self.run_config)
        self._logs = {name: _CsvLog(self.out_dir / f"log_{name}.csv") for name in self.stage_names}
        if self._tensorboard is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                print("ldm.trainer: tensorboard is not installed; logging to CSV only", file=sys.stderr)
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

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self) -> Optional[Path]:
        """Write ``checkpoints/step_NNNNNNNN`` atomically (process 0; all processes must call it).

        Returns the folder on process 0, None on the others.
        """
        if self._run is None:
            raise RuntimeError("save_checkpoint needs a running stage (call it from fit)")
        rng = [rng_state()]
        if self.env.world_size > 1:
            import torch.distributed as dist

            rng = [None] * self.env.world_size
            dist.all_gather_object(rng, rng_state())
        if not self.is_main:
            return None
        run = self._run
        state = {"state": dataclasses.asdict(self.state), "stage": run.name,
                 "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
                 "scaler": run.scaler.state_dict(),
                 "ema": {key: value for key, value in run.ema.state_dict().items() if key != "shadow_params"},
                 "rng": rng, "world_size": self.env.world_size,
                 "sampler": {"seed": self.sampler.seed, "batch_size": self.sampler.batch_size,
                             "n_samples": self.sampler.n_samples}}
        return save_checkpoint(self.checkpoint_dir, self.state.step, self.model.state_dict(), self.ema_state_dict(),
                               state, self.run_config, self.config.keep_checkpoints)

    def resume(self, checkpoint: Any = None) -> Optional[Path]:
        """Restore weights, optimiser, schedule, EMA, RNG and data position from a checkpoint.

        Parameters
        ----------
        checkpoint : path, optional
            A checkpoint folder or a run folder (its newest checkpoint); default: the newest in ``out_dir``
            that loads (newer ones with broken files are skipped, each with a line on stderr saying why).

        Returns the checkpoint folder, or None when there is none (a fresh start).
        """
        loaded = read_newest_checkpoint(self.out_dir if checkpoint is None else checkpoint, str(self.env.device),
                                        print_skipped if self.is_main else None, fall_back=checkpoint is None)
        if loaded is None:
            return None
        folder, saved = loaded.folder, loaded.state
        sampler = saved["sampler"]
        if sampler["n_samples"] != self.sampler.n_samples or sampler["batch_size"] != self.sampler.batch_size:
            raise ValueError(f"checkpoint {folder} was trained with {sampler['n_samples']} samples per epoch and "
                             f"batch size {sampler['batch_size']}; this run has {self.sampler.n_samples} and "
                             f"{self.sampler.batch_size}, so its data order cannot continue")
        self.model.load_state_dict(loaded.weights, strict=True)
        self._ema_weights = loaded.ema_weights
        self.state = TrainState(**saved["state"])
        self._resumed = saved
        self._run = None
        if saved["world_size"] == self.env.world_size:
            set_rng_state(saved["rng"][self.env.rank])
        else:
            print(f"ldm.trainer: checkpoint saved by {saved['world_size']} processes, resumed by "
                  f"{self.env.world_size}: RNG streams restart from the seed (not bit-identical)", file=sys.stderr)
            seed_everything(seed_for(self.config.seed, self.env.rank, self.state.step))
        if self.is_main:
            for name in self.stage_names:
                _CsvLog(self.out_dir / f"log_{name}.csv").truncate_after(self.state.step)
        return folder
