"""Time of flight and listmode: exact adjoints, TOF sums to non-TOF, listmode equals sinogram bins, chord lengths."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.helpers import dot_test_error
from hypothesis import given, settings
from hypothesis import strategies as st

from pet_projection import (ImageGrid, ListmodeProjector, PETSinogramProjector, RingScannerGeometry, SinogramLayout,
                            TOFParameters)
from pet_projection.geometry import segment_box_lengths


def small_scanner(n_rings: int = 3) -> RingScannerGeometry:
    """12 sides x 3 crystals (36 per ring) of 4 mm at 60 mm radius."""
    return RingScannerGeometry(radius_mm=60.0, n_sides=12, crystals_per_side=3, crystal_spacing_mm=4.0,
                               ring_positions_mm=(np.arange(n_rings) - (n_rings - 1) / 2) * 4.0)


GRID = ImageGrid((3, 14, 14), (4.0, 4.0, 4.0))
# 9 bins of 15 mm cover +-67.5 mm: more than the 60 mm half-length of every LOR plus 3 sigma of 15 mm FWHM
WIDE_TOF = TOFParameters(n_bins=9, bin_width_mm=15.0, fwhm_mm=15.0)


@settings(max_examples=10)
@given(st.sampled_from([np.float64, np.float32]), st.integers(1, 12), st.floats(8.0, 60.0), st.floats(5.0, 40.0),
       st.floats(1.0, 4.0), st.integers(0, 2**32 - 1))
def test_tof_sinogram_adjoint(dtype, n_bins: int, bin_width_mm: float, fwhm_mm: float, n_sigmas: float,
                              seed: int) -> None:
    tof = TOFParameters(n_bins, bin_width_mm, fwhm_mm, n_sigmas)
    op = PETSinogramProjector(SinogramLayout(small_scanner(), span=1), GRID, tof=tof)
    assert op.out_shape == SinogramLayout(small_scanner()).shape + (n_bins,)
    rng = np.random.default_rng(seed)
    x, y = rng.random(op.in_shape).astype(dtype), rng.random(op.out_shape).astype(dtype)
    assert dot_test_error(op, x, y) < (1e-12 if dtype == np.float64 else 1e-5)


def test_tof_bins_sum_to_the_non_tof_projection() -> None:
    layout = SinogramLayout(small_scanner(), span=1)
    x = np.random.default_rng(0).random((2,) + GRID.shape)
    tof_sinogram = PETSinogramProjector(layout, GRID, tof=WIDE_TOF)(x)
    np.testing.assert_allclose(tof_sinogram.sum(-1), PETSinogramProjector(layout, GRID)(x), rtol=1e-12, atol=1e-12)
    assert tof_sinogram.min() >= 0.0
    # with bins that cover only the centre, the sum falls short of the non-TOF value for long chords
    narrow = PETSinogramProjector(layout, GRID, tof=TOFParameters(3, 10.0, 10.0))(x)
    assert np.all(narrow.sum(-1) <= PETSinogramProjector(layout, GRID)(x) + 1e-12)


def test_point_source_lands_in_the_tof_bin_of_its_distance() -> None:
    """A hot voxel off centre: on every LOR through it, the TOF profile peaks at its distance from the midpoint."""
    grid = ImageGrid((1, 41, 41), (4.0, 1.0, 1.0))
    layout = SinogramLayout(small_scanner(1))
    tof = TOFParameters(n_bins=25, bin_width_mm=5.0, fwhm_mm=6.0)
    image = np.zeros(grid.shape)
    point = np.array([12.0, -7.0, 0.0])  # (x, y, z) mm; voxel (k, i, j) = (0, 13, 32)
    image[0, 13, 32] = 1.0
    op = PETSinogramProjector(layout, grid, tof=tof)
    sinogram = op(image)
    xstart, xend = op.lor_endpoints()
    total = sinogram.sum(-1)
    hit = total > 0.25 * total.max()  # LORs that pass through the hot voxel
    assert hit.sum() >= 5
    direction = (xend - xstart) / np.linalg.norm(xend - xstart, axis=-1, keepdims=True)
    distance = np.einsum("...k,...k->...", point - (xstart + xend) / 2.0, direction)
    centres = (np.arange(tof.n_bins) - (tof.n_bins - 1) / 2.0) * tof.bin_width_mm
    mean = (sinogram * centres).sum(-1) / np.maximum(total, 1e-300)
    np.testing.assert_allclose(mean[hit], distance[hit], atol=1.0)  # mm: within a voxel


@settings(max_examples=8)
@given(st.booleans(), st.integers(0, 2**32 - 1))
def test_listmode_equals_sinogram_bins_and_histogrammed_back_projection(with_tof: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    layout = SinogramLayout(small_scanner(), span=1)
    tof = WIDE_TOF if with_tof else None
    sinogram_op = PETSinogramProjector(layout, GRID, tof=tof)
    xstart, xend = sinogram_op.lor_endpoints()
    n_lors = math.prod(layout.shape)
    events = rng.integers(0, n_lors, size=300)  # flat sinogram bins of 300 events, with repeats
    tof_bins = rng.integers(0, WIDE_TOF.n_bins, size=events.size) if with_tof else None
    listmode = ListmodeProjector(GRID, xstart.reshape(-1, 3)[events], xend.reshape(-1, 3)[events],
                                 tof_bin=tof_bins, tof=tof)
    x = rng.random(GRID.shape)
    sinogram = sinogram_op(x).reshape(n_lors, -1)
    expected = sinogram[events, tof_bins] if with_tof else sinogram[events, 0]
    np.testing.assert_allclose(listmode(x), expected, rtol=1e-12, atol=1e-12)
    # back projecting the events equals back projecting their histogram
    histogram = np.zeros((n_lors, WIDE_TOF.n_bins if with_tof else 1))
    np.add.at(histogram, (events, tof_bins if with_tof else 0), 1.0)
    weights = np.ones(events.size)
    np.testing.assert_allclose(listmode.H(weights), sinogram_op.H(histogram.reshape(sinogram_op.out_shape)),
                               rtol=1e-10, atol=1e-10)
    assert dot_test_error(listmode, x, rng.random(listmode.out_shape)) < 1e-12


def test_listmode_bad_input() -> None:
    xstart, xend = np.zeros((4, 3)), np.ones((4, 3))
    with pytest.raises(ValueError, match="both tof_bin and tof"):
        ListmodeProjector(GRID, xstart, xend, tof_bin=[0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"tof_bin must lie in \[0, 9\)"):
        ListmodeProjector(GRID, xstart, xend, tof_bin=[0, 1, 2, 9], tof=WIDE_TOF)
    with pytest.raises(ValueError, match="one integer TOF bin per event"):
        ListmodeProjector(GRID, xstart, xend, tof_bin=[0.5, 1, 2, 3], tof=WIDE_TOF)
    with pytest.raises(ValueError, match=r"\(n_events, 3\)"):
        ListmodeProjector(GRID, np.zeros((2, 2, 3)), np.ones((2, 2, 3)))
    with pytest.raises(ValueError, match="n_sigmas"):
        TOFParameters(5, 10.0, 20.0, n_sigmas=0.1)
    with pytest.raises(ValueError, match="fwhm_mm"):
        TOFParameters(5, 10.0, -1.0)
    with pytest.raises(TypeError, match="TOFParameters"):
        PETSinogramProjector(SinogramLayout(small_scanner()), GRID, tof=(5, 10.0, 20.0))


def test_tof_from_timing_resolution() -> None:
    """A 214 ps coincidence resolution (Siemens Biograph Vision, van Sluis et al., JNM 2019) is 32.1 mm FWHM."""
    tof = TOFParameters.from_timing(214.0, n_bins=33, bin_width_ps=63.0)
    assert tof.fwhm_mm == pytest.approx(32.08, abs=0.01)
    assert tof.sigma_mm == pytest.approx(tof.fwhm_mm / 2.3548, rel=1e-4)


def test_uniform_image_gives_box_chords_including_fov_edge_and_oblique_planes() -> None:
    """Joseph on a uniform image integrates the image box (voxel faces) along every LOR to within two sample steps.

    Inside, the samples add up to the chord exactly; near a face the interpolated image ramps from 1 to 0
    over one voxel, so a LOR crossing a face (or two, at an edge) is off by at most a step per face.
    """
    layout = SinogramLayout(small_scanner(5), span=1)  # ring differences up to 4: oblique planes
    grid = ImageGrid((5, 20, 20), (4.0, 4.0, 4.0))  # 80 mm wide in a 120 mm ring: outer LORs graze or miss it
    op = PETSinogramProjector(layout, grid)
    xstart, xend = op.lor_endpoints()
    chords = segment_box_lengths(xstart, xend, np.array([40.0, 40.0, 10.0]))
    values = op(np.ones(grid.shape))
    delta = np.abs(xend - xstart)
    step = np.linalg.norm(xend - xstart, axis=-1) / np.max(delta / 4.0, axis=-1)  # path per sample plane, mm
    assert np.all(np.abs(values - chords) <= 2.0 * step + 1e-9)
    inside = chords > 2.0 * step
    assert np.median(np.abs(values - chords)[inside] / chords[inside]) < 0.05
    assert np.any(chords == 0.0) and np.all(values[chords == 0.0] <= step[chords == 0.0])


def test_matches_parallelproj_joseph(parallelproj) -> None:
    """parallelproj's non-TOF Joseph projector on the same LORs (its image axes are ours, its points (z, y, x)),
    but for the x/y diagonals (to its float32): there it samples y planes and we x planes (test_parallelproj.py,
    which holds the thorough cross-checks)."""
    layout = SinogramLayout(small_scanner(), span=1)
    op = PETSinogramProjector(layout, GRID)
    xstart, xend = op.lor_endpoints()
    image = np.random.default_rng(5).random(GRID.shape).astype(np.float32)
    origin = np.array([GRID.centers_mm(axis)[0] for axis in range(3)], dtype=np.float32)  # voxel (0, 0, 0), (z, y, x)
    theirs = parallelproj.joseph3d_fwd(np.ascontiguousarray(xstart[..., ::-1], dtype=np.float32),
                                       np.ascontiguousarray(xend[..., ::-1], dtype=np.float32), image, origin,
                                       np.asarray(GRID.voxel_size_mm, dtype=np.float32))
    delta = np.abs(xend - xstart)
    same_planes = np.abs(delta[..., 0] - delta[..., 1]) > 1e-5 * delta.max(-1)
    assert same_planes.mean() > 0.9
    np.testing.assert_allclose(np.asarray(theirs)[same_planes], op(image)[same_planes], rtol=1e-4,
                               atol=1e-4 * float(op(image).max()))
