"""ALL-PET latent diffusion model: training data, models, schedulers and constraints (torch)."""

from .datasets import RMASDataset

__all__ = ["RMASDataset"]
