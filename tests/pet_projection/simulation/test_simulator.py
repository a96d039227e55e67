"""Physics simulator: kinetics, tracers, phantoms, acquisition (counts, dose, Poisson, attenuation) and tasks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from pet_projection import ImageGrid, ParallelBeamGeometry, ParallelBeamProjector
from pet_projection.attention import RegionTable
from pet_projection.physics import PETSystemModel
from pet_projection.recon import mlem
from pet_projection.simulation import (LESION_LABEL_OFFSET, MU_511KEV_PER_MM, REGION_LABELS, TASKS, TRACERS,
                                       Acquisition, AcquisitionSettings, ExponentialInput, RateConstants,
                                       SimulationConfig, anatomy_grid, feng_input, frame_means, get_tracer,
                                       make_phantom, poisson_counts, sample_rng, simulate_sample, system_model,
                                       thin_counts, tissue_curve)
from pet_projection.simulation.acquisition import crystal_pair_product, detector_shape
from pet_projection.simulation.anatomy import SLICE_RANGE_MM
from pet_projection.simulation.phantoms import smooth_texture

TINY = SimulationConfig(size=32, n_views=24)
TIMES_MIN = np.linspace(0.0, 120.0, 121)

rates = st.builds(RateConstants, K1=st.floats(0.01, 1.0), k2=st.floats(0.01, 1.0), k3=st.floats(0.0, 0.3),
                  k4=st.floats(0.0, 0.05))


# --- kinetics --------------------------------------------------------------------------------------

def test_one_tissue_step_input_matches_closed_form():
    # dC/dt = K1 - k2 C with C(0) = 0: C = K1 / k2 (1 - exp(-k2 t))
    step = ExponentialInput([1.0], [0.0], [0.0])
    curve = tissue_curve(step, RateConstants(0.1, 0.2, 0.0, 0.0), TIMES_MIN)
    np.testing.assert_allclose(curve, 0.5 * (1.0 - np.exp(-0.2 * TIMES_MIN)), rtol=1e-12, atol=1e-14)


def test_irreversible_two_tissue_step_input_matches_closed_form():
    # k4 = 0, Cp = 1: C_T = K1 k3 / (k2 + k3) t + K1 k2 / (k2 + k3)^2 (1 - exp(-(k2 + k3) t))
    k1, k2, k3 = 0.1, 0.2, 0.05
    step = ExponentialInput([1.0], [0.0], [0.0])
    curve = tissue_curve(step, RateConstants(k1, k2, k3, 0.0), TIMES_MIN)
    expected = k1 * k3 / (k2 + k3) * TIMES_MIN + k1 * k2 / (k2 + k3) ** 2 * (1.0 - np.exp(-(k2 + k3) * TIMES_MIN))
    np.testing.assert_allclose(curve, expected, rtol=1e-12, atol=1e-14)


@settings(max_examples=8)
@given(rates=rates, delay=st.floats(0.0, 1.0))
def test_two_tissue_model_with_feng_input_matches_ode_solution(rates, delay):
    cp = feng_input(delay_min=delay)

    def derivative(t, c):
        p = float(cp(t))
        return [rates.K1 * p - (rates.k2 + rates.k3) * c[0] + rates.k4 * c[1], rates.k3 * c[0] - rates.k4 * c[1]]

    t = np.linspace(0.0, 90.0, 31)
    ode = integrate.solve_ivp(derivative, (0.0, 90.0), [0.0, 0.0], t_eval=t, method="LSODA", rtol=1e-10,
                              atol=1e-10, max_step=0.05)
    np.testing.assert_allclose(tissue_curve(cp, rates, t), ode.y.sum(axis=0), rtol=1e-6, atol=1e-6)


def test_feng_input_function_values():
    # Feng et al. 1993: Cp(u) = (A1 u - A2 - A3) exp(l1 u) + A2 exp(l2 u) + A3 exp(l3 u)
    u = np.array([0.0, 0.5, 1.0, 10.0, 60.0])
    direct = ((851.1225 * u - 21.8798 - 20.8113) * np.exp(-4.1339 * u) + 21.8798 * np.exp(-0.0104 * u)
              + 20.8113 * np.exp(-0.1191 * u))
    np.testing.assert_allclose(feng_input()(u), direct, rtol=1e-12)
    np.testing.assert_allclose(feng_input(delay_min=0.5)(u + 0.5), direct, rtol=1e-12)
    assert feng_input(delay_min=0.5)(0.25) == 0.0


def test_frame_means_match_quadrature_with_and_without_decay():
    cp = feng_input()
    rates = RateConstants(0.1, 0.13, 0.06, 0.007)
    half_life = 109.77
    decay = math.log(2.0) / half_life
    frames = [(0.0, 2.0), (60.0, 70.0), (120.0, 130.0)]
    means = frame_means(lambda t: tissue_curve(cp, rates, t), frames, half_life)
    for (start, end), mean in zip(frames, means):
        value, _ = integrate.quad(lambda t: float(tissue_curve(cp, rates, t)) * math.exp(-decay * t), start, end,
                                  epsabs=1e-12, epsrel=1e-12, limit=200)
        assert mean == pytest.approx(value / (end - start), rel=1e-9)
    # a constant curve decays as (exp(-l t1) - exp(-l t2)) / (l (t2 - t1))
    constant = frame_means(lambda t: np.ones_like(t), [(10.0, 30.0)], half_life)[0]
    assert constant == pytest.approx((math.exp(-10 * decay) - math.exp(-30 * decay)) / (20 * decay), rel=1e-12)


@pytest.mark.parametrize("name", sorted(TRACERS))
def test_tracer_rate_constants_reproduce_reference_uptake(name):
    tracer = get_tracer(name)
    assert set(tracer.uptake) == set(REGION_LABELS)  # every region has kinetics for every tracer
    for region, kinetics in tracer.uptake.items():
        value = tracer.frame_values(kinetics, [tracer.reference_frame_min], decay=False)[0]
        assert value == pytest.approx(kinetics.suv, rel=1e-9), region


def test_fdg_kinetics_tumour_rises_and_decay_lowers_counts():
    fdg = get_tracer("fdg")
    frames = [(60.0, 70.0), (120.0, 130.0)]
    tumour = fdg.frame_values(type(fdg.uptake["liver"])(5.0, *fdg.hot_lesion), frames, decay=False)
    liver = fdg.frame_values(fdg.uptake["liver"], frames, decay=False)
    assert tumour[1] > tumour[0] and liver[1] < liver[0]  # dual-time-point behaviour
    decayed = fdg.frame_values(fdg.uptake["liver"], frames, decay=True)
    np.testing.assert_allclose(decayed / liver, np.exp(-math.log(2) / 109.77 * np.array([65.0, 125.0])), rtol=2e-3)


def test_kinetics_bad_parameters():
    with pytest.raises(ValueError, match="k3"):
        RateConstants(0.1, 0.1, -0.1, 0.0)
    with pytest.raises(ValueError, match="unknown tracer"):
        get_tracer("fluorocarbon")
    with pytest.raises(ValueError, match="rates_per_min"):
        ExponentialInput([1.0], [0.0], [0.5])
    with pytest.raises(ValueError, match="start < end"):
        frame_means(lambda t: t, [(10.0, 5.0)])


# --- phantoms --------------------------------------------------------------------------------------

@pytest.mark.parametrize("anatomy", ["brain", "trunk"])
def test_phantom_labels_names_and_mu_map(anatomy):
    for seed in range(4):
        phantom = make_phantom(anatomy, anatomy_grid(anatomy, 64), np.random.default_rng(seed), n_lesions=(1, 3))
        present = set(np.unique(phantom.labels).tolist()) - {0}
        assert present <= set(phantom.names.values())
        table = phantom.region_table()
        assert isinstance(table, RegionTable)
        for lesion in phantom.lesions:
            assert lesion.name.startswith(f"lesion_{lesion.kind}_") and lesion.label > LESION_LABEL_OFFSET
            assert table.mask(lesion.name).sum() == lesion.n_voxels > 0
        for name, label in phantom.names.items():
            if name in MU_511KEV_PER_MM and np.any(phantom.labels == label):
                np.testing.assert_array_equal(phantom.mu_map[phantom.labels == label],
                                              np.float32(MU_511KEV_PER_MM[name]))
        assert np.all(phantom.mu_map[phantom.labels == 0] == 0)
        assert phantom.body_mask.sum() > 0.1 * phantom.labels.size


def test_mu_values_are_the_cited_ones():
    # issue 6 / NIST XCOM at 511 keV: soft tissue about 0.0096, lung about 0.003, bone about 0.015 per mm
    assert MU_511KEV_PER_MM["soft_tissue"] == pytest.approx(0.0096)
    assert MU_511KEV_PER_MM["lungs"] == pytest.approx(0.003)
    assert MU_511KEV_PER_MM["skull"] == pytest.approx(0.015)


def test_phantom_is_deterministic_and_varies_with_the_seed():
    grid = anatomy_grid("brain", 48)
    a, b, c = (make_phantom("brain", grid, np.random.default_rng(s)) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.mu_map, b.mu_map)
    assert not np.array_equal(a.labels, c.labels)


@pytest.mark.parametrize("anatomy", ["brain", "trunk"])
def test_every_slice_position_cuts_the_body(anatomy):
    grid = anatomy_grid(anatomy, 32)
    for seed in range(30):
        for z in SLICE_RANGE_MM[anatomy]:
            phantom = make_phantom(anatomy, grid, np.random.default_rng(seed), axial_position_mm=z)
            assert phantom.body_mask.sum() > 20, (seed, z)


def test_3d_phantom_has_the_grid_shape():
    grid = anatomy_grid("trunk", 32, n_slices=6)
    phantom = make_phantom("trunk", grid, np.random.default_rng(0), axial_position_mm=100.0)
    assert phantom.labels.shape == phantom.mu_map.shape == (6, 32, 32)
    assert np.any(phantom.labels == REGION_LABELS["lungs"])  # 100 mm above the diaphragm


def test_phantom_bad_parameters():
    with pytest.raises(ValueError, match="anatomy"):
        make_phantom("elbow", anatomy_grid("brain", 16), np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_lesions"):
        make_phantom("brain", anatomy_grid("brain", 16), np.random.default_rng(0), n_lesions=(3, 1))
    with pytest.raises(ValueError, match="amplitude"):
        smooth_texture(anatomy_grid("brain", 16), np.random.default_rng(0), -0.1)


# --- acquisition -----------------------------------------------------------------------------------

def _disc_acquisition(settings: AcquisitionSettings, size: int = 48, radius_mm: float = 70.0):
    grid = ImageGrid((size, size), 200.0 / size)
    projector = ParallelBeamProjector(ParallelBeamGeometry(grid, 48, size, grid.voxel_size_mm[1]))
    x, y = grid.meshgrid_mm()
    disc = (np.hypot(x, y) <= radius_mm).astype(np.float64)
    mu = 0.0096 * disc  # water at 511 keV (NIST XCOM), 1/mm
    return grid, disc, Acquisition(projector, mu, settings, np.random.default_rng(1))


def test_expected_counts_match_requested_total_and_fractions():
    settings = AcquisitionSettings(scatter_fraction=0.3, randoms_fraction=0.2)
    _, disc, acquisition = _disc_acquisition(settings)
    unit = acquisition.expected(disc)
    expected = unit.scaled(unit.scale_for(5e5))
    total = expected.prompts.sum()
    assert total == pytest.approx(5e5, rel=1e-10)
    s, t, r = expected.scatter.sum(), expected.trues.sum(), expected.randoms.sum()
    assert s / (s + t) == pytest.approx(0.3, rel=1e-10)
    assert r / total == pytest.approx(0.2, rel=1e-10)
    assert np.all(expected.background > 0)


@pytest.mark.parametrize("factor", [4, 10, 20, 50, 100])
def test_thinned_counts_mean_and_variance_scale_with_dose(factor):
    rng = np.random.default_rng(factor)
    mean = 200.0
    full = poisson_counts(np.full(400_000, mean), rng)
    low = thin_counts(full, factor, rng)
    assert np.all(low <= full)
    n, mu = low.size, mean / factor
    # standard errors of the sample mean (sqrt(mu / n)) and variance (sqrt((mu + 2 mu^2) / n)) of Poisson(mu)
    assert abs(low.mean() - mu) < 5.0 * math.sqrt(mu / n)
    assert abs(low.var(ddof=1) - mu) < 5.0 * math.sqrt((mu + 2.0 * mu**2) / n)


def test_poisson_variance_equals_mean_on_flat_regions():
    _, disc, acquisition = _disc_acquisition(AcquisitionSettings())
    unit = acquisition.expected(disc)
    expected = unit.scaled(unit.scale_for(2e5)).prompts
    rng = np.random.default_rng(3)
    draws = np.stack([poisson_counts(expected, rng) for _ in range(300)])
    ratio = draws.var(axis=0, ddof=1) / draws.mean(axis=0)
    # per bin the ratio has standard error sqrt(2 / 299) = 0.08; averaged over 2304 bins: 0.002
    assert ratio.mean() == pytest.approx(1.0, abs=0.01)
    # bins outside the body see only the (flat-ish) background: one draw, variance = mean there too
    outside = expected < 1.2 * expected.min()
    values = draws[0][outside]
    assert values.size > 100 and values.var(ddof=1) == pytest.approx(values.mean(), rel=0.3)


def test_attenuation_corrected_reconstruction_of_uniform_cylinder_is_flat():
    grid, disc, acquisition = _disc_acquisition(AcquisitionSettings(fwhm_mm=0.0))
    unit = acquisition.expected(disc)
    expected = unit.scaled(unit.scale_for(1e6))
    data = expected.prompts
    inner = np.hypot(*grid.meshgrid_mm()) <= 50.0  # away from the edge (70 mm)
    corrected = mlem(data, system_model_of(acquisition, expected.background), 60)
    profile = corrected[inner] / corrected[inner].mean()
    assert profile.std() < 0.03 and abs(profile.min() - 1.0) < 0.08
    # without attenuation correction the centre is depressed (the test can fail)
    uncorrected = mlem(data, system_model_of(acquisition, expected.background, attenuation=False), 60)
    x, y = grid.meshgrid_mm()
    centre, ring = np.hypot(x, y) <= 10.0, (np.hypot(x, y) > 40.0) & (np.hypot(x, y) <= 50.0)
    assert uncorrected[centre].mean() < 0.85 * uncorrected[ring].mean()
    assert corrected[centre].mean() == pytest.approx(corrected[ring].mean(), rel=0.05)


def system_model_of(acquisition: Acquisition, background: np.ndarray, attenuation: bool = True):
    return PETSystemModel(acquisition.projector, attenuation=acquisition.attenuation if attenuation else None,
                          normalisation=acquisition.normalisation, background=background,
                          resolution=acquisition.resolution)


def test_normalisation_is_a_product_of_detector_efficiencies():
    _, _, acquisition = _disc_acquisition(AcquisitionSettings(efficiency_spread=0.1))
    projector = acquisition.projector
    ones = np.ones(detector_shape(projector))
    np.testing.assert_allclose(crystal_pair_product(projector, 2.0 * ones), 4.0)
    norm = acquisition.normalisation
    assert norm.mean() == pytest.approx(1.0, abs=0.03) and 0.08 < norm.std() < 0.2  # about sqrt(2) * 0.1


def test_acquisition_bad_parameters():
    with pytest.raises(ValueError, match="scatter_fraction"):
        AcquisitionSettings(scatter_fraction=1.0)
    with pytest.raises(ValueError, match="at least 1"):
        thin_counts(np.ones(4), 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="non-negative integers"):
        thin_counts(np.array([1.5, -1.0]), 4, np.random.default_rng(0))
    _, disc, acquisition = _disc_acquisition(AcquisitionSettings())
    with pytest.raises(ValueError, match="positive"):
        acquisition.expected(disc).scale_for(-10.0)


# --- tasks -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", TASKS)
def test_task_sample_shapes_units_and_determinism(task):
    sample = simulate_sample(task, TINY, sample_rng(7, 0))
    again = simulate_sample(task, TINY, sample_rng(7, 0))
    for key, array in sample.arrays().items():
        np.testing.assert_array_equal(array, again.arrays()[key], err_msg=key)
    assert sample.metadata == again.metadata
    other = simulate_sample(task, TINY, sample_rng(7, 1))
    assert not np.array_equal(sample.input, other.input)
    sinogram_shape = (24, 32)
    assert sample.input.shape == sinogram_shape and sample.input.dtype == np.float32
    assert sample.target.shape[-2:] == sinogram_shape and sample.labels.shape == (32, 32)
    assert np.all(sample.input >= 0) and np.all(np.isfinite(sample.target))
    # the image ground truth is in expected-count units: the system model gives the data's mean
    mean = system_model(sample).expected(sample.input_image.astype(np.float64))
    assert mean.sum() == pytest.approx(sample.input.sum(), rel=0.05)
    assert sample.region_table().labels.shape == (32, 32)


def test_low_dose_pairs_are_consistent():
    config = SimulationConfig(size=32, n_views=24, dose_reduction_factors=(10,), total_counts=4e5)
    sample = simulate_sample("low_dose", config, 3)
    assert sample.metadata["dose_reduction_factor"] == 10
    assert np.all(sample.input <= sample.target)
    n = sample.target.sum()
    assert abs(sample.input.sum() - n / 10) < 5.0 * math.sqrt(n * 0.1 * 0.9)  # binomial standard deviation


def test_dual_tracer_input_is_the_sum_of_the_separated_targets():
    sample = simulate_sample("tracer_separation", TINY, 4)
    np.testing.assert_array_equal(sample.input, sample.target[0] + sample.target[1])
    assert sample.target_image.shape == (2, 32, 32) and sample.metadata["tracers"] == ["fdg", "met"]


def test_delayed_frame_has_fewer_counts_and_conversion_changes_the_tracer():
    delayed = simulate_sample("delayed_frame", TINY, 5)
    first_counts, delayed_counts = delayed.metadata["expected_counts"]
    assert delayed_counts < first_counts  # 60 min of 18F decay: about a factor 0.68 before kinetics
    conversion = simulate_sample("tracer_conversion", TINY, 5)
    assert conversion.metadata["tracers"] == ["fdg", "met"]
    assert not np.allclose(conversion.input_image / conversion.input_image.max(),
                           conversion.target_image / conversion.target_image.max())


def test_attenuation_correction_target_is_the_corrected_expectation():
    sample = simulate_sample("attenuation_correction", TINY, 6)
    corrected_mean = (system_model(sample).expected(sample.input_image.astype(np.float64))
                      - sample.input_background) / (sample.attenuation * sample.normalisation)
    np.testing.assert_allclose(sample.target, corrected_mean, rtol=1e-4, atol=1e-3 * sample.target.max())


def test_bad_simulation_parameters_raise_clear_errors():
    with pytest.raises(ValueError, match="total counts must be positive"):
        SimulationConfig(total_counts=-5.0)
    with pytest.raises(ValueError, match="unknown tracer"):
        SimulationConfig(tracer="nonsense")
    with pytest.raises(ValueError, match="dose reduction factor must be at least 1"):
        SimulationConfig(dose_reduction_factors=(0.5,))
    with pytest.raises(ValueError, match="unknown task"):
        simulate_sample("denoise_everything", TINY, 0)
    with pytest.raises(ValueError, match="anatomy"):
        SimulationConfig(anatomy="foot")
    with pytest.raises(ValueError, match="dim"):
        SimulationConfig(dim=4)
    with pytest.raises(ValueError, match="two different tracers"):
        simulate_sample("tracer_separation", SimulationConfig(size=32, n_views=24, second_tracer="fdg"), 0)
    with pytest.raises(ValueError, match="start < end"):
        SimulationConfig(delayed_frame_min=(130.0, 120.0))
