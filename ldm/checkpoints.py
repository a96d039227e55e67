"""Training checkpoints: folder names, atomic saves, finding the newest, loading weights and state.

A run folder ``OUT`` holds ``OUT/checkpoints/step_NNNNNNNN/`` folders, each
written to a temporary folder and renamed (:func:`pet_projection.io.files.replace_directory`),
so a kill never leaves a half-written checkpoint under a final name:
``model.safetensors`` (weights), ``ema.safetensors`` (the EMA model),
``state.pt`` (the trainer's state: optimiser, schedules, RNG states, data
position; read with ``torch.load(weights_only=True)``) and ``config.yaml``
(the run's configuration, if given).

The readers (:func:`read_weights`, :func:`load_state`, :func:`read_run_config`)
turn an empty, truncated or foreign file into a one-line ``ValueError`` that
names it, so a caller can report it or try an older checkpoint
(:func:`list_checkpoints`, newest first).
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch
from torch import nn

from pet_projection.io.files import atomic_write, remove_tree, replace_directory

__all__ = ["CHECKPOINT_DIR", "CONFIG_FILE", "EMA_FILE", "MODEL_FILE", "STATE_FILE", "LoadedCheckpoint",
           "checkpoint_step", "find_checkpoint", "list_checkpoints", "load_state", "load_weights", "print_skipped",
           "read_checkpoint", "read_newest_checkpoint", "read_run_config", "read_weights", "run_lineage",
           "save_checkpoint", "write_config"]

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_PREFIX = "step_"
MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
STATE_FILE = "state.pt"
CONFIG_FILE = "config.yaml"
STATE_FORMAT = 1


def checkpoint_step(path: Path) -> int:
    """Global step of checkpoint folder ``path`` (``step_NNNNNNNN``)."""
    return int(Path(path).name[len(CHECKPOINT_PREFIX):])


def list_checkpoints(path: Any) -> list[Path]:
    """The checkpoint folders ``path`` names, newest first: itself, or those in ``path`` or ``path/checkpoints``.

    Empty when there are none (only complete checkpoints count: the
    unfinished ones have temporary names).
    """
    path = Path(path)
    if (path / STATE_FILE).is_file() and (path / MODEL_FILE).is_file():
        return [path]
    for folder in (path / CHECKPOINT_DIR, path):
        if folder.is_dir():
            found = [child for child in folder.iterdir()
                     if child.is_dir() and child.name.startswith(CHECKPOINT_PREFIX)
                     and child.name[len(CHECKPOINT_PREFIX):].isdigit()]
            if found:
                return sorted(found, key=checkpoint_step, reverse=True)
    return []


def find_checkpoint(path: Any) -> Optional[Path]:
    """The checkpoint folder ``path`` names: itself, or the newest one in ``path`` or ``path/checkpoints``.

    Returns None when there is none (see :func:`list_checkpoints`).
    """
    found = list_checkpoints(path)
    return found[0] if found else None


def run_lineage(config: Any) -> list[tuple[Path, Any, int]]:
    """The training runs whose weights a run of ``config`` continues, oldest first.

    ``config.train.init_from`` is followed back while it names a training
    run or one of its checkpoints (a weights folder ends the chain: its own
    model card tells its history). Returns ``(run folder, its config, the
    global step continued from)`` per run.
    """
    chain: list[tuple[Path, Any, int]] = []
    while config.train.init_from is not None and len(chain) < 64:
        checkpoint = find_checkpoint(config.train.init_from)
        if checkpoint is None or checkpoint.parent.name != CHECKPOINT_DIR:
            break
        config = read_run_config(checkpoint / CONFIG_FILE)
        chain.insert(0, (checkpoint.parent.parent, config, checkpoint_step(checkpoint)))
    return chain


def read_weights(folder: Path, *, ema: bool, device: str = "cpu") -> dict[str, torch.Tensor]:
    """The EMA or raw weights (a state dict on ``device``) of checkpoint folder ``folder``.

    A missing, empty, truncated or foreign file raises ``ValueError`` naming it.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(folder) / (EMA_FILE if ema else MODEL_FILE)
    if not path.is_file():
        raise ValueError(f"{path} is missing: {Path(folder).name} is not a complete checkpoint")
    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable safetensors file (empty, truncated or not written by "
                         f"ldm.trainer): {' '.join(str(error).split())}") from None


def load_weights(model: nn.Module, checkpoint: Any, *, ema: bool = True) -> Path:
    """Load a checkpoint's EMA (default) or raw weights into ``model``; returns the checkpoint folder used.

    ``ValueError`` when there is no checkpoint, a file is broken, or the
    weights do not fit the model (another architecture).
    """
    folder = find_checkpoint(checkpoint)
    if folder is None:
        raise ValueError(f"no checkpoint found at {checkpoint}")
    weights = read_weights(folder, ema=ema)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise ValueError(f"the weights in {folder / (EMA_FILE if ema else MODEL_FILE)} do not fit the model of "
                         f"its config: {' '.join(str(error).split())[:300]}") from None
    return folder


def load_state(folder: Path) -> dict[str, Any]:
    """The trainer state saved in checkpoint folder ``folder`` (tensors on the CPU); checks its format.

    A missing, empty, truncated or foreign file raises ``ValueError`` naming it.
    """
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise ValueError(f"{path} is missing: {Path(folder).name} is not a complete checkpoint")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except EOFError:
        raise ValueError(f"{path} is empty or truncated: not a trainer state") from None
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, OSError, ValueError) as error:
        reason = " ".join(str(error).split()).split(". ")[0][:200]
        raise ValueError(f"{path} is not a trainer state written by ldm.trainer (truncated or foreign): "
                         f"{reason}") from None
    if not isinstance(saved, dict) or saved.get("format") != STATE_FORMAT:
        found = saved.get("format") if isinstance(saved, dict) else type(saved).__name__
        raise ValueError(f"{path} has format {found!r}, expected {STATE_FORMAT}")
    return saved


@dataclass(frozen=True)
class LoadedCheckpoint:
    """Everything a resume needs from one checkpoint folder: trainer state, raw and EMA weights."""

    folder: Path
    state: dict[str, Any]
    weights: dict[str, torch.Tensor]
    ema_weights: dict[str, torch.Tensor]


def read_checkpoint(folder: Path, device: str = "cpu") -> LoadedCheckpoint:
    """Read checkpoint folder ``folder``: state (CPU), raw weights (on ``device``) and EMA weights (CPU).

    ``ValueError`` naming the first broken file.
    """
    return LoadedCheckpoint(Path(folder), load_state(folder), read_weights(folder, ema=False, device=device),
                            read_weights(folder, ema=True))


def read_newest_checkpoint(path: Any, device: str = "cpu", skipped: Optional[Callable[[Path, ValueError], None]] = None,
                           *, fall_back: bool = True) -> Optional[LoadedCheckpoint]:
    """The newest checkpoint under ``path`` (see :func:`list_checkpoints`) that loads; None if there is none.

    With ``fall_back``, older checkpoints stand in for newer ones whose files
    are broken (a kill or a full disk while they were written), and
    ``skipped(folder, error)`` is called for each one passed over
    (``ValueError`` when none loads). Without it, the newest checkpoint must
    exist and load (``ValueError`` otherwise): for a checkpoint the user named.
    """
    folders = list_checkpoints(path)
    if not folders and not fall_back:
        raise ValueError(f"no checkpoint found at {path}")
    problems = []
    for folder in folders:
        try:
            return read_checkpoint(folder, device)
        except ValueError as error:
            if not fall_back:
                raise
            problems.append(error)
            if skipped is not None:
                skipped(folder, error)
    if problems:
        raise ValueError(f"no checkpoint in {path} loads ({len(folders)} tried; the newest: {problems[0]})")
    return None


def print_skipped(folder: Path, error: ValueError) -> None:
    """Say on stderr that checkpoint ``folder`` was skipped and why (``skipped`` of :func:`read_newest_checkpoint`)."""
    print(f"ldm.checkpoints: skipping checkpoint {folder.name}, which does not load ({error})", file=sys.stderr)


def read_run_config(path: Path) -> Any:
    """The :class:`~ldm.experiment.ExperimentConfig` of a run's or checkpoint's ``config.yaml`` file ``path``.

    A broken file (not YAML, not a mapping, unknown keys or bad values)
    raises ``ValueError`` or ``TypeError`` naming it.
    """
    from .experiment import config_from_dict
    from .presets import read_config_file

    path = Path(path)
    data = read_config_file(path)
    try:
        return config_from_dict(data)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    except TypeError as error:
        raise TypeError(f"{path}: {error}") from None


def write_config(path: Path, run_config: Mapping[str, Any]) -> None:
    """Write a run's plain-data configuration as YAML (keys in their order), atomically."""
    import yaml

    text = yaml.safe_dump(run_config, sort_keys=False)
    atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))


def _plain_state_dict(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies (safetensors refuses shared or strided storage)."""
    return {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in tensors.items()}


def save_checkpoint(checkpoint_dir: Path, step: int, model_state: Mapping[str, torch.Tensor],
                    ema_state: Mapping[str, torch.Tensor], state: Mapping[str, Any],
                    run_config: Optional[Mapping[str, Any]], keep: int) -> Path:
    """Write ``checkpoint_dir/step_NNNNNNNN`` atomically and keep only the newest ``keep`` checkpoints.

    Parameters
    ----------
    checkpoint_dir : Path
        The run's ``checkpoints`` folder (created if missing).
    step : int
        Global step, the folder's number.
    model_state, ema_state : mapping of str to tensor
        Raw and EMA weights.
    state : mapping
        The trainer state, saved with ``torch.save`` after a ``format`` key
        (:data:`STATE_FORMAT`, checked by :func:`load_state`).
    run_config : mapping, optional
        Written as ``config.yaml``.
    keep : int
        Checkpoints kept; older ones are deleted.

    Returns
    -------
    Path
        The checkpoint folder.
    """
    from safetensors.torch import save_file

    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    for stale in checkpoint_dir.glob(".tmp-*"):  # left by a kill during a save
        shutil.rmtree(stale, ignore_errors=True)
    final = checkpoint_dir / f"{CHECKPOINT_PREFIX}{step:08d}"
    temporary = checkpoint_dir / f".tmp-{final.name}-{os.getpid()}"
    temporary.mkdir()
    save_file(_plain_state_dict(model_state), str(temporary / MODEL_FILE))
    save_file(_plain_state_dict(ema_state), str(temporary / EMA_FILE))
    torch.save({"format": STATE_FORMAT, **state}, temporary / STATE_FILE)
    if run_config is not None:
        write_config(temporary / CONFIG_FILE, run_config)
    replace_directory(temporary, final)
    found = sorted((path for path in checkpoint_dir.iterdir()
                    if path.is_dir() and path.name.startswith(CHECKPOINT_PREFIX)), key=checkpoint_step)
    for old in found[:-keep]:
        remove_tree(old)
    return final
