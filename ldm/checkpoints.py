"""Training checkpoints: folder names, atomic saves, finding the newest, loading weights and state.

A run folder ``OUT`` holds ``OUT/checkpoints/step_NNNNNNNN/`` folders, each
written to a temporary folder and renamed (:func:`pet_projection.io.files.replace_directory`),
so a kill never leaves a half-written checkpoint under a final name:
``model.safetensors`` (weights), ``ema.safetensors`` (the EMA model),
``state.pt`` (the trainer's state: optimiser, schedules, RNG states, data
position; read with ``torch.load(weights_only=True)``) and ``config.yaml``
(the run's configuration, if given).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from torch import nn

from pet_projection.io.files import atomic_write, remove_tree, replace_directory

__all__ = ["CHECKPOINT_DIR", "CONFIG_FILE", "EMA_FILE", "MODEL_FILE", "STATE_FILE", "checkpoint_step",
           "find_checkpoint", "load_state", "load_weights", "read_weights", "save_checkpoint", "write_config"]

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


def read_weights(folder: Path, *, ema: bool, device: str = "cpu") -> dict[str, torch.Tensor]:
    """The EMA or raw weights (a state dict on ``device``) of checkpoint folder ``folder``."""
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / (EMA_FILE if ema else MODEL_FILE)), device=device)


def load_weights(model: nn.Module, checkpoint: Any, *, ema: bool = True) -> Path:
    """Load a checkpoint's EMA (default) or raw weights into ``model``; returns the checkpoint folder used."""
    folder = find_checkpoint(checkpoint)
    if folder is None:
        raise ValueError(f"no checkpoint found at {checkpoint}")
    model.load_state_dict(read_weights(folder, ema=ema), strict=True)
    return folder


def load_state(folder: Path) -> dict[str, Any]:
    """The trainer state saved in checkpoint folder ``folder`` (tensors on the CPU); checks its format."""
    path = Path(folder) / STATE_FILE
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved.get("format") != STATE_FORMAT:
        raise ValueError(f"{path} has format {saved.get('format')!r}, expected {STATE_FORMAT}")
    return saved


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
