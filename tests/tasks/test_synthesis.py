"""Synthesis (``tasks.synthesis``): prompt checks, default windows, generation, OSEM with the window's projector, and
STIR layouts of windows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ldm.experiment import DataConfig, ExperimentConfig, config_to_dict
from ldm.model import LDMConfig, SinogramLDM
from ldm.prompts import PROMPT_TASKS, Prompt, parse_prompt
from ldm.weights import CARD_FILE, load_model
from ldm.windows import SinogramWindow
from pet_projection import ImageGrid
from pet_projection.simulation import TRACERS
from pet_projection.simulation.anatomy import ANATOMIES
from tasks.synthesis import (image_grid, prompt_labels, reconstruct, stir_layout, stir_mismatch, synthesis_window,
                             synthesize, training_bin_width_mm)
from tests.helpers import ellipse_projection, supersample

TINY_AE = {"base_channels": 8, "channel_mults": (1, 2, 2), "norm_groups": 4}
TINY_UNET = {"base_channels": 16, "channel_mults": (1, 2), "norm_groups": 4}
TINY_SIZE = 16  # the tiny model's "training" sinograms: 16 x 16, images of 16 pixels


def tiny_config() -> ExperimentConfig:
    """A prompted foundation config of the tiny test model (calibrated scales, so no training is needed)."""
    model = LDMConfig(autoencoder=TINY_AE, denoiser=TINY_UNET, prediction_type="sample", n_tasks=len(PROMPT_TASKS),
                      n_tracers=len(TRACERS), n_regions=len(ANATOMIES), coordinate_channels=True,
                      sinogram_scale=1.0, latent_scale=1.0)
    data = DataConfig(source="foundation", image_size=TINY_SIZE, n_views=TINY_SIZE, n_bins=TINY_SIZE)
    return ExperimentConfig(model=model, data=data)


def write_tiny_weights(folder: Path, seed: int = 0) -> Path:
    """An untrained tiny prompted model saved as a weights folder (as ``ldm.weights.export_weights`` writes one)."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    config = tiny_config()
    model = SinogramLDM(config.model_config())
    folder.mkdir(parents=True)
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.yaml").write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False), encoding="utf-8")
    (folder / CARD_FILE).write_text("# tiny test model\n\nuntrained\n", encoding="utf-8")
    return folder


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    model, config, _ = load_model(write_tiny_weights(tmp_path_factory.mktemp("weights") / "tiny"))
    return model, config


# ------------------------------------------------------------------------------------------------ prompts and windows

def test_only_synthesis_prompts_and_only_prompted_models_synthesise():
    config = tiny_config().model
    labels = prompt_labels(config, parse_prompt("FDG brain"))
    assert labels == {"task": PROMPT_TASKS.index("synthesis"), "tracer": list(TRACERS).index("fdg"),
                      "region": ANATOMIES.index("brain")}
    assert prompt_labels(config, parse_prompt(""))["tracer"] == -1
    with pytest.raises(ValueError, match=r"'low-dose'.*allpet sample"):
        prompt_labels(config, parse_prompt("low-dose FDG brain"))
    plain = LDMConfig(autoencoder=TINY_AE, denoiser=TINY_UNET)
    with pytest.raises(ValueError, match="no prompted foundation model"):
        prompt_labels(plain, parse_prompt("FDG brain"))
    no_tracers = LDMConfig(autoencoder=TINY_AE, denoiser=TINY_UNET, n_tasks=len(PROMPT_TASKS), n_regions=4,
                           coordinate_channels=True)
    with pytest.raises(ValueError, match="takes no tracer"):
        prompt_labels(no_tracers, parse_prompt("FDG brain"))
    assert prompt_labels(no_tracers, parse_prompt("brain")) == {"task": 0, "region": ANATOMIES.index("brain")}


def test_default_windows_are_the_training_sinograms_of_the_region():
    """Foundation data: FOV 256 mm (brain) / 500 mm (others) over image_size bins (anatomy.FIELD_OF_VIEW_MM)."""
    config = ExperimentConfig(model=tiny_config().model, data=DataConfig(source="foundation", image_size=64,
                                                                         n_views=64, n_bins=64))
    brain = synthesis_window(config, Prompt(region="brain"))
    assert (brain.n_views, brain.n_bins) == (64, 64)
    assert brain.radial_range_mm == (-128.0, 128.0) and brain.angle_range_rad == (0.0, math.pi)
    for region in ("chest", "abdomen", "trunk", None):
        assert synthesis_window(config, Prompt(region=region)).radial_range_mm == (-250.0, 250.0)
    assert training_bin_width_mm(config, Prompt(region="chest")) == pytest.approx(7.8125)
    half = synthesis_window(config, Prompt(region="brain"), n_bins=32)  # 32 training bins (4 mm), centred
    assert half.radial_range_mm == (-64.0, 64.0)


# ------------------------------------------------------------------------------------------------ generation

def test_synthesis_is_reproducible_per_seed_and_honours_the_window(tiny_model):
    model, _ = tiny_model
    window = SinogramWindow(12, 20, (0.0, math.radians(120.0)), (-80.0, 40.0))
    prompt = parse_prompt("PSMA chest")
    first = synthesize(model, prompt, window, 3, seed=5, steps=2, batch_size=2)
    again = synthesize(model, prompt, window, 3, seed=5, steps=2, batch_size=2)
    other = synthesize(model, prompt, window, 3, seed=6, steps=2, batch_size=2)
    assert first.shape == (3, 12, 20) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first[0], first[1])  # each sample its own noise
    alone = synthesize(model, prompt, window, 1, seed=5, steps=2, batch_size=2)  # the same noise, a batch of one
    np.testing.assert_allclose(alone, first[:1], rtol=0, atol=1e-4 * float(np.abs(first).max()))


# ------------------------------------------------------------------------------------------------ reconstruction

def _disc_errors(window: SinogramWindow, reconstructed_with: SinogramWindow, centre: tuple[float, float],
                 radius: float) -> tuple[float, float, float]:
    """OSEM (10 x 4, ``reconstructed_with``'s projector) of exact disc line integrals on ``window``'s rays.

    Returns the relative L2 error over the grid, the mean ``|x - 1|`` inside the disc and the mean ``|x|``
    outside it (each 1.5 pixels away from the edge, which the pixel grid cannot place exactly).
    """
    theta, s = np.meshgrid(window.angles_rad(),
                           window.radial_range_mm[0] + (np.arange(window.n_bins) + 0.5) * window.bin_width_mm,
                           indexing="ij")
    data = ellipse_projection(theta, s, centre, (radius, radius))  # Kak & Slaney eq. 3.6: 2 sqrt(r^2 - s'^2)
    grid = image_grid(window)
    truth = supersample(grid, lambda x, y: ((x - centre[0]) ** 2 + (y - centre[1]) ** 2 <= radius**2).astype(float))
    image = reconstruct(data, reconstructed_with, n_iterations=10, n_subsets=4)
    assert image.shape == (window.n_bins, window.n_bins) and image.dtype == np.float32
    x, y = grid.meshgrid_mm()
    distance = np.hypot(x - centre[0], y - centre[1])
    margin = 1.5 * window.bin_width_mm
    return (float(np.linalg.norm(image - truth) / np.linalg.norm(truth)),
            float(np.abs(image[distance <= radius - margin] - 1.0).mean()),
            float(np.abs(image[distance >= radius + margin]).mean()))


@pytest.mark.parametrize("window, centre, radius", [
    (SinogramWindow.full(32, 32, 4.0), (10.0, -14.0), 30.0),
    # 24 views over 0..120 deg, 40 bins over -80..40 mm: the disc's shadow stays inside [-80, 40] in every view
    (SinogramWindow(24, 40, (0.0, math.radians(120.0)), (-80.0, 40.0)), (-20.0, 5.0), 20.0),
])
def test_reconstruct_recovers_a_disc_from_its_exact_line_integrals_on_the_window(window, centre, radius):
    """Analytic data on the window's rays: OSEM with the window's own projector recovers the disc, one two bins off
    does not. Measured (10 x 4 OSEM): L2 0.16 / 0.21, inside 0.03 / 0.04, outside < 1e-4; two bins off: L2 0.70."""
    l2, inside, outside = _disc_errors(window, window, centre, radius)
    assert l2 < 0.25 and inside < 0.06 and outside < 1e-3
    shifted = SinogramWindow(window.n_views, window.n_bins, window.angle_range_rad,
                             tuple(r + 2.0 * window.bin_width_mm for r in window.radial_range_mm))
    assert _disc_errors(window, shifted, centre, radius)[0] > 0.5


def test_reconstruct_takes_batches_and_checks_the_shape():
    window = SinogramWindow.full(8, 10, 5.0)
    images = reconstruct(np.ones((2, 3, 8, 10)), window, n_iterations=1, n_subsets=16)  # subsets capped at 8 views
    assert images.shape == (2, 3, 10, 10)
    assert image_grid(window) == ImageGrid((10, 10), voxel_size_mm=5.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 8, 10\)"):
        reconstruct(np.ones((10, 8)), window)


# ------------------------------------------------------------------------------------------------ STIR layouts

@pytest.mark.parametrize("window", [
    SinogramWindow.full(12, 15, 4.0),  # odd bins, centred
    SinogramWindow(10, 16, (0.0, math.pi), (-8.5 * 3.0, 7.5 * 3.0)),  # even bins, bin 8 on the axis
])
def test_stir_layouts_hold_exactly_the_windows_rays(window):
    assert stir_mismatch(window) is None
    layout = stir_layout(window)
    assert layout.shape == (1, window.n_views, window.n_bins)
    np.testing.assert_allclose(layout.view_angles_rad(), window.angles_rad(), rtol=0, atol=1e-12)
    centres = window.radial_range_mm[0] + (np.arange(window.n_bins) + 0.5) * window.bin_width_mm
    np.testing.assert_allclose(layout.tangential_positions_mm(), centres, rtol=0, atol=1e-9)


@pytest.mark.parametrize("window, reason", [
    (SinogramWindow.full(12, 16, 4.0), r"half a bin off\); --radial-range -34 30 gives STIR's bins"),
    (SinogramWindow(12, 15, (0.0, math.radians(120.0)), (-30.0, 30.0)), r"covers \[0, 120\) degrees"),
])
def test_windows_that_are_no_stir_bins_say_why(window, reason):
    assert stir_mismatch(window) is not None
    with pytest.raises(ValueError, match=reason):
        stir_layout(window)
