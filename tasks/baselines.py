"""Baselines measured on the same test sets as the LDM.

- :func:`osem_image` / :func:`post_filter`: OSEM of a sinogram, and the same
  image smoothed by a Gaussian post-filter whose FWHM is tuned on the training
  samples (:func:`tune_post_filter`, best mean image PSNR), so the baseline
  is as strong as a fixed filter can be.
- :class:`SinogramUNet`: supervised regression input -> target in the
  sinogram domain with diffusers' UNet (the LDM's :class:`ldm.LatentDenoiser`
  at a fixed timestep, on sinograms instead of latents), sized like the LDM
  (about 1 M parameters), trained with the mean squared error; residual:
  it predicts ``target - input`` and adds the input back (residual learning,
  as DnCNN, Zhang et al. 2017; measurements: docs/results/tasks.md).
- :class:`LinearUnmixing` (tracer separation): per-ray least-squares fractions
  ``w_c = sum_n y_n t_nc / sum_n y_n^2`` of each tracer in the dual-tracer
  sinogram, fitted on the training set; the estimate is ``w_c y``.

Each task's classical baseline (OSEM of its input, or linear unmixing) is run
through :mod:`tasks.classical_baselines`.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from pet_projection.physics import GaussianResolution, PETSystemModel
from pet_projection.recon import osem

__all__ = ["LinearUnmixing", "SinogramUNet", "forward_sinogram", "osem_image", "post_filter", "tune_post_filter"]


def osem_image(sinogram: np.ndarray, system: PETSystemModel, n_subsets: int, n_iterations: int) -> np.ndarray:
    """OSEM image (float64) of a sinogram; negative values (model outputs) are set to 0 first."""
    data = np.maximum(np.asarray(sinogram, dtype=np.float64), 0.0)
    return np.asarray(osem(data, system, n_subsets, n_iterations))


def forward_sinogram(system: PETSystemModel, image: np.ndarray) -> np.ndarray:
    """``A x + b``: the expected sinogram of ``image`` on ``system`` (float64), an image method's sinogram."""
    return np.asarray(system.expected(np.ascontiguousarray(image, dtype=np.float64)))


def post_filter(image: np.ndarray, system: PETSystemModel, fwhm_mm: float) -> np.ndarray:
    """``image`` blurred by an isotropic Gaussian of ``fwhm_mm`` on the system's image grid (0: unchanged)."""
    if fwhm_mm == 0:
        return np.asarray(image)
    grid = system.projector.geometry.grid
    return np.asarray(GaussianResolution(grid, fwhm_mm)(np.ascontiguousarray(image)))


def tune_post_filter(images: Sequence[np.ndarray], references: Sequence[np.ndarray],
                     systems: Sequence[PETSystemModel], fwhm_mm: Sequence[float]) -> float:
    """The FWHM of ``fwhm_mm`` with the best mean PSNR of the filtered ``images`` against ``references``."""
    from .metrics import psnr

    if not len(images) == len(references) == len(systems) or not images:
        raise ValueError("tune_post_filter needs as many images, references and systems, at least one")
    scores = [np.mean([psnr(ref, post_filter(img, sys, f)) for img, ref, sys in zip(images, references, systems)])
              for f in fwhm_mm]
    return float(fwhm_mm[int(np.argmax(scores))])


class LinearUnmixing:
    """Per-ray linear unmixing of a sum of channels; see the module docstring."""

    def __init__(self) -> None:
        self.weights: Optional[np.ndarray] = None

    def fit(self, inputs: np.ndarray, targets: np.ndarray) -> "LinearUnmixing":
        """``inputs`` ``(N, V, R)``, ``targets`` ``(N, C, V, R)``; sets ``weights`` ``(C, V, R)``."""
        inputs = np.asarray(inputs, dtype=np.float64)
        targets = np.asarray(targets, dtype=np.float64)
        if targets.ndim != 4 or targets.shape[:1] + targets.shape[2:] != inputs.shape:
            raise ValueError(f"targets must have shape (N, C, V, R) with inputs (N, V, R) = {inputs.shape}, got "
                             f"{targets.shape}")
        power = (inputs**2).sum(axis=0)
        share = (inputs[:, None] * targets).sum(axis=0)
        fallback = targets.sum(axis=(0, 2, 3)) / max(inputs.sum(), 1e-12)  # global fractions for empty rays
        self.weights = np.where(power > 0, share / np.where(power > 0, power, 1.0), fallback[:, None, None])
        return self

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Estimates ``(N, C, V, R)`` of inputs ``(N, V, R)``."""
        if self.weights is None:
            raise RuntimeError("call fit first")
        inputs = np.asarray(inputs, dtype=np.float64)
        if inputs.shape[1:] != self.weights.shape[1:]:
            raise ValueError(f"inputs have sinograms {inputs.shape[1:]}, the fit {self.weights.shape[1:]}")
        return inputs[:, None] * self.weights[None]


class SinogramUNet:
    """Supervised sinogram regression ``input -> target``; see the module docstring.

    Parameters
    ----------
    n_labels : int
        Classes of the ``tracer`` label (0: no label; 2 for tracer separation).
    base_channels : int
        UNet width (40 with ``channel_mults=(1, 2)``: about 1 M parameters,
        like the tiny LDM's 0.87 M).
    device : str or torch.device
    seed : int
    """

    def __init__(self, n_labels: int = 0, base_channels: int = 40, device: Any = "cpu", seed: int = 0) -> None:
        import torch

        from ldm.denoiser import DenoiserConfig, LatentDenoiser

        torch.manual_seed(seed)
        self.network = LatentDenoiser(DenoiserConfig(base_channels=base_channels, channel_mults=(1, 2)), 1, 0,
                                      n_labels, 0).to(device)
        self.device = torch.device(device)
        self.scale = 1.0
        self.losses: list[float] = []

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.network.parameters())

    def _forward(self, inputs: Any, labels: Any) -> Any:
        import torch

        from ldm.autoencoder import crop_sinogram, pad_sinogram

        size = tuple(inputs.shape[-2:])
        padded = pad_sinogram(inputs / self.scale, self.network.config.downsampling_factor)
        timestep = torch.zeros(inputs.shape[0], dtype=torch.long, device=inputs.device)
        out = self.network(padded, timestep, None, labels)
        return inputs + crop_sinogram(out, size) * self.scale

    def fit(self, inputs: np.ndarray, targets: np.ndarray, labels: Optional[np.ndarray] = None, *, steps: int = 300,
            batch_size: int = 8, lr: float = 1e-3, seed: int = 0, progress: bool = True) -> "SinogramUNet":
        """Train on ``inputs``/``targets`` ``(N, V, R)`` (``labels`` ``(N,)`` int) with AdamW and a cosine schedule."""
        import torch
        from tqdm.auto import tqdm

        x = torch.as_tensor(np.asarray(inputs, dtype=np.float32)).unsqueeze(1)
        y = torch.as_tensor(np.asarray(targets, dtype=np.float32)).unsqueeze(1)
        if x.shape != y.shape:
            raise ValueError(f"inputs {tuple(x.shape)} and targets {tuple(y.shape)} must have one shape")
        lab = None if labels is None else torch.as_tensor(np.asarray(labels, dtype=np.int64))
        self.scale = float(y.square().mean().sqrt()) or 1.0
        optimizer = torch.optim.AdamW(self.network.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / max(steps, 1))))
        generator = torch.Generator().manual_seed(seed)
        self.network.train()
        for _ in tqdm(range(steps), desc="UNet baseline", disable=not progress, unit="step"):
            index = torch.randint(0, x.shape[0], (min(batch_size, x.shape[0]),), generator=generator)
            batch_labels = None if lab is None else lab[index].to(self.device)
            prediction = self._forward(x[index].to(self.device), batch_labels)
            loss = ((prediction - y[index].to(self.device)) / self.scale).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            self.losses.append(float(loss.detach()))
        return self

    def predict(self, inputs: np.ndarray, labels: Optional[np.ndarray] = None, batch_size: int = 32) -> np.ndarray:
        """Predictions ``(N, V, R)`` float32 of inputs ``(N, V, R)``."""
        import torch

        self.network.eval()
        x = torch.as_tensor(np.asarray(inputs, dtype=np.float32)).unsqueeze(1)
        lab = None if labels is None else torch.as_tensor(np.asarray(labels, dtype=np.int64))
        out = []
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                part = None if lab is None else lab[start:start + batch_size].to(self.device)
                out.append(self._forward(x[start:start + batch_size].to(self.device), part).cpu())
        return torch.cat(out)[:, 0].numpy()
