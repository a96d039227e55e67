"""The settings of one task run (:class:`PipelineConfig`) and what they ask of the task.

Why the defaults are what they are (measurements of past runs): docs/results/tasks.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from pet_projection.config_dicts import dataclass_to_dict
from pet_projection.simulation import SimulationConfig
from pet_projection.validation import check_bool, check_choice, check_non_negative

from .attention_inputs import ATTENTION_MODES
from .model_inputs import ModelInput, physics_prior_model_input
from .registry import get_task
from .task import PETTask

__all__ = ["ATTENTION_LABELS", "COUNTS_PER_128_SLICE", "UNSEEN_TEST_SETS", "PipelineConfig"]

# full-dose counts of a 128 x 128 clinical slice: about 1e8 prompts of a brain scan over about 100 slices
COUNTS_PER_128_SLICE = 1e6
# how reports name the attention modes (tasks.attention_inputs.ATTENTION_MODES)
ATTENTION_LABELS = {"segmentation": "segmentation of the input", "oracle": "oracle attention (upper bound)"}
# the test sets of anatomy never trained on (tasks.sources)
UNSEEN_TEST_SETS = ("stir_thorax", "left_out_region")


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
    per pixel as clinical data.
    Model input: with ``physics_prior`` (default), the LDM and the UNet
    baseline are conditioned on the task's prior (:meth:`model_input`:
    :meth:`~tasks.task.PETTask.physics_prior`, the forward model of the
    post-filtered OSEM image of the input, filter FWHM ``prior_fwhm_voxels``
    voxels; None, the default: the task's own,
    :attr:`~tasks.task.PETTask.prior_fwhm_voxels`; with ``use_tma`` the
    regions of the TMA attention stay unfiltered; tracer separation: each output
    channel's linear-unmixing estimate of the measured sum,
    :mod:`tasks.tracer_separation`) instead of the raw measured sinogram.
    Where the prior is like the target (:attr:`~tasks.task.PETTask.residual_decode`)
    the LDM outputs it plus a decoded correction, with an autoencoder that
    also learns the inputs where the task asks for it
    (:attr:`~tasks.task.PETTask.autoencode_inputs`).
    Count-level augmentation: ``count_resampling`` fresh inputs per
    training sample (:func:`~tasks.examples.with_resampled_inputs`; low dose
    only: new binomial thinnings of the full-dose prompts, which real data
    allow too); off by default.
    Anatomy-level augmentation: ``anatomy_warps`` new patients per training
    sample (:func:`~tasks.examples.with_warped_anatomies`, every task: the
    sample's anatomy under a random deformation, scanned again through its
    own physics), before the count resampling; off by default.
    Model: the ``tiny`` preset (:mod:`ldm.presets`) with an autoencoder of
    downsampling factor ``latent_factor`` (2, 4 or 8; None, the default:
    the task's own, :attr:`~tasks.task.PETTask.latent_factor`) and a denoiser of
    ``denoiser_channels`` channels on its first level (None, the default: the
    preset's 32; a multiple of 8, its GroupNorm groups) in ``ldm_mode``
    (``"ddpm"``: noise -> target conditioned on the input; ``"bridge"``, the
    default: input -> target diffusion bridge, which predicts ``z0``) with
    ``use_tma``, ``use_constraints``, and RMAS/DMM augmentation ``use_rmas``
    (``rmas_per_example`` inpainting samples per paired example);
    ``autoencoder_steps``, ``diffusion_steps``, ``batch_size``. Foundation
    model: ``ldm_init`` starts the LDM from pretrained weights (``"foundation"``,
    the shipped model, or a weights, run or checkpoint folder), fine-tuned as
    the task's bridge for ``diffusion_steps``; its autoencoder is kept, or,
    for tasks whose inputs and targets are sinograms of another kind than the
    pretraining data (:attr:`~tasks.task.PETTask.autoencode_inputs`:
    attenuation correction, delayed frame, tracer separation), fine-tuned on
    the examples' inputs and targets for ``finetune_autoencoder_steps`` first;
    ``scratch_steps`` (with ``ldm_init``; 0, the default: off) adds the
    same architecture trained from fresh weights on the same examples,
    ``scratch_steps`` autoencoder and ``scratch_steps`` diffusion steps (the
    ``"same LDM from scratch"`` rows): what the pretraining is worth.
    ``ldm_preset="foundation"`` trains that architecture from scratch instead
    of the tiny one (:func:`tasks.ldm_runs.ldm_experiment`). Both need the
    foundation's geometry to be meaningful: 64 pixels and views of the
    region's field of view (``size=64, n_views=64``). ``unsupervised`` (low
    dose only) adds the pretrained model used without any paired example: a
    posterior sample of each measured low-dose sinogram's Poisson counts under
    the prompt's prior (:func:`tasks.ldm_runs.sample_unsupervised`), with
    ``unsupervised_step_size`` (the likelihood's step). Sampling:
    ``sampler``, ``sampling_steps``, ``guidance_scale`` (TMA guidance).
    Baselines: ``baselines`` (all on or off), ``unet_steps``; OSEM
    ``osem_subsets`` x ``osem_iterations``; post-filter FWHMs tried, in voxels
    (``post_filter_fwhm_voxels``).
    TMA attention (the LDM's condition channel and the prior's unfiltered
    regions, in training and testing alike): ``attention`` ``"segmentation"``
    (default: hyper- and hypometabolic regions of a coarse segmentation of each
    sample's measured input, :class:`tasks.attention_inputs.InputSegmentation`)
    or ``"oracle"`` (the simulator's lesion labels, an upper bound no user has).
    Generalization: ``unseen_test`` names test sets of anatomy never trained
    on, each of ``n_unseen_test`` samples, scored beside the in-distribution
    test set (:data:`UNSEEN_TEST_SETS`, :func:`tasks.sources.unseen_test_sets`:
    ``"stir_thorax"``, the STIR-exercises FDG thorax as an image phantom,
    skipped with a printed reason where its files are missing;
    ``"left_out_region"``, the region family the training data lack).
    ``device``: ``"auto"`` (CUDA when torch sees it) or ``"cpu"``/``"cuda"``;
    ``threads``: torch CPU threads (1 is fastest on a shared 2-core machine).
    Measurements behind these defaults: docs/results/tasks.md.
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
    ldm_init: Optional[str] = None
    finetune_autoencoder_steps: int = 200
    scratch_steps: int = 0
    ldm_preset: str = "tiny"
    unsupervised: bool = False
    unsupervised_step_size: float = 0.1
    sampler: str = "ddim"
    sampling_steps: int = 25
    guidance_scale: float = 0.0
    unet_steps: int = 300
    baselines: bool = True
    osem_subsets: int = 4
    osem_iterations: int = 4
    post_filter_fwhm_voxels: tuple = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
    attention: str = "segmentation"
    unseen_test: tuple = UNSEEN_TEST_SETS
    n_unseen_test: int = 16
    device: str = "auto"
    threads: Optional[int] = 1

    def __post_init__(self) -> None:
        self.task = get_task(self.task).name
        for name in ("size", "n_views", "n_train", "n_test", "n_unseen_test", "batch_size", "sampling_steps",
                     "osem_subsets", "osem_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("autoencoder_steps", "diffusion_steps", "unet_steps", "count_resampling", "anatomy_warps",
                     "finetune_autoencoder_steps", "scratch_steps"):
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
        check_choice("attention", self.attention, ATTENTION_MODES)
        if isinstance(self.unseen_test, str):
            raise TypeError(f"unseen_test must be a sequence of test set names, got the string {self.unseen_test!r}")
        self.unseen_test = tuple(self.unseen_test)
        unknown = [name for name in self.unseen_test if name not in UNSEEN_TEST_SETS]
        if unknown or len(set(self.unseen_test)) != len(self.unseen_test):
            raise ValueError(f"unseen_test must name distinct test sets of {', '.join(UNSEEN_TEST_SETS)}, got "
                             f"{list(self.unseen_test)}")
        check_choice("ldm_preset", self.ldm_preset, ("tiny", "foundation"))
        if self.ldm_init is not None and (not isinstance(self.ldm_init, str) or not self.ldm_init):
            raise TypeError(f"ldm_init must name pretrained weights ('foundation' or a folder), got {self.ldm_init!r}")
        if self.scratch_steps and self.ldm_init is None:
            raise ValueError("scratch_steps adds the pretrained model's architecture from scratch: set ldm_init")
        if self.ldm_init is not None and self.ldm_mode != "bridge":
            raise ValueError("ldm_init fine-tunes the pretrained model as the task's bridge: set ldm_mode='bridge'")
        check_bool("unsupervised", self.unsupervised)
        if self.unsupervised and self.task != "low_dose":
            raise ValueError("unsupervised sampling serves the low_dose task only (the Poisson likelihood of its "
                             f"measured counts), not {self.task!r}")
        check_non_negative("unsupervised_step_size", self.unsupervised_step_size)
        if self.ldm_mode not in ("ddpm", "bridge"):
            raise ValueError(f"ldm_mode must be 'ddpm' or 'bridge', got {self.ldm_mode!r}")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")

    @classmethod
    def quick(cls, task: str = "low_dose", **changes: Any) -> "PipelineConfig":
        """CI-sized run (well under a minute of compute after Numba's first compilation)."""
        values = dict(task=task, size=16, n_views=16, n_train=8, n_test=2, n_unseen_test=2, autoencoder_steps=4,
                      diffusion_steps=4, batch_size=4, sampling_steps=2, unet_steps=4, osem_subsets=2,
                      osem_iterations=2, post_filter_fwhm_voxels=(0.0, 1.0))
        values.update(changes)
        return cls(**values)

    @property
    def counts(self) -> float:
        """Full-dose expected prompts per slice (see the class notes)."""
        if self.total_counts is not None:
            return float(self.total_counts)
        return COUNTS_PER_128_SLICE * (self.size / 128.0) ** 2

    def simulation_config(self) -> SimulationConfig:
        """The simulator's settings of this run's samples (one anatomy, one dose reduction factor)."""
        return SimulationConfig(size=self.size, n_views=self.n_views, anatomy=self.anatomy,
                                dose_reduction_factors=(self.dose_reduction_factor,), n_lesions=tuple(self.n_lesions),
                                total_counts=self.counts)

    def to_dict(self) -> dict:
        """JSON-ready dict of the settings (tuples become lists)."""
        return dataclass_to_dict(self)

    def prior_fwhm_voxels_for(self, task: PETTask) -> float:
        """Post-filter FWHM (voxels) of ``task``'s physics prior: ``prior_fwhm_voxels``, else the task's own."""
        return task.prior_fwhm_voxels if self.prior_fwhm_voxels is None else self.prior_fwhm_voxels

    def model_input(self, task: PETTask) -> Optional[ModelInput]:
        """The ``model_input`` of :func:`~tasks.examples.build_examples` for this run (None: the measured inputs).

        With ``physics_prior``: :func:`tasks.model_inputs.physics_prior_model_input`
        with :meth:`prior_fwhm_voxels_for` and the OSEM settings; with
        ``use_tma`` the regions of the TMA image attention stay unfiltered.
        """
        if not self.physics_prior:
            return None
        return physics_prior_model_input(task, self.prior_fwhm_voxels_for(task), self.osem_subsets,
                                         self.osem_iterations, self.use_tma)

    @property
    def attention_label(self) -> str:
        """How reports name this run's TMA attention (:data:`ATTENTION_LABELS`)."""
        return ATTENTION_LABELS[self.attention]
