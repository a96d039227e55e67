"""Sinogram LDM models: padding, shapes, scheduler oracles, exact constraints, overfitting, determinism, bad configs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ldm.autoencoder import AutoencoderConfig, SinogramAutoencoder, attention_weights, crop_sinogram, pad_sinogram
from ldm.constraints import constraint_losses, insert_known, pair_from_full, project_pair
from ldm.denoiser import DenoiserConfig, LatentDenoiser
from ldm.batches import batch_from_rmas
from ldm.model import LDMConfig, SinogramLDM
from ldm.sampling import run_reverse_process, sample
from ldm.schedulers import BridgeScheduler, make_scheduler

TINY_AE = {"base_channels": 8, "channel_mults": (1, 2, 2), "norm_groups": 4}
TINY_UNET = {"base_channels": 16, "channel_mults": (1, 2), "norm_groups": 4}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def tiny_config(**overrides) -> LDMConfig:
    return LDMConfig(**{"autoencoder": TINY_AE, "denoiser": TINY_UNET, **overrides})


def tiny_model(seed: int = 0, **overrides) -> SinogramLDM:
    torch.manual_seed(seed)
    return SinogramLDM(tiny_config(**overrides))


def disc_sinograms(n: int, n_views: int, n_radial: int, seed: int = 0) -> torch.Tensor:
    """Sinograms ``(n, 1, V, R)`` of off-centre uniform discs: chord lengths ``2 sqrt(w^2 - (s - c cos th)^2)``."""
    g = torch.Generator().manual_seed(seed)
    s = torch.linspace(-1.0, 1.0, n_radial)
    theta = torch.arange(n_views)[:, None] * torch.pi / n_views
    centre = torch.rand(n, 1, 1, 1, generator=g) * 0.6 - 0.3
    radius = torch.rand(n, 1, 1, 1, generator=g) * 0.3 + 0.3
    return 2.0 * (radius**2 - (s - centre * torch.cos(theta)) ** 2).clamp(min=0.0).sqrt()


def band_masks(n: int, n_views: int, n_radial: int, seed: int = 1) -> torch.Tensor:
    """Sinogram masks ``(n, 1, V, R)`` of centred discs: radial bands ``|s| < r``."""
    g = torch.Generator().manual_seed(seed)
    s = torch.linspace(-1.0, 1.0, n_radial)
    radius = torch.rand(n, 1, 1, 1, generator=g) * 0.5 + 0.3
    return (s.abs() < radius).float().expand(n, 1, n_views, n_radial).contiguous()


def task_batch(n: int = 3, n_views: int = 37, n_radial: int = 29) -> dict[str, torch.Tensor]:
    target = disc_sinograms(n, n_views, n_radial)
    mask = band_masks(n, n_views, n_radial)
    return {"target": target, "input": target * mask, "known": target * mask, "mask": mask,
            "attention": torch.rand(n, 1, n_views, n_radial, generator=torch.Generator().manual_seed(2))}


# ----------------------------------------------------------------------------------------- padding and shapes

@settings(max_examples=20)
@given(n_views=st.integers(1, 20), n_radial=st.integers(1, 20), multiple=st.sampled_from([2, 4, 8, 16]))
def test_pad_sinogram_periodic_extension_and_crop(n_views, n_radial, multiple):
    x = torch.randn(2, 1, n_views, n_radial, generator=torch.Generator().manual_seed(n_views * 31 + n_radial))
    padded = pad_sinogram(x, multiple)
    assert padded.shape[-2] % multiple == 0 and padded.shape[-1] % multiple == 0
    assert padded.shape[-2] - n_views < multiple and padded.shape[-1] - n_radial < multiple
    assert torch.equal(crop_sinogram(padded, (n_views, n_radial)), x)
    views = pad_sinogram(x, 1)  # no padding
    assert torch.equal(views, x)
    left = (padded.shape[-1] - n_radial) // 2
    extended = padded[..., left:left + n_radial]
    for v in range(n_views, padded.shape[-2]):  # view v = view v mod V, radially flipped per half turn
        source = x[..., v % n_views, :]
        assert torch.equal(extended[..., v, :], source.flip(-1) if (v // n_views) % 2 else source)
    outside = torch.ones(padded.shape[-1], dtype=torch.bool)
    outside[left:left + n_radial] = False
    assert torch.all(padded[..., outside] == 0)


def test_view_padding_matches_projections_beyond_pi():
    """The appended views equal a projector's views at theta + pi (same rays, reversed direction)."""
    from pet_projection import ImageGrid, ParallelBeamGeometry, ParallelBeamProjector

    grid = ImageGrid((12, 12), voxel_size_mm=2.0)
    image = np.random.default_rng(3).random((12, 12), dtype=np.float32)
    n_views, n_bins, extra = 6, 17, 2
    half = ParallelBeamProjector(ParallelBeamGeometry(grid, n_views, n_bins, 2.0))(image)
    angles = np.arange(n_views + extra) * np.pi / n_views
    full = ParallelBeamProjector(ParallelBeamGeometry(grid, n_views + extra, n_bins, 2.0, angles_rad=angles))(image)
    padded = pad_sinogram(torch.from_numpy(half)[None, None], n_views + extra)[0, 0].numpy()
    left = (padded.shape[-1] - n_bins) // 2
    np.testing.assert_allclose(padded[:, left:left + n_bins], full, rtol=1e-5, atol=1e-5 * np.abs(full).max())


@pytest.mark.parametrize("factor_mults", [(1, 2), (1, 2, 2), (1, 1, 2, 2)])
def test_autoencoder_shapes_odd_sizes(factor_mults):
    torch.manual_seed(0)
    config = AutoencoderConfig(in_channels=2, latent_channels=3, base_channels=8, channel_mults=factor_mults,
                               norm_groups=4)
    model = SinogramAutoencoder(config)
    x = torch.rand(2, 2, 37, 29)
    mean, logvar = model.encode(x)
    f = config.downsampling_factor
    assert mean.shape == logvar.shape == (2, 3, -(-37 // f), -(-29 // f))
    assert model.decode(mean, (37, 29)).shape == x.shape
    losses = model.loss(x, mask=(x[:, :1] > 0.5).float(), attention=torch.rand(2, 1, 37, 29))
    assert set(losses) == {"loss", "l1", "kl", "consistency"} and all(v.ndim == 0 for v in losses.values())
    with pytest.raises(ValueError, match="out_size"):
        model.decode(mean, (45, 29))


def test_denoiser_shapes_and_labels():
    torch.manual_seed(0)
    net = LatentDenoiser(DenoiserConfig(**TINY_UNET, attention_levels=(1,), mid_attention=True),
                         latent_channels=4, cond_channels=3, n_tracers=2, n_regions=3).eval()
    z, cond, t = torch.randn(2, 4, 8, 6), torch.randn(2, 3, 8, 6), torch.tensor([5, 500])
    out = net(z, t, cond, torch.tensor([0, 1]), torch.tensor([2, -1]))
    assert out.shape == z.shape
    other = net(z, t, cond, torch.tensor([1, 1]), torch.tensor([2, -1]))
    assert not torch.equal(out[0], other[0]) and torch.equal(out[1], other[1])  # the tracer label matters per item
    unspecified = net(z, t, cond, torch.tensor([-1, -1]), torch.tensor([-1, -1]))
    assert torch.equal(net(z, t, cond), unspecified)  # missing labels are "unspecified"
    with pytest.raises(ValueError, match="tracer labels must lie"):
        net(z, t, cond, torch.tensor([2, 0]))
    with pytest.raises(ValueError, match="cond must have shape"):
        net(z, t, cond[:, :2])
    with pytest.raises(ValueError, match="multiples of 2"):
        net(torch.randn(2, 4, 7, 6), t, torch.randn(2, 3, 7, 6))


@pytest.mark.parametrize("mode", ["ddpm", "bridge"])
def test_ldm_loss_and_sample_shapes_odd_sizes(mode):
    extra = {"prediction_type": "sample"} if mode == "bridge" else {}
    model = tiny_model(mode=mode, n_tracers=2, n_regions=2, **extra)
    batch = {**task_batch(), "tracer": torch.tensor([0, 1, -1]), "region": torch.tensor([1, -1, 0])}
    config = model.config
    for stage in model.stages:
        model.parameters_for(stage)
        losses = model.loss(batch, stage)
        assert losses["loss"].ndim == 0 and torch.isfinite(losses["loss"])
        if stage == "autoencoder":  # the total is the weighted sum of its parts (AutoencoderConfig's weights)
            expected = (losses["l1"] + config.autoencoder.kl_weight * losses["kl"]
                        + config.autoencoder.consistency_weight * losses["consistency"])
        else:
            penalties = [value for key, value in losses.items() if key.startswith("constraint_")]
            assert len(penalties) == 4  # sum, positive_outside, negative_inside, negative_counts (no support)
            expected = losses["diffusion"] + config.constraint_weight * sum(penalties)
        torch.testing.assert_close(losses["loss"], expected)
        losses["loss"].backward()
    samplers = ["ddim", "ddpm"] if mode == "bridge" else ["ddim", "ddpm", "dpm-solver"]
    outputs = []
    inside = batch["mask"] == 1
    for sampler in samplers:
        out = sample(model, batch, sampler, n_steps=3, generator=torch.Generator().manual_seed(0))
        assert out.shape == batch["target"].shape and torch.isfinite(out).all()
        assert torch.equal(out[inside], batch["known"][inside])  # the known rays, exactly
        assert torch.all(out >= 0)  # the constraints' projection: no negative counts
        assert not torch.equal(out[~inside], batch["known"][~inside])  # the model fills the unknown rays
        outputs.append(out)
    for first, second in zip(outputs, outputs[1:]):  # each sampler walks its own path
        assert not torch.equal(first, second)


# ----------------------------------------------------------------------------------------- schedulers

@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "dpm-solver"])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_scheduler_with_known_noise_oracle_recovers_x0(sampler, prediction_type):
    """A predictor that knows x0 and the noise makes every sampler land on x0."""
    config = tiny_config(prediction_type=prediction_type)
    abar = make_scheduler(config).alphas_cumprod
    g = torch.Generator().manual_seed(0)
    x0, z_T = torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 4, 4, 4, generator=g)

    def oracle(z, t):
        a = abar[t]
        eps = (z - a.sqrt() * x0) / (1 - a).sqrt()
        return {"epsilon": eps, "sample": x0, "v_prediction": a.sqrt() * eps - (1 - a).sqrt() * x0}[prediction_type]

    out = run_reverse_process(oracle, z_T, make_scheduler(config, sampler), 10, generator=g)
    torch.testing.assert_close(out, x0, rtol=1e-4, atol=1e-4)


def test_ddim_eta_zero_is_deterministic_and_eta_one_is_not():
    config = tiny_config()
    z_T = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    predict = lambda z, t: torch.tanh(z) * 0.5  # noqa: E731 -- any fixed network
    runs = [run_reverse_process(predict, z_T, make_scheduler(config, "ddim"), 8, eta=eta,
                                generator=torch.Generator().manual_seed(seed))
            for eta, seed in [(0.0, 1), (0.0, 2), (1.0, 1), (1.0, 2)]]
    assert torch.equal(runs[0], runs[1])  # eta = 0: the generator is never used
    assert not torch.equal(runs[2], runs[3])


def test_bridge_endpoints_and_oracle():
    config = tiny_config(mode="bridge", prediction_type="sample")
    bridge = BridgeScheduler(make_scheduler(config).alphas_cumprod)
    g = torch.Generator().manual_seed(0)
    z0, y, noise = (torch.randn(2, 4, 4, 4, generator=g) for _ in range(3))
    last = torch.full((2,), bridge.last)
    assert torch.equal(bridge.marginal(z0, y, noise, last), y)  # the bridge ends exactly at the input
    a, b, c = bridge.coefficients(torch.zeros(2, dtype=torch.long), z0)
    assert float(a.min()) > 0.99 and float(b.max()) < 1e-3 and float(c.max()) < 0.05  # and starts near z0
    calls = []

    def oracle(z, t):
        calls.append((z, t))
        return z0

    assert torch.equal(run_reverse_process(oracle, y, bridge, 6, generator=g), z0)
    assert torch.equal(calls[0][0], y) and [int(t) for _, t in calls] == [999, 799, 599, 400, 200, 0]
    noises = []
    for z, t in calls[1:]:  # eta = 0: every step stays on the bridge through z0, y and one noise draw
        a, b, c = bridge.coefficients(t.expand(2), z)
        noises.append((z - a * z0 - b * y) / c)
    for noise in noises[1:]:
        torch.testing.assert_close(noise, noises[0], rtol=1e-4, atol=1e-4)
    assert torch.equal(run_reverse_process(lambda z, t: z0, y, bridge, 6, eta=0.5, generator=g), z0)
    with pytest.raises(ValueError, match="eta"):
        run_reverse_process(lambda z, t: z0, y, bridge, 6, eta=1.5)


def _old_sample_bridge(predict, y, schedule, n_steps, eta, generator):
    """The bridge sampler as it was written before the scheduler object (reference for the test below)."""
    times = torch.linspace(schedule.last, 0, n_steps).round().long()
    z = y
    for t, s in zip(times[:-1], times[1:]):
        z0 = predict(z, t.to(y.device))
        a, b, c = schedule.coefficients(t.expand(y.shape[0]), z)
        if t == schedule.last or eta:
            fresh = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        if t == schedule.last:
            noise = fresh
        else:
            noise = (z - a * z0 - b * y) / c
            if eta:
                noise = math.sqrt(1.0 - eta**2) * noise + eta * fresh
        a, b, c = schedule.coefficients(s.expand(y.shape[0]), z)
        z = a * z0 + b * y + c * noise
    return predict(z, times[-1].to(y.device))


def test_bridge_scheduler_matches_the_closed_form_and_the_previous_sampler():
    """The bridge's marginal is DDBM's VP closed form; set_timesteps/step walks exactly as the old loop did."""
    config = tiny_config(mode="bridge", prediction_type="sample")
    abar = make_scheduler(config).alphas_cumprod.double()
    bridge = BridgeScheduler(abar.float())
    # closed form (DDBM, Zhou et al. 2024, VP bridge): r_t = snr_T / snr_t, snr_t = abar_t / (1 - abar_t)
    snr = abar / (1 - abar)
    r = snr[-1] / snr
    a, b, c = abar.sqrt() * (1 - r), r * (abar / abar[-1]).sqrt(), ((1 - abar) * (1 - r)).sqrt()
    for mine, exact in zip((bridge.a, bridge.b, bridge.c), (a, b, c)):
        torch.testing.assert_close(mine.double(), exact, rtol=1e-6, atol=1e-7)
    assert (float(bridge.a[-1]), float(bridge.b[-1]), float(bridge.c[-1])) == (0.0, 1.0, 0.0)
    g = torch.Generator().manual_seed(0)
    z0, y, noise = (torch.randn(2, 4, 4, 4, generator=g) for _ in range(3))
    assert torch.equal(bridge.marginal(z0, y, noise, torch.full((2,), bridge.last)), y)  # z_T = y exactly
    # t = 0: z_0 = a_0 z0 + b_0 y + c_0 eps with a_0 = sqrt(abar_0)(1 - r_0) -> z0 up to the first step's noise
    start = bridge.marginal(z0, y, noise, torch.zeros(2, dtype=torch.long))
    expected = (a[0] * z0.double() + b[0] * y.double() + c[0] * noise.double()).float()
    torch.testing.assert_close(start, expected, rtol=1e-6, atol=1e-6)
    bound = (1 - a[0]) * z0.abs() + b[0] * y.abs() + c[0] * noise.abs()
    assert torch.all((start - z0).abs() <= bound.float() + 1e-6) and float(c[0]) < 0.05

    def predict(z, t):  # any fixed, timestep-dependent network
        return torch.tanh(z) * 0.7 + 0.01 * t.float() / bridge.last

    for n_steps in (1, 2, 6, 17):
        for eta in (0.0, 0.5, 1.0):
            reference = _old_sample_bridge(predict, y, bridge, n_steps, eta, torch.Generator().manual_seed(3))
            scheduler, generator = BridgeScheduler(abar.float()), torch.Generator().manual_seed(3)
            scheduler.set_timesteps(n_steps)
            assert scheduler.timesteps.tolist() == torch.linspace(999, 0, n_steps).round().long().tolist()
            z = y
            for t in scheduler.timesteps:
                z = scheduler.step(predict(z, t), t, z, eta=eta, generator=generator).prev_sample
            assert torch.equal(z, reference), (n_steps, eta)
            assert torch.equal(run_reverse_process(predict, y, BridgeScheduler(abar.float()), n_steps, eta=eta,
                                                   generator=torch.Generator().manual_seed(3)), reference)
    with pytest.raises(RuntimeError, match="set_timesteps"):
        scheduler.step(y, torch.tensor(0), y)


def test_sampling_is_deterministic_given_generator():
    model = tiny_model()
    model.parameters_for("diffusion")
    batch = task_batch()
    model.loss(batch, "diffusion")  # calibrates the scales
    runs = [sample(model, batch, "ddim", n_steps=3, generator=torch.Generator().manual_seed(seed))
            for seed in (5, 5, 6)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


# ----------------------------------------------------------------------------------------- constraints

def test_projection_makes_constraints_hold_exactly():
    g = torch.Generator().manual_seed(0)
    pair = torch.randn(3, 2, 9, 7, generator=g)
    mask = (torch.rand(3, 1, 9, 7, generator=g) > 0.5).float()
    support = (torch.rand(3, 1, 9, 7, generator=g) > 0.2).float()
    projected = project_pair(pair, mask, support)
    positive, negative = projected[:, :1], projected[:, 1:]
    assert torch.all(positive[mask == 0] == 0) and torch.all(negative[mask == 1] == 0)
    assert torch.all(projected >= 0) and torch.all(projected * (1 - support) == 0)
    assert torch.equal(project_pair(projected, mask, support), projected)  # idempotent
    free = (projected != 0)
    assert torch.equal(projected[free], pair[free])  # only constrained elements moved
    losses = constraint_losses(projected, projected.sum(1, keepdim=True), mask, support)
    assert all(float(value) == 0.0 for value in losses.values())
    assert all(float(value) > 0.0 for value in constraint_losses(pair, pair[:, :1], mask, support).values())
    full = torch.rand(3, 1, 9, 7, generator=g)
    assert torch.equal(pair_from_full(full, mask).sum(1, keepdim=True), full)
    known = torch.rand(3, 1, 9, 7, generator=g)
    inserted = insert_known(full, known, mask)
    assert torch.equal(inserted[mask == 1], known[mask == 1]) and torch.equal(inserted[mask == 0], full[mask == 0])


@pytest.mark.parametrize("use_constraints", [True, False])
def test_samples_keep_known_rays_exactly(use_constraints):
    model = tiny_model(use_constraints=use_constraints)
    model.parameters_for("diffusion")
    batch = task_batch()
    batch["support"] = (batch["target"] > 0).float() + batch["mask"]
    batch["support"] = (batch["support"] > 0).float()
    model.loss(batch, "diffusion")
    out = sample(model, batch, "ddim", n_steps=2, generator=torch.Generator().manual_seed(0))
    inside = batch["mask"] == 1
    assert torch.equal(out[inside], batch["known"][inside])
    if use_constraints:
        assert torch.all(out >= 0) and torch.all(out[batch["support"] == 0] == 0)


# ----------------------------------------------------------------------------------------- training behaviour

def test_tiny_model_overfits_8_samples():
    """Both stages: the loss on 8 samples falls at least tenfold (the diffusion stage on a fixed noise draw)."""
    model = tiny_model(condition_on_input=False)
    batch = {"target": disc_sinograms(8, 16, 16), "mask": band_masks(8, 16, 16)}
    for stage, steps in (("autoencoder", 300), ("diffusion", 40)):
        optimizer = torch.optim.Adam(model.parameters_for(stage), lr=3e-3)
        losses = []
        for _ in range(steps):
            if stage == "diffusion":
                torch.manual_seed(1)  # the same noise and timesteps every step: a regression to overfit
            loss = model.loss(batch, stage)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert min(losses[-5:]) < losses[0] / 10, (stage, losses[0], losses[-5:])


@pytest.mark.parametrize("stage", ["autoencoder", "diffusion"])
def test_loss_is_deterministic_given_the_seed(stage):
    batch = task_batch()
    values = []
    for seed in (3, 3, 4):
        model = tiny_model()
        model.parameters_for(stage)
        torch.manual_seed(seed)
        losses = model.loss(batch, stage)
        losses["loss"].backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        values.append((losses["loss"].detach(), grads))
    assert torch.equal(values[0][0], values[1][0]) and torch.equal(values[0][1], values[1][1])
    assert not torch.equal(values[0][0], values[2][0])


def test_parameters_for_freezes_the_other_stage():
    model = tiny_model()
    params = model.parameters_for("diffusion")
    assert {id(p) for p in params} == {id(p) for p in model.denoiser.parameters()}
    model.loss(task_batch(), "diffusion")["loss"].backward()
    assert all(p.grad is None for p in model.autoencoder.parameters())
    assert all(p.grad is not None for p in model.denoiser.parameters())
    params = model.parameters_for("autoencoder")
    assert {id(p) for p in params} == {id(p) for p in model.autoencoder.parameters()}
    assert not any(p.requires_grad for p in model.denoiser.parameters())


def test_gradient_checkpointing_gives_the_same_gradients():
    batch = task_batch(n=2, n_views=16, n_radial=16)
    results = []
    for flag in (False, True):
        model = tiny_model(autoencoder={**TINY_AE, "gradient_checkpointing": flag},
                           denoiser={**TINY_UNET, "gradient_checkpointing": flag})
        for stage in model.stages:
            model.parameters_for(stage)
            torch.manual_seed(7)
            model.loss(batch, stage)["loss"].backward()
        results.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(results[0], results[1], rtol=1e-5, atol=1e-6)


def test_tma_switches_and_guidance():
    batch = task_batch()
    no_attention = {**batch, "attention": torch.zeros_like(batch["attention"])}
    for use_tma in (True, False):
        model = tiny_model(use_tma=use_tma, attention_dropout=0.0)
        model.parameters_for("diffusion")
        losses = []
        for b in (batch, no_attention):
            torch.manual_seed(0)
            losses.append(model.loss(b, "diffusion")["diffusion"])
        assert torch.equal(losses[0], losses[1]) != use_tma  # attention acts only with use_tma
    weights = attention_weights(batch["attention"])
    torch.testing.assert_close(weights.mean(dim=(-2, -1)), torch.ones(3, 1))
    model = tiny_model()
    model.parameters_for("diffusion")
    model.loss(batch, "diffusion")
    runs = [sample(model, batch, "ddim", n_steps=2, generator=torch.Generator().manual_seed(0), guidance_scale=s)
            for s in (0.0, 2.0)]
    assert not torch.equal(runs[0], runs[1])


def test_batch_from_rmas_dataset():
    from torch.utils.data import default_collate

    from ldm import RMASDataset
    from pet_projection import ImageGrid, ParallelBeamGeometry, ParallelBeamProjector

    grid = ImageGrid((16, 16), voxel_size_mm=1.0)
    projector = ParallelBeamProjector(ParallelBeamGeometry(grid, n_views=16, n_bins=16, bin_width_mm=1.0))
    bases = np.random.default_rng(0).random((4, 16, 16), dtype=np.float32)
    dataset = RMASDataset(bases, projector, labels={"tracer": np.arange(4) % 2}, cells_per_side=4, epoch_size=8)
    batch = batch_from_rmas(default_collate([dataset[i] for i in range(4)]))
    assert batch["target"].shape == (4, 1, 16, 16) and batch["target"].dtype == torch.float32
    assert torch.equal(batch["input"] + (1 - batch["mask"]) * batch["target"], batch["target"])
    assert batch["tracer"].dtype == torch.long and "region" not in batch
    model = tiny_model(n_tracers=2)
    assert torch.isfinite(model.loss(batch, "autoencoder")["loss"])
    with pytest.raises(KeyError, match="positive"):
        batch_from_rmas({"full": torch.zeros(1, 4, 4)})


# ----------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("make, error, match", [
    (lambda: AutoencoderConfig(channel_mults=(1, 2, 2, 2, 2)), ValueError, r"channel_mults.*factor 16"),
    (lambda: AutoencoderConfig(base_channels=6, norm_groups=4), ValueError, "norm_groups"),
    (lambda: AutoencoderConfig(latent_channels=0), ValueError, "latent_channels"),
    (lambda: AutoencoderConfig(kl_weight=-1.0), ValueError, "kl_weight"),
    (lambda: AutoencoderConfig(mid_attention="yes"), TypeError, "mid_attention"),
    (lambda: DenoiserConfig(attention_levels=(2,)), ValueError, "attention_levels"),
    (lambda: DenoiserConfig(channel_mults=[]), TypeError, "channel_mults"),
    (lambda: DenoiserConfig(dropout=1.0), ValueError, "dropout"),
    (lambda: LDMConfig(mode="ddbm"), ValueError, "mode"),
    (lambda: LDMConfig(prediction_type="eps"), ValueError, "prediction_type"),
    (lambda: LDMConfig(beta_schedule="cosine"), ValueError, "beta_schedule"),
    (lambda: LDMConfig(beta_start=0.02, beta_end=0.01), ValueError, "beta_start"),
    (lambda: LDMConfig(mode="bridge"), ValueError, "prediction_type must be 'sample' in bridge"),
    (lambda: LDMConfig(mode="bridge", prediction_type="sample", condition_on_input=False), ValueError,
     "condition_on_input"),
    (lambda: LDMConfig(autoencoder={"latent_chanels": 4}), ValueError, r"autoencoder\.latent_chanels"),
    (lambda: LDMConfig(denoiser={"depth": 3}), ValueError, r"denoiser\.depth"),
    (lambda: LDMConfig(autoencoder={"in_channels": 1}), ValueError, r"autoencoder\.in_channels"),
    (lambda: LDMConfig(use_tma=1), TypeError, "use_tma"),
    (lambda: LDMConfig(n_tracers=-1), ValueError, "n_tracers"),
    (lambda: LDMConfig(sinogram_scale=0.0), ValueError, "sinogram_scale"),
    (lambda: LDMConfig(attention_dropout=1.0), ValueError, "attention_dropout"),
])
def test_bad_configs_raise_naming_the_field(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_batches_and_calls_raise():
    model = tiny_model()
    batch = task_batch()
    with pytest.raises(RuntimeError, match="sinogram_scale is not calibrated"):
        sample(model, batch)
    no_input = {k: v for k, v in batch.items() if k != "input"}
    assert torch.isfinite(model.loss(no_input, "autoencoder")["loss"])  # the autoencoder needs no input
    with pytest.raises(KeyError, match="'input'"):
        model.loss(no_input, "diffusion")
    with pytest.raises(KeyError, match="'target'"):
        model.loss({"input": batch["input"]}, "autoencoder")
    with pytest.raises(ValueError, match="stage"):
        model.loss(batch, "vae")
    with pytest.raises(ValueError, match="0/1"):
        model.loss({**batch, "mask": batch["mask"] * 0.5}, "autoencoder")
    with pytest.raises(ValueError, match=r"batch\['input'\] must have shape"):
        model.loss({**batch, "input": batch["input"][:, :, :-1]}, "autoencoder")
    with pytest.raises(KeyError, match="mask"):
        model.loss({k: v for k, v in batch.items() if k != "mask"}, "autoencoder")
    with pytest.raises(ValueError, match="tracer labels given"):
        model.loss({**batch, "tracer": torch.zeros(3, dtype=torch.long)}, "diffusion")
    model.loss(batch, "diffusion")
    with pytest.raises(ValueError, match="sampler"):
        sample(model, batch, "euler")
    with pytest.raises(ValueError, match="use_tma"):
        sample(tiny_model(use_tma=False), batch, guidance_scale=1.0)
    bridge = tiny_model(mode="bridge", prediction_type="sample")
    bridge.loss(batch, "diffusion")
    with pytest.raises(ValueError, match="dpm-solver"):
        sample(bridge, batch, "dpm-solver")


class _EchoInputLatent(torch.nn.Module):
    """A denoiser whose z0 estimate is the input's latent ``y`` (the first condition channels): no correction."""

    def __init__(self, latent_channels: int) -> None:
        super().__init__()
        self.latent_channels = latent_channels

    def forward(self, z, timestep, cond=None, tracer=None, region=None, task=None):
        return cond[:, :self.latent_channels]


def test_bridge_residual_decode_returns_the_input_when_the_bridge_changes_nothing():
    """input + D(z0) - D(y) with z0 = y is the input itself; D(y) alone carries the autoencoder's error."""
    target = disc_sinograms(2, 12, 10)
    batch = {"target": target, "input": 0.9 * target}
    outputs = {}
    for residual in (True, False, None):  # None: the default, direct decode (a raw input's noise must not pass)
        flag = {} if residual is None else {"residual_decode": residual}
        model = tiny_model(mode="bridge", prediction_type="sample", use_constraints=False, use_tma=False, **flag)
        model.loss(batch, "diffusion")  # calibrates the scales
        model.denoiser = _EchoInputLatent(model.config.autoencoder.latent_channels)
        outputs[residual] = sample(model, {"input": batch["input"]}, "ddim", n_steps=3,
                                         generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(outputs[True], batch["input"], atol=1e-5, rtol=1e-5)
    assert (outputs[False] - batch["input"]).abs().max() > 1e-2  # an untrained decoder is no identity
    torch.testing.assert_close(outputs[None], outputs[False])


class _FixedLatent(torch.nn.Module):
    """A denoiser whose z0 estimate is a fixed latent."""

    def __init__(self, z0: torch.Tensor) -> None:
        super().__init__()
        self.z0 = z0

    def forward(self, z, timestep, cond=None, tracer=None, region=None, task=None):
        return self.z0


@pytest.mark.parametrize("residual", [True, False])
def test_autoencoder_ceiling_is_the_sample_of_a_perfect_denoiser(residual):
    target = disc_sinograms(2, 12, 10)
    batch = {"target": target, "input": 0.8 * target + 0.05}
    model = tiny_model(mode="bridge", prediction_type="sample", use_tma=False, residual_decode=residual)
    model.loss(batch, "diffusion")  # calibrates the scales
    ceiling = model.autoencoder_ceiling(batch)
    assert ceiling.shape == target.shape
    z_target = model._latent(model._pair(model.prepare_batch(batch, need_target=True), "target"))
    model.denoiser = _FixedLatent(z_target)
    sampled = sample(model, {"input": batch["input"]}, "ddim", n_steps=3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ceiling, sampled)
    if residual:  # the target equal to the input: input + D(y) - D(y) is the input exactly
        same = {"target": batch["input"], "input": batch["input"]}
        torch.testing.assert_close(model.autoencoder_ceiling(same), batch["input"], atol=1e-5, rtol=1e-5)
    with pytest.raises(KeyError, match="'target'"):
        model.autoencoder_ceiling({"input": batch["input"]})


@pytest.mark.parametrize("with_input", [True, False])
def test_autoencode_inputs_trains_the_autoencoder_on_inputs_too(with_input):
    target = disc_sinograms(2, 12, 10)
    batch = {"target": target, "mask": band_masks(2, 12, 10)} | ({"input": 3.0 * target + 0.1} if with_input else {})
    model = tiny_model(autoencode_inputs=True)
    torch.manual_seed(5)
    loss = model.loss(batch, "autoencoder")["loss"]
    data = model.prepare_batch(batch, need_target=True)
    keys = ("target", "input") if with_input else ("target",)
    pair = torch.cat([pair_from_full(data[key] / model.sinogram_scale, data["pair_mask"]) for key in keys])
    torch.manual_seed(5)
    expected = model.autoencoder.loss(pair, data["mask"].repeat(len(keys), 1, 1, 1))["loss"]
    torch.testing.assert_close(loss, expected)
    plain_model = tiny_model(autoencode_inputs=False)
    torch.manual_seed(5)
    plain = plain_model.loss(batch, "autoencoder")["loss"]
    assert (not torch.equal(loss, plain)) if with_input else torch.equal(loss, plain)
