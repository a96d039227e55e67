"""PETSinogramProjector: in-kernel LOR endpoints equal the stored-endpoint LOR projector; exact adjoint."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from tests.helpers import dot_test_error
from hypothesis import given, settings
from hypothesis import strategies as st

from pet_projection import (ImageGrid, ListmodeProjector, LORProjector, PETSinogramProjector, RingScannerGeometry,
                            SinogramLayout, TOFParameters, lor_endpoints)

AXIS_ORDERS = list(itertools.permutations(("radial", "view", "plane")))


def small_scanner(n_rings: int = 4) -> RingScannerGeometry:
    """12 sides x 3 crystals (36 per ring) of 4 mm at 60 mm radius: small enough for exhaustive checks."""
    return RingScannerGeometry(radius_mm=60.0, n_sides=12, crystals_per_side=3, crystal_spacing_mm=4.0,
                               ring_positions_mm=(np.arange(n_rings) - (n_rings - 1) / 2) * 4.0)


@settings(max_examples=15)
@given(st.sampled_from([1, 3]), st.sampled_from([None, 21, 11]), st.sampled_from(AXIS_ORDERS),
       st.integers(0, 2**32 - 1))
def test_equals_lor_projector_on_the_same_endpoints(span: int, n_radial, axis_order, seed: int) -> None:
    layout = SinogramLayout(small_scanner(), span=span, n_radial=n_radial, axis_order=axis_order)
    grid = ImageGrid((5, 24, 26), (3.0, 3.5, 3.2), origin_mm=(0.5, -1.0, 2.0))
    op = PETSinogramProjector(layout, grid)
    reference = LORProjector(grid, *lor_endpoints(layout))
    assert op.out_shape == layout.shape
    x = np.random.default_rng(seed).random((2,) + grid.shape)
    np.testing.assert_allclose(op(x), reference(x), rtol=1e-12, atol=1e-12)
    y = np.random.default_rng(seed + 1).random((2,) + layout.shape)
    np.testing.assert_allclose(op.adjoint(y), reference.adjoint(y), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_adjoint(dtype: type, tolerance: float) -> None:
    op = PETSinogramProjector(SinogramLayout(small_scanner(), span=3), ImageGrid((6, 20, 20), 3.0))
    rng = np.random.default_rng(4)
    x = rng.standard_normal(op.in_shape).astype(dtype)
    y = rng.standard_normal(op.out_shape).astype(dtype)
    assert dot_test_error(op, x, y) < tolerance


def test_stores_no_endpoint_arrays_of_the_sinogram_size() -> None:
    op = PETSinogramProjector(SinogramLayout(small_scanner(8)), ImageGrid((8, 16, 16), 4.0))
    stored = sum(field.nbytes for field in op._rays if isinstance(field, np.ndarray))
    n_radial, n_planes, n_views = 35, 64, 18  # 36 crystals: 35 radial bins, 18 views; 8 rings: 64 planes
    assert stored == (n_views * n_radial * 4 + n_planes * 2) * 8  # the (view, radial) and per-plane tables only
    assert stored < 8 * np.prod(op.out_shape) / 10


def test_lor_endpoints_and_errors() -> None:
    layout = SinogramLayout(small_scanner())
    op = PETSinogramProjector(layout, ImageGrid((4, 8, 8), 4.0))
    xstart, xend = op.lor_endpoints()
    assert xstart.shape == layout.shape + (3,) and xend.shape == layout.shape + (3,)
    with pytest.raises(ValueError, match="3D ImageGrid"):
        PETSinogramProjector(layout, ImageGrid((8, 8), 4.0))
    with pytest.raises(TypeError, match="SinogramLayout"):
        PETSinogramProjector(small_scanner(), ImageGrid((4, 8, 8), 4.0))


def test_view_subset_projects_the_chosen_views() -> None:
    """An OSEM subset projector equals the full projection restricted to its views, and stays matched."""
    layout = SinogramLayout(small_scanner(4), axis_order=("view", "plane", "radial"))
    op = PETSinogramProjector(layout, ImageGrid((4, 12, 12), 4.0))
    x = np.random.default_rng(3).random(op.in_shape)
    views = layout.view_subsets(4)[1]
    sub = op.view_subset(views)
    assert sub.out_shape == (views.size,) + op.out_shape[1:]
    np.testing.assert_allclose(sub(x), op(x)[views], rtol=1e-12)
    y = np.random.default_rng(4).random(sub.out_shape)
    assert abs(np.vdot(sub(x), y) - np.vdot(x, sub.H(y))) < 1e-12 * np.vdot(sub(x), y)
    np.testing.assert_array_equal(sub.lor_endpoints()[0], op.lor_endpoints()[0][views])
    with pytest.raises(ValueError, match="views must lie in"):
        op.view_subset([0, layout.n_views])


@pytest.mark.parametrize("tof", [None, TOFParameters(n_bins=7, bin_width_mm=20.0, fwhm_mm=25.0)])
def test_columns_and_lors_along_z_equal_lor_projector(tof) -> None:
    """The CPU kernels trace each (view, radial) bin's LORs together and those that advance most along z alone:
    both equal the segment projector, forward and back, also where crystals lie inside the image."""
    scanner = RingScannerGeometry(radius_mm=30.0, n_sides=8, crystals_per_side=2, crystal_spacing_mm=8.0,
                                  ring_positions_mm=(np.arange(6) - 2.5) * 9.0)
    layout = SinogramLayout(scanner, span=3)
    grid = ImageGrid((14, 15, 16), (4.0, 4.3, 4.1), origin_mm=(1.0, -0.5, 0.7))  # wider than the ring
    op = PETSinogramProjector(layout, grid, tof=tof)
    xstart, xend = op.lor_endpoints()
    voxels = np.abs(xend - xstart) / np.array([4.1, 4.3, 4.0])
    along_z = voxels[..., 2] > voxels[..., :2].max(-1)
    rng = np.random.default_rng(8)
    x = rng.random((2,) + grid.shape)
    if tof is None:
        reference = LORProjector(grid, xstart, xend)
        expected = reference(x)
    else:
        flat = xstart.reshape(-1, 3), xend.reshape(-1, 3)
        events = [ListmodeProjector(grid, *flat, tof_bin=np.full(along_z.size, b), tof=tof) for b in range(tof.n_bins)]
        expected = np.stack([event(x) for event in events], -1).reshape(op(x).shape)
    np.testing.assert_allclose(op(x), expected, rtol=1e-12, atol=1e-12)
    assert np.count_nonzero(expected[:, along_z]) > 20  # LORs along z through the image
    y = rng.random((2,) + op.out_shape)
    if tof is None:
        back = reference.H(y)
    else:
        back = sum(event.H(np.ascontiguousarray(y[..., b]).reshape(2, -1)) for b, event in enumerate(events))
    np.testing.assert_allclose(op.H(y), back, rtol=1e-12, atol=1e-12)
