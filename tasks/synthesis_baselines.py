"""Baseline generators of the synthesis benchmark (issue 36): a VAE, a GAN and a score-based model of sinograms.

Every baseline learns the same 500 base slices as the foundation model
(:func:`ldm.foundation_data.load_base_slices`), conditioned on the same prompt
(tracer and region, one-hot), and is sized like it (0.65 M - 2.6 M
parameters, within 2x of ALL-PET's 1,286,106):

- :class:`ConditionalVAE` (Kingma and Welling 2014; conditional as Sohn et
  al. 2015): a strided convolutional encoder to a 64-dimensional Gaussian
  latent, a decoder that upsamples it back; Gaussian likelihood of fixed
  width ``sigma`` (normalised units) and the KL term. Samples are the
  decoded means of prior draws.
- :class:`ConditionalGAN`: a DCGAN (Radford et al. 2016) generator (linear
  to 4 x 4, four upsampling convolutions) and a spectrally normalised
  (Miyato et al. 2018) strided discriminator that sees the prompt as
  constant label maps; hinge loss, Adam (2e-4, betas 0.5 / 0.999), one
  discriminator step per generator step.
- :class:`PixelDDPM`: a score-based model in pixel space (Ho et al. 2020 DDPM,
  predicting the clean sample as ALL-PET does, linear betas 1e-4 ... 0.02 over 1000 steps; DDIM
  sampling with as many steps as ALL-PET's, the clean-sample estimate
  clipped to the data's range), the LDM's denoiser UNet
  (:class:`ldm.denoiser.LatentDenoiser`) on the sinogram itself: no learned
  latent, only a lossless space-to-depth rearrangement (``patch`` x
  ``patch`` pixels to channels, as patching in Simple Diffusion / DiT) so a
  64 x 64 step costs what a 16 x 16 latent step costs on a CPU.
- The image-domain variant (:class:`ImageDomainGenerator`): the VAE trained
  on the 64 x 64 activity images (linear output, clipped at 0); its samples are forward-projected with the
  region's own parallel-beam projector, scaled to the data's counts
  (:func:`count_scale`) and drawn as Poisson counts, as the scanner would.

Normalisation: sinograms (or images) are counts whose scale differs by
region (4 mm bins for the brain, 7.8 mm for the body), so each baseline
divides its data by a per-region scale (the mean over that region's training
slices of the slice's maximum; :func:`region_scales`), learns in those units
(about ``[0, 1]``; the DDPM maps them to ``[-1, 1]``) and multiplies its
outputs back. The VAE's and GAN's outputs go through a softplus, so their
samples are non-negative by design; the DDPM's (like ALL-PET's) are the raw
network outputs.

:class:`LowDoseCNN` is the usefulness test's low-dose model: a small
residual CNN (the role of :class:`tasks.baselines.SinogramUNet`, which costs
about 2 s per step of 8 on one CPU thread at 64 x 64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BASELINES", "ConditionalGAN", "ConditionalVAE", "ImageDomainGenerator", "LowDoseCNN", "PixelDDPM",
           "count_scale", "make_baseline", "region_scales"]

N_TRACERS, N_REGIONS = 4, 4
LATENT_DIM = 64


def region_scales(data: np.ndarray, region: np.ndarray, n_regions: int = N_REGIONS) -> np.ndarray:
    """Per-region scale ``(n_regions,)`` float32: the mean of the slices' maxima ``(N, H, W)`` by region (1: none)."""
    peaks = np.asarray(data, dtype=np.float64).reshape(len(data), -1).max(axis=1)
    scales = np.ones(n_regions)
    for r in range(n_regions):
        chosen = peaks[np.asarray(region) == r]
        if chosen.size and chosen.mean() > 0:
            scales[r] = chosen.mean()
    return scales.astype(np.float32)


def _one_hot(tracer: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """``(B, N_TRACERS + N_REGIONS)`` float one-hot prompt."""
    return torch.cat([F.one_hot(tracer, N_TRACERS), F.one_hot(region, N_REGIONS)], dim=1).float()


def _indices(n: int, steps: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """``steps`` batches of random training indices (with replacement across batches)."""
    return [torch.randint(0, n, (min(batch_size, n),), generator=generator) for _ in range(steps)]


class _Baseline(nn.Module):
    """Shared parts: the per-region scale buffer, the data tensors, the parameter count and seeded generation."""

    name = ""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scales", torch.ones(N_REGIONS))
        self.losses: list[float] = []

    @property
    def n_parameters(self) -> int:
        """Trainable parameters (all networks used in training)."""
        return sum(p.numel() for p in self.parameters())

    def _prepare(self, data: np.ndarray, tracer: np.ndarray, region: np.ndarray
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised data ``(N, 1, H, W)`` and the label tensors; sets :attr:`scales`."""
        self.scales.copy_(torch.from_numpy(region_scales(data, region)))
        region_t = torch.as_tensor(np.asarray(region, dtype=np.int64))
        x = torch.as_tensor(np.asarray(data, dtype=np.float32)).unsqueeze(1)
        x = x / self.scales[region_t][:, None, None, None]
        return x, torch.as_tensor(np.asarray(tracer, dtype=np.int64)), region_t

    def fit(self, data: np.ndarray, tracer: np.ndarray, region: np.ndarray, steps: int, batch_size: int = 32,
            lr: float = 1e-3, seed: int = 0, progress: bool = False) -> "_Baseline":
        """Train on ``data`` ``(N, H, W)`` (counts; axes (view, radial) or (y, x)) with labels ``(N,)`` int."""
        from tqdm.auto import tqdm

        x, tracer_t, region_t = self._prepare(data, tracer, region)
        generator = torch.Generator().manual_seed(seed)
        self._start(lr)
        self.train()
        for index in tqdm(_indices(len(x), steps, batch_size, generator), desc=f"train {self.name}", unit="step",
                          disable=not progress):
            self.losses.append(self._step(x[index], tracer_t[index], region_t[index], generator))
        self.eval()
        return self

    def generate(self, tracer: int, region: int, n: int, seed: int = 0, batch_size: int = 64) -> np.ndarray:
        """``n`` samples ``(n, H, W)`` float32 (counts) of the prompt ``(tracer, region)``; one seed, one result."""
        generator = torch.Generator().manual_seed(seed)
        out = []
        self.eval()
        with torch.no_grad():
            for first in range(0, n, batch_size):
                size = min(batch_size, n - first)
                labels = (torch.full((size,), tracer, dtype=torch.long), torch.full((size,), region, dtype=torch.long))
                out.append(self._sample(*labels, generator)[:, 0] * self.scales[region])
        return torch.cat(out).numpy().astype(np.float32)

    def _start(self, lr: float) -> None:
        raise NotImplementedError

    def _step(self, x: torch.Tensor, tracer: torch.Tensor, region: torch.Tensor, generator: torch.Generator) -> float:
        """One optimiser step on the model's ``loss`` (the GAN's two-player step overrides it); returns the loss."""
        loss = self.loss(x, tracer, region, generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def loss(self, x: torch.Tensor, tracer: torch.Tensor, region: torch.Tensor,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
        raise NotImplementedError

    def _sample(self, tracer: torch.Tensor, region: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError


def _up(c_in: int, c_out: int, norm: bool = True) -> nn.Sequential:
    """Nearest 2x upsampling, a 3 x 3 convolution, (batch norm) and ReLU."""
    layers: list[nn.Module] = [nn.Upsample(scale_factor=2), nn.Conv2d(c_in, c_out, 3, padding=1)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    return nn.Sequential(*layers, nn.ReLU())


class _Decoder(nn.Module):
    """Latent + prompt -> ``(B, 1, 64, 64)``: linear to ``channels[0]`` x 4 x 4, four upsamplings, (softplus)."""

    def __init__(self, in_dim: int, channels: tuple[int, ...], norm: bool, positive: bool = True) -> None:
        super().__init__()
        self.channels, self.positive = channels, positive
        self.linear = nn.Linear(in_dim, channels[0] * 16)
        self.blocks = nn.Sequential(*[_up(a, b, norm) for a, b in zip(channels[:-1], channels[1:])])
        self.out = nn.Conv2d(channels[-1], 1, 3, padding=1)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.linear(code)).view(len(code), self.channels[0], 4, 4)
        out = self.out(self.blocks(x))
        return F.softplus(out) if self.positive else out


class ConditionalVAE(_Baseline):
    """Prompt-conditioned convolutional VAE of 64 x 64 data (module docstring).

    Parameters
    ----------
    sigma : float
        Width of the Gaussian likelihood (normalised units).
    positive : bool
        Softplus output (non-negative samples). Off for the mostly-empty
        activity images, where the softplus saturates and training collapses
        to blank images; :class:`ImageDomainGenerator` clips at 0 instead.
    seed : int
    """

    name = "VAE"

    def __init__(self, sigma: float = 0.05, positive: bool = True, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.sigma = sigma
        conditioning = N_TRACERS + N_REGIONS
        channels = (1 + conditioning, 32, 64, 128, 128)
        self.encoder = nn.Sequential(*[layer for a, b in zip(channels[:-1], channels[1:])
                                       for layer in (nn.Conv2d(a, b, 4, stride=2, padding=1), nn.LeakyReLU(0.2))],
                                     nn.Flatten(), nn.Linear(128 * 16, 2 * LATENT_DIM))
        self.decoder = _Decoder(LATENT_DIM + conditioning, (128, 128, 64, 32, 16), norm=False, positive=positive)

    def _start(self, lr: float) -> None:
        self.optimizer = torch.optim.Adam(self.parameters(), lr=lr)

    def loss(self, x: torch.Tensor, tracer: torch.Tensor, region: torch.Tensor,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Negative ELBO per example (nats, up to a constant) of normalised data ``x`` ``(B, 1, 64, 64)``."""
        prompt = _one_hot(tracer, region)
        maps = prompt[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        mean, log_var = self.encoder(torch.cat([x, maps], dim=1)).chunk(2, dim=1)
        z = mean + torch.randn(mean.shape, generator=generator) * (0.5 * log_var).exp()
        recon = self.decoder(torch.cat([z, prompt], dim=1))
        nll = (recon - x).square().sum(dim=(1, 2, 3)) / (2 * self.sigma**2)
        kl = 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).sum(dim=1)
        return (nll + kl).mean()

    def _sample(self, tracer: torch.Tensor, region: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn((len(tracer), LATENT_DIM), generator=generator)
        return self.decoder(torch.cat([z, _one_hot(tracer, region)], dim=1))


class ConditionalGAN(_Baseline):
    """Prompt-conditioned DCGAN with a spectrally normalised discriminator, hinge loss (module docstring)."""

    name = "GAN"

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        conditioning = N_TRACERS + N_REGIONS
        self.generator = _Decoder(LATENT_DIM + conditioning, (256, 128, 64, 32, 16), norm=True)
        sn = nn.utils.parametrizations.spectral_norm
        channels = (1 + conditioning, 32, 64, 128, 256)
        self.discriminator = nn.Sequential(*[layer for a, b in zip(channels[:-1], channels[1:])
                                             for layer in (sn(nn.Conv2d(a, b, 4, stride=2, padding=1)),
                                                           nn.LeakyReLU(0.2))],
                                           nn.Flatten(), sn(nn.Linear(256 * 16, 1)))

    @property
    def n_generator_parameters(self) -> int:
        """Parameters of the generator alone (what sampling uses)."""
        return sum(p.numel() for p in self.generator.parameters())

    def _start(self, lr: float) -> None:
        betas = (0.5, 0.999)
        self.optimizer_g = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas)
        self.optimizer_d = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas)

    def _critic(self, x: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        maps = prompt[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return self.discriminator(torch.cat([x, maps], dim=1))[:, 0]

    def _step(self, x: torch.Tensor, tracer: torch.Tensor, region: torch.Tensor, generator: torch.Generator) -> float:
        prompt = _one_hot(tracer, region)
        z = torch.randn((len(x), LATENT_DIM), generator=generator)
        fake = self.generator(torch.cat([z, prompt], dim=1))
        loss_d = F.relu(1.0 - self._critic(x, prompt)).mean() + F.relu(1.0 + self._critic(fake.detach(), prompt)).mean()
        self.optimizer_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.optimizer_d.step()
        loss_g = -self._critic(fake, prompt).mean()
        self.optimizer_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.optimizer_g.step()
        return float(loss_d.detach())

    def _sample(self, tracer: torch.Tensor, region: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn((len(tracer), LATENT_DIM), generator=generator)
        return self.generator(torch.cat([z, _one_hot(tracer, region)], dim=1))


@dataclass(frozen=True)
class _Schedule:
    """The DDPM noise schedule."""

    n_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    beta_schedule: str = "linear"
    prediction_type: str = "sample"


class PixelDDPM(_Baseline):
    """Score-based model (DDPM, clean-sample prediction) of 64 x 64 sinograms in pixel space (module docstring).

    Parameters
    ----------
    base_channels : int
        Width of the UNet (:class:`ldm.denoiser.DenoiserConfig`, levels ``(1, 2, 2)``).
    patch : int
        Side of the space-to-depth patches (64 x 64 x 1 -> 16 x 16 x 16 for 4).
    sampling_steps : int
        DDIM steps of :meth:`generate`.
    clip : float
        Each step's clean-sample estimate is clipped to ``[-clip, clip]`` (DDPM
        units, ``2 u - 1``: counts from ``-1`` to ``2`` times the region's scale
        for 3), as in Ho et al.'s pixel-space sampling; unclipped, the DDIM
        samples of the CPU-sized model diverge (counts of +-20,000 for data of
        at most about 1,000).
    seed : int
    """

    name = "SGM"

    def __init__(self, base_channels: int = 40, patch: int = 4, sampling_steps: int = 50, clip: float = 3.0,
                 seed: int = 0) -> None:
        from ldm.denoiser import DenoiserConfig, LatentDenoiser

        super().__init__()
        torch.manual_seed(seed)
        self.patch, self.sampling_steps, self.clip = patch, sampling_steps, clip
        self.schedule = _Schedule()
        self.network = LatentDenoiser(DenoiserConfig(base_channels=base_channels, channel_mults=(1, 2, 2)),
                                      patch * patch, 0, N_TRACERS, N_REGIONS)
        betas = torch.linspace(self.schedule.beta_start, self.schedule.beta_end, self.schedule.n_train_timesteps)
        self.register_buffer("alpha_bar", torch.cumprod(1.0 - betas, dim=0), persistent=False)

    def _predict(self, x_t: torch.Tensor, t: torch.Tensor, tracer: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
        out = self.network(F.pixel_unshuffle(x_t, self.patch), t, None, tracer, region)
        return F.pixel_shuffle(out, self.patch)

    def _start(self, lr: float) -> None:
        self.optimizer = torch.optim.AdamW(self.network.parameters(), lr=lr)

    def loss(self, x: torch.Tensor, tracer: torch.Tensor, region: torch.Tensor,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Mean squared error of the prediction (clean sample or noise) at uniform random timesteps.

        ``x``: normalised data ``(B, 1, H, W)``.
        """
        x0 = 2.0 * x - 1.0
        t = torch.randint(0, self.schedule.n_train_timesteps, (len(x),), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        a = self.alpha_bar[t][:, None, None, None]
        target = x0 if self.schedule.prediction_type == "sample" else noise
        return (self._predict(a.sqrt() * x0 + (1 - a).sqrt() * noise, t, tracer, region) - target).square().mean()

    def _sample(self, tracer: torch.Tensor, region: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from diffusers import DDIMScheduler

        schedule = self.schedule
        scheduler = DDIMScheduler(num_train_timesteps=schedule.n_train_timesteps, beta_start=schedule.beta_start,
                                  beta_end=schedule.beta_end, beta_schedule=schedule.beta_schedule,
                                  prediction_type=schedule.prediction_type, timestep_spacing="trailing",
                                  clip_sample=True, clip_sample_range=self.clip, set_alpha_to_one=True)
        scheduler.set_timesteps(self.sampling_steps)
        x = torch.randn((len(tracer), 1, 64, 64), generator=generator)
        for t in scheduler.timesteps:
            prediction = self._predict(x, torch.full((len(x),), int(t), dtype=torch.long), tracer, region)
            x = scheduler.step(prediction, t, x).prev_sample
        return 0.5 * (x + 1.0)


BASELINES = {"VAE": ConditionalVAE, "GAN": ConditionalGAN, "SGM": PixelDDPM}


def make_baseline(name: str, seed: int = 0) -> _Baseline:
    """A fresh baseline of :data:`BASELINES` (``"VAE"``, ``"GAN"``, ``"SGM"``) with its default size."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; baselines: {', '.join(BASELINES)}")
    return BASELINES[name](seed=seed)


# ------------------------------------------------------------------------------------------------ image domain

def count_scale(images: np.ndarray, sinograms: np.ndarray, projector: Any) -> float:
    """Counts per unit of projected activity: ``sum(sinograms) / sum(projector(images))`` over a set ``(N, ., .)``.

    The simulator's sinograms carry attenuation and the detector's resolution,
    which the bare projector lacks, so the ratio puts the projections of
    generated images on the data's count scale.
    """
    projected = sum(float(np.asarray(projector(np.ascontiguousarray(x, dtype=np.float64))).sum()) for x in images)
    return float(np.asarray(sinograms, dtype=np.float64).sum() / max(projected, 1e-12))


class ImageDomainGenerator:
    """Sinograms of an image-domain generator: its images, forward-projected, scaled and drawn as Poisson counts.

    Parameters
    ----------
    model : ConditionalVAE
        Trained on the activity images ``(N, 64, 64)`` (axes (y, x)).
    projectors : mapping of region id to projector
        Each region's parallel-beam projector (the slice's own geometry).
    scales : mapping of region id to float
        Counts per unit projected activity (:func:`count_scale`).
    """

    name = "image VAE"

    def __init__(self, model: ConditionalVAE, projectors: Mapping[int, Any], scales: Mapping[int, float]) -> None:
        self.model, self.projectors, self.scales = model, projectors, scales

    def generate(self, tracer: int, region: int, n: int, seed: int = 0) -> np.ndarray:
        """``n`` sinograms ``(n, V, B)`` float32 (counts); the seed draws the images and the Poisson counts."""
        images = np.clip(self.model.generate(tracer, region, n, seed), 0.0, None)
        rng = np.random.default_rng(seed)
        projector, scale = self.projectors[region], self.scales[region]
        expected = [scale * np.asarray(projector(np.ascontiguousarray(x, dtype=np.float64))) for x in images]
        return np.stack([rng.poisson(np.clip(e, 0.0, None)) for e in expected]).astype(np.float32)


# ------------------------------------------------------------------------------------------------ usefulness model

class LowDoseCNN(nn.Module):
    """Residual CNN low-dose -> full-dose sinograms ``(B, 1, H, W)`` (H, W multiples of 2), in normalised units.

    Space-to-depth by 2, ``depth`` 3 x 3 convolutions of ``channels`` with
    ReLU, depth-to-space; the output is added to the input (residual learning,
    as :class:`tasks.baselines.SinogramUNet`). :meth:`fit` / :meth:`predict`
    take counts and normalise by the root mean square of the training targets.
    """

    def __init__(self, channels: int = 32, depth: int = 6, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Conv2d(4, channels, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*layers, nn.Conv2d(channels, 4, 3, padding=1))
        self.scale = 1.0
        self.losses: list[float] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.pixel_shuffle(self.body(F.pixel_unshuffle(x, 2)), 2)

    def fit(self, inputs: np.ndarray, targets: np.ndarray, steps: int, batch_size: int = 16, lr: float = 1e-3,
            seed: int = 0, progress: bool = False) -> "LowDoseCNN":
        """Train on ``inputs`` (low dose times the dose reduction factor) and ``targets`` ``(N, V, R)`` counts.

        AdamW and a cosine learning-rate decay to a tenth; mean squared error in normalised units.
        """
        from tqdm.auto import tqdm

        x = torch.as_tensor(np.asarray(inputs, dtype=np.float32)).unsqueeze(1)
        y = torch.as_tensor(np.asarray(targets, dtype=np.float32)).unsqueeze(1)
        self.scale = float(y.square().mean().sqrt()) or 1.0
        x, y = x / self.scale, y / self.scale
        optimizer = torch.optim.AdamW(self.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.1 + 0.45 * (1.0 + math.cos(math.pi * min(step, steps) / max(steps, 1))))
        generator = torch.Generator().manual_seed(seed)
        self.train()
        for index in tqdm(_indices(len(x), steps, batch_size, generator), desc="low-dose CNN", unit="step",
                          disable=not progress):
            loss = (self(x[index]) - y[index]).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            self.losses.append(float(loss.detach()))
        self.eval()
        return self

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Full-dose estimates ``(N, V, R)`` float32 (counts) of inputs ``(N, V, R)``."""
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(inputs, dtype=np.float32)).unsqueeze(1) / self.scale
            return (self(x)[:, 0] * self.scale).numpy()
