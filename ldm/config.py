"""Experiment configuration: model, training and data settings as dataclasses, read from YAML.

An experiment is one :class:`ExperimentConfig`: ``model`` (:class:`ldm.diffusion.LDMConfig`),
``train`` (:class:`TrainConfig`) and ``data`` (:class:`DataConfig`). :func:`load_config`
reads a preset name (``"tiny"``, ``"paper"``: the YAML files in ``ldm/configs/``) or a
YAML file; a file may start from a preset with ``base: NAME_OR_PATH`` and change only
some keys. Every key is checked: an unknown key, a value of the wrong type or out of
range raises ``ValueError``/``TypeError`` naming the key (e.g. ``train.stages.diffusion.lr``).

Command-line overrides use the same dotted names, ``train.batch_size=16``
(:func:`apply_overrides`; values are parsed as YAML).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import numbers
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping, Optional, Sequence, Union

if TYPE_CHECKING:
    from .diffusion import LDMConfig

__all__ = ["DataConfig", "ExperimentConfig", "PRESETS", "StageConfig", "TrainConfig", "apply_overrides",
           "config_from_dict", "config_to_dict", "dataclass_from_dict", "load_config", "preset_path"]

PRESET_DIR = Path(__file__).with_name("configs")
PRESETS = ("tiny", "paper")
PRECISIONS = ("fp32", "bf16", "fp16")
DATA_SOURCES = ("ellipses", "folder")
DATA_TASKS = ("unconditional", "inpainting", "paired")
MODEL_INPUTS = ("measured", "physics_prior", "unmixing")
DMM_LAYOUTS = ("random", "clustered", "rings")  # pet_projection.masks.LAYOUTS (imported lazily there)


# ----------------------------------------------------------------------------------------------- value checks

def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def _check_real(name: str, value: Any, low: float, high: float, *, low_open: bool = False,
                high_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        raise ValueError(f"{name} must lie in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}, "
                         f"got {value}")


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


# ----------------------------------------------------------------------------------------------- dataclasses

@dataclass
class StageConfig:
    """Optimisation of one training stage of the model (``"autoencoder"`` or ``"diffusion"``).

    Parameters
    ----------
    steps : int
        Optimiser steps in this stage (0 skips the stage).
    lr : float
        Peak learning rate of AdamW.
    warmup_steps : int
        Linear warm-up from 0 to ``lr`` over this many steps, then a cosine
        decay to ``min_lr_ratio * lr`` at the last step.
    min_lr_ratio : float
        Final learning rate as a fraction of ``lr``, in ``[0, 1]``.
    """

    steps: int = 0
    lr: float = 1.0e-4
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1

    def __post_init__(self) -> None:
        _check_int("steps", self.steps, 0)
        _check_real("lr", self.lr, 0.0, math.inf, low_open=True, high_open=True)
        _check_int("warmup_steps", self.warmup_steps, 0)
        _check_real("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)


def _default_stages() -> dict[str, StageConfig]:
    return {"autoencoder": StageConfig(steps=100, lr=2.0e-4), "diffusion": StageConfig(steps=200, lr=1.0e-4)}


@dataclass
class TrainConfig:
    """How to train: optimiser, precision, memory savers, EMA, checkpoints and logs.

    Parameters
    ----------
    stages : dict of str to StageConfig
        Per model stage (in the model's order, see ``SinogramLDM.stages``):
        steps and learning-rate schedule. A stage left out is skipped.
    batch_size : int
        Global batch: samples per optimiser step summed over all processes;
        each of ``W`` processes gets ``batch_size / W`` (must divide).
    weight_decay, betas, eps
        AdamW settings (decoupled weight decay).
    grad_clip_norm : float
        Clip the global gradient norm to this (0: no clipping).
    precision : {"fp32", "bf16", "fp16"}
        Autocast dtype of the forward pass; weights and optimiser stay float32.
        ``fp16`` uses a gradient scaler (loss scaling); ``bf16`` needs none.
    gradient_checkpointing : bool
        Recompute activations in the backward pass (less memory, about a third
        more compute); written into the model's sub-configs by
        :meth:`ExperimentConfig.model_config`.
    ema_decay : float
        Decay of the exponential moving average of the weights, in ``[0, 1)``;
        the effective decay ramps up as ``(1 + n) / (10 + n)`` after ``n`` steps.
    checkpoint_every, log_every : int
        Steps between checkpoints and between log rows.
    keep_checkpoints : int
        Newest checkpoints kept on disk (older ones are deleted).
    out_dir : str
        Directory for checkpoints, logs and the resolved config.
    seed : int
        Seed of the weights, the data order and the diffusion noise.
    num_workers : int
        DataLoader worker processes per training process.
    device : str
        ``"auto"`` (the process's CUDA device under torchrun when CUDA is
        present, else CPU), ``"cpu"`` or ``"cuda"``.
    find_unused_parameters : bool
        Passed to DistributedDataParallel: needed when a step leaves some
        trained parameters unused (e.g. a label embedding with no labels).
    cpu_threads : int, optional
        CPU threads of torch and Numba (:func:`ldm.train.set_cpu_threads`),
        set by ``allpet train``; ``None`` keeps the defaults. On a shared or
        small machine 1 thread can be much faster (no spinning OpenMP threads
        waiting for busy cores). Bit-identical resume needs the same count.
    """

    stages: dict[str, StageConfig] = field(default_factory=_default_stages)
    batch_size: int = 8
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1.0e-8
    grad_clip_norm: float = 1.0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    gradient_checkpointing: bool = False
    ema_decay: float = 0.999
    checkpoint_every: int = 100
    log_every: int = 10
    keep_checkpoints: int = 2
    out_dir: str = "runs/ldm"
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    find_unused_parameters: bool = True
    cpu_threads: Optional[int] = None

    def __post_init__(self) -> None:
        if not isinstance(self.stages, Mapping) or not all(
                isinstance(key, str) and isinstance(value, StageConfig) for key, value in self.stages.items()):
            raise TypeError(f"stages must map stage names to StageConfig, got {self.stages!r}")
        if not any(stage.steps for stage in self.stages.values()):
            raise ValueError("stages must give at least one stage a positive number of steps")
        _check_int("batch_size", self.batch_size, 1)
        _check_real("weight_decay", self.weight_decay, 0.0, math.inf)
        if not isinstance(self.betas, tuple) or len(self.betas) != 2:
            raise TypeError(f"betas must be a pair of numbers, got {self.betas!r}")
        for beta in self.betas:
            _check_real("betas", beta, 0.0, 1.0, high_open=True)
        _check_real("eps", self.eps, 0.0, math.inf, low_open=True)
        _check_real("grad_clip_norm", self.grad_clip_norm, 0.0, math.inf)
        _check_choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.gradient_checkpointing, bool):
            raise TypeError(f"gradient_checkpointing must be a bool, got {self.gradient_checkpointing!r}")
        _check_real("ema_decay", self.ema_decay, 0.0, 1.0, high_open=True)
        _check_int("checkpoint_every", self.checkpoint_every, 1)
        _check_int("log_every", self.log_every, 1)
        _check_int("keep_checkpoints", self.keep_checkpoints, 1)
        if not isinstance(self.out_dir, str) or not self.out_dir:
            raise TypeError(f"out_dir must be a non-empty string, got {self.out_dir!r}")
        _check_int("seed", self.seed, 0)
        _check_int("num_workers", self.num_workers, 0)
        if not isinstance(self.device, str) or self.device.split(":")[0] not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if not isinstance(self.find_unused_parameters, bool):
            raise TypeError(f"find_unused_parameters must be a bool, got {self.find_unused_parameters!r}")
        if self.cpu_threads is not None:
            _check_int("cpu_threads", self.cpu_threads, 1)

    @property
    def total_steps(self) -> int:
        """Optimiser steps summed over the stages."""
        return sum(stage.steps for stage in self.stages.values())


@dataclass
class DataConfig:
    """Training data: where the sinograms come from and which task they pose.

    Parameters
    ----------
    source : {"ellipses", "folder"}
        ``"ellipses"``: random ellipse activity phantoms projected on the
        geometry below (works without any files). ``"folder"``: a simulator
        dataset folder (``path``; see :mod:`ldm.data` for the format).
    task : {"unconditional", "inpainting", "paired"}
        ``"unconditional"`` and ``"inpainting"``: RMAS samples (the known part
        of the sinogram is ``positive = mask * full``; inpainting conditions on
        it) from the base sinograms (the phantoms, or the folder's targets).
        ``"paired"``: the folder's ``input -> target`` pairs (a task such as
        low-dose or attenuation correction).
    path : str, optional
        Dataset folder, required for ``source="folder"``.
    image_size : int
        Pixels per side of the square phantom image (``source="ellipses"``).
    voxel_size_mm : float
        Pixel side in mm.
    n_views, n_bins : int
        Sinogram shape ``(n_views, n_bins)`` of the phantoms' projections.
    bin_width_mm : float
        Radial bin width in mm.
    n_bases : int
        Number of phantoms (base sinograms) for ``source="ellipses"``.
    cells_per_side, n_active, shape_fraction, epoch_size, layout
        :class:`ldm.RMASDataset` settings (DMM cells, active cells per mask,
        fraction of random-shape masks, samples per epoch (``None``: its
        default), DMM layout (``None``: enumerated subsets, no repeats; or
        ``random``, ``clustered``, ``rings`` drawn per sample)).
    seed : int
        Seed of the phantoms and of the RMAS masks.
    model_input : {"measured", "physics_prior", "unmixing"}
        What a paired sample's ``input`` holds (``task="paired"`` with an
        ``allpet simulate`` folder only). ``"measured"``: the measured input
        at the target's count scale. ``"physics_prior"``: its physics prior,
        as in ``allpet demo`` (:meth:`tasks.spec.PETTask.physics_prior`: the
        forward model of the input's OSEM image, ``prior_osem`` = (subsets,
        iterations), post-filtered by a Gaussian of ``prior_fwhm_voxels``
        voxels except at the sample's lesions); pair it with
        ``model.mode: bridge`` as the demo does, and with the demo's
        ``model.residual_decode`` and ``model.autoencode_inputs`` for the
        task (``tasks.spec.PETTask``: both off for tracer conversion; the
        residual decode alone for low dose), and its ``prior_fwhm_voxels``
        (0 for attenuation correction). ``"unmixing"`` (tasks with several
        targets per sample: tracer separation): each target's per-ray
        linear-unmixing estimate of the measured sum, ``w_k * measured``,
        the demo's prior for that task, with weights ``w`` fitted on the
        training folder (:func:`tasks.model_inputs.fit_unmixing_weights`) and saved in the
        run as ``unmixing_weights.npy``; pair it with ``model.mode: bridge``,
        ``model.residual_decode`` and ``model.autoencode_inputs``. Both
        priors need the ``tasks`` package (``allpet[tasks]``), which defines
        each task's input physics and the unmixing. ``allpet sample`` reads
        this setting from the run's config and conditions its inputs the
        same way.
    prior_fwhm_voxels : float
        Post-filter FWHM of the physics prior, in voxels of the samples' image
        grid (default 2, the demo's for low dose; it uses 0 for attenuation
        correction, :attr:`tasks.spec.PETTask.prior_fwhm_voxels`).
    prior_osem : (int, int)
        OSEM subsets and iterations of the physics prior.
    """

    source: Literal["ellipses", "folder"] = "ellipses"
    task: Literal["unconditional", "inpainting", "paired"] = "inpainting"
    path: Optional[str] = None
    image_size: int = 32
    voxel_size_mm: float = 4.0
    n_views: int = 32
    n_bins: int = 32
    bin_width_mm: float = 4.0
    n_bases: int = 64
    cells_per_side: int = 4
    n_active: tuple[int, int] = (1, 4)
    shape_fraction: float = 0.0
    epoch_size: Optional[int] = None
    layout: Optional[str] = None
    seed: int = 0
    model_input: Literal["measured", "physics_prior", "unmixing"] = "measured"
    prior_fwhm_voxels: float = 2.0
    prior_osem: tuple[int, int] = (4, 4)

    def __post_init__(self) -> None:
        _check_choice("source", self.source, DATA_SOURCES)
        _check_choice("model_input", self.model_input, MODEL_INPUTS)
        if self.layout is not None:
            _check_choice("layout", self.layout, DMM_LAYOUTS)
        _check_choice("task", self.task, DATA_TASKS)
        if self.source == "folder" and not (isinstance(self.path, str) and self.path):
            raise ValueError("path must name the dataset folder when source is 'folder'")
        if self.source == "ellipses" and self.path is not None:
            raise ValueError("path is only used with source 'folder'; remove it or set source: folder")
        if self.task == "paired" and self.source != "folder":
            raise ValueError("task 'paired' needs input/target pairs: set source to 'folder'")
        for name in ("image_size", "n_views", "n_bins", "n_bases", "cells_per_side"):
            _check_int(name, getattr(self, name), 1)
        for name in ("voxel_size_mm", "bin_width_mm"):
            _check_real(name, getattr(self, name), 0.0, math.inf, low_open=True, high_open=True)
        if not isinstance(self.n_active, tuple) or len(self.n_active) != 2:
            raise TypeError(f"n_active must be a pair of integers, got {self.n_active!r}")
        for value in self.n_active:
            _check_int("n_active", value, 1)
        _check_real("shape_fraction", self.shape_fraction, 0.0, 1.0)
        if self.epoch_size is not None:
            _check_int("epoch_size", self.epoch_size, 1)
        _check_int("seed", self.seed, 0)
        if self.model_input != "measured" and self.task != "paired":
            raise ValueError(f"model_input {self.model_input!r} conditions paired samples: set task to 'paired' "
                             "(with source 'folder')")
        _check_real("prior_fwhm_voxels", self.prior_fwhm_voxels, 0.0, math.inf, high_open=True)
        if not isinstance(self.prior_osem, tuple) or len(self.prior_osem) != 2:
            raise TypeError(f"prior_osem must be a pair of integers (subsets, iterations), got {self.prior_osem!r}")
        for value in self.prior_osem:
            _check_int("prior_osem", value, 1)


def _default_model_config() -> "LDMConfig":
    from .diffusion import LDMConfig

    return LDMConfig()


@dataclass
class ExperimentConfig:
    """A whole experiment: ``model`` (LDMConfig), ``train`` (TrainConfig) and ``data`` (DataConfig)."""

    model: "LDMConfig" = field(default_factory=_default_model_config)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        from .diffusion import SinogramLDM

        unknown = sorted(set(self.train.stages) - set(SinogramLDM.stages))
        if unknown:
            raise ValueError(f"train.stages has unknown stages {unknown}; the model's stages are "
                             f"{list(SinogramLDM.stages)}")
        if self.data.task == "unconditional" and self.model.condition_on_input:
            raise ValueError("data.task 'unconditional' gives no task input: set model.condition_on_input: false "
                             "(and model.mode: ddpm)")

    def model_config(self) -> "LDMConfig":
        """``model`` with ``train.gradient_checkpointing`` written into every sub-config that has the flag."""
        return _with_flag(self.model, "gradient_checkpointing", self.train.gradient_checkpointing)


def _with_flag(config: Any, name: str, value: Any) -> Any:
    """Copy of a dataclass tree with field ``name`` set to ``value`` wherever it exists."""
    changes = {}
    for item in dataclasses.fields(config):
        current = getattr(config, item.name)
        if item.name == name:
            changes[name] = value
        elif dataclasses.is_dataclass(current) and not isinstance(current, type):
            changes[item.name] = _with_flag(current, name, value)
    return dataclasses.replace(config, **changes)


# ----------------------------------------------------------------------------------------------- dict <-> dataclass

def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, key: str) -> Any:
    """``value`` (from YAML) converted to type ``tp``; TypeError/ValueError naming ``key`` if it does not fit."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else dataclass_from_dict(tp, value, key)
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (arg for arg in args if arg is not type(None)):
            try:
                return _convert(option, value, key)
            except (TypeError, ValueError) as error:
                errors.append(str(error))
        raise TypeError(f"{key} does not fit {_type_name(tp)}: " + "; ".join(errors))
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{key} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{key} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, str):  # PyYAML reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise TypeError(f"{key} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"{key} must be a string, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{key} must be a list, got {value!r}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ValueError(f"{key} must have {len(args)} entries, got {len(value)}")
            return tuple(_convert(arg, item, f"{key}[{i}]") for i, (arg, item) in enumerate(zip(args, value)))
        converted = [_convert(args[0] if args else Any, item, f"{key}[{i}]") for i, item in enumerate(value)]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        if not isinstance(value, Mapping):
            raise TypeError(f"{key} must be a mapping, got {value!r}")
        key_type, value_type = args or (Any, Any)
        return {_convert(key_type, name, f"{key} key"): _convert(value_type, item, f"{key}.{name}")
                for name, item in value.items()}
    if isinstance(tp, type):
        if not isinstance(value, tp):
            raise TypeError(f"{key} must be a {tp.__name__}, got {value!r}")
        return value
    raise TypeError(f"{key}: cannot read values of type {_type_name(tp)} from a config")


def _type_hints(cls: type) -> dict[str, Any]:
    from .diffusion import LDMConfig  # noqa: F401  (resolves the "LDMConfig" annotation of ExperimentConfig)

    return typing.get_type_hints(cls, localns={"LDMConfig": LDMConfig}) if cls is ExperimentConfig \
        else typing.get_type_hints(cls)


def _default(item: dataclasses.Field) -> Any:
    if item.default is not dataclasses.MISSING:
        return item.default
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return None


def _init_values(instance: Any) -> dict[str, Any]:
    return {item.name: getattr(instance, item.name) for item in dataclasses.fields(instance) if item.init}


def dataclass_from_dict(cls: type, data: Any, key: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, recursively; missing keys take the defaults.

    Raises
    ------
    ValueError
        For an unknown key (with close matches) or a value out of range.
    TypeError
        For a value of the wrong type. Messages name the dotted key.
    """
    where = key or cls.__name__
    if not isinstance(data, Mapping):
        raise TypeError(f"{where} must be a mapping of keys to values, got {data!r}")
    fields = {item.name: item for item in dataclasses.fields(cls) if item.init}
    for name in data:
        if name not in fields:
            close = difflib.get_close_matches(str(name), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(fields)}"
            raise ValueError(f"unknown config key {(key + '.' if key else '') + str(name)!r}{hint}")
    hints = _type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        default = _default(fields[name])
        if isinstance(value, Mapping) and dataclasses.is_dataclass(hints[name]) and isinstance(default, hints[name]):
            value = {**_init_values(default), **value}  # keys left out keep the parent's default (not the class's)
        kwargs[name] = _convert(hints[name], value, f"{key}.{name}" if key else name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{where}: {error}") from error


def config_from_dict(data: Mapping[str, Any]) -> ExperimentConfig:
    """:class:`ExperimentConfig` from a nested mapping (as read from YAML)."""
    if isinstance(data, Mapping):
        model = data.get("model")
        for sub in (model or {}).values() if isinstance(model, Mapping) else ():
            if isinstance(sub, Mapping) and "gradient_checkpointing" in sub:
                raise ValueError("set gradient checkpointing with train.gradient_checkpointing, not in model.*")
    return dataclass_from_dict(ExperimentConfig, data)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def config_to_dict(config: ExperimentConfig, *, keep_model_flags: bool = False) -> dict[str, Any]:
    """Nested dict of plain YAML types (tuples as lists); :func:`config_from_dict` inverts it.

    The model's ``gradient_checkpointing`` flags are dropped (they follow
    ``train.gradient_checkpointing``) unless ``keep_model_flags``.
    """
    data = _plain(dataclasses.asdict(config))
    if not keep_model_flags:
        for sub in data["model"].values():
            if isinstance(sub, dict):
                sub.pop("gradient_checkpointing", None)
    return data


# ----------------------------------------------------------------------------------------------- files and overrides

def preset_path(name: str) -> Path:
    """Path of preset ``name`` (one of :data:`PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets are {', '.join(PRESETS)}")
    return PRESET_DIR / f"{name}.yaml"


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config_dict(source: Union[str, Path], _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The raw mapping of a preset name or YAML file, with ``base:`` files merged in (base first)."""
    import yaml

    path = preset_path(str(source)) if str(source) in PRESETS else Path(source)
    if not path.is_file():
        raise ValueError(f"config {str(source)!r} is neither a preset ({', '.join(PRESETS)}) nor a YAML file")
    path = path.resolve()
    if path in _seen:
        raise ValueError(f"config {path} includes itself through 'base'")
    with open(path, encoding="utf-8") as stream:
        try:
            data = yaml.safe_load(stream)
        except yaml.YAMLError as error:
            raise ValueError(f"config {path} is not valid YAML: {error}") from None
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise TypeError(f"config {path} must hold a mapping at the top level, got {type(data).__name__}")
    data = dict(data)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise TypeError(f"base in {path} must be a preset name or a path, got {base!r}")
    base_path = base if base in PRESETS else str((path.parent / base))
    return _deep_merge(load_config_dict(base_path, _seen + (path,)), data)


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Copy of a raw config mapping with ``"dotted.key=value"`` overrides applied (values parsed as YAML)."""
    import yaml

    data = copy.deepcopy(dict(data))
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {override!r} must look like section.key=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"override {override!r}: the value is not valid YAML: {error}") from None
        *parents, leaf = key.strip().split(".")
        node = data
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"override {override!r}: {part!r} is not a section")
            node = child
        node[leaf] = value
    return data


def load_config(source: Union[str, Path, ExperimentConfig], overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Experiment config from a preset name, a YAML path or a config object, with dotted overrides.

    Parameters
    ----------
    source : str, Path or ExperimentConfig
        ``"tiny"``, ``"paper"``, a YAML file, or a config (returned with the
        overrides applied).
    overrides : sequence of str
        ``"section.key=value"`` items, e.g. ``"train.stages.diffusion.steps=50"``.
    """
    if isinstance(source, ExperimentConfig):
        data = config_to_dict(source)
    elif isinstance(source, (str, Path)):
        data = load_config_dict(source)
    else:
        raise TypeError(f"config source must be a preset name, a path or an ExperimentConfig, got {source!r}")
    return config_from_dict(apply_overrides(data, overrides))
