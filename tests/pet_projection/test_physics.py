"""System-model physics: Gaussian resolution, attenuation factors, PETSystemModel (matched, subsets, likelihood)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.helpers import dot_test_error, ellipse_projection, ray_coordinates, supersample
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from pet_projection import (ImageGrid, LinearOperator, LORProjector, ParallelBeamGeometry, ParallelBeamProjector,
                            PETSinogramProjector, RingScannerGeometry, SinogramLayout, TOFParameters)
from pet_projection.physics import (FWHM_PER_SIGMA, BroadcastDiagonalOperator, GaussianResolution, PETSystemModel,
                                    attenuation_factors, gaussian_kernel)

# Linear attenuation coefficient of water at 511 keV, 0.096 /cm (Hubbell & Seltzer, NIST XCOM).
MU_WATER_PER_MM = 0.0096


def tiny_scanner() -> RingScannerGeometry:
    """12 sides x 3 crystals (36 per ring) of 4 mm at 40 mm radius, 3 rings 4 mm apart."""
    return RingScannerGeometry(radius_mm=40.0, n_sides=12, crystals_per_side=3, crystal_spacing_mm=4.0,
                               ring_positions_mm=(-4.0, 0.0, 4.0))


def pet_projector(axis_order=("radial", "view", "plane")) -> PETSinogramProjector:
    layout = SinogramLayout(tiny_scanner(), axis_order=axis_order)
    return PETSinogramProjector(layout, ImageGrid((4, 16, 16), (3.0, 2.5, 2.5)))


def parallel_projector(shape=(20, 18), voxel=2.0, n_views=12, n_bins=25) -> ParallelBeamProjector:
    return ParallelBeamProjector(ParallelBeamGeometry(ImageGrid(shape, voxel), n_views, n_bins, 2.0))


def random_factors(rng: np.random.Generator, shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(attenuation in (0, 1], normalisation around 1, background > 0) of ``shape``."""
    return rng.uniform(0.2, 1.0, shape), rng.uniform(0.5, 1.5, shape), rng.uniform(0.01, 0.2, shape)


# --- GaussianResolution --------------------------------------------------------------------------------

@settings(max_examples=25)
@given(st.lists(st.integers(1, 12), min_size=2, max_size=3), st.data(), st.sampled_from([np.float32, np.float64]),
       st.integers(0, 2**32 - 1))
def test_gaussian_resolution_is_self_adjoint(shape, data, dtype, seed: int) -> None:
    ndim = len(shape)
    voxel = data.draw(st.lists(st.floats(0.5, 3.0), min_size=ndim, max_size=ndim))
    fwhm = data.draw(st.lists(st.sampled_from([0.0, 0.5, 2.0, 4.5, 9.0]), min_size=ndim, max_size=ndim))
    op = GaussianResolution(ImageGrid(shape, voxel), fwhm)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2,) + op.in_shape).astype(dtype)
    y = rng.standard_normal((2,) + op.out_shape).astype(dtype)
    assert dot_test_error(op, x, y) < (1e-12 if dtype == np.float64 else 1e-5)
    out = op(x)
    assert out.dtype == dtype and out.shape == x.shape
    np.testing.assert_array_equal(op.adjoint(x), out)  # symmetric matrix: adjoint is the forward map


def test_gaussian_kernel_sums_to_one_and_is_truncated() -> None:
    kernel = gaussian_kernel(2.0)
    assert kernel.size == 2 * 8 + 1  # 4 sigma = 8 voxels each side
    np.testing.assert_allclose(kernel, kernel[::-1], rtol=0, atol=0)
    assert abs(kernel.sum() - 1.0) < 1e-15
    np.testing.assert_array_equal(gaussian_kernel(0.0), [1.0])
    x = np.random.default_rng(0).random((5, 6))
    identity = GaussianResolution(ImageGrid((5, 6), 1.0), 0.0)
    assert identity.kernels == () and identity(x) is not x
    np.testing.assert_array_equal(identity(x), x)


def test_gaussian_resolution_preserves_mass_away_from_edges() -> None:
    grid = ImageGrid((9, 40, 40), (2.0, 1.5, 1.0))
    op = GaussianResolution(grid, (4.0, 6.0, 3.0))
    x = np.zeros(grid.shape)
    x[4, 15:25, 17:23] = np.random.default_rng(1).random((10, 6))
    y = op(x)
    assert abs(y.sum() - x.sum()) < 1e-12 * x.sum()
    assert y[4].max() < x.max()  # it blurs
    edge = np.zeros(grid.shape)
    edge[4, 20, 0] = 1.0
    assert op(edge).sum() < 0.99  # mass leaves the grid at a zero boundary


def measured_fwhm(profile: np.ndarray, spacing_mm: float) -> float:
    """Full width at half maximum of a single-peaked sampled profile, by linear interpolation of the crossings."""
    peak = int(np.argmax(profile))
    half = profile[peak] / 2.0
    right = peak + int(np.argmax(profile[peak:] < half))
    left = peak - int(np.argmax(profile[peak::-1] < half))
    x_right = right - 1 + (profile[right - 1] - half) / (profile[right - 1] - profile[right])
    x_left = left + 1 - (profile[left + 1] - half) / (profile[left + 1] - profile[left])
    return (x_right - x_left) * spacing_mm


@pytest.mark.parametrize("shape, voxel, fwhm", [
    ((41, 41), (1.0, 2.0), (6.0, 9.0)),
    ((31, 35, 33), (2.0, 1.0, 1.5), (8.0, 5.0, 0.0)),
    ((31, 35, 33), 2.0, 7.0),
])
def test_gaussian_resolution_fwhm_of_a_point(shape, voxel, fwhm) -> None:
    grid = ImageGrid(shape, voxel)
    op = GaussianResolution(grid, fwhm)
    centre = tuple(n // 2 for n in shape)
    x = np.zeros(shape)
    x[centre] = 1.0
    y = op(x)
    for axis in range(grid.ndim):
        index = list(centre)
        index[axis] = slice(None)
        profile = y[tuple(index)]
        spacing = grid.voxel_size_mm[axis]
        target = op.fwhm_mm[axis]
        if target == 0.0:
            assert np.count_nonzero(profile) == 1  # identity on this axis
            continue
        assert abs(measured_fwhm(profile, spacing) - target) < 0.03 * target
        # second moment of the (separable) profile: sigma^2
        k = (np.arange(shape[axis]) - centre[axis]) * spacing
        variance = np.sum(profile * k**2) / profile.sum()
        assert abs(math.sqrt(variance) - target / FWHM_PER_SIGMA) < 0.01 * target / FWHM_PER_SIGMA


def test_gaussian_resolution_torch_paths_match_scipy() -> None:
    torch = pytest.importorskip("torch")
    op = GaussianResolution(ImageGrid((6, 10, 12), (2.0, 1.0, 1.5)), (5.0, 3.0, 4.0))
    x = np.random.default_rng(3).random((2,) + op.in_shape)
    expected = op(x)
    out = op(torch.from_numpy(x))  # CPU tensors: scipy through NumPy views
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-13, atol=1e-15)
    # the conv1d path that torch CUDA tensors take, run here on a CPU tensor
    np.testing.assert_allclose(op._apply_device(torch.from_numpy(x)).numpy(), expected, rtol=1e-12, atol=1e-15)


def test_gaussian_resolution_bad_input() -> None:
    grid = ImageGrid((8, 8), 1.0)
    with pytest.raises(ValueError, match="fwhm_mm must be non-negative"):
        GaussianResolution(grid, -1.0)
    with pytest.raises(ValueError, match="fwhm_mm must have 2 entries"):
        GaussianResolution(grid, (1.0, 2.0, 3.0))
    with pytest.raises(TypeError, match="grid must be an ImageGrid"):
        GaussianResolution((8, 8), 1.0)
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 8, 8\)"):
        GaussianResolution(grid, 2.0)(np.zeros((8, 9)))


# --- attenuation factors ----------------------------------------------------------------------------

def test_attenuation_factors_of_a_uniform_disc_match_the_chord_lengths() -> None:
    grid = ImageGrid((64, 64), 2.0)
    geometry = ParallelBeamGeometry(grid, 30, 80, 2.0)
    projector = ParallelBeamProjector(geometry)
    radius = 50.0
    mu = MU_WATER_PER_MM * supersample(grid, lambda x, y: x**2 + y**2 <= radius**2)
    factors = attenuation_factors(projector, mu)
    theta, s = ray_coordinates(geometry)
    expected = np.exp(-MU_WATER_PER_MM * ellipse_projection(theta, s, (0.0, 0.0), (radius, radius)))
    assert factors.max() <= 1.0 and factors.min() > 0.0
    # away from the rim (where chords change steeply with s) the pixelated disc's chords match the exact
    # ones to within half a pixel (1 mm)
    middle = np.abs(s) < 0.9 * radius
    np.testing.assert_allclose(-np.log(factors[middle]) / MU_WATER_PER_MM,
                               -np.log(expected[middle]) / MU_WATER_PER_MM, atol=1.0)
    np.testing.assert_array_equal(factors[np.abs(s) > radius + 3.0], 1.0)  # rays that miss
    assert (-np.log(factors)).max() == pytest.approx(MU_WATER_PER_MM * 2 * radius, rel=5e-3)


def test_attenuation_factors_torch_and_bad_input() -> None:
    torch = pytest.importorskip("torch")
    projector = parallel_projector()
    mu = np.full(projector.in_shape, MU_WATER_PER_MM, dtype=np.float32)
    factors = attenuation_factors(projector, torch.from_numpy(mu))
    assert isinstance(factors, torch.Tensor) and factors.dtype == torch.float32
    np.testing.assert_allclose(factors.numpy(), attenuation_factors(projector, mu), rtol=1e-6)
    with pytest.raises(ValueError, match="non-negative"):
        attenuation_factors(projector, -mu)
    mu[3, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        attenuation_factors(projector, mu)
    with pytest.raises(TypeError, match="LinearOperator"):
        attenuation_factors("projector", mu)


# --- PETSystemModel -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("make", [lambda: parallel_projector(), lambda: parallel_projector((3, 16, 14)),
                                  lambda: pet_projector(), lambda: pet_projector(("plane", "view", "radial"))])
def test_system_linear_part_is_matched(make, dtype, tolerance: float) -> None:
    projector = make()
    rng = np.random.default_rng(7)
    attenuation, normalisation, background = random_factors(rng, projector.out_shape)
    grid = ImageGrid(projector.in_shape, 2.0)
    system = PETSystemModel(projector, attenuation=attenuation, normalisation=normalisation, background=background,
                            resolution=GaussianResolution(grid, 4.0))
    x = rng.standard_normal((2,) + projector.in_shape).astype(dtype)
    y = rng.standard_normal((2,) + projector.out_shape).astype(dtype)
    assert dot_test_error(system.linear, x, y) < tolerance
    # the parts, composed by hand
    blurred = GaussianResolution(grid, 4.0)(x)
    np.testing.assert_allclose(system.linear(x), attenuation * normalisation * projector(blurred),
                               rtol=10 * tolerance, atol=10 * tolerance)
    np.testing.assert_allclose(system.expected(x), system.linear(x) + background, rtol=10 * tolerance)
    sensitivity = system.sensitivity(dtype)
    assert sensitivity.dtype == dtype and sensitivity.shape == projector.in_shape
    np.testing.assert_allclose(sensitivity, GaussianResolution(grid, 4.0)(projector.adjoint(attenuation
                                                                                             * normalisation)),
                               rtol=10 * tolerance, atol=10 * tolerance)


class FakeTOFProjector(LinearOperator):
    """A non-TOF projector with its values split over ``n_tof`` fixed fractions: ``out_shape + (n_tof,)``."""

    def __init__(self, projector: LinearOperator, fractions: np.ndarray) -> None:
        self.projector = projector
        self.fractions = fractions
        self.in_shape = projector.in_shape
        self.out_shape = projector.out_shape + fractions.shape
        self.view_axis = projector.view_axis

    def _apply(self, x):
        return np.ascontiguousarray(self.projector._apply(x)[..., None] * self.fractions.astype(x.dtype))

    def _adjoint(self, y):
        return self.projector._adjoint(np.ascontiguousarray(y @ self.fractions.astype(y.dtype)))

    def view_subset(self, views):
        return FakeTOFProjector(self.projector.view_subset(views), self.fractions)


def test_non_tof_factors_serve_a_tof_projector() -> None:
    non_tof = pet_projector()
    tof = PETSinogramProjector(non_tof.layout, non_tof.grid, tof=TOFParameters(5, 20.0, 30.0))
    rng = np.random.default_rng(4)
    attenuation, normalisation, background = random_factors(rng, non_tof.out_shape)
    system = PETSystemModel(tof, attenuation=attenuation[..., None], normalisation=normalisation[..., None],
                            background=background[..., None] / 5)
    x = rng.random((2,) + tof.in_shape)
    expected = attenuation * normalisation * tof(x).sum(-1) + background
    np.testing.assert_allclose(system.expected(x).sum(-1), expected, rtol=1e-12)
    assert dot_test_error(system.linear, x, rng.random((2,) + tof.out_shape)) < 1e-12
    views = [3, 0]
    np.testing.assert_allclose(system.view_subset(views).expected(x), system.select_views(system.expected(x), views),
                               rtol=1e-12)


def test_factors_broadcast_without_full_size_copies() -> None:
    projector = parallel_projector()
    tof = FakeTOFProjector(projector, np.array([0.2, 0.5, 0.3]))
    rng = np.random.default_rng(2)
    attenuation, _, background = random_factors(rng, projector.out_shape)
    normalisation = rng.uniform(0.5, 1.5, projector.out_shape[-1])  # per radial bin only
    system = PETSystemModel(tof, attenuation=attenuation[..., None], normalisation=normalisation[:, None],
                            background=background[..., None] / 3.0)
    x = rng.random(projector.in_shape)
    non_tof = PETSystemModel(projector, attenuation=attenuation, normalisation=normalisation, background=background)
    np.testing.assert_allclose(system.expected(x).sum(-1), non_tof.expected(x), rtol=1e-12)
    np.testing.assert_allclose(system.sensitivity(), non_tof.sensitivity(), rtol=1e-12)
    assert dot_test_error(system.linear, rng.random(tof.in_shape), rng.random(tof.out_shape)) < 1e-12
    diagonal = system.linear.outer
    assert isinstance(diagonal, BroadcastDiagonalOperator) and diagonal.weights.shape == attenuation.shape + (1,)


@pytest.mark.parametrize("make", [lambda: parallel_projector((3, 16, 14)), lambda: pet_projector(),
                                  lambda: pet_projector(("view", "plane", "radial")),
                                  lambda: FakeTOFProjector(pet_projector(), np.array([0.4, 0.6]))])
def test_view_subset_equals_the_full_system_restricted_to_the_views(make) -> None:
    projector = make()
    rng = np.random.default_rng(5)
    attenuation, normalisation, background = random_factors(rng, projector.out_shape)
    normalisation = np.take(normalisation, [0], axis=projector.view_axis)  # size-1 view axis: broadcast
    system = PETSystemModel(projector, attenuation=attenuation, normalisation=normalisation, background=background,
                            resolution=GaussianResolution(ImageGrid(projector.in_shape, 2.0), 3.0))
    x = rng.random((2,) + projector.in_shape)
    full = system.expected(x)
    n_views = projector.out_shape[projector.view_axis]
    views = np.array([n_views - 1, 0, 2])
    subset = system.view_subset(views)
    np.testing.assert_allclose(subset.expected(x), system.select_views(full, views), rtol=1e-12)
    np.testing.assert_array_equal(system.select_views(full, views),
                                  np.take(full, views, axis=1 + projector.view_axis))
    # the subsets' sensitivities add up to the full sensitivity
    parts = [system.view_subset(np.arange(k, n_views, 3)).sensitivity() for k in range(3)]
    np.testing.assert_allclose(sum(parts), system.sensitivity(), rtol=1e-12)


def test_log_likelihood_is_the_poisson_log_pmf_without_the_constant() -> None:
    projector = parallel_projector()
    rng = np.random.default_rng(11)
    attenuation, normalisation, background = random_factors(rng, projector.out_shape)
    system = PETSystemModel(projector, attenuation=attenuation, normalisation=normalisation, background=background)
    x = rng.random((3,) + projector.in_shape)
    ybar = system.expected(x)
    y = rng.poisson(ybar).astype(np.float64)
    expected = (stats.poisson.logpmf(y, ybar) + special.gammaln(y + 1)).sum(axis=(-2, -1))
    np.testing.assert_allclose(system.log_likelihood(y, x), expected, rtol=1e-12)
    assert isinstance(system.log_likelihood(y[0], x[0]), float)
    assert system.log_likelihood(y[0], x[0]) == pytest.approx(expected[0], rel=1e-12)
    # y > 0 where ybar = 0 is impossible under the model
    without_background = PETSystemModel(projector)
    counts = np.zeros(projector.out_shape)
    counts[0, 0] = 1.0
    assert without_background.log_likelihood(counts, np.zeros(projector.in_shape)) == -np.inf
    assert without_background.log_likelihood(0 * counts, np.zeros(projector.in_shape)) == 0.0


def test_system_torch_tensors_give_the_numpy_values() -> None:
    torch = pytest.importorskip("torch")
    projector = pet_projector()
    rng = np.random.default_rng(9)
    attenuation, normalisation, background = random_factors(rng, projector.out_shape)
    system = PETSystemModel(projector, attenuation=torch.from_numpy(attenuation), normalisation=normalisation,
                            background=background, resolution=GaussianResolution(ImageGrid((4, 16, 16), 2.5), 5.0))
    x = rng.random(projector.in_shape).astype(np.float32)
    y = rng.poisson(system.expected(x.astype(np.float64))).astype(np.float32)
    expected = system.expected(torch.from_numpy(x))
    assert isinstance(expected, torch.Tensor) and expected.dtype == torch.float32
    np.testing.assert_allclose(expected.numpy(), system.expected(x), rtol=1e-6)
    sensitivity = system.sensitivity(like=torch.from_numpy(x))
    assert isinstance(sensitivity, torch.Tensor) and sensitivity.dtype == torch.float32
    np.testing.assert_allclose(sensitivity.numpy(), system.sensitivity(np.float32), rtol=1e-6)
    assert system.log_likelihood(torch.from_numpy(y), torch.from_numpy(x)) == pytest.approx(
        system.log_likelihood(y, x), rel=1e-6)  # float32 terms
    views = [1, 4]
    np.testing.assert_array_equal(system.select_views(torch.from_numpy(y), views).numpy(),
                                  system.select_views(y, views))


def test_system_bad_input() -> None:
    projector = parallel_projector()
    shape = projector.out_shape
    with pytest.raises(ValueError, match=r"attenuation has shape \(12, 24\).*out_shape \(12, 25\)"):
        PETSystemModel(projector, attenuation=np.ones((12, 24)))
    with pytest.raises(ValueError, match="normalisation must be non-negative"):
        PETSystemModel(projector, normalisation=-np.ones(shape))
    with pytest.raises(ValueError, match="background must be finite"):
        PETSystemModel(projector, background=np.full(shape, np.inf))
    with pytest.raises(TypeError, match="projector must be a LinearOperator"):
        PETSystemModel(np.ones(shape))
    with pytest.raises(ValueError, match=r"resolution must map .*\(20, 18\)"):
        PETSystemModel(projector, resolution=GaussianResolution(ImageGrid((20, 19), 2.0), 3.0))
    system = PETSystemModel(projector)
    with pytest.raises(ValueError, match="data must be non-negative"):
        system.log_likelihood(-np.ones(shape), np.ones(projector.in_shape))
    with pytest.raises(ValueError, match=r"data has shape \(12, 24\)"):
        system.log_likelihood(np.ones((12, 24)), np.ones(projector.in_shape))
    with pytest.raises(ValueError, match=r"views must lie in \[0, 12\)"):
        system.view_subset([3, 12])
    grid = ImageGrid((8, 8), 2.0)
    lor_system = PETSystemModel(LORProjector(grid, np.array([[-20.0, 0.0]]), np.array([[20.0, 1.0]])))
    with pytest.raises(TypeError, match="LORProjector has no view"):
        lor_system.view_subset([0])
