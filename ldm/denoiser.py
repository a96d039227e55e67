"""Conditional latent denoiser: diffusers' UNet2DModel with concatenated conditions and task/tracer/region labels.

The UNet is diffusers' :class:`~diffusers.UNet2DModel` (Ho et al. 2020's
architecture with the timestep added to every residual block), configured
small. Conditions enter in two ways:

- spatial conditions (the encoded task input, the sinogram mask and the TMA
  attention at latent resolution) as extra input channels, concatenated with
  the noisy latent (Saharia et al. 2022, "Palette");
- class labels (the prompt's task, tracer and body-region ids, :mod:`ldm.prompts`)
  as learned embeddings added to the timestep embedding
  (``class_embed_type="identity"`` passes their sum).
  Each table has one extra row, "unspecified", used where a label is missing.

Why diffusers' UNet: it does all of this with options (``class_embed_type``,
per-level attention blocks, gradient checkpointing), is well tested, and a
hand-written UNet of the same shape would only duplicate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from pet_projection.validation import check_int_tuple, check_non_negative, positive_int

from .autoencoder import check_unet_levels

__all__ = ["DenoiserConfig", "LatentDenoiser"]


@dataclass(frozen=True)
class DenoiserConfig:
    """Architecture of :class:`LatentDenoiser`.

    Parameters
    ----------
    base_channels : int
        Channels of the first level; level ``k`` has ``base_channels * channel_mults[k]``.
    channel_mults : tuple of int
        One multiplier per level; ``len - 1`` downsamplings, so latent sides
        are padded to multiples of :attr:`downsampling_factor`.
    n_res_blocks : int
        Residual blocks per level (the decoder side has one more, as in diffusers).
    attention_levels : tuple of int
        Indices of the levels with self-attention (cheapest at the coarsest levels).
    mid_attention : bool
        Self-attention in the bottleneck.
    attention_head_dim : int
        Channels per attention head.
    norm_groups : int
        GroupNorm groups; must divide every level's channels.
    dropout : float
        Dropout probability in the residual blocks, in ``[0, 1)``.
    gradient_checkpointing : bool
        Recompute activations in the backward pass (less memory, ~30% slower).
    """

    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2)
    n_res_blocks: int = 1
    attention_levels: tuple[int, ...] = ()
    mid_attention: bool = False
    attention_head_dim: int = 8
    norm_groups: int = 8
    dropout: float = 0.0
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name in ("base_channels", "n_res_blocks", "attention_head_dim", "norm_groups"):
            positive_int(f"{owner}.{name}", getattr(self, name))
        mults = check_int_tuple(f"{owner}.channel_mults", self.channel_mults, 1)
        object.__setattr__(self, "channel_mults", mults)
        levels = tuple(self.attention_levels)
        if levels:
            levels = check_int_tuple(f"{owner}.attention_levels", levels, 0)
        if any(level >= len(mults) for level in levels) or len(set(levels)) != len(levels):
            raise ValueError(f"{owner}.attention_levels must hold distinct level indices below "
                             f"len(channel_mults)={len(mults)}, got {levels}")
        object.__setattr__(self, "attention_levels", levels)
        check_unet_levels(owner, self.base_channels, mults, self.norm_groups, self.mid_attention,
                          self.gradient_checkpointing)
        dropout = check_non_negative(f"{owner}.dropout", self.dropout)
        if dropout >= 1.0:
            raise ValueError(f"{owner}.dropout must be below 1, got {dropout}")
        object.__setattr__(self, "dropout", dropout)

    @property
    def downsampling_factor(self) -> int:
        """Ratio of the latent to the UNet's coarsest resolution along each axis."""
        return 2 ** (len(self.channel_mults) - 1)


class LatentDenoiser(nn.Module):
    """Noise (or ``x0`` / ``v``) predictor for latents ``(B, latent_channels, H, W)``.

    Parameters
    ----------
    config : DenoiserConfig
    latent_channels : int
        Channels of the diffused latent (and of the output).
    cond_channels : int
        Channels of the spatial conditions concatenated with the latent (may be 0).
    n_tracers, n_regions, n_tasks : int
        Tracer, body-region and task classes; 0 disables that label.

    ``H`` and ``W`` must be multiples of ``config.downsampling_factor``.
    """

    def __init__(self, config: DenoiserConfig, latent_channels: int, cond_channels: int = 0,
                 n_tracers: int = 0, n_regions: int = 0, n_tasks: int = 0) -> None:
        super().__init__()
        from diffusers import UNet2DModel

        if not isinstance(config, DenoiserConfig):
            raise TypeError(f"config must be a DenoiserConfig, got {type(config).__name__}")
        self.config = config
        self.latent_channels = positive_int("latent_channels", latent_channels)
        self.cond_channels = positive_int("cond_channels", cond_channels, minimum=0)
        self.n_tracers = positive_int("n_tracers", n_tracers, minimum=0)
        self.n_regions = positive_int("n_regions", n_regions, minimum=0)
        self.n_tasks = positive_int("n_tasks", n_tasks, minimum=0)
        levels = range(len(config.channel_mults))
        with_attention = [level in config.attention_levels for level in levels]
        embed_dim = 4 * config.base_channels  # UNet2DModel's timestep-embedding width
        self.unet = UNet2DModel(
            in_channels=latent_channels + cond_channels, out_channels=latent_channels,
            block_out_channels=tuple(config.base_channels * m for m in config.channel_mults),
            down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in with_attention),
            up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(with_attention)),
            layers_per_block=config.n_res_blocks, attention_head_dim=config.attention_head_dim,
            norm_num_groups=config.norm_groups, dropout=config.dropout, add_attention=config.mid_attention,
            class_embed_type="identity" if n_tracers or n_regions or n_tasks else None)
        # one extra row per table: the "unspecified" label
        self.tracer_embedding = nn.Embedding(n_tracers + 1, embed_dim) if n_tracers else None
        self.region_embedding = nn.Embedding(n_regions + 1, embed_dim) if n_regions else None
        self.task_embedding = nn.Embedding(n_tasks + 1, embed_dim) if n_tasks else None
        if config.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()

    def _label_embedding(self, name: str, labels: Optional[Tensor], table: Optional[nn.Embedding],
                         batch: int, device: torch.device) -> Optional[Tensor]:
        if table is None:
            if labels is not None:
                raise ValueError(f"{name} labels given, but the model has no {name} classes (n_{name}s=0)")
            return None
        unspecified = table.num_embeddings - 1
        if labels is None:
            labels = torch.full((batch,), -1, dtype=torch.long, device=device)
        if labels.shape != (batch,) or labels.dtype != torch.long:
            raise ValueError(f"{name} labels must be int64 of shape ({batch},), got {labels.dtype} "
                             f"{tuple(labels.shape)}")
        if bool((labels >= unspecified).any()):
            raise ValueError(f"{name} labels must lie in [0, {unspecified}) (or be negative for unspecified), "
                             f"got {int(labels.max())}")
        return table(torch.where(labels < 0, unspecified, labels))

    def forward(self, z_t: Tensor, timestep: Tensor, cond: Optional[Tensor] = None,
                tracer: Optional[Tensor] = None, region: Optional[Tensor] = None,
                task: Optional[Tensor] = None) -> Tensor:
        """Prediction ``(B, latent_channels, H, W)`` for noisy latents ``z_t`` at integer ``timestep`` ``(B,)``.

        ``cond`` is ``(B, cond_channels, H, W)``; ``tracer``/``region``/``task`` are
        int64 ``(B,)``, negative (or omitted) for "unspecified".
        """
        batch, _, height, width = z_t.shape
        factor = self.config.downsampling_factor
        if height % factor or width % factor:
            raise ValueError(f"latent sides {(height, width)} must be multiples of {factor}")
        if self.cond_channels:
            if cond is None or cond.shape != (batch, self.cond_channels, height, width):
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"cond must have shape {(batch, self.cond_channels, height, width)}, got {got}")
            z_t = torch.cat([z_t, cond.to(z_t.dtype)], dim=1)
        embeddings = [self._label_embedding(name, labels, table, batch, z_t.device)
                      for name, labels, table in (("tracer", tracer, self.tracer_embedding),
                                                  ("region", region, self.region_embedding),
                                                  ("task", task, self.task_embedding))]
        embeddings = [e for e in embeddings if e is not None]
        class_labels = sum(embeddings) if embeddings else None
        return self.unet(z_t, timestep, class_labels=class_labels).sample
