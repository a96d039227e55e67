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
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

import torch
from torch import Tensor

from pet_projection.validation import check_choice, check_non_negative, positive_int

from .batches import LABEL_KEYS
from .model import SinogramLDM
from .schedulers import SAMPLERS, BridgeScheduler, make_scheduler

__all__ = ["Predictor", "run_reverse_process", "sample"]

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
