"""Radon mask augmentation: image masks, sinogram masks, the DMM cell basis and the positive/negative split."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

from pet_projection import ImageGrid, ParallelBeamGeometry, ParallelBeamProjector
from pet_projection.masks import (
    DEFAULT_THRESHOLD_PIXELS,
    LAYOUTS,
    CellGrid,
    CellSinogramBasis,
    apply_support,
    body_support,
    consistency_residuals,
    default_threshold_mm,
    disc_image,
    enforce_consistency,
    polygon_masks,
    radon_mask,
    random_ellipses,
    random_polygons,
    sinogram_window,
    soft_radon_mask,
    split_by_mask,
)

# Anisotropic pixels and a shifted origin, so no formula silently assumes square pixels at 0.
GRID = ImageGrid((32, 36), (1.5, 1.25), (1.0, -2.0))
# A radial offset and a bin width unrelated to the pixels keep every ray off the
# threshold: with aligned bins Joseph weights of exactly 1/2 put rays exactly on it.
GEOMETRY = ParallelBeamGeometry(GRID, n_views=24, n_bins=57, bin_width_mm=1.1, radial_offset_mm=0.31)
PROJECTOR = ParallelBeamProjector(GEOMETRY)


def _geometry(grid: ImageGrid) -> ParallelBeamGeometry:
    return ParallelBeamGeometry(grid, 24, 57, 1.1, radial_offset_mm=0.31)


def _pixel_distance(grid: ImageGrid, mask: np.ndarray) -> np.ndarray:
    """Distance in mm of the centres of the pixels set in ``mask`` from the grid centre."""
    x, y = grid.meshgrid_mm()
    oy, ox = grid.origin_mm
    return np.hypot(x - ox, y - oy)[mask != 0]


# ----------------------------------------------------------------------------- sinogram masks

@given(size=st.integers(6, 20), pixel=st.floats(0.5, 3.0), n_views=st.integers(1, 24),
       bin_fraction=st.floats(0.3, 0.9), offset=st.floats(-1.0, 1.0),
       position=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_single_pixel_marks_its_sinusoid(size: int, pixel: float, n_views: int, bin_fraction: float, offset: float,
                                         position: tuple[float, float]) -> None:
    grid = ImageGrid((size, size + 3), pixel)
    i, j = int(position[0] * (size - 1)), int(position[1] * (size + 2))
    image = np.zeros(grid.shape)
    image[i, j] = 1.0
    bin_width = bin_fraction * pixel
    n_bins = int(2 * grid.bounding_radius_mm() / bin_width) + 3
    geometry = ParallelBeamGeometry(grid, n_views, n_bins, bin_width, radial_offset_mm=offset * pixel)
    marked = radon_mask(image, ParallelBeamProjector(geometry))
    x, y = grid.centers_mm(1)[j], grid.centers_mm(0)[i]
    theta = geometry.angles_rad[:, None]
    distance = np.abs(geometry.radial_positions_mm()[None, :] - (x * np.cos(theta) + y * np.sin(theta)))
    # Joseph's footprint of one pixel on a ray at distance d, with c = max(|cos|, |sin|) (the
    # dominant axis): (1 - d / (pixel c)) * pixel / c. It exceeds half a pixel exactly when
    # d < pixel c (1 - c / 2), which lies in [0.457, 0.5] pixel for c in [1/sqrt 2, 1].
    c = np.maximum(np.abs(np.cos(theta)), np.abs(np.sin(theta)))
    reach = pixel * c * (1.0 - DEFAULT_THRESHOLD_PIXELS * c)
    clear = np.abs(distance - reach) > 1e-9 * pixel
    np.testing.assert_array_equal(marked[clear], (distance < reach)[clear])
    assert np.all(distance[marked] < 0.5 * pixel + 1e-9)  # within half a pixel of s = x cos + y sin
    assert np.all(marked.any(axis=1))  # the nearest bin is at most 0.45 pixel away: every view sees it


def test_default_threshold_is_half_the_smaller_pixel() -> None:
    assert default_threshold_mm(PROJECTOR) == 0.5 * 1.25
    marked = radon_mask(np.ones(GRID.shape), PROJECTOR, threshold_mm=0.0)
    assert np.array_equal(marked, PROJECTOR(np.ones(GRID.shape)) > 0)


def test_radon_mask_batches_and_torch(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    masks = random_ellipses(GRID, 6, rng).reshape(2, 3, *GRID.shape)
    batched = radon_mask(masks, PROJECTOR)
    assert batched.shape == (2, 3) + GEOMETRY.sinogram_shape and batched.dtype == bool
    for index in np.ndindex(2, 3):
        assert np.array_equal(batched[index], radon_mask(masks[index], PROJECTOR))
    tensor = radon_mask(torch.from_numpy(masks), PROJECTOR)
    assert tensor.dtype == torch.bool and np.array_equal(tensor.numpy(), batched)
    soft = soft_radon_mask(torch.from_numpy(masks), PROJECTOR)
    assert isinstance(soft, torch.Tensor)
    np.testing.assert_array_equal(soft.numpy(), soft_radon_mask(masks, PROJECTOR))


def test_soft_radon_mask_is_a_monotone_fraction(rng: np.random.Generator) -> None:
    outer = random_ellipses(GRID, 8, rng)
    inner = outer * (rng.random(outer.shape) < 0.5)
    soft_outer, soft_inner = soft_radon_mask(outer, PROJECTOR), soft_radon_mask(inner, PROJECTOR)
    assert soft_outer.min() >= 0.0 and soft_outer.max() <= 1.0
    assert np.all(soft_inner <= soft_outer)  # non-negative Joseph weights: a sub-mask is never longer
    assert np.array_equal(soft_outer > 0, radon_mask(outer, PROJECTOR, threshold_mm=0.0))
    ones = soft_radon_mask(np.ones((1,) + GRID.shape), PROJECTOR)[0]
    hits = PROJECTOR(np.ones(GRID.shape)) > 0
    assert not hits.all(), "some rays must miss the grid for this check"
    np.testing.assert_allclose(ones[hits], 1.0, rtol=1e-12)
    assert np.all(ones[~hits] == 0.0)


def test_disc_restriction_bounds_the_radial_range(rng: np.random.Generator) -> None:
    radius = 9.0
    masks = random_ellipses(GRID, 8, rng, center_radius_mm=0.0, semi_axes_mm=(8.0, 16.0)) * disc_image(GRID, radius)
    x, y = GRID.meshgrid_mm()
    assert np.all(np.hypot(x, y)[masks.any(axis=0) != 0] <= radius)
    window = sinogram_window(GEOMETRY, radius + max(GRID.voxel_size_mm))
    marked = radon_mask(masks, PROJECTOR, threshold_mm=0.0)
    assert not np.any(marked & ~window)
    assert np.any(marked & ~sinogram_window(GEOMETRY, radius - max(GRID.voxel_size_mm)))  # the bound is not slack


def test_sinogram_window_by_hand() -> None:
    # angles v pi / 4 = 0, pi/4, pi/2, 3 pi/4; bins s = -2, -1, 0, 1, 2 mm
    geometry = ParallelBeamGeometry(ImageGrid((4, 4), 1.0), n_views=4, n_bins=5, bin_width_mm=1.0)
    window = sinogram_window(geometry, radius_mm=1.0, angle_range_rad=(math.pi / 4, math.pi / 2))
    expected = np.zeros((4, 5), dtype=bool)
    expected[1:3, 1:4] = True
    assert np.array_equal(window, expected)
    assert sinogram_window(geometry).all()


# ----------------------------------------------------------------------------- DMM cells

CELLS = CellGrid(GRID, 5)


def test_cells_partition_the_field_of_view() -> None:
    images = CELLS.cell_images()
    assert images.shape == (25,) + GRID.shape and images.sum(axis=(1, 2)).min() >= 1
    assert images.sum(axis=0).max() == 1.0  # disjoint
    x, y = GRID.meshgrid_mm()
    oy, ox = GRID.origin_mm
    half = CELLS.fov_mm / 2.0
    in_fov = (np.abs(x - ox) < half) & (np.abs(y - oy) < half)
    assert np.array_equal(images.sum(axis=0) == 1, in_fov)
    for image, (cx, cy) in zip(images, CELLS.cell_centers_mm()):
        assert np.all(np.abs(x[image == 1] - cx) <= CELLS.cell_width_mm / 2.0)
        assert np.all(np.abs(y[image == 1] - cy) <= CELLS.cell_width_mm / 2.0)


@given(layout=st.sampled_from(LAYOUTS), low=st.integers(0, 25), extra=st.integers(0, 25), seed=st.integers(0, 2**32))
def test_active_cell_counts_within_bounds(layout: str, low: int, extra: int, seed: int) -> None:
    high = min(low + extra, 25)
    activity = CELLS.sample_activity(16, seed, layout, (low, high))
    assert activity.shape == (16, 25) and activity.dtype == bool
    counts = activity.sum(axis=1)
    assert counts.min() >= low and counts.max() <= high


def test_count_callable() -> None:
    activity = CELLS.sample_activity(5, 0, "clustered", lambda rng, n: np.arange(n) * 2)
    assert np.array_equal(activity.sum(axis=1), [0, 2, 4, 6, 8])


def test_clustered_cells_are_connected() -> None:
    activity = CELLS.sample_activity(64, 3, "clustered", (1, 25))
    for active in activity.reshape(-1, 5, 5):
        assert ndimage.label(active)[1] == 1  # scipy's default structure: 4-connectivity


def test_ring_cells_form_an_annulus() -> None:
    activity = CELLS.sample_activity(64, 4, "rings", (1, 12))
    centers = CELLS.cell_centers_mm() - np.array(GRID.origin_mm[::-1])
    distance = np.hypot(centers[:, 0], centers[:, 1])
    for active in activity:
        near, far = distance[active].min(), distance[active].max()
        assert not np.any(~active & (distance > near) & (distance < far))
    assert len({tuple(row) for row in activity}) > 32  # and they vary


def test_cell_images_are_unions_of_cells() -> None:
    images, activity = CELLS.sample(8, 1, "random", (0, 25))
    assert images.dtype == np.float32 and images.flags.c_contiguous
    expected = np.einsum("nc,cyx->nyx", activity.astype(np.float32), CELLS.cell_images())
    assert np.array_equal(images, expected)


def test_cell_basis_equals_direct_projection() -> None:
    basis = CellSinogramBasis(CELLS, PROJECTOR, dtype=np.float64)
    for layout in LAYOUTS:
        images, activity = CELLS.sample(16, 7, layout, (1, 25))
        direct = PROJECTOR(images.astype(np.float64))
        np.testing.assert_allclose(basis.projections(activity), direct, rtol=1e-12, atol=1e-12)
        assert np.array_equal(basis.masks(activity), radon_mask(images.astype(np.float64), PROJECTOR))
    # float32: only rays within float32 rounding (2^-24 relative, with headroom) of the threshold may differ
    fast = CellSinogramBasis(CELLS, PROJECTOR)
    differ = fast.masks(activity) != radon_mask(images, PROJECTOR)
    assert np.all(np.abs(direct[differ] - fast.threshold_mm) <= 1e-5 * direct.max())


def test_cell_basis_on_a_bare_device_array_names_the_problem() -> None:
    class BareDeviceArray:  # exposes only __cuda_array_interface__, like a numba device array
        __cuda_array_interface__ = {"shape": (2, CELLS.n_cells), "typestr": "<f4", "data": (0, False), "version": 3}

    with pytest.raises(TypeError, match="CuPy array or a torch CUDA tensor"):
        CellSinogramBasis(CELLS, PROJECTOR).masks(BareDeviceArray())


@pytest.mark.gpu
@pytest.mark.parametrize("library", ["torch", "cupy"])
def test_cell_basis_on_the_gpu_equals_the_cpu(library: str, request: pytest.FixtureRequest) -> None:
    if library == "torch":
        torch = request.getfixturevalue("cuda_torch")
        to_device, to_host = (lambda a: torch.as_tensor(a, device="cuda")), (lambda a: a.cpu().numpy())
    else:
        cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
        to_device, to_host = cupy.asarray, cupy.asnumpy
    basis = CellSinogramBasis(CELLS, PROJECTOR, dtype=np.float64)
    activity = CELLS.sample_activity(32, 3, "clustered", (1, 25)).reshape(4, 8, CELLS.n_cells)
    projections = basis.projections(to_device(activity))
    assert projections.shape == (4, 8) + PROJECTOR.out_shape
    np.testing.assert_allclose(to_host(projections), basis.projections(activity), rtol=1e-12, atol=1e-12)
    masks = basis.masks(to_device(activity))
    assert to_host(masks).dtype == np.bool_
    with pytest.raises(ValueError, match="n_cells"):
        basis.masks(to_device(activity[..., :-1]))


def test_cell_masks_are_deterministic() -> None:
    first = CELLS.sample(4, 11, "clustered", (2, 6))
    again = CELLS.sample(4, np.random.default_rng(11), "clustered", (2, 6))
    other = CELLS.sample(4, 12, "clustered", (2, 6))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[1], other[1])


# ----------------------------------------------------------------------------- random shapes

@pytest.mark.parametrize("generate", [random_ellipses, random_polygons])
def test_shapes_deterministic_and_binary(generate) -> None:
    first, again, other = generate(GRID, 4, 5), generate(GRID, 4, np.random.default_rng(5)), generate(GRID, 4, 6)
    assert first.shape == (4,) + GRID.shape and first.dtype == np.float32
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert set(np.unique(first)) <= {0.0, 1.0} and first.sum() > 0
    assert not generate(GRID, 3, 5, n_shapes=(0, 0)).any()


def test_ellipse_with_equal_axes_is_a_disc() -> None:
    # radius 7.3 mm: no pixel centre of GRID lies within 1e-3 mm of the circle (checked below)
    radius = 7.3
    masks = random_ellipses(GRID, 3, 0, n_shapes=(1, 1), semi_axes_mm=(radius, radius), center_radius_mm=0.0)
    x, y = GRID.meshgrid_mm()
    oy, ox = GRID.origin_mm
    distance = np.hypot(x - ox, y - oy)
    assert np.abs(distance - radius).min() > 1e-3
    for mask in masks:
        assert np.array_equal(mask == 1, distance <= radius)


def test_ellipses_lie_between_their_axis_discs() -> None:
    masks = random_ellipses(GRID, 16, 1, n_shapes=(1, 1), semi_axes_mm=(4.0, 9.0), center_radius_mm=0.0)
    x, y = GRID.meshgrid_mm()
    oy, ox = GRID.origin_mm
    inner = np.hypot(x - ox, y - oy) < 4.0
    for mask in masks:
        assert _pixel_distance(GRID, mask).max() <= 9.0 and np.all(mask[inner] == 1)


def test_polygon_masks_match_matplotlib(rng: np.random.Generator) -> None:
    path = pytest.importorskip("matplotlib.path")
    x, y = GRID.meshgrid_mm()
    points = np.stack([x.ravel(), y.ravel()], axis=-1)
    for n_vertices in (3, 5, 9):  # random vertices: self-intersecting outlines, even-odd rule
        vertices = rng.uniform(-25.0, 25.0, size=(4, n_vertices, 2))
        masks = polygon_masks(GRID, vertices[:, None])
        for mask, outline in zip(masks, vertices):
            assert np.array_equal(mask.ravel() == 1, path.Path(outline).contains_points(points))


def _has_gaps(mask: np.ndarray) -> bool:
    """Whether some row or column holds two separate runs; a digitised convex set never does."""
    return any(np.count_nonzero(np.diff(np.concatenate([[0], line, [0]]))) > 2 for line in list(mask) + list(mask.T))


def test_convex_polygons_are_convex_and_inscribed() -> None:
    radius = 12.0
    masks = random_polygons(GRID, 16, 2, n_shapes=(1, 1), n_vertices=(6, 6), radius_mm=(radius, radius),
                            convex=True, center_radius_mm=0.0)
    # six vertices on a circle of radius r, neighbours less than 3 pi / 6 apart: every edge is
    # at least r cos(pi / 4) from the centre
    x, y = GRID.meshgrid_mm()
    oy, ox = GRID.origin_mm
    inner = np.hypot(x - ox, y - oy) < radius * math.cos(math.pi / 4)
    for mask in masks:
        assert _pixel_distance(GRID, mask).max() <= radius and np.all(mask[inner] == 1)
        assert not _has_gaps(mask)


def test_star_polygons_lie_within_their_radius() -> None:
    kwargs = dict(n_shapes=(1, 1), n_vertices=(8, 8), radius_mm=(2.0, 14.0), center_radius_mm=0.0)
    star = random_polygons(GRID, 32, 3, **kwargs)
    assert all(_pixel_distance(GRID, mask).max() <= 14.0 for mask in star)
    assert any(_has_gaps(mask) for mask in star), "deep notches should show in some star-shaped polygon"
    assert not any(_has_gaps(mask) for mask in random_polygons(GRID, 32, 3, convex=True, **kwargs))


# ----------------------------------------------------------------------------- positive / negative

def _backends() -> list:
    torch = pytest.importorskip("torch")
    return [np.asarray, torch.from_numpy]


finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


@given(values=st.lists(finite, min_size=12, max_size=12), bits=st.lists(st.booleans(), min_size=12, max_size=12),
       dtype=st.sampled_from([np.float32, np.float64]), float_mask=st.booleans())
def test_split_adds_up_bitwise(values: list, bits: list, dtype: type, float_mask: bool) -> None:
    full = np.array(values, dtype=dtype).reshape(3, 4)
    mask = np.array(bits).reshape(3, 4)
    mask = mask.astype(dtype) if float_mask else mask
    for to in _backends():
        positive, negative = split_by_mask(to(full), to(mask))
        total = np.asarray(positive + negative)
        assert total.dtype == full.dtype
        assert np.array_equal(total.view(f"u{full.itemsize}"), full.view(f"u{full.itemsize}"))
        residuals = consistency_residuals(positive, negative, to(full), to(mask))
        assert all(not np.asarray(r).any() for r in residuals)


def test_residuals_detect_inconsistency(rng: np.random.Generator) -> None:
    full = rng.random((2, 6, 7))
    mask = rng.random((6, 7)) < 0.5  # one mask broadcast over a batch of sinograms
    for to in _backends():
        positive, negative = split_by_mask(to(full), to(mask))
        leaked = positive + to(0.25 * ~mask)  # positive counts outside the mask
        residuals = [np.asarray(r) for r in consistency_residuals(leaked, negative, to(full), to(mask))]
        assert np.array_equal(residuals[0] != 0, np.broadcast_to(~mask, full.shape))
        assert np.array_equal(residuals[1] != 0, np.broadcast_to(~mask, full.shape))
        assert not residuals[2].any()


def test_enforce_consistency_is_an_exact_idempotent_projection(rng: np.random.Generator) -> None:
    positive, negative, full = rng.standard_normal((3, 2, 6, 7))
    mask = rng.random((2, 6, 7)) < 0.4
    for to in _backends():
        p, q = enforce_consistency(to(positive), to(negative), to(mask))
        residuals = consistency_residuals(p, q, p + q, to(mask))
        assert all(not np.asarray(r).any() for r in residuals)
        again = enforce_consistency(p, q, to(mask))
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(again, (p, q)))
        # least squares: the removed parts are orthogonal to the constraint set (zero on the free elements)
        assert not np.any((positive - np.asarray(p))[mask]) and not np.any((negative - np.asarray(q))[~mask])
        exact = enforce_consistency(to(positive), to(negative), to(mask), full=to(full))
        split = split_by_mask(to(full), to(mask))
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(exact, split))


def test_body_support_keeps_every_ray_through_the_body(rng: np.random.Generator) -> None:
    body = random_ellipses(GRID, 1, 9, n_shapes=(1, 1), semi_axes_mm=(10.0, 15.0), center_radius_mm=0.0)[0]
    support = body_support(body, PROJECTOR)
    assert support.any() and not support.all()
    activity = body * rng.random(GRID.shape)
    sinogram = PROJECTOR(activity)
    assert np.array_equal(apply_support(sinogram, support), sinogram)  # data of the body lives in its support
    noisy = sinogram + 1.0
    cleaned = apply_support(noisy, support)
    assert np.all(cleaned[~support] == 0) and np.array_equal(cleaned[support], noisy[support])


# ----------------------------------------------------------------------------- bad input

junk = st.one_of(st.none(), st.booleans(), st.integers(-3, 12), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=3), st.tuples(st.integers(-3, 12), st.integers(-3, 12)),
                 st.tuples(st.floats(-5.0, 40.0), st.floats(-5.0, 40.0)), st.lists(st.integers(-2, 5), max_size=3))


def _only_clear_errors(call, *args, **kwargs) -> None:
    try:
        result = call(*args, **kwargs)
    except (TypeError, ValueError) as error:
        assert str(error)
        return
    arrays = result if isinstance(result, tuple) else (result,)
    assert all(isinstance(a, np.ndarray) for a in arrays)


@given(n=junk, rng=junk, n_shapes=junk, semi_axes_mm=junk, center_radius_mm=junk)
def test_fuzz_ellipses(n, rng, n_shapes, semi_axes_mm, center_radius_mm) -> None:
    _only_clear_errors(random_ellipses, GRID, n, rng, n_shapes=n_shapes, semi_axes_mm=semi_axes_mm,
                       center_radius_mm=center_radius_mm)


@given(n=junk, n_vertices=junk, radius_mm=junk, convex=junk)
def test_fuzz_polygons(n, n_vertices, radius_mm, convex) -> None:
    _only_clear_errors(random_polygons, GRID, n, 0, n_vertices=n_vertices, radius_mm=radius_mm, convex=convex)


@given(cells_per_side=junk, fov_mm=junk, n=junk, rng=junk, layout=st.one_of(st.sampled_from(LAYOUTS), junk),
       n_active=junk)
def test_fuzz_cells(cells_per_side, fov_mm, n, rng, layout, n_active) -> None:
    try:
        cells = CellGrid(GRID, cells_per_side, fov_mm)
    except (TypeError, ValueError) as error:
        assert str(error)
        return
    _only_clear_errors(cells.sample, n, rng, layout, n_active)


@given(radius_mm=junk, angle_range_rad=junk, threshold_mm=junk)
def test_fuzz_windows_and_thresholds(radius_mm, angle_range_rad, threshold_mm) -> None:
    _only_clear_errors(sinogram_window, GEOMETRY, radius_mm, angle_range_rad)
    _only_clear_errors(disc_image, GRID, radius_mm)
    _only_clear_errors(radon_mask, np.zeros(GRID.shape), PROJECTOR, threshold_mm)


@pytest.mark.parametrize("call, error, message", [
    (lambda: CellGrid(GRID, 40), ValueError, "narrower than a pixel"),
    (lambda: CellGrid(GRID, 4, fov_mm=100.0), ValueError, "exceeds the grid"),
    (lambda: CellGrid(ImageGrid((4, 8, 8)), 2), ValueError, "2D grids only"),
    (lambda: random_ellipses(ImageGrid((4, 8, 8)), 2, 0), ValueError, "2D grids only"),
    (lambda: CELLS.sample(2, 0, "spiral"), ValueError, "layout must be one of"),
    (lambda: CELLS.sample(2, 0, "random", (3, 26)), ValueError, r"n_active must satisfy 0 <= low <= high <= 25"),
    (lambda: CELLS.sample(2, 0, "random", lambda rng, n: [1.5, 2.0]), ValueError, "must return 2 integers"),
    (lambda: CELLS.sample(2, 0, "random", lambda rng, n: [1, 30]), ValueError, r"values in \[0, 25\]"),
    (lambda: CELLS.sample(2, None), TypeError, "rng must be a numpy.random.Generator"),
    (lambda: CELLS.images(np.ones((2, 24))), ValueError, r"activity must have shape \(\.\.\., n_cells=25\)"),
    (lambda: CELLS.images(np.full((2, 25), 2)), ValueError, "0/1"),
    (lambda: CellSinogramBasis(CELLS, ParallelBeamProjector(_geometry(ImageGrid((8, 8))))), ValueError,
     r"projector takes images of shape \(8, 8\)"),
    (lambda: CellSinogramBasis(CELLS, PROJECTOR, dtype=np.int32), TypeError, "float32 or float64"),
    (lambda: radon_mask(np.zeros(GRID.shape), lambda x: x), TypeError, "projector must be a LinearOperator"),
    (lambda: radon_mask(np.zeros(GRID.shape), PROJECTOR, -1.0), ValueError, "threshold_mm must be non-negative"),
    (lambda: random_polygons(GRID, 2, 0, n_vertices=(2, 5)), ValueError, "n_vertices must satisfy 3 <= low"),
    (lambda: random_ellipses(GRID, 2, 0, semi_axes_mm=(5.0, 2.0)), ValueError, "low <= high"),
    (lambda: polygon_masks(GRID, np.zeros((3, 2))), ValueError, r"\(\.\.\., k, V, 2\)"),
    (lambda: sinogram_window(GEOMETRY, angle_range_rad=(1.0, 0.0)), ValueError, "start <= stop"),
])
def test_bad_arguments_name_the_problem(call, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()
