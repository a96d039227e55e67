"""ALL-PET latent diffusion model in the projection domain: models, schedulers, sampling, data, training (torch).

The layout: models (:mod:`~ldm.autoencoder`, :mod:`~ldm.denoiser`, :mod:`~ldm.model`),
schedulers (:mod:`~ldm.schedulers`) and the reverse process (:mod:`~ldm.sampling`);
constraints (:mod:`~ldm.constraints`); batches and training data (:mod:`~ldm.batches`,
:mod:`~ldm.rmas_dataset`, :mod:`~ldm.phantoms`, :mod:`~ldm.folder_datasets`,
:mod:`~ldm.training_data`, :mod:`~ldm.batch_order`); the training loop
(:mod:`~ldm.trainer`, :mod:`~ldm.checkpoints`, :mod:`~ldm.runtime`); experiment
configs and presets (:mod:`~ldm.experiment`, :mod:`~ldm.presets`).
"""

from .autoencoder import AutoencoderConfig, SinogramAutoencoder, crop_sinogram, pad_sinogram
from .batches import batch_from_rmas, collate
from .constraints import constraint_losses, insert_known, pair_from_full, project_pair
from .denoiser import DenoiserConfig, LatentDenoiser
from .experiment import DataConfig, ExperimentConfig, StageConfig, TrainConfig
from .model import LDMConfig, SinogramLDM
from .presets import PRESETS, load_config
from .rmas_dataset import RMASDataset
from .sampling import run_reverse_process, sample
from .schedulers import BridgeScheduler, make_scheduler

__all__ = [
    "AutoencoderConfig",
    "BridgeScheduler",
    "DataConfig",
    "DenoiserConfig",
    "ExperimentConfig",
    "LDMConfig",
    "LatentDenoiser",
    "PRESETS",
    "RMASDataset",
    "SinogramAutoencoder",
    "SinogramLDM",
    "StageConfig",
    "TrainConfig",
    "batch_from_rmas",
    "collate",
    "constraint_losses",
    "crop_sinogram",
    "insert_known",
    "load_config",
    "make_scheduler",
    "pad_sinogram",
    "pair_from_full",
    "project_pair",
    "run_reverse_process",
    "sample",
]
