"""Foundation model parts: prompts, sinogram windows and their coordinates, the pretraining batches, prompted models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ldm.foundation_data import FoundationCollate, _window_rows, simulate_base_slices
from ldm.model import LDMConfig, SinogramLDM
from ldm.prompts import PROMPT_TASKS, Prompt, parse_prompt
from ldm.rmas_dataset import RMASDataset
from ldm.sampling import sample
from ldm.windows import COORDINATE_RADIUS_MM, SinogramWindow, coordinate_channels
from pet_projection import ImageGrid, ParallelBeamGeometry, ParallelBeamProjector
from pet_projection.masks import random_ellipses
from pet_projection.simulation import TRACERS
from pet_projection.simulation.anatomy import ANATOMIES

TINY_AE = {"base_channels": 8, "channel_mults": (1, 2, 2), "norm_groups": 4}
TINY_UNET = {"base_channels": 16, "channel_mults": (1, 2), "norm_groups": 4}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


# ------------------------------------------------------------------------------------------------ prompts

@pytest.mark.parametrize("text, expected", [
    ("low-dose FDG brain", Prompt("low_dose", "fdg", "brain")),
    ("brain 18F-FDG low dose", Prompt("low_dose", "fdg", "brain")),
    ("68Ga-PSMA thorax synthesis", Prompt("synthesis", "psma", "chest")),
    ("attenuation correction 18F-DOPA abdomen", Prompt("attenuation_correction", "fdopa", "abdomen")),
    ("TRACER_CONVERSION methionine", Prompt("tracer_conversion", "met", None)),
    ("whole body", Prompt("synthesis", None, "trunk")),
    ("", Prompt("synthesis")),
])
def test_parse_prompt_reads_words_in_any_order_with_the_usual_names(text, expected):
    assert parse_prompt(text) == expected


@given(st.sampled_from(PROMPT_TASKS), st.sampled_from([None, *TRACERS]), st.sampled_from([None, *ANATOMIES]))
def test_prompt_text_reads_back_and_ids_index_the_tables(task, tracer, region):
    prompt = Prompt(task, tracer, region)
    assert parse_prompt(prompt.text()) == prompt
    ids = prompt.label_ids()
    assert PROMPT_TASKS[ids["task"]] == task
    assert (ids["tracer"] == -1) if tracer is None else list(TRACERS)[ids["tracer"]] == tracer
    assert (ids["region"] == -1) if region is None else ANATOMIES[ids["region"]] == region


def test_prompt_errors_name_the_word_and_list_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown word 'liver'.*tasks: synthesis.*tracers: fdg.*regions: brain"):
        parse_prompt("low-dose FDG liver")
    with pytest.raises(ValueError, match="two tracers: fdg and psma"):
        parse_prompt("FDG PSMA brain")
    with pytest.raises(ValueError, match="unknown tracer"):
        Prompt("synthesis", "fluciclovine")
    with pytest.raises(ValueError, match="unknown task"):
        Prompt("segmentation")


# ------------------------------------------------------------------------------------------------ windows

@given(st.integers(1, 64), st.integers(1, 64), st.floats(-4.0, 4.0), st.floats(0.01, 4.0), st.floats(-300, 300),
       st.floats(0.5, 10.0))
def test_window_rows_round_trip(n_views, n_bins, a0, span, s0, width):
    window = SinogramWindow(n_views, n_bins, (a0, a0 + span), (s0, s0 + n_bins * width))
    again = SinogramWindow.from_row(window.row(), n_views, n_bins)
    np.testing.assert_allclose(again.row(), window.row(), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(window.angles_rad()[0], a0)
    np.testing.assert_allclose(window.bin_width_mm, width, rtol=1e-9)


def test_full_window_is_the_default_parallel_beam_geometry():
    grid = ImageGrid((16, 16), voxel_size_mm=4.0)
    default = ParallelBeamGeometry(grid, 12, 20, 4.0)
    window = SinogramWindow.full(12, 20, 4.0)
    geometry = window.geometry(grid)
    np.testing.assert_allclose(geometry.angles_rad, default.angles_rad, atol=1e-12)
    assert geometry.radial_offset_mm == pytest.approx(0.0, abs=1e-12)
    assert geometry.bin_width_mm == pytest.approx(4.0)


@pytest.mark.parametrize("first_view, n_views, first_bin, n_bins", [(0, 24, 0, 32), (5, 16, 3, 20), (30, 40, 8, 16)])
def test_a_cropped_window_is_the_projection_of_its_geometry(first_view, n_views, first_bin, n_bins):
    """Crop views (past pi: mirrored) and bins of a full sinogram; the window's own projector gives the same data."""
    grid = ImageGrid((32, 32), voxel_size_mm=4.0)
    full_projector = ParallelBeamProjector(ParallelBeamGeometry(grid, 24, 32, 4.0))
    image = random_ellipses(grid, 1, np.random.default_rng(3), n_shapes=(3, 5))[0].astype(np.float64)
    full = np.asarray(full_projector(image))
    crop = _window_rows(full, first_view, n_views)[:, first_bin:first_bin + n_bins]
    step = math.pi / 24
    row = np.array([first_view * step, step, (first_bin - 15.5) * 4.0, 4.0])
    window = SinogramWindow.from_row(row, n_views, n_bins)
    direct = np.asarray(ParallelBeamProjector(window.geometry(grid))(image))
    np.testing.assert_allclose(crop, direct, rtol=1e-6, atol=1e-6 * full.max())


def test_coordinate_channels_are_the_same_for_the_same_ray_in_mirrored_windows():
    n_views, n_bins = 8, 12
    row = torch.tensor([[0.3, 0.1, -40.0, 5.0]], dtype=torch.float64)
    last = -40.0 + (n_bins - 1) * 5.0
    mirrored = torch.tensor([[0.3 + math.pi, 0.1, -last, 5.0]], dtype=torch.float64)
    a = coordinate_channels(row, (n_views, n_bins), (n_views, n_bins), 1)
    b = coordinate_channels(mirrored, (n_views, n_bins), (n_views, n_bins), 1)
    torch.testing.assert_close(a, b.flip(-1), rtol=0, atol=1e-12)
    theta, s = 0.3 + 2 * 0.1, -40.0 + 3 * 5.0
    expected = [s * math.cos(theta) / COORDINATE_RADIUS_MM, s * math.sin(theta) / COORDINATE_RADIUS_MM,
                math.cos(2 * theta), math.sin(2 * theta)]
    torch.testing.assert_close(a[0, :, 2, 3], torch.tensor(expected, dtype=torch.float64))


def test_coordinate_channels_of_a_latent_pixel_are_its_footprint_centre_after_padding():
    row = torch.tensor([[0.0, 0.05, 10.0, 2.0]], dtype=torch.float64)
    # 6 x 6 padded to 8 x 8 (views appended; bins 1 left, 1 right), factor 4: pixel (1, 0) covers views 4..7,
    # bins -1..2
    channels = coordinate_channels(row, (6, 6), (8, 8), 4)
    theta, s = 0.05 * 5.5, 10.0 + 2.0 * 0.5
    torch.testing.assert_close(channels[0, 2:, 1, 0], torch.tensor([math.cos(2 * theta), math.sin(2 * theta)],
                                                                    dtype=torch.float64))
    torch.testing.assert_close(channels[0, 0, 1, 0], torch.tensor(s * math.cos(theta) / COORDINATE_RADIUS_MM,
                                                                  dtype=torch.float64))


# ------------------------------------------------------------------------------------------------ pretraining data

@pytest.fixture(scope="module")
def bases():
    return simulate_base_slices(4, 16, 16, ("brain", "chest"), ("fdg", "psma"), seed=1)


def test_base_slices_spread_round_robin_over_regions_and_tracers(bases):
    assert [ANATOMIES[i] for i in bases.region] == ["brain", "chest", "brain", "chest"]
    assert [list(TRACERS)[i] for i in bases.tracer] == ["fdg", "fdg", "psma", "psma"]
    assert bases.bin_width_mm[0] == pytest.approx(256.0 / 16) and bases.bin_width_mm[1] == pytest.approx(500.0 / 16)
    assert bases.sinograms.shape == (4, 16, 16) and bases.sinograms.sum() > 0
    assert not np.array_equal(bases.sinograms[0], bases.sinograms[2])  # other anatomy, not only another tracer


def _collated(bases, **options):
    projector = ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((16, 16), voxel_size_mm=16.0), 16, 16, 16.0))
    dataset = RMASDataset(bases.sinograms, projector, attention=bases.attention, cells_per_side=4, n_active=(1, 4))
    items = [dataset[i] for i in range(8)]
    return items, FoundationCollate(bases, **options)(items)


def test_foundation_batches_are_prompted_inpainting_and_synthesis_with_the_complement(bases):
    items, batch = _collated(bases, synthesis_fraction=0.4, complement_fraction=0.5)
    torch.testing.assert_close(batch["known"], batch["target"] * batch["mask"], rtol=0, atol=0)
    synthesis = batch["task"] == PROMPT_TASKS.index("synthesis")
    assert set(batch["task"].tolist()) <= {PROMPT_TASKS.index("synthesis"), PROMPT_TASKS.index("inpainting")}
    assert bool((batch["mask"][synthesis] == 0).all())
    kinds = set()
    for k, item in enumerate(items):
        if synthesis[k]:
            continue
        mask = batch["mask"][k, 0]
        torch.testing.assert_close(batch["target"][k, 0], item["full"].float())
        if torch.equal(mask, item["mask"]):
            kinds.add("mask")
        elif torch.equal(mask, 1 - item["mask"]):
            kinds.add("complement")
        else:
            pytest.fail("an inpainting mask is neither the RMAS mask nor its complement")
    assert kinds == {"mask", "complement"}  # the negative part is known in some examples, the positive in others
    np.testing.assert_array_equal(batch["tracer"].numpy(), bases.tracer[[int(i["base_index"]) for i in items]])
    np.testing.assert_allclose(batch["window"][:, 3].numpy(), bases.bin_width_mm[[int(i["base_index"]) for i in items]])


def test_foundation_windows_crop_every_sinogram_alike_and_repeat_for_the_same_items(bases):
    items, batch = _collated(bases, window_views=(8, 24), window_bins=(8,), full_window_fraction=0.0, seed=5)
    _, again = _collated(bases, window_views=(8, 24), window_bins=(8,), full_window_fraction=0.0, seed=5)
    for key in batch:
        torch.testing.assert_close(batch[key], again[key], rtol=0, atol=0)
    n_views, n_bins = batch["target"].shape[-2:]
    assert n_views in (8, 24) and n_bins == 8
    theta0, step, s0, width = batch["window"][0].tolist()
    first_view, first_bin = round(theta0 / step), round(s0 / width + 7.5)
    for key, source in (("target", "full"), ("attention", "attention")):
        full = np.stack([item[source].numpy() for item in items])
        expected = _window_rows(full, first_view, n_views)[..., first_bin:first_bin + n_bins]
        np.testing.assert_array_equal(batch[key][:, 0].numpy(), expected.astype(np.float32))


# ------------------------------------------------------------------------------------------------ prompted model

def _prompted_model(seed: int = 0) -> SinogramLDM:
    torch.manual_seed(seed)
    config = LDMConfig(autoencoder=TINY_AE, denoiser=TINY_UNET, prediction_type="sample", n_tasks=len(PROMPT_TASKS),
                       n_tracers=len(TRACERS), n_regions=len(ANATOMIES), coordinate_channels=True,
                       sinogram_scale=1.0, latent_scale=1.0)
    return SinogramLDM(config).eval()


def _window_batch(n_views: int, n_bins: int, prompt: Prompt) -> dict:
    ids = prompt.label_ids()
    window = SinogramWindow(n_views, n_bins, (0.2, 1.4), (-60.0, 60.0))
    mask = torch.zeros(1, 1, n_views, n_bins)
    mask[..., : n_views // 2, :] = 1.0
    known = torch.rand(1, 1, n_views, n_bins) * mask
    labels = {key: torch.tensor([value]) for key, value in ids.items()}
    return {"input": known, "known": known, "mask": mask, "window": torch.from_numpy(window.row()[None]), **labels}


def test_prompted_model_needs_the_window_and_answers_the_prompt():
    model = _prompted_model()
    batch = _window_batch(12, 20, Prompt("inpainting", "fdg", "brain"))
    with pytest.raises(KeyError, match="window"):
        model.loss({key: value for key, value in batch.items() if key != "window"} | {"target": batch["input"]},
                   "diffusion")
    data = model.prepare_batch(batch, need_target=False)
    model.prepare_conditions(data)
    z = torch.randn(model.latent_shape(data))
    t = torch.tensor([500])
    outputs = {}
    for name, change in (("plain", {}), ("task", {"task": torch.tensor([PROMPT_TASKS.index("synthesis")])}),
                         ("window", {"window": torch.from_numpy(SinogramWindow(12, 20, (1.0, 2.2), (-60.0, 60.0)
                                                                               ).row()[None])})):
        changed = model.prepare_batch({**batch, **change}, need_target=False)
        model.prepare_conditions(changed)
        with torch.no_grad():
            outputs[name] = model.denoiser(z, t, model.conditions(changed), changed["tracer"], changed["region"],
                                           changed["task"])
    assert not torch.allclose(outputs["plain"], outputs["task"])
    assert not torch.allclose(outputs["plain"], outputs["window"])


@settings(max_examples=4, deadline=None)
@given(st.integers(5, 40), st.integers(5, 40))
def test_prompted_model_generates_the_requested_window_keeping_known_rays(n_views, n_bins):
    model = _prompted_model()
    batch = _window_batch(n_views, n_bins, Prompt("inpainting", "psma", "chest"))
    out = sample(model, batch, n_steps=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 1, n_views, n_bins)
    known = batch["mask"].bool()
    torch.testing.assert_close(out[known], batch["known"][known])
    assert bool((out >= 0).all())  # the constraints' projection keeps counts non-negative


# ------------------------------------------------------------------------------------------------ unsupervised use

def _synthesis_batch(counts: torch.Tensor) -> dict:
    n, _, n_views, n_bins = counts.shape
    window = SinogramWindow(n_views, n_bins, (0.0, math.pi), (-80.0, 80.0))
    ids = Prompt("synthesis", "fdg", "brain").label_ids()
    return {"input": torch.zeros_like(counts), "mask": torch.zeros_like(counts),
            "window": torch.from_numpy(np.repeat(window.row()[None], n, axis=0)),
            **{key: torch.full((n,), value) for key, value in ids.items()}}


def _poisson_counts(n: int = 2, n_views: int = 12, n_bins: int = 16, seed: int = 0) -> torch.Tensor:
    grid = ImageGrid((n_bins, n_bins), voxel_size_mm=160.0 / n_bins)
    projector = ParallelBeamProjector(ParallelBeamGeometry(grid, n_views, n_bins, 160.0 / n_bins))
    rng = np.random.default_rng(seed)
    images = random_ellipses(grid, n, rng).astype(np.float64) + 0.1
    expected = np.stack([np.asarray(projector(image)) for image in images])
    expected *= 3.0e3 / expected.sum(axis=(1, 2), keepdims=True)
    return torch.from_numpy(rng.poisson(expected)[:, None].astype(np.float32))


def _nll(expected: torch.Tensor, counts: torch.Tensor) -> float:
    rate = expected.double().clamp_min(1e-9)
    return float((rate - counts.double() * torch.log(rate)).sum())


def test_poisson_posterior_matches_the_counts_level_and_fits_them_better_than_the_prior():
    from ldm.sampling import sample_poisson_posterior

    model = _prompted_model()
    counts = _poisson_counts()
    batch = _synthesis_batch(counts)
    prior = sample_poisson_posterior(model, batch, counts, n_steps=4, step_size=0.0,
                                     generator=torch.Generator().manual_seed(1))
    posterior = sample_poisson_posterior(model, batch, counts, n_steps=4, step_size=0.3, n_inner=5,
                                         generator=torch.Generator().manual_seed(1))
    for out in (prior, posterior):
        assert out.shape == counts.shape and bool((out >= 0).all())
        torch.testing.assert_close(out.sum(dim=(1, 2, 3)), counts.sum(dim=(1, 2, 3)), rtol=1e-4, atol=0.0)
    assert _nll(posterior, counts) < _nll(prior, counts) - 10.0


def test_poisson_posterior_refuses_bridge_models_and_bad_counts():
    from ldm.sampling import sample_poisson_posterior

    model = _prompted_model()
    counts = _poisson_counts(n=1)
    batch = _synthesis_batch(counts)
    with pytest.raises(ValueError, match="non-negative"):
        sample_poisson_posterior(model, batch, -counts, n_steps=2)
    with pytest.raises(ValueError, match="shape"):
        sample_poisson_posterior(model, batch, counts[..., :-1], n_steps=2)
    bridge = SinogramLDM(LDMConfig(**{**model.config.__dict__, "mode": "bridge"}))
    with pytest.raises(ValueError, match="ddpm"):
        sample_poisson_posterior(bridge, batch, counts, n_steps=2)
