"""Properties of the segment (LOR) projector: adjointness on oblique 3D segments, golden rays, chords."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.helpers import dot_test_error
from hypothesis import given
from hypothesis import strategies as st

from pet_projection import ImageGrid, LORProjector


@st.composite
def lor_projectors(draw: st.DrawFn) -> LORProjector:
    """Random 2D/3D grids with anisotropic voxels and random segments, many oblique, some inside the grid."""
    ndim = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.integers(1, 14)) for _ in range(ndim))
    grid = ImageGrid(shape, tuple(draw(st.floats(0.3, 3.0)) for _ in range(ndim)),
                     tuple(draw(st.floats(-4.0, 4.0)) for _ in range(ndim)))
    n = draw(st.integers(1, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    reach = 1.5 * grid.bounding_radius_mm()
    points = rng.uniform(-reach, reach, (2, n, 3))
    if ndim == 2:
        points = points[..., :2]
    return LORProjector(grid, points[0], points[1])


@given(lor_projectors(), st.integers(0, 2**32 - 1))
def test_adjoint_float64_and_float32(op: LORProjector, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2,) + op.in_shape)
    y = rng.standard_normal((2,) + op.out_shape)
    assert dot_test_error(op, x, y) < 1e-12
    assert dot_test_error(op, x.astype(np.float32), y.astype(np.float32)) < 1e-5


@given(lor_projectors(), st.integers(0, 2**32 - 1))
def test_linear_nonnegative_and_zero(op: LORProjector, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.random((2,) + op.in_shape)
    np.testing.assert_allclose(op(2.0 * x1 - 3.0 * x2), 2.0 * op(x1) - 3.0 * op(x2), atol=1e-10 * (1 + x1.sum()))
    assert op(x1).min() >= 0.0 and op.H(np.abs(rng.standard_normal(op.out_shape))).min() >= 0.0
    assert not np.any(op(np.zeros(op.in_shape))) and not np.any(op.H(np.zeros(op.out_shape)))


def test_batched_back_projection_is_deterministic() -> None:
    grid = ImageGrid((6, 20, 22), (2.0, 1.0, 1.0))
    rng = np.random.default_rng(3)
    op = LORProjector(grid, rng.uniform(-30, 30, (500, 3)), rng.uniform(-30, 30, (500, 3)))
    y = rng.random((2, 500)).astype(np.float32)
    first = op.H(y)
    assert all(np.array_equal(first, op.H(y)) for _ in range(3))
    np.testing.assert_allclose(first[1], op.H(y[1]), rtol=1e-5, atol=1e-6)


def test_golden_axis_aligned_segments() -> None:
    """Segments along z, y, x through voxel centres give the voxel sum times the voxel size."""
    grid = ImageGrid((3, 4, 5), (3.0, 2.0, 1.0))  # centres: z -3,0,3; y -3,-1,1,3; x -2..2
    image = np.arange(60, dtype=np.float64).reshape(3, 4, 5)
    xstart = np.array([[1.0, -1.0, -10.0], [-2.0, -10.0, 3.0], [-10.0, 3.0, 0.0]])
    xend = np.array([[1.0, -1.0, 10.0], [-2.0, 10.0, 3.0], [10.0, 3.0, 0.0]])
    values = LORProjector(grid, xstart, xend)(image)
    expected = [image[:, 1, 3].sum() * 3.0, image[2, :, 0].sum() * 2.0, image[1, 3, :].sum() * 1.0]
    np.testing.assert_allclose(values, expected, rtol=1e-12)


def test_golden_diagonal_through_pixel_centres() -> None:
    """A 45 degree segment through the centres of a diagonal samples each pixel once, sqrt(2) mm apart."""
    grid = ImageGrid((4, 4), 1.0)
    image = np.diag([1.0, 2.0, 3.0, 4.0])
    value = LORProjector(grid, [[-5.5, -5.5]], [[5.5, 5.5]])(image)
    np.testing.assert_allclose(value, [10.0 * math.sqrt(2.0)], rtol=1e-12)


@pytest.mark.parametrize("direction", [(1.0, 0.3, 0.2), (0.2, 1.0, -0.4), (0.3, -0.2, 1.0), (1.0, 1.0, 1.0)])
def test_uniform_image_gives_chord_length_inside_the_sampled_region(direction: tuple[float, float, float]) -> None:
    """For a uniform image, the inner part of an oblique ray integrates to its length (mm) between voxel planes."""
    grid = ImageGrid((40, 40, 40), (1.5, 1.0, 1.2))
    d = np.asarray(direction) / np.linalg.norm(direction)
    through = np.array([0.7, -0.4, 0.3])
    op = LORProjector(grid, through - 20.0 * d, through + 20.0 * d)  # 40 mm, well inside the 48 x 40 x 60 mm grid
    # Joseph samples the planes of the dominant axis inside the segment; each weighs the path per plane
    spacing = np.array([1.2, 1.0, 1.5])  # (dx, dy, dz)
    per_plane = spacing / np.maximum(np.abs(d), 1e-300)
    dominant = int(np.argmin(per_plane))
    start, end = (through - 20.0 * d), (through + 20.0 * d)
    index = lambda p: p[dominant] / spacing[dominant] + (40 - 1) / 2.0  # noqa: E731
    n_planes = math.floor(max(index(start), index(end))) - math.ceil(min(index(start), index(end))) + 1
    np.testing.assert_allclose(op(np.ones(grid.shape)), n_planes * per_plane[dominant], rtol=1e-12)


def test_two_dimensional_endpoints_and_shapes() -> None:
    grid = ImageGrid((8, 9), 1.0)
    xs = np.zeros((2, 3, 2))
    xe = np.ones((2, 3, 2)) * 5.0
    op = LORProjector(grid, xs, xe)
    assert op.out_shape == (2, 3) and op.in_shape == (8, 9)
    same = LORProjector(grid, np.concatenate([xs, np.zeros((2, 3, 1))], -1),
                        np.concatenate([xe, np.zeros((2, 3, 1))], -1))
    x = np.random.default_rng(0).random((4, 8, 9))
    np.testing.assert_array_equal(op(x), same(x))
    assert op(x).shape == (4, 2, 3)


def test_float32_endpoints_are_kept_in_float32() -> None:
    grid = ImageGrid((4, 5, 6), 1.0)
    op = LORProjector(grid, np.zeros((7, 3), np.float32), np.ones((7, 3), np.float32))
    assert op.xstart_mm.dtype == np.float32 and op.xend_mm.dtype == np.float32
    op64 = LORProjector(grid, np.zeros((7, 3), int), np.ones((7, 3), int))
    assert op64.xstart_mm.dtype == np.float64
