"""Sinogram latent diffusion model (LDM): autoencoder + conditional latent denoiser + constraints, as one nn.Module.

:class:`SinogramLDM` generates PET sinograms ``(B, 1, n_views, n_radial)``
(views ``theta_v = v * pi / n_views`` in ``[0, pi)``, radial bins centred on
the rotation axis) in two training stages:

1. ``"autoencoder"``: a KL autoencoder (:class:`SinogramAutoencoder`) of the
   sinogram as a (positive, negative) pair ``(m f, (1 - m) f)`` for the
   sinogram mask ``m`` (all ones when a batch has none): 2 channels, so the
   positive/negative constraints of ALL-PET (Huang et al., arXiv 2509.09130)
   are constraints between generated channels (:mod:`ldm.constraints`).
2. ``"diffusion"``: a denoiser (:class:`LatentDenoiser`) on the frozen
   autoencoder's latents (posterior means times ``latent_scale``), conditioned
   on the encoded task input, the mask and the TMA attention at latent
   resolution (concatenated channels), optionally on the coordinates of the
   sinogram window (:mod:`ldm.windows`), and on the prompt's task, tracer and
   body-region labels (:mod:`ldm.prompts`).

Modes (``LDMConfig.mode``):

- ``"ddpm"``: noise to target, ``z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps``
  (Ho et al. 2020), sampled by diffusers' DDPM, DDIM or DPM-Solver++
  schedulers with clipping and thresholding off (latents are not bounded).
- ``"bridge"``: a diffusion bridge from the task input's latent ``y`` to the
  target's ``z0`` on the same ``abar_t`` (:class:`~ldm.schedulers.BridgeScheduler`);
  the network predicts ``z0``.

The model holds the losses, the encoding of batches and conditions, the
calibration of its scales and the decoding of final latents
(:meth:`SinogramLDM.decode_latents`); the reverse process lives in
:mod:`ldm.sampling` and the training loop in :mod:`ldm.trainer`.

TMA (transparent medical attention, parameter-free attention maps ``a`` in
``[0, 1]``, :mod:`pet_projection.attention`), when ``use_tma``:

- weights the losses by ``(1 + a) / mean(1 + a)`` (:func:`attention_weights`):
  the autoencoder's L1 per ray, the denoising loss per latent pixel (``a``
  average-pooled to the latent grid);
- is a condition channel, zeroed for a random ``attention_dropout`` fraction
  of training samples, so the model also learns the attention-free prediction,
  which TMA guidance (:func:`ldm.sampling.sample`) uses.

Constraints, when ``use_constraints``: the autoencoder loss and (decoded from
the predicted ``z0``) the diffusion loss add the penalties of
:func:`~ldm.constraints.constraint_losses`, and samples are projected exactly
(:func:`~ldm.constraints.project_pair`). Known rays (batch key ``"known"``
with ``"mask"``) always replace the generated ones exactly (data consistency).

Sizes: sinograms of any size are padded (:func:`pad_sinogram`: periodic
extension of the views with a radial flip, zeros radially) to a multiple of
:attr:`SinogramLDM.size_multiple` and cropped back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn

from pet_projection.config_dicts import config_from_mapping
from pet_projection.validation import check_bool, check_choice, check_non_negative, positive_int

from .autoencoder import AutoencoderConfig, SinogramAutoencoder, attention_weights, crop_sinogram, pad_sinogram
from .batches import LABEL_KEYS, SINOGRAM_KEYS, WINDOW_KEY
from .constraints import PAIR_CHANNELS, constraint_losses, insert_known, pair_from_full, project_pair
from .denoiser import DenoiserConfig, LatentDenoiser
from .schedulers import BridgeScheduler, make_scheduler
from .windows import COORDINATE_CHANNELS, coordinate_channels

__all__ = ["LDMConfig", "SinogramLDM"]

MODES = ("ddpm", "bridge")
PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
STAGES = ("autoencoder", "diffusion")


@dataclass(frozen=True)
class LDMConfig:
    """Configuration of :class:`SinogramLDM` (nested configs may be given as mappings, e.g. from YAML).

    Parameters
    ----------
    autoencoder : AutoencoderConfig
        ``in_channels`` must be 2 (the positive/negative pair; the default
        when given as a mapping).
    denoiser : DenoiserConfig
    n_train_timesteps : int
        Diffusion steps ``T`` of the training schedule.
    beta_schedule : {"linear", "scaled_linear", "squaredcos_cap_v2"}
        diffusers' names; ``"scaled_linear"`` with ``beta_start=0.00085``,
        ``beta_end=0.012`` is Rombach et al. 2022's latent schedule.
    beta_start, beta_end : float
        First and last ``beta_t``, ``0 < beta_start < beta_end < 1``.
    prediction_type : {"epsilon", "sample", "v_prediction"}
        What the denoiser predicts (``"bridge"`` mode needs ``"sample"``).
    mode : {"ddpm", "bridge"}
        Noise-to-target diffusion or an input-to-target bridge (needs ``"input"``).
    condition_on_input : bool
        Encode the batch's ``"input"`` sinogram as condition channels.
    condition_on_mask : bool
        The sinogram mask (average-pooled to the latent grid) as a condition channel.
    use_tma : bool
        TMA attention weights the losses, is a condition channel and can guide sampling.
    attention_dropout : float
        Fraction of training samples whose attention channel is zeroed, in ``[0, 1)``.
    use_constraints : bool
        Positive/negative, non-negativity and support penalties and projections.
    constraint_weight : float
        Weight of the decoded constraint penalties in the diffusion stage; each
        sample's penalties are weighted by ``abar_t`` so that noisy steps,
        whose ``z0`` estimate is poor, do not dominate.
    residual_decode : bool
        Bridge mode: return ``input + D(z0) - D(y)`` (``D`` the decoder, ``y``
        the input's latent) instead of ``D(z0)``, so the bridge's latent
        correction is added to the input at full resolution and the
        autoencoder's own error on the input cancels (measurements:
        docs/results/ldm.md). Off by default: it suits a smooth input
        that estimates the target (the low-dose physics prior, with which
        :class:`tasks.pipeline_config.PipelineConfig` turns it on); a raw measured
        input's Poisson noise would pass straight through to the output, and
        an autoencoder trained on targets only reconstructs an input of
        another kind (another frame) poorly, so that ``D(y)`` is wrong
        (``autoencode_inputs`` trains it on the inputs too). ddpm mode, which
        does not start from the input, always decodes ``D(z0)``.
    autoencode_inputs : bool
        Train the autoencoder on the batch's ``"input"`` sinograms as well as
        its targets, so that it also reconstructs inputs of another kind than
        the targets (another frame or tracer), whose latents condition the
        denoiser and start the bridge, and which ``residual_decode`` decodes.
    n_tracers, n_regions, n_tasks : int
        Tracer, body-region and task classes (0: no such label); the
        foundation model's are those of :mod:`ldm.prompts`.
    coordinate_channels : bool
        Condition on the four coordinate channels of the batch's sinogram
        window (batch key ``"window"``, :func:`ldm.windows.coordinate_channels`),
        so that the fully convolutional model generates the window it is asked for.
    sinogram_scale : float, optional
        Sinograms are divided by it before encoding; ``None`` calibrates it on
        the first training batch as the root mean square of the targets
        (across ranks under ``torch.distributed``), stored in the state dict.
    latent_scale : float, optional
        Latents are multiplied by it; ``None`` calibrates it on the first
        diffusion batch to ``1 / rms(posterior means)`` (Rombach et al.'s
        unit-variance rescaling), stored in the state dict.
    """

    autoencoder: AutoencoderConfig = field(default_factory=lambda: AutoencoderConfig(in_channels=PAIR_CHANNELS))
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    n_train_timesteps: int = 1000
    beta_schedule: str = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012
    prediction_type: str = "epsilon"
    mode: str = "ddpm"
    condition_on_input: bool = True
    condition_on_mask: bool = True
    use_tma: bool = True
    attention_dropout: float = 0.1
    use_constraints: bool = True
    constraint_weight: float = 0.1
    residual_decode: bool = False
    autoencode_inputs: bool = False
    n_tracers: int = 0
    n_regions: int = 0
    n_tasks: int = 0
    coordinate_channels: bool = False
    sinogram_scale: Optional[float] = None
    latent_scale: Optional[float] = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        autoencoder = self.autoencoder
        if isinstance(autoencoder, Mapping):
            autoencoder = {"in_channels": PAIR_CHANNELS, **autoencoder}
        autoencoder = config_from_mapping(AutoencoderConfig, autoencoder, "autoencoder")
        if autoencoder.in_channels != PAIR_CHANNELS:
            raise ValueError(f"autoencoder.in_channels must be {PAIR_CHANNELS} (the model generates a "
                             f"(positive, negative) pair), got {autoencoder.in_channels}")
        object.__setattr__(self, "autoencoder", autoencoder)
        object.__setattr__(self, "denoiser", config_from_mapping(DenoiserConfig, self.denoiser, "denoiser"))
        positive_int(f"{owner}.n_train_timesteps", self.n_train_timesteps, minimum=2)
        for name in ("n_tracers", "n_regions", "n_tasks"):
            positive_int(f"{owner}.{name}", getattr(self, name), minimum=0)
        check_choice(f"{owner}.beta_schedule", self.beta_schedule, BETA_SCHEDULES)
        check_choice(f"{owner}.prediction_type", self.prediction_type, PREDICTION_TYPES)
        check_choice(f"{owner}.mode", self.mode, MODES)
        for name in ("condition_on_input", "condition_on_mask", "use_tma", "use_constraints", "residual_decode",
                     "autoencode_inputs", "coordinate_channels"):
            check_bool(f"{owner}.{name}", getattr(self, name))
        for name in ("beta_start", "beta_end", "attention_dropout", "constraint_weight"):
            object.__setattr__(self, name, check_non_negative(f"{owner}.{name}", getattr(self, name)))
        if not 0.0 < self.beta_start < self.beta_end < 1.0:
            raise ValueError(f"{owner}.beta_start and beta_end must satisfy 0 < beta_start < beta_end < 1, "
                             f"got {self.beta_start}, {self.beta_end}")
        if self.attention_dropout >= 1.0:
            raise ValueError(f"{owner}.attention_dropout must be below 1, got {self.attention_dropout}")
        for name in ("sinogram_scale", "latent_scale"):
            value = getattr(self, name)
            if value is not None and check_non_negative(f"{owner}.{name}", value) == 0.0:
                raise ValueError(f"{owner}.{name} must be positive (or null to calibrate), got {value}")
        if self.mode == "bridge":
            if self.prediction_type != "sample":
                raise ValueError(f"{owner}.prediction_type must be 'sample' in bridge mode (the bridge's noise is "
                                 f"undefined at its input end), got {self.prediction_type!r}")
            if not self.condition_on_input:
                raise ValueError(f"{owner}.condition_on_input must be true in bridge mode (the bridge starts at "
                                 "the input)")

    @property
    def cond_channels(self) -> int:
        """Spatial condition channels of the denoiser: input latent, mask, window coordinates, attention."""
        latent = self.autoencoder.latent_channels if self.condition_on_input else 0
        coordinates = COORDINATE_CHANNELS if self.coordinate_channels else 0
        return latent + int(self.condition_on_mask) + coordinates + int(self.use_tma)


# ----------------------------------------------------------------------------------------- model

def _mean_square_all_ranks(x: Tensor) -> Tensor:
    """Mean of ``x ** 2`` (float64), averaged across ``torch.distributed`` ranks when initialised."""
    value = x.detach().double().square().mean()
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(value)
        value = value / dist.get_world_size()
    return value


class SinogramLDM(nn.Module):
    """Latent diffusion model of PET sinograms ``(B, 1, n_views, n_radial)``; see the module docstring.

    Batches are dicts of tensors: ``"target"`` ``(B, 1, V, R)`` (training
    only), optional ``"input"``, ``"known"``, ``"mask"`` (0/1),
    ``"attention"`` (``>= 0``), ``"support"`` (0/1), all ``(B, 1, V, R)``, and
    optional ``"tracer"``, ``"region"``, ``"task"`` int64 ``(B,)`` (``-1``:
    unspecified) and ``"window"`` float ``(B, 4)`` (:mod:`ldm.windows`; needed
    with ``coordinate_channels``). Other keys are ignored. Floats are cast to the model's dtype and device.
    """

    stages = STAGES

    def __init__(self, config: LDMConfig) -> None:
        super().__init__()
        if not isinstance(config, LDMConfig):
            raise TypeError(f"config must be an LDMConfig, got {type(config).__name__}")
        self.config = config
        self.autoencoder = SinogramAutoencoder(config.autoencoder)
        self.denoiser = LatentDenoiser(config.denoiser, config.autoencoder.latent_channels, config.cond_channels,
                                       config.n_tracers, config.n_regions, config.n_tasks)
        self.train_scheduler = make_scheduler(config, "ddpm")
        self.bridge = BridgeScheduler(self.train_scheduler.alphas_cumprod)
        # 0 means "not calibrated yet"; buffers travel with state_dict and checkpoints
        self.register_buffer("sinogram_scale", torch.tensor(config.sinogram_scale or 0.0, dtype=torch.float64))
        self.register_buffer("latent_scale", torch.tensor(config.latent_scale or 0.0, dtype=torch.float64))

    @property
    def size_multiple(self) -> int:
        """Sinogram sides are padded to multiples of this: autoencoder factor times UNet factor."""
        return self.config.autoencoder.downsampling_factor * self.config.denoiser.downsampling_factor

    def parameters_for(self, stage: str) -> list[nn.Parameter]:
        """Make ``stage``'s parameters the only trainable ones (``requires_grad``) and return them.

        ``"autoencoder"``: the autoencoder's; ``"diffusion"``: the denoiser's
        (the autoencoder is frozen). Call it when a stage starts, before
        building the optimizer or wrapping the model in DDP.
        """
        check_choice("stage", stage, STAGES)
        trained = self.autoencoder if stage == "autoencoder" else self.denoiser
        self.requires_grad_(False)
        trained.requires_grad_(True)
        return list(trained.parameters())

    def forward(self, batch: Mapping[str, Tensor], stage: str) -> dict[str, Tensor]:
        """:meth:`loss`, so that a ``DistributedDataParallel`` wrapper synchronises the gradients."""
        return self.loss(batch, stage)

    # ------------------------------------------------------------------ batch handling

    def prepare_batch(self, batch: Mapping[str, Tensor], need_target: bool) -> dict[str, Any]:
        """Validated batch on the model's device and dtype, with ``size`` (V, R) and ``pair_mask`` (ones if none)."""
        if not isinstance(batch, Mapping):
            raise TypeError(f"batch must be a mapping of names to tensors, got {type(batch).__name__}")
        parameter = next(self.parameters())
        present = [key for key in SINOGRAM_KEYS if key in batch]
        if need_target and "target" not in batch:
            raise KeyError("batch needs 'target' (B, 1, n_views, n_radial) for training")
        if not present:
            raise KeyError(f"batch needs at least one sinogram ({SINOGRAM_KEYS}) to fix the sinogram size")
        out: dict[str, Any] = {}
        shape = None
        for key in present:
            value = batch[key]
            if not isinstance(value, Tensor) or not value.is_floating_point():
                raise TypeError(f"batch[{key!r}] must be a floating torch tensor, got "
                                f"{getattr(value, 'dtype', type(value).__name__)}")
            shape = shape or tuple(value.shape)
            if value.ndim != 4 or value.shape[1] != 1 or tuple(value.shape) != shape:
                raise ValueError(f"batch[{key!r}] must have shape (B, 1, n_views, n_radial) like "
                                 f"batch[{present[0]!r}] {shape}, got {tuple(value.shape)}")
            out[key] = value.to(parameter.device, parameter.dtype)
        for key in LABEL_KEYS:
            if key in batch:
                label = batch[key]
                if not isinstance(label, Tensor) or label.dtype != torch.long or label.shape != shape[:1]:
                    raise ValueError(f"batch[{key!r}] must be an int64 tensor of shape {shape[:1]}")
                out[key] = label.to(parameter.device)
        if WINDOW_KEY in batch:
            window = batch[WINDOW_KEY]
            if not isinstance(window, Tensor) or not window.is_floating_point() or window.shape != (shape[0], 4) \
                    or not bool(torch.isfinite(window).all()):
                raise ValueError(f"batch['window'] must be finite floats of shape ({shape[0]}, 4)")
            out[WINDOW_KEY] = window.to(parameter.device, torch.float64)
        elif self.config.coordinate_channels:
            raise KeyError("batch needs 'window' (B, 4), the sinogram window rows of ldm.windows: the model is "
                           "conditioned on the window's coordinates")
        if "mask" in out and not bool(((out["mask"] == 0) | (out["mask"] == 1)).all()):
            raise ValueError("batch['mask'] must hold 0/1 values")
        if "attention" in out and not bool((out["attention"] >= 0).all()):
            raise ValueError("batch['attention'] must be >= 0 (and not NaN)")
        if "known" in out and "mask" not in out:
            raise KeyError("batch['known'] needs batch['mask'] marking the known rays")
        out["size"] = shape[-2:]
        out["pair_mask"] = out.get("mask", torch.ones(shape, device=parameter.device, dtype=parameter.dtype))
        return out

    def _scale(self, name: str, values: Optional[Tensor] = None) -> Tensor:
        """The buffer ``name``; calibrated from ``values`` (an rms across ranks) when still 0."""
        buffer = getattr(self, name)
        if buffer.item() == 0.0:
            if values is None:
                raise RuntimeError(f"{name} is not calibrated: train the model (or set LDMConfig.{name}) first")
            rms = _mean_square_all_ranks(values).sqrt()
            if not rms > 0.0:
                raise ValueError(f"cannot calibrate {name}: the batch's values are all zero")
            buffer.fill_(1.0 / rms if name == "latent_scale" else rms)
        return buffer

    def _pair(self, data: dict[str, Any], key: str) -> Tensor:
        """Scaled (positive, negative) pair of sinogram ``key``, padded to :attr:`size_multiple`."""
        scale = self._scale("sinogram_scale").to(data[key].dtype)
        return pad_sinogram(pair_from_full(data[key] / scale, data["pair_mask"]), self.size_multiple)

    def _latent(self, pair: Tensor) -> Tensor:
        """Scaled posterior mean of a padded pair (the autoencoder is frozen: no gradient)."""
        with torch.no_grad():
            mean, _ = self.autoencoder.encode(pair)
        return mean * self._scale("latent_scale", mean).to(mean.dtype)

    def _pool(self, sinogram: Tensor) -> Tensor:
        """Average of ``(B, 1, V, R)`` over the latent pixels' footprints, ``(B, 1, H, W)`` (after padding)."""
        return nn.functional.avg_pool2d(pad_sinogram(sinogram, self.size_multiple),
                                        self.config.autoencoder.downsampling_factor)

    def prepare_conditions(self, data: dict[str, Any]) -> None:
        """Add ``input_latent``, the pooled ``mask_latent`` / ``attention_latent`` and ``coordinates`` as configured."""
        if self.config.condition_on_input:
            if "input" not in data:
                raise KeyError("batch needs 'input' (the model is conditioned on it: condition_on_input / bridge "
                               "mode)")
            data["input_latent"] = self._latent(self._pair(data, "input"))
        if self.config.condition_on_mask:
            data["mask_latent"] = self._pool(data["pair_mask"])
        if self.config.coordinate_channels:
            padded = tuple(math.ceil(n / self.size_multiple) * self.size_multiple for n in data["size"])
            data["coordinates"] = coordinate_channels(data[WINDOW_KEY], data["size"], padded,
                                                      self.config.autoencoder.downsampling_factor).to(
                                                          data["pair_mask"].dtype)
        if self.config.use_tma:
            data["attention_latent"] = self._pool(data.get("attention", torch.zeros_like(data["pair_mask"])))

    def conditions(self, data: dict[str, Any], attention_keep: Optional[Tensor] = None) -> Optional[Tensor]:
        """Spatial conditions ``(B, cond_channels, H, W)``: input latent, mask, coordinates, attention (last).

        ``attention_keep`` ``(B,)`` multiplies the attention channel (0 drops it).
        """
        parts = [data[key] for key in ("input_latent", "mask_latent", "coordinates") if key in data]
        if self.config.use_tma:
            attention = data["attention_latent"]
            parts.append(attention if attention_keep is None else attention * attention_keep.view(-1, 1, 1, 1))
        return torch.cat(parts, dim=1) if parts else None

    # ------------------------------------------------------------------ training

    def loss(self, batch: Mapping[str, Tensor], stage: str) -> dict[str, Tensor]:
        """Training loss of ``stage``: ``{"loss": total, ...components}``, scalars.

        Random draws (posterior sample, noise, timesteps, attention dropout)
        come from torch's global RNG, so the loss is a deterministic function
        of the batch, the parameters and the RNG state. The first call
        calibrates uncalibrated scales (see :class:`LDMConfig`).
        """
        check_choice("stage", stage, STAGES)
        data = self.prepare_batch(batch, need_target=True)
        self._scale("sinogram_scale", data["target"])
        if stage == "autoencoder":
            scale = self.sinogram_scale.to(data["target"].dtype)
            keys = ("target", "input") if self.config.autoencode_inputs and "input" in data else ("target",)
            pair = torch.cat([pair_from_full(data[key] / scale, data["pair_mask"]) for key in keys])
            mask, attention = (data.get(key) for key in ("mask", "attention"))
            mask = mask.repeat(len(keys), 1, 1, 1) if mask is not None and self.config.use_constraints else None
            attention = (attention.repeat(len(keys), 1, 1, 1) if attention is not None and self.config.use_tma
                         else None)
            return self.autoencoder.loss(pair, mask, attention)
        return self._diffusion_loss(data)

    def _diffusion_loss(self, data: dict[str, Any]) -> dict[str, Tensor]:
        config = self.config
        z0 = self._latent(self._pair(data, "target"))
        self.prepare_conditions(data)
        batch = z0.shape[0]
        noise = torch.randn_like(z0)
        t = torch.randint(0, config.n_train_timesteps, (batch,), device=z0.device)
        if config.mode == "bridge":
            z_t = self.bridge.marginal(z0, data["input_latent"], noise, t)
            target = z0
        else:
            z_t = self.train_scheduler.add_noise(z0, noise, t)
            target = {"epsilon": noise, "sample": z0}.get(config.prediction_type)
            if target is None:
                target = self.train_scheduler.get_velocity(z0, noise, t)
        keep = None
        if config.use_tma and config.attention_dropout:
            keep = (torch.rand(batch, device=z0.device) >= config.attention_dropout).to(z0.dtype)
        prediction = self.denoiser(z_t, t, self.conditions(data, keep), data.get("tracer"), data.get("region"),
                                   data.get("task"))
        error = (prediction.float() - target.float()).square()
        if config.use_tma:
            error = error * attention_weights(data["attention_latent"])
        losses = {"diffusion": error.mean()}
        total = losses["diffusion"]
        if config.use_constraints and config.constraint_weight:
            abar = self.train_scheduler.alphas_cumprod.to(z0.device)[t].to(z0.dtype)
            pair = self._decode(self._z0_estimate(prediction, z_t, t), data["size"])
            full = data["target"] / self.sinogram_scale.to(z0.dtype)
            # all penalties are (positively) homogeneous of degree 2: scaling the data by sqrt(abar) weights
            # each sample's penalties by abar_t
            weight = abar.sqrt().view(-1, 1, 1, 1)
            penalties = constraint_losses(weight * pair, weight * full, data["pair_mask"],
                                          data.get("support"))
            losses.update({f"constraint_{key}": value for key, value in penalties.items()})
            total = total + config.constraint_weight * sum(penalties.values())
        return {"loss": total, **losses}

    def _z0_estimate(self, prediction: Tensor, z_t: Tensor, t: Tensor) -> Tensor:
        """The denoiser's estimate of the clean latent ``z0`` from its output of ``prediction_type``."""
        if self.config.mode == "bridge" or self.config.prediction_type == "sample":
            return prediction
        abar = self.train_scheduler.alphas_cumprod.to(z_t.device)[t].to(z_t.dtype).view(-1, 1, 1, 1)
        if self.config.prediction_type == "epsilon":
            return (z_t - (1.0 - abar).sqrt() * prediction) / abar.sqrt()
        return abar.sqrt() * z_t - (1.0 - abar).sqrt() * prediction

    def _decode(self, z: Tensor, size: tuple[int, int]) -> Tensor:
        """Scaled pair ``(B, 2, *size)`` (sinogram units / sinogram_scale) of scaled latents ``z``."""
        padded = tuple(math.ceil(n / self.size_multiple) * self.size_multiple for n in size)
        pair = self.autoencoder.decode(z / self.latent_scale.to(z.dtype), padded)
        return crop_sinogram(pair, size)

    # ------------------------------------------------------------------ decoding (the sampling loop: ldm.sampling)

    def check_calibrated(self) -> None:
        """Raise ``RuntimeError`` unless both scales are calibrated (trained, or set in the config)."""
        self._scale("sinogram_scale")
        self._scale("latent_scale")

    def latent_shape(self, data: Mapping[str, Any]) -> tuple[int, int, int, int]:
        """Shape ``(B, latent_channels, H, W)`` of the latents of a prepared batch (:meth:`prepare_batch`)."""
        batch_size = data["pair_mask"].shape[0]
        padded = [math.ceil(n / self.size_multiple) * self.size_multiple for n in data["size"]]
        factor = self.config.autoencoder.downsampling_factor
        return (batch_size, self.config.autoencoder.latent_channels, padded[0] // factor, padded[1] // factor)

    @torch.no_grad()
    def autoencoder_ceiling(self, batch: Mapping[str, Tensor]) -> Tensor:
        """The output ``(B, 1, n_views, n_radial)`` of a perfect denoiser: the target's own latent, decoded.

        The target's scaled latent goes through the same decoding as a
        sample's ``z0`` (:meth:`decode_latents`: residual decode, constraints,
        known rays), so the distance of this output from the truth bounds what
        the diffusion stage can reach with this autoencoder. Needs
        ``"target"`` (and ``"input"`` in bridge mode with ``residual_decode``).
        """
        data = self.prepare_batch(batch, need_target=True)
        self.check_calibrated()
        if self.config.mode == "bridge" and self.config.residual_decode:
            self.prepare_conditions(data)
        return self.decode_latents(self._latent(self._pair(data, "target")), data)

    def decode_latents(self, z0: Tensor, data: dict[str, Any]) -> Tensor:
        """Full sinograms ``(B, 1, V, R)`` in sinogram units of final latents ``z0`` ``(B, L, H, W)``.

        ``data`` is the prepared batch (:meth:`prepare_batch`, with
        :meth:`prepare_conditions` in bridge mode with ``residual_decode``).
        The decoded pair is projected onto the constraints
        (``use_constraints``) and the known rays (``"known"``) are inserted,
        both exactly.
        """
        scale = self.sinogram_scale.to(data["pair_mask"].dtype)
        pair = self._decode(z0, data["size"]) * scale
        if self.config.mode == "bridge" and self.config.residual_decode:
            # input + D(z0) - D(y): the decoder's error on the input cancels
            y = data["input_latent"]
            pair = pair + pair_from_full(data["input"], data["pair_mask"]) - self._decode(y, data["size"]) * scale
        if self.config.use_constraints:
            pair = project_pair(pair, data["pair_mask"], data.get("support"))
        full = pair.sum(dim=1, keepdim=True)
        if "known" in data:
            full = insert_known(full, data["known"], data["mask"])
        return full
