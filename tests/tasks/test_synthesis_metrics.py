"""The synthesis metrics on analytic cases: consistent projections, known Gaussians, copies and disjoint sets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")
pytest.importorskip("skimage")

from pet_projection import ImageGrid, ParallelBeamProjector  # noqa: E402
from pet_projection.geometry import ParallelBeamGeometry  # noqa: E402
from tasks.synthesis_metrics import (SinogramEncoder, bootstrap, frechet_distance, helgason_ludwig,  # noqa: E402
                                     low_dose_pairs, moment_inconsistency, nearest_distances, negative_mass_fraction,
                                     pet_features, precision_recall, sliced_wasserstein, standardise, total_counts)


@pytest.fixture(scope="module")
def projections() -> np.ndarray:
    """Parallel-beam projections ``(3, 32, 32)`` of random images inside the field of view's disc."""
    grid = ImageGrid((32, 32), voxel_size_mm=2.0)
    projector = ParallelBeamProjector(ParallelBeamGeometry(grid, 32, 32, 2.0))
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:32, :32] - 15.5
    disc = (x**2 + y**2) < 13**2
    return np.stack([np.asarray(projector(rng.random((32, 32)) * disc)) for _ in range(3)])


def test_helgason_ludwig_is_near_zero_for_projections_and_large_for_inconsistent_sinograms(projections):
    consistent = helgason_ludwig(projections)  # not 0: the pixel discretisation of a 32 x 32 projector
    assert consistent.max() < 1e-2
    rng = np.random.default_rng(1)
    shuffled = projections[:, rng.permutation(32)]
    assert helgason_ludwig(shuffled).min() > 20 * consistent.max()
    assert helgason_ludwig(rng.random((3, 32, 32))).min() > 0.1
    # order 0: the counts per view; a sinogram whose views hold different totals breaks it, a projection does not
    ramp = projections * np.linspace(0.5, 1.5, 32)[None, :, None]
    assert moment_inconsistency(ramp)[:, 0].min() > 1e3 * moment_inconsistency(projections)[:, 0].max()


def test_negative_mass_and_total_counts():
    x = np.ones((2, 4, 4))
    x[1, 0, :2] = -3.0
    np.testing.assert_allclose(negative_mass_fraction(x), [0.0, 6.0 / 20.0])
    np.testing.assert_allclose(total_counts(x), [16.0, 8.0])


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 1000), st.floats(0.1, 5.0))
def test_sliced_wasserstein_is_zero_for_equal_sets_and_linear_in_a_shift(seed, size):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((40, 5))
    shift = rng.standard_normal(5)
    shift *= size / np.linalg.norm(shift)
    assert sliced_wasserstein(a, a) == pytest.approx(0.0, abs=1e-12)
    one = sliced_wasserstein(a, a + shift)
    assert sliced_wasserstein(a, a + 2 * shift) == pytest.approx(2 * one, rel=1e-9)
    assert 0.0 < one <= size + 1e-12
    # one dimension: every direction is +-1, so the distance is the shift itself
    line = rng.standard_normal((30, 1))
    assert sliced_wasserstein(line, line + size) == pytest.approx(size, rel=1e-9)


def _whitened(n: int, dim: int, seed: int) -> np.ndarray:
    """``n`` points of mean 0 and sample covariance exactly the identity."""
    x = np.random.default_rng(seed).standard_normal((n, dim))
    x -= x.mean(axis=0)
    return x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False))).T


def test_frechet_distance_closed_forms():
    a = _whitened(200, 4, 0)
    mean = np.array([1.0, -2.0, 0.5, 0.0])
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    # equal covariances: the squared distance of the means
    assert frechet_distance(a, a + mean) == pytest.approx(float(mean @ mean), rel=1e-8)
    # N(0, I) against N(m, 4 I): |m|^2 + tr(I + 4 I - 2 (4 I)^(1/2)) = |m|^2 + d
    assert frechet_distance(a, 2.0 * a + mean) == pytest.approx(float(mean @ mean) + 4.0, rel=1e-8)


def test_precision_recall_of_identical_disjoint_and_contained_sets():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((60, 3))
    assert precision_recall(a, a) == (1.0, 1.0)
    assert precision_recall(a, a + 100.0) == (0.0, 0.0)
    # fakes collapsed on one real point: all of them are real-looking, few reals are covered
    precision, recall = precision_recall(a, np.repeat(a[:1], 60, axis=0))
    assert precision == 1.0 and recall < 0.2


def test_nearest_distances_find_copies():
    rng = np.random.default_rng(0)
    training = rng.random((10, 8, 8)) + 1.0
    samples = np.concatenate([training[3:4], training[3:4] * 1.1])
    np.testing.assert_allclose(nearest_distances(samples, training), [0.0, 0.1], atol=1e-6)
    assert nearest_distances(rng.random((5, 8, 8)) + 1.0, training).min() > 0.1
    assert nearest_distances(samples, training, relative=False)[1] == pytest.approx(
        0.1 * np.linalg.norm(training[3]), rel=1e-6)


def test_bootstrap_interval_brackets_a_mean_difference():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1.0, (200, 1)), rng.normal(0.0, 1.0, (200, 1))
    cell = bootstrap(lambda x, y: float(x.mean() - y.mean()), a, b, n_boot=200)
    assert cell["low"] < cell["value"] < cell["high"]
    assert cell["low"] < 1.0 < cell["high"] and cell["high"] - cell["low"] < 0.6


def test_pet_features_ignore_the_count_level_but_see_the_shape(projections):
    features = pet_features(projections)
    assert np.isfinite(features).all() and features.shape == (3, 44)
    np.testing.assert_allclose(pet_features(2.0 * projections), features, atol=1e-9)
    np.testing.assert_allclose(features[:, :16].sum(axis=1), 1.0)  # the radial profile's fractions
    shifted = pet_features(np.roll(projections, 4, axis=2))  # the body moved off the axis
    assert np.abs(shifted[:, :16] - features[:, :16]).max() > 0.01
    z = standardise(features, features)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-9)


def test_sinogram_encoder_learns_and_is_deterministic(torch_one_thread):
    rng = np.random.default_rng(0)
    data = rng.poisson(50.0 * (1.0 + np.sin(np.linspace(0, 6, 64)))[None, None, :], (16, 64, 64)).astype(np.float32)
    encoder = SinogramEncoder(code_dim=8, seed=0).fit(data, steps=12, batch_size=4)
    assert np.mean(encoder.losses[-3:]) < 0.5 * encoder.losses[0]
    codes = encoder.encode(data)
    assert codes.shape == (16, 8)
    np.testing.assert_array_equal(codes, SinogramEncoder(code_dim=8, seed=0).fit(data, 12, 4).encode(data))


def test_low_dose_pairs_thin_rounded_counts():
    rng = np.random.default_rng(0)
    sinograms = np.full((4, 16, 16), 200.4)
    sinograms[0, 0, 0] = -3.0
    low, full = low_dose_pairs(sinograms, 20.0, rng)
    assert full[0, 0, 0] == 0.0 and full[1, 1, 1] == 200.0
    assert np.all(low <= full) and np.all(low == np.rint(low))
    assert low.mean() == pytest.approx(10.0, rel=0.05)
