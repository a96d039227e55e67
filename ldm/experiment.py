"""Experiment configuration: model, training and data settings as dataclasses, to and from plain dicts.

An experiment is one :class:`ExperimentConfig`: ``model`` (:class:`ldm.model.LDMConfig`),
``train`` (:class:`TrainConfig`) and ``data`` (:class:`DataConfig`).
:func:`config_from_dict` builds one from a nested mapping (as read from YAML;
:mod:`ldm.presets` reads the presets and files). Every key is checked: an
unknown key, a value of the wrong type or out of range raises
``ValueError``/``TypeError`` naming the key (e.g. ``train.stages.diffusion.lr``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Optional

from pet_projection.config_dicts import dataclass_from_dict, dataclass_to_dict
from .rmas_dataset import DATASET_LAYOUTS
from pet_projection.validation import check_bool, check_choice, check_finite_real, positive_int

from .model import LDMConfig, SinogramLDM

__all__ = ["DataConfig", "ExperimentConfig", "StageConfig", "TrainConfig", "config_from_dict", "config_to_dict"]

PRECISIONS = ("fp32", "bf16", "fp16")
DATA_SOURCES = ("ellipses", "folder", "foundation")
DATA_TASKS = ("unconditional", "inpainting", "paired")
MODEL_INPUTS = ("measured", "physics_prior", "unmixing")
ATTENTION_SOURCES = ("segmentation", "oracle")


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
        positive_int("steps", self.steps, 0)
        check_finite_real("lr", self.lr, 0.0, math.inf, low_open=True, high_open=True)
        positive_int("warmup_steps", self.warmup_steps, 0)
        check_finite_real("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)


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
    init_from : str, optional
        Start from these weights (a weights folder such as the shipped
        ``foundation``, or a run or checkpoint folder: its EMA weights;
        :func:`ldm.weights.init_weights`) instead of random ones: fine-tuning.
        The architecture must be the same; the calibrated scales come along
        (see ``calibrate_sinogram_scale``).
    calibrate_sinogram_scale : bool
        With ``init_from``: calibrate ``sinogram_scale`` anew on this run's
        first batch (the rms of its targets) instead of keeping the loaded
        one, so that data of another count level (a fine-tune's task data)
        reach the pretrained autoencoder at the level it was trained at;
        ``latent_scale`` is kept. Continued pretraining on the same data keeps both.
    cpu_threads : int, optional
        CPU threads of torch and Numba (:func:`ldm.runtime.set_cpu_threads`),
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
    init_from: Optional[str] = None
    calibrate_sinogram_scale: bool = False
    cpu_threads: Optional[int] = None

    def __post_init__(self) -> None:
        if not isinstance(self.stages, Mapping) or not all(
                isinstance(key, str) and isinstance(value, StageConfig) for key, value in self.stages.items()):
            raise TypeError(f"stages must map stage names to StageConfig, got {self.stages!r}")
        if not any(stage.steps for stage in self.stages.values()):
            raise ValueError("stages must give at least one stage a positive number of steps")
        positive_int("batch_size", self.batch_size, 1)
        check_finite_real("weight_decay", self.weight_decay, 0.0, math.inf)
        if not isinstance(self.betas, tuple) or len(self.betas) != 2:
            raise TypeError(f"betas must be a pair of numbers, got {self.betas!r}")
        for beta in self.betas:
            check_finite_real("betas", beta, 0.0, 1.0, high_open=True)
        check_finite_real("eps", self.eps, 0.0, math.inf, low_open=True)
        check_finite_real("grad_clip_norm", self.grad_clip_norm, 0.0, math.inf)
        check_choice("precision", self.precision, PRECISIONS)
        check_bool("gradient_checkpointing", self.gradient_checkpointing)
        check_finite_real("ema_decay", self.ema_decay, 0.0, 1.0, high_open=True)
        positive_int("checkpoint_every", self.checkpoint_every, 1)
        positive_int("log_every", self.log_every, 1)
        positive_int("keep_checkpoints", self.keep_checkpoints, 1)
        if not isinstance(self.out_dir, str) or not self.out_dir:
            raise TypeError(f"out_dir must be a non-empty string, got {self.out_dir!r}")
        positive_int("seed", self.seed, 0)
        positive_int("num_workers", self.num_workers, 0)
        if not isinstance(self.device, str) or self.device.split(":")[0] not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        check_bool("find_unused_parameters", self.find_unused_parameters)
        check_bool("calibrate_sinogram_scale", self.calibrate_sinogram_scale)
        if self.cpu_threads is not None:
            positive_int("cpu_threads", self.cpu_threads, 1)
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from):
            raise TypeError(f"init_from must name a weights, run or checkpoint folder, got {self.init_from!r}")

    @property
    def total_steps(self) -> int:
        """Optimiser steps summed over the stages."""
        return sum(stage.steps for stage in self.stages.values())


@dataclass
class DataConfig:
    """Training data: where the sinograms come from and which task they pose.

    Parameters
    ----------
    source : {"ellipses", "folder", "foundation"}
        ``"ellipses"``: random ellipse activity phantoms projected on the
        geometry below (works without any files). ``"folder"``: a simulator
        dataset folder (``path``; see :mod:`ldm.folder_datasets` for the format).
        ``"foundation"``: the foundation model's pretraining data
        (:mod:`ldm.foundation_data`): ``n_bases`` simulated slices of
        ``image_size`` pixels and ``n_views`` views over ``regions`` and
        ``tracers`` (each on its region's field of view), as prompted RMAS
        inpainting and synthesis examples in random windows; task
        ``"inpainting"``; needs a model with ``n_tasks``, ``n_tracers``,
        ``n_regions`` and ``coordinate_channels``.
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
        default), DMM layout (``None``: enumerated subsets, no repeats;
        ``random``, ``clustered``, ``rings`` drawn per sample; ``every``: one
        of enumerated, clustered and rings per sample)).
    seed : int
        Seed of the phantoms and of the RMAS masks.
    model_input : {"measured", "physics_prior", "unmixing"}
        What a paired sample's ``input`` holds (``task="paired"`` with an
        ``allpet simulate`` folder only). ``"measured"``: the measured input
        at the target's count scale. ``"physics_prior"``: its physics prior,
        as in ``allpet demo`` (:meth:`tasks.task.PETTask.physics_prior`: the
        forward model of the input's OSEM image, ``prior_osem`` = (subsets,
        iterations), post-filtered by a Gaussian of ``prior_fwhm_voxels``
        voxels except at the sample's lesions); pair it with
        ``model.mode: bridge`` as the demo does, and with the demo's
        ``model.residual_decode`` and ``model.autoencode_inputs`` for the
        task (``tasks.task.PETTask``: both off for tracer conversion; the
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
    attention : {"segmentation", "oracle"}
        The TMA attention of an ``allpet simulate`` folder's samples (and the
        regions its physics prior keeps unfiltered): ``"segmentation"``, a
        coarse segmentation of hyper- and hypometabolic regions in each
        sample's measured input (what a user has; the ``tasks`` package
        computes it, :class:`tasks.attention_inputs.EditedAttention`, and
        ``allpet train`` passes it), or ``"oracle"``, the simulator's lesion
        labels (an upper bound no user has). ``allpet sample`` conditions its
        inputs the same way.
    prior_fwhm_voxels : float
        Post-filter FWHM of the physics prior, in voxels of the samples' image
        grid (default 2, the demo's for low dose; it uses 0 for attenuation
        correction, :attr:`tasks.task.PETTask.prior_fwhm_voxels`).
    prior_osem : (int, int)
        OSEM subsets and iterations of the physics prior.
    max_examples : int, optional
        Train on the first ``max_examples`` pairs of the folder only
        (``task="paired"``; few-shot fine-tuning).
    regions, tracers : tuple of str
        Body regions and tracers of the ``"foundation"`` base slices.
    synthesis_fraction, complement_fraction, full_window_fraction : float
        ``"foundation"``: probabilities of a synthesis example (nothing
        known), of the complement mask, and of the whole-sinogram window
        (:class:`ldm.foundation_data.FoundationCollate`).
    window_views, window_bins : tuple of int
        ``"foundation"``: sizes of the random windows (empty: whole sinograms).
    """

    source: Literal["ellipses", "folder", "foundation"] = "ellipses"
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
    attention: Literal["segmentation", "oracle"] = "segmentation"
    prior_fwhm_voxels: float = 2.0
    prior_osem: tuple[int, int] = (4, 4)
    max_examples: Optional[int] = None
    regions: tuple[str, ...] = ("brain", "chest", "abdomen", "trunk")
    tracers: tuple[str, ...] = ("fdg", "met", "fdopa", "psma")
    synthesis_fraction: float = 0.3
    complement_fraction: float = 0.5
    full_window_fraction: float = 0.25
    window_views: tuple[int, ...] = ()
    window_bins: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        check_choice("source", self.source, DATA_SOURCES)
        check_choice("model_input", self.model_input, MODEL_INPUTS)
        check_choice("attention", self.attention, ATTENTION_SOURCES)
        if self.layout is not None:
            check_choice("layout", self.layout, DATASET_LAYOUTS)
        check_choice("task", self.task, DATA_TASKS)
        if self.source == "folder" and not (isinstance(self.path, str) and self.path):
            raise ValueError("path must name the dataset folder when source is 'folder'")
        if self.source != "folder" and self.path is not None:
            raise ValueError("path is only used with source 'folder'; remove it or set source: folder")
        if self.max_examples is not None:
            positive_int("max_examples", self.max_examples, 1)
            if self.task != "paired":
                raise ValueError("max_examples limits the pairs of task 'paired'")
        if self.source == "foundation" and self.task != "inpainting":
            raise ValueError("source 'foundation' poses its own prompted tasks (inpainting and synthesis): set task "
                             "to 'inpainting'")
        for name in ("synthesis_fraction", "complement_fraction", "full_window_fraction"):
            check_finite_real(name, getattr(self, name), 0.0, 1.0)
        for name in ("window_views", "window_bins"):
            if not isinstance(getattr(self, name), tuple):
                raise TypeError(f"{name} must be a list of integers, got {getattr(self, name)!r}")
            for value in getattr(self, name):
                positive_int(name, value, 1)
        for name in ("regions", "tracers"):
            if not isinstance(getattr(self, name), tuple) or not getattr(self, name) or not all(
                    isinstance(v, str) for v in getattr(self, name)):
                raise TypeError(f"{name} must be a non-empty list of names, got {getattr(self, name)!r}")
        if self.task == "paired" and self.source != "folder":
            raise ValueError("task 'paired' needs input/target pairs: set source to 'folder'")
        for name in ("image_size", "n_views", "n_bins", "n_bases", "cells_per_side"):
            positive_int(name, getattr(self, name), 1)
        for name in ("voxel_size_mm", "bin_width_mm"):
            check_finite_real(name, getattr(self, name), 0.0, math.inf, low_open=True, high_open=True)
        if not isinstance(self.n_active, tuple) or len(self.n_active) != 2:
            raise TypeError(f"n_active must be a pair of integers, got {self.n_active!r}")
        for value in self.n_active:
            positive_int("n_active", value, 1)
        check_finite_real("shape_fraction", self.shape_fraction, 0.0, 1.0)
        if self.epoch_size is not None:
            positive_int("epoch_size", self.epoch_size, 1)
        positive_int("seed", self.seed, 0)
        if self.model_input != "measured" and self.task != "paired":
            raise ValueError(f"model_input {self.model_input!r} conditions paired samples: set task to 'paired' "
                             "(with source 'folder')")
        check_finite_real("prior_fwhm_voxels", self.prior_fwhm_voxels, 0.0, math.inf, high_open=True)
        if not isinstance(self.prior_osem, tuple) or len(self.prior_osem) != 2:
            raise TypeError(f"prior_osem must be a pair of integers (subsets, iterations), got {self.prior_osem!r}")
        for value in self.prior_osem:
            positive_int("prior_osem", value, 1)


@dataclass
class ExperimentConfig:
    """A whole experiment: ``model`` (LDMConfig), ``train`` (TrainConfig) and ``data`` (DataConfig)."""

    model: LDMConfig = field(default_factory=LDMConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.train.stages) - set(SinogramLDM.stages))
        if unknown:
            raise ValueError(f"train.stages has unknown stages {unknown}; the model's stages are "
                             f"{list(SinogramLDM.stages)}")
        if self.data.task == "unconditional" and self.model.condition_on_input:
            raise ValueError("data.task 'unconditional' gives no task input: set model.condition_on_input: false "
                             "(and model.mode: ddpm)")

    def model_config(self) -> LDMConfig:
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


# ----------------------------------------------------------------------------------------------- plain dicts

def config_from_dict(data: Mapping[str, Any]) -> ExperimentConfig:
    """:class:`ExperimentConfig` from a nested mapping (as read from YAML)."""
    if isinstance(data, Mapping):
        model = data.get("model")
        for sub in (model or {}).values() if isinstance(model, Mapping) else ():
            if isinstance(sub, Mapping) and "gradient_checkpointing" in sub:
                raise ValueError("set gradient checkpointing with train.gradient_checkpointing, not in model.*")
    return dataclass_from_dict(ExperimentConfig, data)


def config_to_dict(config: ExperimentConfig, *, keep_model_flags: bool = False) -> dict[str, Any]:
    """Nested dict of plain YAML types (tuples as lists); :func:`config_from_dict` inverts it.

    The model's ``gradient_checkpointing`` flags are dropped (they follow
    ``train.gradient_checkpointing``) unless ``keep_model_flags``.
    """
    data = dataclass_to_dict(config)
    if not keep_model_flags:
        for sub in data["model"].values():
            if isinstance(sub, dict):
                sub.pop("gradient_checkpointing", None)
    return data
