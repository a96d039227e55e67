"""Model weights shipped with the package, and loading a model from them or from a training run.

A weights folder holds ``model.safetensors`` (the EMA weights of a finished
run, scales included), ``config.yaml`` (the run's config) and
``MODEL_CARD.md`` (how it was made: command, data, seed, steps, time,
machine). The package ships one, ``ldm/weights/foundation/``: the
foundation model that ``allpet pretrain`` reproduces (:func:`export_weights`
writes it from a run). :func:`load_model` reads a weights folder, a run
folder or a checkpoint folder (its EMA weights), by default the shipped
foundation model.
"""

from __future__ import annotations

import importlib.resources
import tempfile
from pathlib import Path
from typing import Any, Optional

import torch

from pet_projection.io.files import replace_directory

from .checkpoints import CONFIG_FILE, MODEL_FILE, find_checkpoint, load_weights, read_run_config
from .experiment import ExperimentConfig, config_to_dict
from .model import SinogramLDM

__all__ = ["CARD_FILE", "SHIPPED_MODELS", "export_weights", "init_weights", "is_weights_folder", "load_model",
           "shipped_weights"]

SHIPPED_MODELS = ("foundation",)
CARD_FILE = "MODEL_CARD.md"


def shipped_weights(name: str = "foundation") -> Path:
    """The folder of shipped model ``name`` (one of :data:`SHIPPED_MODELS`)."""
    if name not in SHIPPED_MODELS:
        raise ValueError(f"unknown shipped model {name!r}; shipped: {', '.join(SHIPPED_MODELS)}")
    return Path(str(importlib.resources.files(__package__) / "weights" / name))


def is_weights_folder(path: Any) -> bool:
    """Whether ``path`` is a weights folder (``model.safetensors`` and ``config.yaml``, no trainer state)."""
    path = Path(path)
    return (path / MODEL_FILE).is_file() and (path / CONFIG_FILE).is_file() and find_checkpoint(path) is None


def load_model(source: Optional[Any] = None, device: str = "cpu") -> tuple[SinogramLDM, ExperimentConfig, Path]:
    """A model in eval mode on ``device``, its config and the folder it came from.

    ``source``: a weights folder, a run or checkpoint folder (the newest
    checkpoint's EMA weights), or ``None`` for the shipped foundation model.
    ``ValueError`` naming the folder when it holds no model, or the file
    that is broken.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = shipped_weights() if source is None else Path(source)
    if is_weights_folder(folder):
        config = read_run_config(folder / CONFIG_FILE)
        model = SinogramLDM(config.model_config())
        try:
            weights = load_file(str(folder / MODEL_FILE))
            model.load_state_dict(weights, strict=True)
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise ValueError(f"{folder / MODEL_FILE} does not hold the weights of the model in its config.yaml: "
                             f"{' '.join(str(error).split())[:300]}") from None
    else:
        checkpoint = find_checkpoint(folder)
        if checkpoint is None or not (checkpoint / CONFIG_FILE).is_file():
            raise ValueError(f"{folder} holds no model: neither a weights folder ({MODEL_FILE} and {CONFIG_FILE}) "
                             f"nor a training run with checkpoints")
        config = read_run_config(checkpoint / CONFIG_FILE)
        model = SinogramLDM(config.model_config())
        folder = load_weights(model, checkpoint, ema=True)
    return model.to(device).eval(), config, folder


def init_weights(model: SinogramLDM, source: Any, calibrate_sinogram_scale: bool = False) -> Path:
    """Load the weights of ``source`` into ``model`` (strict); returns the folder they came from.

    ``source``: a shipped model's name (:data:`SHIPPED_MODELS`), a weights
    folder, or a run or checkpoint folder (EMA weights). ``ValueError`` when
    the architectures differ. With ``calibrate_sinogram_scale`` the loaded
    ``sinogram_scale`` is cleared, so the model's first training batch
    calibrates it (``TrainConfig.calibrate_sinogram_scale``).
    """
    pretrained, _, folder = load_model(shipped_weights(source) if source in SHIPPED_MODELS else source)
    try:
        model.load_state_dict(pretrained.state_dict(), strict=True)
    except RuntimeError as error:
        raise ValueError(f"the weights of {folder} do not fit this model (another architecture): "
                         f"{' '.join(str(error).split())[:300]}") from None
    if calibrate_sinogram_scale:
        model.sinogram_scale.zero_()
    return folder


def export_weights(run: Any, destination: Any, card: str) -> Path:
    """Write the EMA weights of run ``run``'s newest checkpoint as weights folder ``destination`` (replaced whole).

    ``card`` is the text of ``MODEL_CARD.md``. Returns the checkpoint folder used.
    """
    import yaml
    from safetensors.torch import save_file

    model, config, checkpoint = load_model(run)
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=destination.parent) as scratch:
        staging = Path(scratch) / destination.name
        staging.mkdir()
        state = {key: value.detach().to(torch.float32 if value.is_floating_point() and value.dtype != torch.float64
                                        else value.dtype).contiguous() for key, value in model.state_dict().items()}
        save_file(state, str(staging / MODEL_FILE))
        (staging / CONFIG_FILE).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False), encoding="utf-8")
        (staging / CARD_FILE).write_text(card, encoding="utf-8")
        for file in staging.iterdir():
            file.chmod(0o644)  # package data: readable by all, like the sources
        replace_directory(staging, destination)
    return checkpoint
