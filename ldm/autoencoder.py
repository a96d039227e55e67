"""KL-regularised sinogram autoencoder: sinograms ``(B, C, n_views, n_radial)`` to latents and back.

The network is diffusers' :class:`~diffusers.AutoencoderKL` (Rombach et al.,
CVPR 2022, sec. 3: a convolutional encoder/decoder with a diagonal Gaussian
posterior), configured small; this module adds what sinograms need: padding
to a multiple of the downsampling factor that respects the sinogram's
periodicity, and a loss made of an L1 term (weighted by TMA attention when
given), a KL term and a sinogram-consistency term.

Inside the networks, convolutions pad with zeros (diffusers' layers), so the
first and last views are borders to them; only the padding to the size
multiple uses the sinogram's periodic extension (:func:`pad_sinogram`).

Axis convention: sinograms are ``(B, C, n_views, n_radial)`` with views
``theta_v = v * pi / n_views`` spanning ``[0, pi)`` and radial bins centred
on the rotation axis (see ``ARCHITECTURE.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor, nn

from pet_projection.validation import check_bool, check_int_tuple, check_non_negative, positive_int

__all__ = [
    "AutoencoderConfig",
    "SinogramAutoencoder",
    "attention_weights",
    "check_unet_levels",
    "crop_sinogram",
    "pad_sinogram",
]

FACTORS = (2, 4, 8)


# ----------------------------------------------------------------------------------------- config

def check_unet_levels(owner: str, base_channels: int, mults: tuple[int, ...], norm_groups: int, mid_attention: Any,
                      gradient_checkpointing: Any) -> None:
    """Checks shared by the autoencoder and denoiser configs: group norm fits every level; flags are booleans."""
    for mult in mults:
        if base_channels * mult % norm_groups:
            raise ValueError(f"{owner}.norm_groups={norm_groups} must divide every level's channels "
                             f"base_channels * channel_mults = {[base_channels * m for m in mults]}")
    check_bool(f"{owner}.mid_attention", mid_attention)
    check_bool(f"{owner}.gradient_checkpointing", gradient_checkpointing)


@dataclass(frozen=True)
class AutoencoderConfig:
    """Architecture and loss weights of :class:`SinogramAutoencoder`.

    Parameters
    ----------
    in_channels : int
        Sinogram channels (:class:`~ldm.model.SinogramLDM` uses 2: a
        positive/negative pair).
    latent_channels : int
        Channels of the latent.
    base_channels : int
        Channels of the first level; level ``k`` has ``base_channels * channel_mults[k]``.
    channel_mults : tuple of int
        One multiplier per level; ``len - 1`` stride-2 downsamplings, so the
        downsampling factor ``2 ** (len - 1)`` must be 2, 4 or 8 (2 keeps
        small sinograms' detail; measurements: docs/results/ldm.md).
    n_res_blocks : int
        Residual blocks per level.
    norm_groups : int
        GroupNorm groups; every level's channel count must be a multiple.
    mid_attention : bool
        Self-attention in the bottleneck (costly at large latents).
    kl_weight : float
        Weight of the KL term (mean over latent elements), e.g. 1e-6 as in
        Rombach et al. 2022 (app. G) for a near-deterministic latent.
    consistency_weight : float
        Weight of the sinogram-consistency term (per-view projection mass,
        plus the positive/negative constraints when a mask is given).
    gradient_checkpointing : bool
        Recompute activations in the backward pass (less memory, ~30% slower).
    """

    in_channels: int = 1
    latent_channels: int = 4
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    n_res_blocks: int = 1
    norm_groups: int = 8
    mid_attention: bool = False
    kl_weight: float = 1e-6
    consistency_weight: float = 0.1
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name in ("in_channels", "latent_channels", "base_channels", "n_res_blocks", "norm_groups"):
            positive_int(f"{owner}.{name}", getattr(self, name))
        mults = check_int_tuple(f"{owner}.channel_mults", self.channel_mults, 1)
        object.__setattr__(self, "channel_mults", mults)
        if self.downsampling_factor not in FACTORS:
            raise ValueError(f"{owner}.channel_mults={mults} gives a downsampling factor {self.downsampling_factor}; "
                             f"it must be one of {FACTORS} (2, 3 or 4 levels)")
        check_unet_levels(owner, self.base_channels, mults, self.norm_groups, self.mid_attention,
                          self.gradient_checkpointing)
        for name in ("kl_weight", "consistency_weight"):
            object.__setattr__(self, name, check_non_negative(f"{owner}.{name}", getattr(self, name)))

    @property
    def downsampling_factor(self) -> int:
        """Ratio of sinogram to latent size along each axis."""
        return 2 ** (len(self.channel_mults) - 1)


# ----------------------------------------------------------------------------------------- sinogram padding

def check_sinogram(name: str, x: Any, channels: Optional[int] = None) -> Tensor:
    """``x`` if it is a floating tensor ``(B, C, n_views, n_radial)`` (``C == channels`` when given)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}")
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        expected = "(B, C, n_views, n_radial)" if channels is None else f"(B, {channels}, n_views, n_radial)"
        raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}")
    return x


def pad_sinogram(x: Tensor, multiple: int) -> Tensor:
    """Pad ``(..., n_views, n_radial)`` sinograms up to multiples of ``multiple`` on both axes.

    Views: a parallel-beam sinogram is periodic with a flip, ``p(theta + pi, s)
    = p(theta, -s)``, so appended view ``v >= n_views`` is view ``v mod n_views``
    with the radial axis reversed when ``v // n_views`` is odd (exact when the
    radial bins are symmetric about the rotation axis, ``s0 = 0``). The added
    views continue the data smoothly, so the convolutions see no seam.
    Radial bins: zeros, split evenly (one more at the end when odd), as rays
    beyond the field of view see no activity. Apply the radial padding after
    the view extension, which it is: the flip uses the unpadded bins.
    :func:`crop_sinogram` undoes it.
    """
    n_views, n_radial = x.shape[-2:]
    extra_views = -n_views % multiple
    if extra_views:
        index = torch.arange(n_views, n_views + extra_views, device=x.device)
        periods, source = index // n_views, index % n_views
        appended = x.index_select(-2, source)
        flipped = (periods % 2 == 1).view(-1, 1)
        appended = torch.where(flipped, appended.flip(-1), appended)
        x = torch.cat([x, appended], dim=-2)
    extra_radial = -n_radial % multiple
    if extra_radial:
        x = nn.functional.pad(x, (extra_radial // 2, extra_radial - extra_radial // 2))
    return x


def crop_sinogram(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Undo :func:`pad_sinogram`: the first ``n_views`` views and the central ``n_radial`` bins."""
    n_views, n_radial = size
    left = (x.shape[-1] - n_radial) // 2
    return x[..., :n_views, left:left + n_radial]


def attention_weights(attention: Tensor) -> Tensor:
    """TMA loss weights ``w = (1 + a) / mean(1 + a)``, mean over the last two axes; ``a >= 0`` attention.

    Rays through lesions (``a = 1``) weigh up to twice the background, and the
    mean weight per sample is 1, so switching TMA on or off leaves the loss
    scale unchanged (a fair ablation). Nothing is learned.
    """
    weights = 1.0 + attention
    return weights / weights.mean(dim=(-2, -1), keepdim=True)


def projection_mass_error(recon: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error of the per-view projection mass ``sum_r p(v, r) / n_radial`` of the channel sums.

    Every view of a parallel-beam sinogram integrates the same object (the
    order-0 Helgason-Ludwig condition for unattenuated data), so view-wise
    count errors are structured errors that the per-bin L1 weighs weakly.
    """
    return (recon.sum(dim=1) - target.sum(dim=1)).mean(dim=-1).abs().mean()


# ----------------------------------------------------------------------------------------- model

class SinogramAutoencoder(nn.Module):
    """KL autoencoder of sinograms ``(B, C, n_views, n_radial)`` with latents ``(B, L, V', R')``.

    ``V' = ceil(n_views / f)`` and ``R' = ceil(n_radial / f)``, ``f =
    config.downsampling_factor``: inputs of any size are padded by
    :func:`pad_sinogram` and outputs cropped back.
    """

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        from diffusers import AutoencoderKL

        if not isinstance(config, AutoencoderConfig):
            raise TypeError(f"config must be an AutoencoderConfig, got {type(config).__name__}")
        self.config = config
        levels = len(config.channel_mults)
        self.vae = AutoencoderKL(
            in_channels=config.in_channels, out_channels=config.in_channels,
            down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
            block_out_channels=tuple(config.base_channels * m for m in config.channel_mults),
            layers_per_block=config.n_res_blocks, latent_channels=config.latent_channels,
            norm_num_groups=config.norm_groups, mid_block_add_attention=config.mid_attention)
        if config.gradient_checkpointing:
            self.vae.enable_gradient_checkpointing()

    @property
    def factor(self) -> int:
        return self.config.downsampling_factor

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior ``(mean, logvar)``, each ``(B, L, V', R')``, of sinograms ``x`` ``(B, C, n_views, n_radial)``."""
        x = check_sinogram("x", x, self.config.in_channels)
        posterior = self.vae.encode(pad_sinogram(x, self.factor)).latent_dist
        return posterior.mean, posterior.logvar

    @staticmethod
    def sample_latent(mean: Tensor, logvar: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """A draw ``mean + exp(logvar / 2) * noise`` from the posterior (torch's global RNG without ``generator``)."""
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * logvar) * noise

    def decode(self, z: Tensor, out_size: tuple[int, int]) -> Tensor:
        """Sinograms ``(B, C, *out_size)`` from latents ``z`` ``(B, L, V', R')``; ``out_size = (n_views, n_radial)``."""
        n_views, n_radial = out_size
        expected = (math.ceil(n_views / self.factor), math.ceil(n_radial / self.factor))
        if z.ndim != 4 or z.shape[1] != self.config.latent_channels or tuple(z.shape[-2:]) != expected:
            raise ValueError(f"z must have shape (B, {self.config.latent_channels}, {expected[0]}, {expected[1]}) "
                             f"for out_size={tuple(out_size)}, got {tuple(z.shape)}")
        return crop_sinogram(self.vae.decode(z).sample, out_size)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Reconstruction of ``x`` through a posterior draw, with the posterior ``(recon, mean, logvar)``."""
        mean, logvar = self.encode(x)
        return self.decode(self.sample_latent(mean, logvar), tuple(x.shape[-2:])), mean, logvar

    def loss(self, x: Tensor, mask: Optional[Tensor] = None, attention: Optional[Tensor] = None) -> dict[str, Tensor]:
        """Training loss of sinograms ``x`` ``(B, C, n_views, n_radial)``; torch's global RNG draws the latent.

        Parameters
        ----------
        x : tensor ``(B, C, n_views, n_radial)``
        mask : tensor ``(B, 1, n_views, n_radial)``, optional
            Sinogram mask in {0, 1}. When given, ``x`` is a (positive,
            negative) pair (``C == 2``) and the consistency term adds the
            positive/negative constraints (:func:`ldm.constraints.constraint_losses`).
        attention : tensor ``(B, 1, n_views, n_radial)``, optional
            TMA attention ``>= 0``; weights the L1 term by :func:`attention_weights`.

        Returns
        -------
        dict
            ``loss`` (weighted total), ``l1``, ``kl`` (mean over latent
            elements), ``consistency``: scalars.
        """
        from .constraints import constraint_losses

        x = check_sinogram("x", x, self.config.in_channels)
        recon, mean, logvar = self(x)
        error = (recon - x).abs()
        if attention is not None:
            error = error * attention_weights(check_sinogram("attention", attention, 1))
        l1 = error.mean()
        kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).mean()
        consistency = projection_mass_error(recon, x)
        if mask is not None:
            if self.config.in_channels != 2:
                raise ValueError(f"a mask makes x a (positive, negative) pair with 2 channels; this autoencoder "
                                 f"has in_channels={self.config.in_channels}")
            full = x.sum(dim=1, keepdim=True)
            consistency = consistency + sum(constraint_losses(recon, full, mask).values())
        total = l1 + self.config.kl_weight * kl + self.config.consistency_weight * consistency
        return {"loss": total, "l1": l1, "kl": kl, "consistency": consistency}
