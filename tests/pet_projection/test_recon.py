"""Reconstruction: FBP scale and filters, MLEM / OSEM convergence, likelihood, subsets, point sources, torch;
TV-MAP (PDHG) optimality."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import ellipse_projection, ray_coordinates, supersample

from pet_projection import (ImageGrid, LORProjector, ParallelBeamGeometry, ParallelBeamProjector,
                            PETSinogramProjector, RingScannerGeometry, SinogramLayout)
from pet_projection.physics import GaussianResolution, PETSystemModel, attenuation_factors
from pet_projection.recon import (FBP_FILTERS, _divergence, _gradient, fbp, fbp_filter, interleaved_views, map_tv,
                                  mlem, osem)

# Linear attenuation coefficient of water at 511 keV, 0.096 /cm (Hubbell & Seltzer, NIST XCOM).
MU_WATER_PER_MM = 0.0096


# --- FBP ---------------------------------------------------------------------------------------

def disc_geometry(n: int = 64, voxel_mm: float = 1.0, bin_width_mm: float = 1.0, n_views: int = 90):
    grid = ImageGrid((n, n), voxel_mm)
    return ParallelBeamGeometry(grid, n_views, int(math.ceil(1.5 * n * voxel_mm / bin_width_mm)), bin_width_mm)


@pytest.mark.parametrize("filter_name", FBP_FILTERS)
# Joseph's transposed back projection spreads a bin over the pixels with weights whose per-pixel sum varies by
# a few % around the mean (a fixed pattern, largest when bins are as wide as pixels): hence the per-pixel tolerance.
@pytest.mark.parametrize("voxel_mm, bin_width_mm, tolerance", [(1.0, 1.0, 0.05), (2.0, 1.5, 0.03), (1.5, 1.0, 0.03)])
def test_fbp_of_an_analytic_disc_is_one_inside(filter_name: str, voxel_mm: float, bin_width_mm: float,
                                               tolerance: float) -> None:
    geometry = disc_geometry(64, voxel_mm, bin_width_mm)
    radius = 0.3 * 64 * voxel_mm
    theta, s = ray_coordinates(geometry)
    sinogram = ellipse_projection(theta, s, (0.0, 0.0), (radius, radius))  # exact line integrals
    image = fbp(sinogram, ParallelBeamProjector(geometry), filter_name)
    x, y = geometry.grid.meshgrid_mm()
    r = np.hypot(x, y)
    assert abs(image[r < 0.6 * radius].mean() - 1.0) < 0.005
    np.testing.assert_allclose(image[r < 0.6 * radius], 1.0, atol=tolerance)
    assert np.abs(image[r > 1.3 * radius]).max() < 0.06


@pytest.mark.parametrize("filter_name", FBP_FILTERS)
def test_fbp_of_a_projected_ellipse_recovers_it(filter_name: str) -> None:
    geometry = disc_geometry(64, 1.5, 1.0, 96)
    projector = ParallelBeamProjector(geometry)
    centre, axes, phi = (8.0, -5.0), (25.0, 14.0), 0.4

    def inside(x: np.ndarray, y: np.ndarray, scale: float = 1.0) -> np.ndarray:
        u = (x - centre[0]) * math.cos(phi) + (y - centre[1]) * math.sin(phi)
        v = -(x - centre[0]) * math.sin(phi) + (y - centre[1]) * math.cos(phi)
        return (u / (scale * axes[0])) ** 2 + (v / (scale * axes[1])) ** 2 <= 1.0

    image = fbp(projector(supersample(geometry.grid, inside)), projector, filter_name)
    x, y = geometry.grid.meshgrid_mm()
    assert abs(image[inside(x, y, 0.6)].mean() - 1.0) < 0.005
    np.testing.assert_allclose(image[inside(x, y, 0.6)], 1.0, atol=0.03)
    assert np.abs(image[~inside(x, y, 1.4)]).max() < 0.04


def test_ramp_filter_matches_the_analytic_ramp() -> None:
    bin_width_mm = 2.0
    response = fbp_filter(40, bin_width_mm)
    n_padded = 2 * (response.size - 1)
    assert n_padded >= 2 * 40 and response.size == 65
    f = np.fft.rfftfreq(n_padded)  # cycles per bin
    ramp = f / bin_width_mm  # |f| in cycles per mm
    middle = (f > 0.02) & (f < 0.45)
    np.testing.assert_allclose(response[middle], ramp[middle], rtol=0.01)
    # DC: the sum of the sampled impulse response, h(0) + 2 sum_odd h(n); positive (no DC offset) and -> 0
    odd = np.arange(1, n_padded // 2, 2)
    assert response[0] == pytest.approx((0.25 - 2.0 * np.sum(1.0 / (math.pi * odd) ** 2)) / bin_width_mm, rel=1e-9)
    assert 0.0 < response[0] < 0.01 * ramp[-1]
    # windows lower the ramp, and the cut-off removes what lies above it
    for name in ("shepp-logan", "hann"):
        windowed = fbp_filter(40, bin_width_mm, name)
        assert np.all(windowed[1:] < response[1:]) and windowed[0] == response[0]
    assert fbp_filter(40, bin_width_mm, "hann")[-1] == 0.0
    half = fbp_filter(40, bin_width_mm, "ramp", cutoff=0.5)
    np.testing.assert_array_equal(half[f > 0.25], 0.0)
    np.testing.assert_array_equal(half[f <= 0.25], response[f <= 0.25])


def test_fbp_of_stacks_batches_and_torch() -> None:
    grid = ImageGrid((3, 32, 32), (4.0, 2.0, 2.0))
    projector = ParallelBeamProjector(ParallelBeamGeometry(grid, 40, 48, 2.0))
    rng = np.random.default_rng(3)
    sinograms = projector(rng.random((2,) + grid.shape))
    images = fbp(sinograms, projector, "hann")
    assert images.shape == (2,) + grid.shape
    slice_projector = ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((32, 32), 2.0), 40, 48, 2.0))
    np.testing.assert_allclose(images[1, 2], fbp(sinograms[1, 2], slice_projector, "hann"), rtol=1e-12, atol=1e-12)
    torch = pytest.importorskip("torch")
    for dtype in (np.float32, np.float64):
        out = fbp(torch.from_numpy(sinograms.astype(dtype)), projector, "hann")
        assert isinstance(out, torch.Tensor) and out.numpy().dtype == dtype
        np.testing.assert_allclose(out.numpy(), images, rtol=0, atol=2e-5 if dtype == np.float32 else 1e-12)
    out32 = fbp(sinograms.astype(np.float32), projector)
    assert out32.dtype == np.float32


def test_fbp_bad_input() -> None:
    geometry = disc_geometry(16, 2.0, 2.0, 12)
    projector = ParallelBeamProjector(geometry)
    sinogram = np.ones(projector.out_shape)
    with pytest.raises(ValueError, match="filter_name must be one of"):
        fbp(sinogram, projector, "cosine")
    with pytest.raises(ValueError, match="cutoff"):
        fbp(sinogram, projector, cutoff=0.0)
    with pytest.raises(ValueError, match=r"sinogram has shape \(12, 3\)"):
        fbp(np.ones((12, 3)), projector)
    with pytest.raises(TypeError, match="float32 or float64"):
        fbp(np.ones(projector.out_shape, dtype=np.int32), projector)
    with pytest.raises(ValueError, match="uniformly spaced by pi / n_views"):
        fbp(np.ones((6, geometry.n_bins)), projector.view_subset(np.arange(6)))  # half of the half turn
    pet = PETSinogramProjector(SinogramLayout(tiny_scanner()), ImageGrid((3, 8, 8), 4.0))
    with pytest.raises(TypeError, match="needs a ParallelBeamProjector, got PETSinogramProjector"):
        fbp(np.ones(pet.out_shape), pet)


# --- MLEM / OSEM -------------------------------------------------------------------------------

def tiny_scanner() -> RingScannerGeometry:
    """12 sides x 3 crystals (36 per ring) of 4 mm at 40 mm radius, 3 rings 4 mm apart."""
    return RingScannerGeometry(radius_mm=40.0, n_sides=12, crystals_per_side=3, crystal_spacing_mm=4.0,
                               ring_positions_mm=(-4.0, 0.0, 4.0))


def phantom_problem(seed: int = 0, resolution: bool = False):
    """A 2D activity phantom with attenuation, normalisation and background: ``(system, truth)``."""
    grid = ImageGrid((24, 24), 2.0)
    projector = ParallelBeamProjector(ParallelBeamGeometry(grid, 30, 35, 2.0))
    x, y = grid.meshgrid_mm()
    body = x**2 / 20.0**2 + y**2 / 16.0**2 <= 1.0
    truth = 2.0 * body + 6.0 * ((x - 6.0) ** 2 + (y + 3.0) ** 2 <= 4.0**2) + 4.0 * ((x + 8.0) ** 2 + y**2 <= 3.0**2)
    rng = np.random.default_rng(seed)
    attenuation = attenuation_factors(projector, MU_WATER_PER_MM * body)
    normalisation = rng.uniform(0.7, 1.3, projector.out_shape)
    unscattered = attenuation * normalisation * projector(truth)
    background = np.full(projector.out_shape, 0.05 * unscattered.mean())  # flat randoms + scatter
    system = PETSystemModel(projector, attenuation=attenuation, normalisation=normalisation, background=background,
                            resolution=GaussianResolution(grid, 3.0) if resolution else None)
    return system, truth


@pytest.mark.parametrize("noisy", [False, True])
def test_mlem_log_likelihood_increases_monotonically(noisy: bool) -> None:
    system, truth = phantom_problem(1, resolution=True)
    data = system.expected(truth)
    if noisy:
        data = np.random.default_rng(2).poisson(data).astype(np.float64)
    likelihoods = [system.log_likelihood(data, np.ones(system.in_shape))]
    mlem(data, system, 40, callback=lambda iteration, subset, x: likelihoods.append(system.log_likelihood(data, x)))
    steps = np.diff(likelihoods)
    assert np.all(steps >= -1e-12 * np.abs(likelihoods[1:]))
    assert likelihoods[-1] > likelihoods[0] + 100.0


def test_mlem_converges_towards_the_truth_on_noise_free_data() -> None:
    system, truth = phantom_problem(3)
    data = system.expected(truth)
    errors = []
    image = mlem(data, system, 200,
                 callback=lambda iteration, subset, x: errors.append(np.linalg.norm(x - truth) / np.linalg.norm(truth)))
    checkpoints = np.array(errors)[[0, 4, 19, 49, 99, 199]]
    assert np.all(np.diff(checkpoints) < 0)
    assert checkpoints[-1] < 0.3 * checkpoints[0]
    assert errors[-1] == pytest.approx(np.linalg.norm(image - truth) / np.linalg.norm(truth), rel=1e-12)
    assert image.min() >= 0.0


def test_osem_approximates_mlem_with_n_times_the_iterations() -> None:
    system, truth = phantom_problem(4)
    data = system.expected(truth)
    n_subsets, n_iterations = 5, 3
    os_image = osem(data, system, n_subsets, n_iterations)
    matched = mlem(data, system, n_subsets * n_iterations)
    unmatched = mlem(data, system, n_iterations)
    distance = np.linalg.norm(os_image - matched) / np.linalg.norm(matched)
    assert distance < 0.05
    assert distance < 0.2 * np.linalg.norm(os_image - unmatched) / np.linalg.norm(matched)
    # one subset is MLEM itself
    np.testing.assert_allclose(osem(data, system, 1, n_iterations), unmatched, rtol=1e-12)


def test_osem_subsets_are_interleaved_views() -> None:
    subsets = interleaved_views(10, 3)
    assert [list(v) for v in subsets] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    layout = SinogramLayout(tiny_scanner())
    for ours, theirs in zip(interleaved_views(layout.n_views, 4), layout.view_subsets(4)):
        np.testing.assert_array_equal(ours, theirs)


def centroid_mm(image: np.ndarray, grid: ImageGrid) -> np.ndarray:
    """Intensity-weighted mean position ``(x, y[, z])`` in mm."""
    return np.array([np.sum(image * c) / image.sum() for c in grid.meshgrid_mm()])


def test_a_point_source_reconstructs_at_its_place_in_mm() -> None:
    grid = ImageGrid((20, 24), (1.5, 2.0), origin_mm=(4.0, -3.0))
    projector = ParallelBeamProjector(ParallelBeamGeometry(grid, 36, 40, 1.5))
    point = np.zeros(grid.shape)
    point[5, 16] = 1.0
    system = PETSystemModel(projector, normalisation=np.full(projector.out_shape, 0.8))
    image = mlem(system.expected(point), system, 50)
    expected = np.array([grid.centers_mm(1)[16], grid.centers_mm(0)[5]])
    np.testing.assert_allclose(centroid_mm(image, grid), expected, atol=0.25 * 1.5)
    assert np.unravel_index(np.argmax(image), grid.shape) == (5, 16)


def test_a_point_source_in_a_pet_scanner_reconstructs_at_its_place_in_mm() -> None:
    grid = ImageGrid((4, 16, 16), (3.0, 2.5, 2.5), origin_mm=(0.0, 1.0, -2.0))
    projector = PETSinogramProjector(SinogramLayout(tiny_scanner(), axis_order=("plane", "view", "radial")), grid)
    point = np.zeros(grid.shape)
    point[2, 5, 11] = 1.0
    system = PETSystemModel(projector)
    image = osem(system.expected(point), system, 3, 20)
    expected = np.array([grid.centers_mm(2)[11], grid.centers_mm(1)[5], grid.centers_mm(0)[2]])
    np.testing.assert_allclose(centroid_mm(image, grid), expected, atol=0.5 * 2.5)
    assert np.unravel_index(np.argmax(image), grid.shape) == (2, 5, 11)


def test_torch_tensors_give_torch_tensors_with_the_numpy_values() -> None:
    torch = pytest.importorskip("torch")
    system, truth = phantom_problem(5, resolution=True)
    data = np.random.default_rng(6).poisson(system.expected(truth)).astype(np.float64)
    for dtype, rtol in ((np.float64, 1e-10), (np.float32, 2e-4)):
        counts = data.astype(dtype)
        for reconstruct in (lambda d: mlem(d, system, 5), lambda d: osem(d, system, 3, 2)):
            ours = reconstruct(torch.from_numpy(counts))
            assert isinstance(ours, torch.Tensor) and ours.numpy().dtype == dtype
            np.testing.assert_allclose(ours.numpy(), reconstruct(counts), rtol=rtol, atol=rtol * truth.max())


def test_batches_reconstruct_each_data_set() -> None:
    system, truth = phantom_problem(7)
    data = np.stack([system.expected(truth), system.expected(0.5 * truth)])
    images = osem(data, system, 3, 4)
    assert images.shape == (2,) + system.in_shape
    np.testing.assert_allclose(images[1], osem(data[1], system, 3, 4), rtol=1e-12)
    assert np.all(np.array(system.log_likelihood(data, images)) > system.log_likelihood(data, np.ones((2, 24, 24))))


def test_callback_is_called_after_every_subiteration() -> None:
    system, truth = phantom_problem(8)
    data = system.expected(truth)
    calls = []
    image = mlem(data, system, 3, callback=lambda iteration, subset, x: calls.append((iteration, subset, x)))
    assert [(i, s) for i, s, _ in calls] == [(0, None), (1, None), (2, None)]
    assert calls[-1][2] is image
    calls.clear()
    osem(data, system, 4, 2, callback=lambda iteration, subset, x: calls.append((iteration, subset)))
    assert calls == [(i, k) for i in range(2) for k in range(4)]


def test_zero_sensitivity_voxels_and_unexplained_counts_stay_zero() -> None:
    grid = ImageGrid((16, 16), 2.0)
    # five 2 mm bins at 11 mm <= s <= 19 mm: pixels within about 9 mm of the centre are in no ray
    projector = ParallelBeamProjector(ParallelBeamGeometry(grid, 12, 5, 2.0, radial_offset_mm=15.0))
    system = PETSystemModel(projector)
    sensitivity = system.sensitivity()
    assert np.any(sensitivity == 0) and np.any(sensitivity > 0)
    data = system.expected(np.ones(grid.shape))
    image = mlem(data, system, 5)
    assert np.all(np.isfinite(image))
    np.testing.assert_array_equal(image[sensitivity == 0], 0.0)
    # a start image that is zero on the left half cannot explain the counts of the rays through that half only:
    # ybar = 0 < y there, and the update must neither produce NaN nor fill the half
    x0 = np.ones(grid.shape)
    x0[:, :8] = 0.0
    assert np.any((system.expected(x0) == 0) & (data > 0))
    for dtype in (np.float32, np.float64):
        image = mlem(data.astype(dtype), system, 5, x0=x0.astype(dtype))
        assert np.all(np.isfinite(image)) and image.dtype == dtype
        np.testing.assert_array_equal(image[:, :8], 0.0)


def test_reconstruction_bad_input() -> None:
    system, truth = phantom_problem(9)
    data = system.expected(truth)
    with pytest.raises(ValueError, match="data must be non-negative"):
        mlem(-data, system, 2)
    nan_data = data.copy()
    nan_data[0, 0] = np.nan
    with pytest.raises(ValueError, match="data must be finite"):
        osem(nan_data, system, 2, 2)
    with pytest.raises(ValueError, match=r"data has shape \(30, 34\), expected \(\.\.\., 30, 35\)"):
        mlem(data[:, :34], system, 2)
    with pytest.raises(ValueError, match="n_subsets must be at most the number of views, 30, got 31"):
        osem(data, system, 31, 1)
    with pytest.raises(ValueError, match="n_subsets must be at least 1"):
        osem(data, system, 0, 1)
    with pytest.raises(ValueError, match="n_iterations must be at least 1"):
        mlem(data, system, 0)
    with pytest.raises(ValueError, match=r"x0 has shape \(24, 23\), expected \(24, 24\)"):
        mlem(data, system, 2, x0=np.ones((24, 23)))
    with pytest.raises(ValueError, match="x0 must be non-negative"):
        mlem(data, system, 2, x0=-np.ones((24, 24)))
    with pytest.raises(TypeError, match="x0 .* must be of the data's array type and dtype"):
        mlem(data, system, 2, x0=np.ones((24, 24), dtype=np.float32))
    with pytest.raises(TypeError, match="system must be a PETSystemModel"):
        mlem(data, system.linear, 2)
    lor_system = PETSystemModel(LORProjector(ImageGrid((8, 8), 2.0), np.array([[-20.0, 0.0], [0.0, -20.0]]),
                                             np.array([[20.0, 1.0], [1.0, 20.0]])))
    with pytest.raises(TypeError, match="LORProjector has no view"):
        osem(np.ones(2), lor_system, 2, 1)
    assert osem(np.ones(2), lor_system, 1, 1).shape == (8, 8)  # one subset needs no views
    integer_counts = np.random.default_rng(0).poisson(data)
    assert mlem(integer_counts, system, 1).dtype == np.float64


# --- TV-MAP (PDHG) -------------------------------------------------------------------------------

def tv(x: np.ndarray) -> float:
    return float(np.sqrt((_gradient(x, x.ndim) ** 2).sum(axis=0)).sum())


def tv_objective(system: PETSystemModel, data: np.ndarray, x: np.ndarray, beta: float) -> float:
    """The objective map_tv minimises: negative Poisson log-likelihood + beta TV."""
    return -system.log_likelihood(data, x) + beta * tv(x)


def noisy_problem(seed: int):
    system, truth = phantom_problem(seed)
    data = np.random.default_rng(seed).poisson(system.expected(truth)).astype(np.float64)
    return system, truth, data


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), n_axes=st.integers(1, 3),
       seed=st.integers(0, 2**16))
def test_divergence_is_minus_the_transpose_of_the_gradient(shape: list[int], n_axes: int, seed: int) -> None:
    n_axes = min(n_axes, len(shape))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    q = rng.standard_normal([n_axes] + shape)
    assert np.vdot(_gradient(x, n_axes), q) == pytest.approx(-np.vdot(x, _divergence(q, n_axes)), abs=1e-10)


def test_map_tv_reaches_a_minimum_of_its_objective() -> None:
    system, _, data = noisy_problem(11)
    beta = 2.0
    image = map_tv(data, system, beta, 3000)
    assert image.min() >= 0.0
    best = tv_objective(system, data, image, beta)
    # no feasible small perturbation, nor the ML-type images, does better
    rng = np.random.default_rng(12)
    scale = 0.05 * image.mean()
    for _ in range(20):
        trial = np.maximum(image + scale * rng.standard_normal(image.shape), 0.0)
        assert tv_objective(system, data, trial, beta) >= best - 1e-6 * abs(best)
    for other in (mlem(data, system, 50), osem(data, system, 5, 4), 1.01 * image, 0.99 * image):
        assert tv_objective(system, data, other, beta) > best


def test_map_tv_without_prior_is_maximum_likelihood_and_beta_trades_likelihood_for_smoothness() -> None:
    system, _, data = noisy_problem(13)
    ml = map_tv(data, system, 0.0, 3000)
    likelihood = system.log_likelihood(data, ml)
    assert likelihood > system.log_likelihood(data, mlem(data, system, 100))
    # ML is ill-conditioned; both methods creep towards it: within 1e-5 of MLEM after 3000 iterations each
    assert likelihood >= system.log_likelihood(data, mlem(data, system, 3000)) - 1e-5 * abs(likelihood)
    # a heavier prior trades likelihood for smoothness (at the minima: TV falls, the likelihood too)
    images = [map_tv(data, system, beta, 1500) for beta in (0.5, 2.0, 8.0)]
    assert tv(ml) > tv(images[0]) > tv(images[1]) > tv(images[2])
    likelihoods = [system.log_likelihood(data, x) for x in images]
    assert likelihood > likelihoods[0] > likelihoods[1] > likelihoods[2]


def test_map_tv_denoises_a_piecewise_constant_phantom() -> None:
    system, truth, data = noisy_problem(14)
    error = lambda x: np.linalg.norm(x - truth) / np.linalg.norm(truth)  # noqa: E731
    assert error(map_tv(data, system, 2.0, 1000)) < 0.7 * error(mlem(data, system, 1000))


def test_map_tv_batches_dtypes_and_callback() -> None:
    system, _, data = noisy_problem(15)
    batch = np.stack([data, 2.0 * data])
    images = map_tv(batch, system, 1.0, 50)
    assert images.shape == (2,) + system.in_shape
    np.testing.assert_allclose(images[1], map_tv(2.0 * data, system, 1.0, 50), rtol=1e-12)
    single = map_tv(data.astype(np.float32), system, 1.0, 50)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, images[0], rtol=1e-3, atol=1e-4 * images[0].max())
    calls = []
    last = map_tv(data, system, 1.0, 3, callback=lambda iteration, subset, x: calls.append((iteration, subset, x)))
    assert [(i, s) for i, s, _ in calls] == [(0, None), (1, None), (2, None)] and calls[-1][2] is last
    start = np.full(system.in_shape, 0.5)
    np.testing.assert_allclose(map_tv(data, system, 1.0, 50, x0=start, gamma=3.0),
                               map_tv(data, system, 1.0, 50, x0=start.copy(), gamma=3.0), rtol=0)


def test_map_tv_bad_input() -> None:
    import torch

    system, _, data = noisy_problem(16)
    for beta in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="beta must be finite and >= 0"):
            map_tv(data, system, beta, 2)
    with pytest.raises(ValueError, match="gamma must be finite and > 0"):
        map_tv(data, system, 1.0, 2, gamma=0.0)
    with pytest.raises(ValueError, match="n_iterations must be at least 1"):
        map_tv(data, system, 1.0, 0)
    with pytest.raises(ValueError, match=r"data has shape \(30, 34\)"):
        map_tv(data[:, :34], system, 1.0, 2)
    with pytest.raises(ValueError, match="x0 must be non-negative"):
        map_tv(data, system, 1.0, 2, x0=-np.ones(system.in_shape))
    with pytest.raises(TypeError, match="not torch tensors"):
        map_tv(torch.as_tensor(data), system, 1.0, 2)
