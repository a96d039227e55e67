"""ALL-PET latent diffusion model in the projection domain: data, models, schedulers, constraints, training (torch)."""

from .autoencoder import AutoencoderConfig, SinogramAutoencoder, crop_sinogram, pad_sinogram
from .constraints import constraint_losses, insert_known, pair_from_full, project_pair
from .rmas_dataset import RMASDataset
from .denoiser import DenoiserConfig, LatentDenoiser
from .diffusion import (BridgeSchedule, LDMConfig, SinogramLDM, batch_from_rmas, make_scheduler, run_reverse_process,
                        sample_bridge)

__all__ = [
    "AutoencoderConfig",
    "BridgeSchedule",
    "DenoiserConfig",
    "LDMConfig",
    "LatentDenoiser",
    "RMASDataset",
    "SinogramAutoencoder",
    "SinogramLDM",
    "batch_from_rmas",
    "constraint_losses",
    "crop_sinogram",
    "insert_known",
    "make_scheduler",
    "pad_sinogram",
    "pair_from_full",
    "project_pair",
    "run_reverse_process",
    "sample_bridge",
]
