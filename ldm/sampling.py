"""Sampling from a trained :class:`~ldm.model.SinogramLDM`: the reverse process and TMA guidance.

:func:`run_reverse_process` integrates any scheduler with diffusers'
interface (DDPM, DDIM, DPM-Solver++, or :class:`~ldm.schedulers.BridgeScheduler`)
from ``z_T`` to ``z_0``. :func:`sample` is the entry point: it encodes a batch's
conditions with the model, starts from unit noise (``"ddpm"`` mode) or from
the input's latent ``y`` (``"bridge"`` mode, where ``z_T = y``), runs the
reverse process and decodes the final latents
(:meth:`~ldm.model.SinogramLDM.decode_latents`).

TMA guidance (classifier-free guidance, Ho and Salimans 2022, with the TMA
attention map as the condition): ``out = out(a) + s (out(a) - out(0))`` with
``s = guidance_scale``; ``s = 0`` (default) is plain conditional sampling, and
no parameter is learned for guidance (the model learns the attention-free
prediction through ``LDMConfig.attention_dropout``).

:func:`sample_poisson_posterior` uses a pretrained ``"ddpm"``-mode model as a
prior for measured counts, with no paired examples: at every step the
denoiser's clean-latent estimate takes gradient steps on the Poisson
negative log-likelihood of the counts (diffusion posterior sampling, Chung et
al., ICLR 2023, on the decoded estimate as in latent DPS).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

import torch
from torch import Tensor

from pet_projection.validation import check_choice, check_non_negative, positive_int

from .batches import LABEL_KEYS
from .model import SinogramLDM
from .schedulers import SAMPLERS, BridgeScheduler, make_scheduler

__all__ = ["Predictor", "run_reverse_process", "sample", "sample_poisson_posterior"]

Predictor = Callable[[Tensor, Tensor], Tensor]


def run_reverse_process(predict: Predictor, z_T: Tensor, scheduler: Any, n_steps: int, *, eta: float = 0.0,
                        generator: Optional[torch.Generator] = None) -> Tensor:
    """Integrate a scheduler from ``z_T`` to ``z_0`` with ``n_steps`` network calls.

    Parameters
    ----------
    predict : callable ``(z_t, t) -> output``
        The model output (of the scheduler's ``prediction_type``; the ``z0``
        estimate for the bridge) for latents ``z_t`` at the integer timestep
        ``t`` (0-d int64 tensor).
    z_T : tensor ``(B, C, H, W)``
        Start latents: unit Gaussian noise (scaled by ``init_noise_sigma``),
        or the bridge's end ``y``.
    scheduler : DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler or BridgeScheduler
    eta : float
        DDIM's or the bridge's stochasticity (0: deterministic); used by those two only.
    generator : torch.Generator, optional
        Source of the samplers' fresh noise.

    Returns
    -------
    tensor ``(B, C, H, W)``
        The final ``z_0``.
    """
    from diffusers import DDIMScheduler

    scheduler.set_timesteps(positive_int("n_steps", n_steps), device=z_T.device)
    z = z_T * scheduler.init_noise_sigma
    takes_eta = isinstance(scheduler, (DDIMScheduler, BridgeScheduler))
    extra = {"eta": check_non_negative("eta", eta)} if takes_eta else {}
    for t in scheduler.timesteps:
        output = predict(scheduler.scale_model_input(z, t), t)
        z = scheduler.step(output, t, z, generator=generator, **extra).prev_sample
    return z


def _guided_predictor(model: SinogramLDM, cond: Optional[Tensor], labels: Sequence[Optional[Tensor]],
                      guidance_scale: float) -> Predictor:
    """The denoiser as ``predict(z_t, t)`` (``labels`` in :data:`~ldm.batches.LABEL_KEYS` order), TMA-guided if set."""

    def predict(z: Tensor, t: Tensor) -> Tensor:
        timestep = t.reshape(1).expand(z.shape[0]).to(z.device)
        if not guidance_scale:
            return model.denoiser(z, timestep, cond, *labels)
        plain = cond.clone()
        plain[:, -1:] = 0.0  # the attention channel is the last condition
        doubled = [None if label is None else label.repeat(2) for label in labels]
        both = model.denoiser(z.repeat(2, 1, 1, 1), timestep.repeat(2), torch.cat([cond, plain]), *doubled)
        guided, unguided = both.chunk(2)
        return guided + guidance_scale * (guided - unguided)

    return predict


@torch.no_grad()
def sample(model: SinogramLDM, batch: Mapping[str, Tensor], sampler: str = "ddim", n_steps: int = 50,
           eta: float = 0.0, generator: Optional[torch.Generator] = None, guidance_scale: float = 0.0) -> Tensor:
    """Generate sinograms ``(B, 1, n_views, n_radial)`` for a batch (``"target"`` is not needed).

    Parameters
    ----------
    model : SinogramLDM
        A trained model (calibrated scales).
    batch : dict
        Conditions as in :class:`~ldm.model.SinogramLDM`; the sinogram size comes from them.
    sampler : {"ddim", "ddpm", "dpm-solver"}
        ``"bridge"`` mode takes ``"ddim"`` (``eta`` as given) or ``"ddpm"`` (``eta = 1``).
    n_steps : int
        Network evaluations (twice that with TMA guidance).
    eta : float
        DDIM / bridge stochasticity; 0 is deterministic given ``generator``.
    generator : torch.Generator, optional
        Source of all noise (on the model's device); torch's global RNG when omitted.
    guidance_scale : float
        TMA guidance ``s >= 0`` (module docstring); needs ``use_tma``.

    Returns
    -------
    tensor ``(B, 1, n_views, n_radial)`` in sinogram units, after the
    projections: constraints (``use_constraints``), then the known rays
    (``"known"``), exactly.
    """
    config = model.config
    check_choice("sampler", sampler, SAMPLERS)
    guidance_scale = check_non_negative("guidance_scale", guidance_scale)
    if guidance_scale and not config.use_tma:
        raise ValueError("guidance_scale > 0 needs LDMConfig.use_tma=true (TMA guidance)")
    data = model.prepare_batch(batch, need_target=False)
    model.check_calibrated()
    model.prepare_conditions(data)
    labels = [data.get(key) for key in LABEL_KEYS]
    predict = _guided_predictor(model, model.conditions(data), labels, guidance_scale)
    if config.mode == "bridge":
        if sampler == "dpm-solver":
            raise ValueError("bridge mode samples with 'ddim' or 'ddpm', not 'dpm-solver'")
        scheduler = BridgeScheduler(model.train_scheduler.alphas_cumprod)
        z_T, eta = data["input_latent"], 1.0 if sampler == "ddpm" else eta
    else:
        z_T = torch.randn(model.latent_shape(data), generator=generator, device=data["pair_mask"].device,
                          dtype=data["pair_mask"].dtype)
        scheduler = make_scheduler(config, sampler)
    z0 = run_reverse_process(predict, z_T, scheduler, n_steps, eta=eta, generator=generator)
    return model.decode_latents(z0, data)


def _poisson_nll(expected: Tensor, counts: Tensor) -> Tensor:
    """Per-sample Poisson negative log-likelihood ``sum(l - y log l)`` over ``sum(y)``, ``l`` fitted in scale."""
    dims = tuple(range(1, counts.ndim))
    total = counts.sum(dim=dims, keepdim=True).clamp_min(1.0)
    expected = expected.clamp_min(0.0)
    # the prior knows the shape, the counts fix the level: the maximum-likelihood scale of `expected`
    level = (total / expected.sum(dim=dims, keepdim=True).clamp_min(1e-12)).detach()
    rate = level * expected
    tiny = 1e-6 * total / counts[0].numel()
    return ((rate - counts * torch.log(rate + tiny)).sum(dim=dims, keepdim=True) / total).flatten()


def _fit_level(expected: Tensor, counts: Tensor) -> Tensor:
    """``expected`` (non-negative) scaled to the counts' total per sample: the Poisson maximum-likelihood level."""
    dims = tuple(range(1, counts.ndim))
    expected = expected.clamp_min(0.0)
    return expected * counts.sum(dim=dims, keepdim=True) / expected.sum(dim=dims, keepdim=True).clamp_min(1e-12)


@torch.no_grad()
def sample_poisson_posterior(model: SinogramLDM, batch: Mapping[str, Tensor], counts: Tensor, n_steps: int = 50,
                             step_size: float = 0.1, n_inner: int = 3,
                             generator: Optional[torch.Generator] = None) -> Tensor:
    """Expected counts ``(B, 1, n_views, n_radial)`` of measured ``counts``, with a pretrained model as the prior.

    DDIM from unit noise (``"ddpm"``-mode model, ``prediction_type="sample"``);
    at each of ``n_steps`` steps the denoiser's estimate ``z0`` takes
    ``n_inner`` steps down the gradient of the Poisson negative
    log-likelihood of ``counts`` given the decoded ``z0``
    (:meth:`~ldm.model.SinogramLDM.decode_latents`) scaled to the counts'
    total (the prior gives the shape, the counts the level), each step of
    length ``step_size`` times the latents' rms along the normalised gradient.

    Parameters
    ----------
    model : SinogramLDM
        A pretrained ``"ddpm"``-mode model that predicts ``z0`` (the foundation model).
    batch : dict
        The prompt's conditions: ``"input"`` and ``"mask"`` zeros
        ``(B, 1, n_views, n_radial)`` (nothing known: the synthesis prompt),
        labels and window as for :func:`sample`.
    counts : tensor ``(B, 1, n_views, n_radial)``
        Measured counts (Poisson; e.g. the low-dose prompts), axes (view, radial).
    n_steps, n_inner : int
        DDIM steps (network evaluations) and likelihood steps per DDIM step.
    step_size : float
        Likelihood step length in units of the latents' rms (0: the prior alone).
    generator : torch.Generator, optional

    Returns
    -------
    tensor ``(B, 1, n_views, n_radial)``
        The posterior sample's expected counts, in the units of ``counts``.
    """
    config = model.config
    if config.mode != "ddpm" or config.prediction_type != "sample":
        raise ValueError("sample_poisson_posterior needs a 'ddpm'-mode model that predicts 'sample' (z0)")
    positive_int("n_inner", n_inner)
    step_size = check_non_negative("step_size", step_size)
    data = model.prepare_batch(batch, need_target=False)
    model.check_calibrated()
    model.prepare_conditions(data)
    counts = counts.to(data["pair_mask"].device, data["pair_mask"].dtype)
    if counts.shape != data["pair_mask"].shape:
        raise ValueError(f"counts must have shape {tuple(data['pair_mask'].shape)}, got {tuple(counts.shape)}")
    if not bool(torch.isfinite(counts).all()) or bool((counts < 0).any()):
        raise ValueError("counts must be finite and non-negative")
    labels = [data.get(key) for key in LABEL_KEYS]
    predict = _guided_predictor(model, model.conditions(data), labels, 0.0)

    def consistent(z: Tensor, t: Tensor) -> Tensor:
        z0 = predict(z, t)
        for _ in range(n_inner if step_size else 0):
            with torch.enable_grad():
                z0 = z0.detach().requires_grad_(True)
                nll = _poisson_nll(model.decode_latents(z0, data), counts)
                (gradient,) = torch.autograd.grad(nll.sum(), z0)
            dims = tuple(range(1, z0.ndim))
            norm = gradient.square().mean(dim=dims, keepdim=True).sqrt().clamp_min(1e-12)
            scale = z0.detach().square().mean(dim=dims, keepdim=True).sqrt()
            z0 = z0.detach() - step_size * scale * gradient / norm
        return z0

    z_T = torch.randn(model.latent_shape(data), generator=generator, device=data["pair_mask"].device,
                      dtype=data["pair_mask"].dtype)
    z0 = run_reverse_process(consistent, z_T, make_scheduler(config, "ddim"), n_steps, generator=generator)
    return _fit_level(model.decode_latents(z0, data), counts)
