"""Properties of the parallel-beam Joseph projector: adjointness, linearity, analytic references."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from tests.helpers import box_projection, dot_test_error, ellipse_projection, ray_coordinates, supersample
from hypothesis import given
from hypothesis import strategies as st

from pet_projection import ImageGrid, LORProjector, ParallelBeamGeometry, ParallelBeamProjector

finite = dict(allow_nan=False, allow_infinity=False)


@st.composite
def geometries(draw: st.DrawFn, max_size: int = 24) -> ParallelBeamGeometry:
    """Random small geometries: 2D or 3D grids, anisotropic voxels, shifted origins, any angles and offsets."""
    ndim = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.integers(1, max_size)) for _ in range(ndim))
    voxel = tuple(draw(st.floats(0.3, 3.0)) for _ in range(ndim))
    origin = tuple(draw(st.floats(-5.0, 5.0)) for _ in range(ndim))
    n_views = draw(st.integers(1, 12))
    angles = draw(st.none() | st.lists(st.floats(-7.0, 7.0, **finite), min_size=n_views, max_size=n_views))
    return ParallelBeamGeometry(ImageGrid(shape, voxel, origin), n_views, draw(st.integers(1, 40)),
                                draw(st.floats(0.2, 3.0)), angles_rad=angles,
                                radial_offset_mm=draw(st.floats(-5.0, 5.0)))


def random_pair(op: ParallelBeamProjector, dtype: type, seed: int, batch: tuple[int, ...] = ()) -> tuple:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(batch + op.in_shape).astype(dtype),
            rng.standard_normal(batch + op.out_shape).astype(dtype))


@given(geometries(), st.integers(0, 2**32 - 1))
def test_adjoint_float64(geometry: ParallelBeamGeometry, seed: int) -> None:
    op = ParallelBeamProjector(geometry)
    assert dot_test_error(op, *random_pair(op, np.float64, seed)) < 1e-12


@given(geometries(), st.integers(0, 2**32 - 1))
def test_adjoint_float32(geometry: ParallelBeamGeometry, seed: int) -> None:
    op = ParallelBeamProjector(geometry)
    assert dot_test_error(op, *random_pair(op, np.float32, seed)) < 1e-5


@given(geometries(max_size=12), st.integers(0, 2**32 - 1), st.floats(-3.0, 3.0), st.floats(-3.0, 3.0))
def test_linearity(geometry: ParallelBeamGeometry, seed: int, alpha: float, beta: float) -> None:
    op = ParallelBeamProjector(geometry)
    rng = np.random.default_rng(seed)
    x1, x2 = rng.standard_normal((2,) + op.in_shape)
    y1, y2 = rng.standard_normal((2,) + op.out_shape)
    scale = 1.0 + np.abs(op(x1)).max() + np.abs(op(x2)).max()
    np.testing.assert_allclose(op(alpha * x1 + beta * x2), alpha * op(x1) + beta * op(x2), atol=1e-12 * scale)
    scale = 1.0 + np.abs(op.H(y1)).max() + np.abs(op.H(y2)).max()
    np.testing.assert_allclose(op.H(alpha * y1 + beta * y2), alpha * op.H(y1) + beta * op.H(y2), atol=1e-12 * scale)


@given(geometries(max_size=12), st.integers(0, 2**32 - 1))
def test_zero_and_nonnegativity(geometry: ParallelBeamGeometry, seed: int) -> None:
    op = ParallelBeamProjector(geometry)
    assert not np.any(op(np.zeros(op.in_shape)))
    assert not np.any(op.H(np.zeros(op.out_shape)))
    x, y = (np.abs(a) for a in random_pair(op, np.float64, seed))
    assert op(x).min() >= 0.0
    assert op.H(y).min() >= 0.0


@given(geometries(max_size=12), st.integers(0, 2**32 - 1))
def test_batch_axes_and_slices_match_single_calls(geometry: ParallelBeamGeometry, seed: int) -> None:
    op = ParallelBeamProjector(geometry)
    x, y = random_pair(op, np.float64, seed, batch=(2, 3))
    np.testing.assert_array_equal(op(x)[1, 2], op(x[1, 2]))
    np.testing.assert_array_equal(op.H(y)[0, 1], op.H(y[0, 1]))
    if geometry.grid.ndim == 3:
        slice_op = ParallelBeamProjector(ParallelBeamGeometry(
            ImageGrid(geometry.grid.shape[1:], geometry.grid.voxel_size_mm[1:], geometry.grid.origin_mm[1:]),
            geometry.n_views, geometry.n_bins, geometry.bin_width_mm, geometry.angles_rad, geometry.radial_offset_mm))
        np.testing.assert_array_equal(op(x)[0, 0, -1], slice_op(x[0, 0, -1]))


@given(geometries(max_size=16), st.integers(0, 2**32 - 1))
def test_same_rays_as_lor_projector(geometry: ParallelBeamGeometry, seed: int) -> None:
    """The plane-by-plane parallel-beam kernel and the ray-by-ray segment kernel sample the same points."""
    grid2d = ImageGrid(geometry.grid.shape[-2:], geometry.grid.voxel_size_mm[-2:], geometry.grid.origin_mm[-2:])
    op = ParallelBeamProjector(ParallelBeamGeometry(grid2d, geometry.n_views, geometry.n_bins, geometry.bin_width_mm,
                                                    geometry.angles_rad, geometry.radial_offset_mm))
    theta, s = ray_coordinates(op.geometry)
    half = grid2d.bounding_radius_mm() + 10.0
    point = np.stack([s * np.cos(theta), s * np.sin(theta)], axis=-1)
    direction = np.stack([-np.sin(theta), np.cos(theta)], axis=-1)
    lors = LORProjector(grid2d, point - half * direction, point + half * direction)
    x = np.random.default_rng(seed).random(grid2d.shape)
    np.testing.assert_allclose(op(x), lors(x), rtol=1e-9, atol=1e-9 * (1.0 + np.abs(x).sum()))


def test_rays_missing_the_grid_are_zero() -> None:
    grid = ImageGrid((20, 30), (1.0, 0.5), origin_mm=(3.0, -2.0))
    geometry = ParallelBeamGeometry(grid, 17, 60, 1.0)
    values = ParallelBeamProjector(geometry)(np.ones(grid.shape))
    distance = np.abs(ray_coordinates(geometry)[1] - (-2.0 * np.cos(ray_coordinates(geometry)[0])
                                                       + 3.0 * np.sin(ray_coordinates(geometry)[0])))
    # a ray farther from the grid centre than its bounding circle (plus one pixel of interpolation) misses it
    miss = distance > math.hypot(15.0 / 2, 20.0 / 2) + 1.0
    assert miss.sum() > 100
    assert not np.any(values[miss])
    assert np.all(values[distance < 5.0] > 0)


def test_equal_total_mass_per_view() -> None:
    """Sum over bins times bin width is the image integral for every view (a smooth image, fine bins)."""
    grid = ImageGrid((64, 64), 1.0)
    x, y = grid.meshgrid_mm()
    image = np.exp(-(x - 4.0) ** 2 / 60.0 - (y + 3.0) ** 2 / 90.0)
    geometry = ParallelBeamGeometry(grid, 37, 128, 0.75)
    mass = ParallelBeamProjector(geometry)(image).sum(axis=1) * geometry.bin_width_mm
    # Joseph's per-pixel footprint integrates exactly only in the continuum; 0.1% covers the sampling ripple
    np.testing.assert_allclose(mass, image.sum(), rtol=1e-3)


def test_supersampled_disc_matches_analytic_projection() -> None:
    grid = ImageGrid((256, 256), 1.0)
    center, radius = (10.0, -20.0), 80.0
    image = supersample(grid, lambda x, y: (x - center[0]) ** 2 + (y - center[1]) ** 2 <= radius**2)
    geometry = ParallelBeamGeometry(grid, 180, 367, 1.0)
    exact = ellipse_projection(*ray_coordinates(geometry), center, (radius, radius))
    error = np.linalg.norm(ParallelBeamProjector(geometry)(image) - exact) / np.linalg.norm(exact)
    assert error < 0.01


def test_ellipse_with_anisotropic_pixels_matches_analytic_projection() -> None:
    grid = ImageGrid((200, 160), (0.8, 1.1), origin_mm=(2.0, -3.0))
    center, axes, phi = (-5.0, 8.0), (55.0, 30.0), 0.4

    def inside(x, y):
        u = (x - center[0]) * np.cos(phi) + (y - center[1]) * np.sin(phi)
        v = -(x - center[0]) * np.sin(phi) + (y - center[1]) * np.cos(phi)
        return (u / axes[0]) ** 2 + (v / axes[1]) ** 2 <= 1.0

    image = supersample(grid, inside)
    geometry = ParallelBeamGeometry(grid, 90, 240, 0.9, radial_offset_mm=0.3)
    exact = ellipse_projection(*ray_coordinates(geometry), center, axes, phi)
    error = np.linalg.norm(ParallelBeamProjector(geometry)(image) - exact) / np.linalg.norm(exact)
    assert error < 0.01


def test_box_matches_exact_chord_lengths() -> None:
    grid = ImageGrid((128, 128), 1.0)
    center, half = (6.0, -4.0), (30.0, 18.0)
    image = supersample(grid, lambda x, y: (np.abs(x - center[0]) <= half[0]) & (np.abs(y - center[1]) <= half[1]))
    geometry = ParallelBeamGeometry(grid, 60, 190, 1.0)
    exact = box_projection(*ray_coordinates(geometry), center, half)
    error = np.linalg.norm(ParallelBeamProjector(geometry)(image) - exact) / np.linalg.norm(exact)
    assert error < 0.01


def test_golden_axis_aligned_rays() -> None:
    """theta = 0 integrates a column (voxel sum times dy), theta = pi/2 a row (times dx): computable by hand."""
    grid = ImageGrid((5, 4), (2.0, 0.5))  # dy = 2 mm, dx = 0.5 mm; x centres -0.75, -0.25, 0.25, 0.75
    image = np.arange(20, dtype=np.float64).reshape(5, 4)
    # bins at s = -0.75 .. 0.75 (bin width 0.5): the column centres at theta = 0
    columns = ParallelBeamProjector(ParallelBeamGeometry(grid, 1, 4, 0.5, angles_rad=[0.0]))(image)
    np.testing.assert_allclose(columns[0], [40 * 2.0, 45 * 2.0, 50 * 2.0, 55 * 2.0], rtol=1e-12)
    # bins at s = -4 .. 4 mm (width 2): the row centres y = -4 .. 4 at theta = pi/2
    rows = ParallelBeamProjector(ParallelBeamGeometry(grid, 1, 5, 2.0, angles_rad=[math.pi / 2]))(image)
    np.testing.assert_allclose(rows[0], [6 * 0.5, 22 * 0.5, 38 * 0.5, 54 * 0.5, 70 * 0.5], rtol=1e-12)
    # theta = pi reverses the radial axis of theta = 0
    flipped = ParallelBeamProjector(ParallelBeamGeometry(grid, 1, 4, 0.5, angles_rad=[math.pi]))(image)
    np.testing.assert_allclose(flipped[0], columns[0][::-1], rtol=1e-12)


def test_point_lands_at_its_sinusoid() -> None:
    """A single pixel at (x, y) projects to the bin nearest s = x cos(theta) + y sin(theta)."""
    grid = ImageGrid((64, 64), 1.0)
    image = np.zeros(grid.shape)
    image[40, 13] = 1.0  # x = 13 - 31.5 = -18.5, y = 40 - 31.5 = 8.5
    geometry = ParallelBeamGeometry(grid, 50, 101, 1.0)
    sinogram = ParallelBeamProjector(geometry)(image)
    expected = -18.5 * np.cos(geometry.angles_rad) + 8.5 * np.sin(geometry.angles_rad)
    centroid = (sinogram * geometry.radial_positions_mm()).sum(axis=1) / sinogram.sum(axis=1)
    np.testing.assert_allclose(centroid, expected, atol=0.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_deterministic_bits_for_any_thread_count(dtype: type) -> None:
    op = ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((48, 40), 1.0), 30, 70, 1.0))
    x, y = random_pair(op, dtype, 7, batch=(3,))
    reference = op(x), op.H(y)
    previous = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            for _ in range(2):
                assert np.array_equal(op(x), reference[0])
                assert np.array_equal(op.H(y), reference[1])
    finally:
        numba.set_num_threads(previous)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_dtype_and_shape(dtype: type) -> None:
    op = ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((3, 8, 9), 1.0), 5, 11, 1.0))
    y = op(np.ones((2, 3, 8, 9), dtype=dtype))
    assert y.dtype == dtype and y.shape == (2, 3, 5, 11)
    x = op.adjoint(y)
    assert x.dtype == dtype and x.shape == (2, 3, 8, 9)
    assert op.in_shape == (3, 8, 9) and op.out_shape == (3, 5, 11)


def test_norm_matches_largest_singular_value() -> None:
    op = ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((10, 9), (1.0, 1.5)), 7, 15, 1.2))
    matrix = np.stack([op(e.reshape(op.in_shape)).ravel() for e in np.eye(90)], axis=1)
    np.testing.assert_allclose(op.norm(n_iter=500, rtol=1e-12), np.linalg.norm(matrix, 2), rtol=1e-6)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 1), (1, 2), (3, 1, 5)])
def test_grids_one_voxel_thin_never_read_outside(shape: tuple[int, ...]) -> None:
    """Regression: with one voxel along the interpolation axis there is no inner range at all.

    An inverted empty range once became a non-empty one and read one element past a row. The batch
    item after the zero image is NaN, so any read past it shows up as NaN in the zero image's result.
    """
    grid = ImageGrid(shape, (1.3, 0.7) if len(shape) == 2 else (1.0, 1.3, 0.7))
    images = np.zeros((2,) + shape)
    images[1] = np.nan
    # rays through voxel centres (an odd bin count centres a bin on s = 0 at 0 and 90 degrees) are the risky ones
    for n_bins, offset in ((9, 0.0), (10, 0.4), (9, 0.3)):
        op = ParallelBeamProjector(ParallelBeamGeometry(grid, 16, n_bins, 0.8, radial_offset_mm=offset))
        assert not np.any(op(images)[0])
    rng = np.random.default_rng(1)
    start = rng.uniform(-9, 9, (64, 3)) * [1, 1, len(shape) == 3]
    end = rng.uniform(-9, 9, (64, 3)) * [1, 1, len(shape) == 3]
    start[:8, :2], end[:8, :2] = [0.0, -9.0], [0.0, 9.0]  # along y through the x = 0 voxel centres
    start[8:16, :2], end[8:16, :2] = [-9.0, 0.0], [9.0, 0.0]  # along x through the y = 0 voxel centres
    lors = LORProjector(grid, start, end)
    assert not np.any(lors(images)[0])


def test_view_subset_projects_the_chosen_views() -> None:
    geometry = ParallelBeamGeometry(ImageGrid((12, 12), 2.0), 9, 17, 1.6)
    op = ParallelBeamProjector(geometry)
    x = np.random.default_rng(0).random(op.in_shape)
    views = np.array([7, 1, 4])
    np.testing.assert_allclose(op.view_subset(views)(x), op(x)[views], rtol=1e-12)
    with pytest.raises(ValueError, match="integer view indices"):
        op.view_subset([0.5])
