"""The synthesis baselines: sized like ALL-PET, they learn, their samples are seeded and (VAE, GAN) non-negative."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from pet_projection import ImageGrid, ParallelBeamProjector  # noqa: E402
from pet_projection.geometry import ParallelBeamGeometry  # noqa: E402
from tasks.synthesis_baselines import (BASELINES, ConditionalGAN, ConditionalVAE, ImageDomainGenerator,  # noqa: E402
                                       LowDoseCNN, PixelDDPM, count_scale, make_baseline, region_scales)

ALLPET_PARAMETERS = 1_286_106


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eight 64 x 64 "sinograms" (a smooth band, Poisson counts) of two regions with very different scales."""
    rng = np.random.default_rng(0)
    band = np.exp(-0.5 * ((np.arange(64) - 32) / 10.0) ** 2)[None, :] * np.ones((64, 1))
    region = np.array([0, 1] * 4)
    scale = np.where(region == 0, 100.0, 1000.0)[:, None, None]
    return rng.poisson(scale * band[None]).astype(np.float32), np.zeros(8, np.int64), region


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_parameter_counts_are_within_twice_allpets(name):
    model = make_baseline(name)
    assert ALLPET_PARAMETERS / 2 <= model.n_parameters <= 2 * ALLPET_PARAMETERS
    if isinstance(model, ConditionalGAN):  # the sampling network alone, too
        assert ALLPET_PARAMETERS / 2 <= model.n_generator_parameters <= model.n_parameters


def test_region_scales_are_the_mean_maxima_per_region(data):
    sinograms, _, region = data
    scales = region_scales(sinograms, region)
    assert scales[0] == pytest.approx(sinograms[region == 0].max(axis=(1, 2)).mean())
    assert scales[1] > 5 * scales[0] and scales[2] == scales[3] == 1.0


@pytest.mark.parametrize("cls, lr, ratio", [(ConditionalVAE, 1e-3, 0.5), (PixelDDPM, 2e-3, 0.85)])
def test_a_few_steps_reduce_the_loss(cls, lr, ratio, data, torch_one_thread):
    sinograms, tracer, region = data
    model = cls(seed=0)
    x, tracer_t, region_t = model._prepare(sinograms, tracer, region)

    def loss() -> float:
        with torch.no_grad():
            return float(model.loss(x, tracer_t, region_t, torch.Generator().manual_seed(5)))

    before = loss()
    model.fit(sinograms, tracer, region, steps=12, batch_size=8, lr=lr)
    assert loss() < ratio * before


def test_gan_discriminator_learns_and_samples_are_nonnegative_seeded(data, torch_one_thread):
    sinograms, tracer, region = data
    model = ConditionalGAN(seed=0).fit(sinograms, tracer, region, steps=6, batch_size=8, lr=2e-4)
    assert np.mean(model.losses[-2:]) < model.losses[0]  # hinge loss from 2 (chance) down
    a, b = model.generate(0, 1, 3, seed=4), model.generate(0, 1, 3, seed=4)
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0.0 and not np.array_equal(a, model.generate(0, 1, 3, seed=5))


def test_vae_samples_are_nonnegative_seeded_and_on_the_regions_scale(data, torch_one_thread):
    sinograms, tracer, region = data
    model = ConditionalVAE(seed=0).fit(sinograms, tracer, region, steps=3, batch_size=8)
    low, high = model.generate(0, 0, 2, seed=1), model.generate(0, 1, 2, seed=1)
    assert low.min() >= 0.0 and high.min() >= 0.0
    np.testing.assert_array_equal(low, model.generate(0, 0, 2, seed=1))
    # the same network output, times each region's own scale
    ratio = float(model.scales[1] / model.scales[0])
    with torch.no_grad():
        raw = model._sample(torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.long),
                            torch.Generator().manual_seed(1))[:, 0].numpy()
    np.testing.assert_allclose(high, raw * float(model.scales[1]), rtol=1e-5)
    assert ratio > 5


def test_ddpm_samples_are_seeded(data, torch_one_thread):
    sinograms, tracer, region = data
    model = PixelDDPM(sampling_steps=2, seed=0).fit(sinograms, tracer, region, steps=1, batch_size=4)
    a = model.generate(0, 0, 2, seed=3)
    np.testing.assert_array_equal(a, model.generate(0, 0, 2, seed=3))
    assert a.shape == (2, 64, 64) and not np.array_equal(a, model.generate(0, 0, 2, seed=4))


def test_image_domain_generator_projects_scaled_poisson_counts(torch_one_thread):
    grid = ImageGrid((64, 64), voxel_size_mm=4.0)
    projector = ParallelBeamProjector(ParallelBeamGeometry(grid, 64, 64, 4.0))
    rng = np.random.default_rng(0)
    images = rng.random((3, 64, 64))
    measured = np.stack([3.0 * np.asarray(projector(x)) for x in images])
    assert count_scale(images, measured, projector) == pytest.approx(3.0, rel=1e-9)
    model = ConditionalVAE(positive=False, seed=0)  # linear output: images with negative pixels, clipped at 0
    generator = ImageDomainGenerator(model, {0: projector}, {0: 3.0})
    sinograms = generator.generate(1, 0, 2, seed=7)
    image = model.generate(1, 0, 2, seed=7)[0]
    assert image.min() < 0
    expected = 3.0 * np.asarray(projector(np.ascontiguousarray(np.clip(image, 0, None), np.float64)))
    assert sinograms.min() >= 0 and np.all(sinograms == np.rint(sinograms))
    assert sinograms[0].sum() == pytest.approx(expected.sum(), rel=0.01)
    np.testing.assert_array_equal(sinograms, generator.generate(1, 0, 2, seed=7))


def test_low_dose_cnn_learns_the_full_dose(data, torch_one_thread):
    sinograms, _, _ = data
    rng = np.random.default_rng(0)
    low = rng.binomial(sinograms.astype(np.int64), 0.05).astype(np.float32) * 20.0
    model = LowDoseCNN(channels=8, depth=3, seed=0).fit(low, sinograms, steps=25, batch_size=8, lr=3e-3)
    assert np.mean(model.losses[-3:]) < 0.5 * model.losses[0]
    error = np.abs(model.predict(low) - sinograms).mean()
    assert error < np.abs(low - sinograms).mean()
