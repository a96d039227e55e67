"""STIR's cylindrical projection-data geometry (ProjDataLayout): STIR's formulas, detector pairs, projection."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pet_projection import ImageGrid, LORProjector, PETSinogramProjector
from pet_projection.projdata import CylindricalScanner, ProjDataLayout, known_scanner

from tests.helpers import dot_test_error


def _scanner(n_rings: int = 5, n_detectors: int = 24, view_offset_rad: float = 0.0) -> CylindricalScanner:
    return CylindricalScanner("test", n_rings, n_detectors, 60.0, 4.0, 5.0, 3.0, view_offset_rad)


def _span1(scanner: CylindricalScanner, max_difference: int, **kwargs) -> ProjDataLayout:
    differences = [0] + [sign * d for d in range(1, max_difference + 1) for sign in (-1, 1)]
    n_views = kwargs.pop("n_views", scanner.n_detectors_per_ring // 2)
    n_tangential = kwargs.pop("n_tangential", scanner.n_detectors_per_ring - 1)
    return ProjDataLayout(scanner, [(d, d) for d in differences], [scanner.n_rings - abs(d) for d in differences],
                          n_views, n_tangential, kwargs.pop("arc_corrected", False), **kwargs)


def test_lors_follow_stirs_parametrisation() -> None:
    scanner = _scanner(view_offset_rad=0.1)
    layout = _span1(scanner, 2, arc_corrected=True, bin_size_mm=4.0, n_tangential=21)
    start, end = layout.lor_endpoints()  # (plane, view, radial, 3)
    radius = scanner.effective_radius_mm
    phi = layout.view_angles_rad()[None, :, None]
    s = (np.arange(21) - 10) * 4.0
    for point in (start, end):
        np.testing.assert_allclose(np.hypot(point[..., 0], point[..., 1]), radius)  # ends on the cylinder
        np.testing.assert_allclose(point[..., 0] * np.cos(phi) + point[..., 1] * np.sin(phi),
                                   np.broadcast_to(s, start.shape[:-1]), atol=1e-9)  # x cos(phi) + y sin(phi) = s
    np.testing.assert_allclose(layout.view_angles_rad(), np.arange(12) * math.pi / 12 + 0.1)
    # the start (a = +A in STIR's X = s cos + a sin, Y = s sin - a cos) lies at (sin phi, -cos phi) from the middle
    middle = (start + end) / 2.0
    direction = np.stack([np.sin(phi), -np.cos(phi)], axis=-1)[..., 0, :]
    assert np.all(np.sum((start[..., :2] - middle[..., :2]) * direction[:, :, None, :], axis=-1) > 0)
    # span 1: the ends sit on rings r1 (start) and r2 = r1 + d, segments 0, -1, +1, -2, +2
    rings = scanner.ring_positions_mm()
    z = layout.plane_endpoints_z_mm()
    np.testing.assert_allclose(z[:5], np.stack([rings, rings], axis=-1))
    np.testing.assert_allclose(z[5:9], np.stack([rings[1:], rings[:-1]], axis=-1))  # d = -1: r1 = a + 1, r2 = a
    np.testing.assert_allclose(z[9:13], np.stack([rings[:-1], rings[1:]], axis=-1))  # d = +1
    assert layout.segment_numbers() == (0, -1, 1, -2, 2)


def test_non_arc_corrected_bins_sit_at_r_sin_t_pi_over_n() -> None:
    scanner = _scanner()
    layout = _span1(scanner, 0)
    t = np.arange(23) - 11
    np.testing.assert_allclose(layout.tangential_positions_mm(), 64.0 * np.sin(t * math.pi / 24))


def test_spanned_segments_use_half_ring_sampling_and_mean_ring_difference() -> None:
    scanner = _scanner(n_rings=4)
    # STIR's span-3 Michelogram of 4 rings: segment 0 holds ring differences -1..1 on 2 x 4 - 1 = 7 positions
    layout = ProjDataLayout(scanner, [(-1, 1)], [7], 12, 23, False)
    z = layout.plane_endpoints_z_mm()
    np.testing.assert_allclose(z[:, 0], z[:, 1])  # mean ring difference 0
    np.testing.assert_allclose(z[:, 0], (np.arange(7) - 3) * 2.5)  # ring spacing / 2
    with pytest.raises(ValueError, match="has 8 axial positions, more than the 7"):
        ProjDataLayout(scanner, [(-1, 1)], [8], 12, 23, False)


def test_detector_pairs_and_bins_invert_each_other() -> None:
    layout = _span1(_scanner(), 4)
    plane, view, radial = (a.reshape(-1) for a in np.meshgrid(*(np.arange(n) for n in layout.shape), indexing="ij"))
    pairs = layout.detector_pairs(plane, view, radial)
    back_plane, back_view, back_radial, valid = layout.bins_of_detector_pairs(*pairs)
    assert valid.all()
    np.testing.assert_array_equal(back_plane, plane)
    np.testing.assert_array_equal(back_view, view)
    np.testing.assert_array_equal(back_radial, radial)
    # the same LOR with its ends swapped is the same bin
    swapped = layout.bins_of_detector_pairs(pairs[2], pairs[3], pairs[0], pairs[1])
    np.testing.assert_array_equal(swapped[0], plane)
    np.testing.assert_array_equal(swapped[2], radial)


def test_every_detector_pair_lands_in_one_bin_or_none() -> None:
    scanner = _scanner(n_rings=3, n_detectors=16)
    layout = _span1(scanner, 1, n_tangential=9)
    d1, r1, d2, r2 = (a.reshape(-1) for a in np.meshgrid(np.arange(16), np.arange(3), np.arange(16), np.arange(3),
                                                         indexing="ij"))
    distinct = d1 != d2
    plane, view, radial, valid = layout.bins_of_detector_pairs(d1[distinct], r1[distinct], d2[distinct], r2[distinct])
    flat = (plane * layout.n_views + view) * layout.n_radial + radial
    counts = np.bincount(flat[valid], minlength=math.prod(layout.shape))
    # each bin is one unordered pair of detector positions (each seen from both ends)
    np.testing.assert_array_equal(counts, 2)
    # pairs off by more than 4 positions from the diameter, or 2 rings apart, have no bin
    assert valid.sum() == 2 * math.prod(layout.shape)


def test_detector_positions_lie_on_their_bins_lors() -> None:
    scanner = _scanner()
    layout = _span1(scanner, 2)
    plane, view, radial = (a.reshape(-1) for a in np.meshgrid(*(np.arange(n) for n in layout.shape), indexing="ij"))
    d1, r1, d2, r2 = layout.detector_pairs(plane, view, radial)
    first, second = scanner.detector_positions_mm(d1, r1), scanner.detector_positions_mm(d2, r2)
    start, end = (e.reshape(-1, 3) for e in layout.lor_endpoints())
    even = (radial - layout.n_radial // 2) % 2 == 0
    # STIR's bins: even tangential positions are exactly their detector pair; odd ones keep the view's angle, while
    # their detectors' LOR is turned by half a view step (the interleave STIR ignores)
    np.testing.assert_allclose(first[even], start[even], atol=1e-9)
    np.testing.assert_allclose(second[even], end[even], atol=1e-9)
    chord = second - first
    angle = np.arctan2(chord[:, 0], -chord[:, 1])  # the normal angle phi of the detector LOR (mod pi)
    turn = np.angle(np.exp(2j * (angle - layout.view_angles_rad()[view]))) / 2.0
    np.testing.assert_allclose(turn[~even], -math.pi / 24, atol=1e-9)
    np.testing.assert_allclose(first[:, 2], start[:, 2])
    ring = scanner.ring_geometry().crystal_positions_mm()
    np.testing.assert_allclose(ring[r1, d1], first, atol=1e-9)


def test_arc_corrected_layouts_have_no_detector_pairs() -> None:
    layout = _span1(_scanner(), 1, arc_corrected=True, bin_size_mm=3.0, n_tangential=11)
    with pytest.raises(ValueError, match="only in non-arc-corrected layouts"):
        layout.bins_of_detector_pairs(np.array([0]), np.array([0]), np.array([12]), np.array([0]))
    with pytest.raises(ValueError, match="single detector pairs only"):
        layout.detector_pairs(np.array([0]), np.array([0]), np.array([0]))


@given(arc=st.booleans(), max_difference=st.integers(0, 3), mash=st.sampled_from([1, 2, 3]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_sinogram_projector_on_stir_layouts_is_adjoint_and_equals_lor_projector(arc, max_difference, mash, dtype,
                                                                                 seed) -> None:
    scanner = _scanner(view_offset_rad=0.05)
    layout = _span1(scanner, max_difference, arc_corrected=arc, bin_size_mm=5.0, n_views=12 // mash,
                    n_tangential=13)
    grid = ImageGrid((9, 14, 12), (2.5, 6.0, 7.0), (1.0, -3.0, 2.0))
    op = PETSinogramProjector(layout, grid)
    rng = np.random.default_rng(seed)
    x = rng.random(grid.shape).astype(dtype)
    y = rng.standard_normal(layout.shape).astype(dtype)
    assert dot_test_error(op, x, y) < (1e-5 if dtype == np.float32 else 1e-12)
    reference = LORProjector(grid, *layout.lor_endpoints())
    np.testing.assert_allclose(op(x.astype(np.float64)), reference(x.astype(np.float64)), rtol=1e-10, atol=1e-10)


def test_view_subsets_of_a_stir_layout() -> None:
    layout = _span1(_scanner(), 1)
    grid = ImageGrid((6, 10, 10), 8.0)
    full = PETSinogramProjector(layout, grid)
    x = np.random.default_rng(3).random(grid.shape)
    views = layout.view_subsets(4)[1]
    np.testing.assert_allclose(full.view_subset(views)(x), full(x)[:, views, :])


def test_known_scanners_and_bad_layouts() -> None:
    mmr = known_scanner(" siemens_MMR ")
    assert mmr is not None and mmr.effective_radius_mm == 335.0 and known_scanner("2008") == mmr
    assert known_scanner("no such scanner") is None
    scanner = _scanner()
    with pytest.raises(ValueError, match="beyond the effective ring radius"):
        ProjDataLayout(scanner, [(0, 0)], [5], 12, 51, True, bin_size_mm=3.0)
    with pytest.raises(ValueError, match="must satisfy min <= max"):
        ProjDataLayout(scanner, [(1, 0)], [4], 12, 11, False)
    with pytest.raises(ValueError, match="no segment holds ring difference 0"):
        ProjDataLayout(scanner, [(1, 1)], [4], 12, 11, False).segment_numbers()
    with pytest.raises(ValueError, match="n_detectors_per_ring must be even"):
        CylindricalScanner("odd", 2, 15, 60.0, 0.0, 5.0, 3.0)
    with pytest.raises(TypeError, match="scanner must be a CylindricalScanner"):
        ProjDataLayout("mMR", [(0, 0)], [4], 12, 11, False)
