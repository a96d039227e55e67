"""Noise schedulers of the sinogram LDM: diffusers' DDPM, DDIM and DPM-Solver++, and the diffusion bridge.

Both kinds share diffusers' interface: ``set_timesteps(n_steps, device)``,
``timesteps``, ``init_noise_sigma``, ``scale_model_input(sample, t)`` and
``step(model_output, t, sample, ...)`` returning an object with
``prev_sample``, so one reverse loop (:func:`ldm.sampling.run_reverse_process`)
drives any of them.

:class:`BridgeScheduler` is the VP diffusion bridge (DDBM, Zhou et al., ICLR
2024) from the task input's latent ``y`` to the target's ``z0`` on the
training schedule's ``abar_t``: with ``snr_t = abar_t / (1 - abar_t)``,
``T = n_train_timesteps - 1`` and ``r_t = snr_T / snr_t``,
``z_t = a_t z0 + b_t y + c_t eps`` where ``a_t = sqrt(abar_t) (1 - r_t)``,
``b_t = r_t sqrt(abar_t / abar_T)`` and ``c_t = sqrt((1 - abar_t)(1 - r_t))``,
so ``z_T = y`` exactly. The network predicts ``z0``; sampling walks
``T -> 0`` with the implicit bridge sampler (DBIM, Zheng et al., ICLR 2025):
``eps_hat = (z_t - a_t z0_hat - b_t y) / c_t``,
``z_s = a_s z0_hat + b_s y + c_s (sqrt(1 - eta^2) eps_hat + eta eps')`` with
fresh noise ``eps'`` (and fresh noise on the first step, where ``c_T = 0``);
the last step returns ``z0_hat``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Protocol

import torch
from torch import Tensor

from pet_projection.validation import check_choice, check_non_negative, positive_int

__all__ = ["BridgeScheduler", "BridgeSchedulerOutput", "SAMPLERS", "make_scheduler"]

SAMPLERS = ("ddpm", "ddim", "dpm-solver")


class NoiseSchedule(Protocol):
    """The noise-schedule settings :func:`make_scheduler` reads (as in :class:`ldm.model.LDMConfig`)."""

    n_train_timesteps: int
    beta_start: float
    beta_end: float
    beta_schedule: str
    prediction_type: str


def make_scheduler(config: NoiseSchedule, sampler: str = "ddpm") -> Any:
    """A diffusers scheduler for ``config``'s noise schedule: ``"ddpm"``, ``"ddim"`` or ``"dpm-solver"`` (++, order 2).

    Clipping and thresholding are off (latents are unbounded); timesteps are
    spaced ``"trailing"`` so sampling starts at ``t = T - 1``, where training
    puts the most noise (Lin et al., WACV 2024); DDIM's last step lands on the
    clean sample (``set_alpha_to_one``).
    """
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    check_choice("sampler", sampler, SAMPLERS)
    common = {"num_train_timesteps": config.n_train_timesteps, "beta_start": config.beta_start,
              "beta_end": config.beta_end, "beta_schedule": config.beta_schedule,
              "prediction_type": config.prediction_type, "timestep_spacing": "trailing"}
    if sampler == "ddpm":
        return DDPMScheduler(**common, clip_sample=False, thresholding=False, variance_type="fixed_small")
    if sampler == "ddim":
        return DDIMScheduler(**common, clip_sample=False, thresholding=False, set_alpha_to_one=True)
    return DPMSolverMultistepScheduler(**common, thresholding=False, algorithm_type="dpmsolver++", solver_order=2)


@dataclass
class BridgeSchedulerOutput:
    """Result of :meth:`BridgeScheduler.step`.

    Attributes
    ----------
    prev_sample : tensor, the sample's shape
        ``z_s`` at the next timestep (the ``z0`` estimate after the last step).
    pred_original_sample : tensor, the sample's shape
        The model's ``z0`` estimate at this step.
    """

    prev_sample: Tensor
    pred_original_sample: Tensor


class BridgeScheduler:
    """The VP diffusion bridge ``z_t = a_t z0 + b_t y + c_t eps`` and its DBIM sampler (module docstring).

    Parameters
    ----------
    alphas_cumprod : tensor ``(T + 1,)``
        ``abar_t`` of the training schedule, decreasing; the bridge ends at ``t = T``.

    Attributes
    ----------
    a, b, c : tensor ``(T + 1,)`` float32
        The marginal's coefficients per timestep (on the CPU).
    last : int
        ``T``, the timestep where ``z_T = y``.
    timesteps : tensor ``(n_steps,)`` int64
        Set by :meth:`set_timesteps`.

    Notes
    -----
    Sampling starts from ``z_T = y`` (``init_noise_sigma`` is 1); the first
    :meth:`step` keeps its sample as the bridge's end ``y``, which every
    later step uses.
    """

    init_noise_sigma = 1.0

    def __init__(self, alphas_cumprod: Tensor) -> None:
        abar = alphas_cumprod.double()
        snr = abar / (1.0 - abar)
        ratio = snr[-1] / snr
        self.a = (abar.sqrt() * (1.0 - ratio)).float()
        self.b = (ratio * (abar / abar[-1]).sqrt()).float()
        self.c = ((1.0 - abar) * (1.0 - ratio)).clamp(min=0.0).sqrt().float()  # c_T = 0 exactly: z_T = y
        self.last = len(abar) - 1
        self.timesteps: Optional[Tensor] = None
        self._step_index = 0
        self._y: Optional[Tensor] = None

    def coefficients(self, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(a_t, b_t, c_t)`` for timesteps ``t`` ``(B,)``, shaped to broadcast against ``like`` ``(B, ...)``."""
        shape = (-1,) + (1,) * (like.ndim - 1)
        t = t.to("cpu")
        return tuple(coef[t].to(like.device, like.dtype).reshape(shape) for coef in (self.a, self.b, self.c))

    def marginal(self, z0: Tensor, y: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """A draw ``z_t`` ``(B, ...)`` of the bridge from ``z0`` (``t = 0``) to ``y`` (``t = T``) at ``t`` ``(B,)``."""
        a, b, c = self.coefficients(t, z0)
        return a * z0 + b * y + c * noise

    def set_timesteps(self, num_inference_steps: int, device: Any = None) -> None:
        """Timesteps ``round(linspace(T, 0, num_inference_steps))`` (int64, on ``device``); resets the walk."""
        n_steps = positive_int("num_inference_steps", num_inference_steps)
        self.timesteps = torch.linspace(self.last, 0, n_steps).round().long().to(device)
        self._step_index = 0
        self._y = None

    def scale_model_input(self, sample: Tensor, timestep: Any = None) -> Tensor:
        """``sample`` unchanged (diffusers' interface)."""
        return sample

    def step(self, model_output: Tensor, timestep: Tensor, sample: Tensor, *, eta: float = 0.0,
             generator: Optional[torch.Generator] = None, return_dict: bool = True) -> Any:
        """One DBIM step from ``sample`` ``z_t`` at ``timestep`` to the next of :attr:`timesteps`.

        Parameters
        ----------
        model_output : tensor ``(B, ...)``
            The network's ``z0`` estimate at ``(sample, timestep)``.
        timestep : tensor (0-d int64)
            The current entry of :attr:`timesteps`.
        sample : tensor ``(B, ...)``
            ``z_t``; at the first step ``z_T = y``, the bridge's end, kept for the later steps.
        eta : float
            In ``[0, 1]``: fresh noise mixed into each step (0: deterministic
            after the first step, 1: ancestral).
        generator : torch.Generator, optional
            Source of the fresh noise (torch's global RNG when omitted).
        return_dict : bool
            Return a :class:`BridgeSchedulerOutput` (else the tuple ``(prev_sample,)``).

        Returns
        -------
        BridgeSchedulerOutput
            ``prev_sample``: ``z_s`` at the next timestep, or the ``z0``
            estimate itself after the last timestep.
        """
        if self.timesteps is None:
            raise RuntimeError("call set_timesteps before step")
        if self._step_index >= len(self.timesteps):
            raise RuntimeError(f"all {len(self.timesteps)} timesteps are done; call set_timesteps again")
        eta = check_non_negative("eta", eta)
        if eta > 1.0:
            raise ValueError(f"eta must lie in [0, 1] for the bridge sampler, got {eta}")
        if self._step_index == 0:
            self._y = sample
        y, z, z0 = self._y, sample, model_output
        t = timestep.to("cpu")
        self._step_index += 1
        if self._step_index == len(self.timesteps):
            prev = z0
        else:
            s = self.timesteps[self._step_index].to("cpu")
            a, b, c = self.coefficients(t.expand(y.shape[0]), z)
            if t == self.last or eta:
                fresh = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            if t == self.last:  # c_T = 0: z_T = y carries no noise to reuse
                noise = fresh
            else:
                noise = (z - a * z0 - b * y) / c
                if eta:
                    noise = math.sqrt(1.0 - eta**2) * noise + eta * fresh
            a, b, c = self.coefficients(s.expand(y.shape[0]), z)
            prev = a * z0 + b * y + c * noise
        return BridgeSchedulerOutput(prev, z0) if return_dict else (prev,)
