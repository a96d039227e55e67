"""Cross-checks against parallelproj 1.10.2 (built from shared/third_party/parallelproj): the same LORs, bins and
projections, every difference explained. Results and the benchmark: docs/results/parallelproj.md.

parallelproj takes points in image-axis order, ``(z, y, x)`` for our ``(x, y, z)``, the image origin at the centre
of voxel ``(0, 0, 0)``, and computes in float32 only (float64 input is cast). The tolerances come from what differs:

- float32: its positions and sums are float32. A 60 mm coordinate has an ulp of 4e-6 mm, so a sample's weights move
  by ~1e-6 and a sum of tens of samples rounds at ~1e-6: :data:`FLOAT32` = 1e-5 of the largest value (the
  measured differences are 1e-6 and below).
- the dominant axis: we sample a LOR on the planes of the axis it advances most along in voxels, ties going to x,
  then y; parallelproj in mm (its direction cosines), ties going to y. With isotropic voxels only the exact x/y
  ties differ (common on a symmetric polygon: 6% of the small scanner's LORs); with anisotropic voxels any LOR
  between the two criteria. The two then sample different planes, a difference of interpolation, not of
  rounding (up to 17% of the largest value for a random image), so these LORs are left out of the comparisons
  (:func:`same_axis`) and the tests check that they are the only ones left out.
- TOF (:func:`test_tof_sinogram`): both split a sample over bins by the mass of a Gaussian centred at its
  distance from the LOR midpoint, positive towards the end point, bin ``b`` of ``n`` centred at
  ``(b - (n - 1) / 2) w`` (its bin ``b - (n - 1) / 2``, zero centre offset; it needs odd ``n``), renormalised by
  ``1 / erf(n_sigmas / sqrt(2))``. We truncate the Gaussian at ``+-n_sigmas`` about the sample, so a sample's
  weights sum to 1; it gives every bin whose centre lies within ``n_sigmas`` effective sigmas (sigma widened by
  the bin width, ``s = sqrt(sigma^2 + w^2 / 12)``) the bin's whole Gaussian mass, tails included, and nothing to
  the others. So a bin differs by at most the larger of the tail mass beyond ``n_sigmas`` and our mass beyond
  ``n s - w / 2`` (a bin it leaves out), as a fraction of the LOR's non-TOF value (:func:`tof_bound`: 5.5e-3 at 3
  sigma for the bins here, 6e-7 at 5), on top of float32 and its float32 ``erff`` against our table
  (within 2e-8).
- the segment against the line (:func:`test_segment_versus_line_on_a_uniform_box`): where a crystal lies inside
  the image, we sample the planes between the LOR's two ends; parallelproj also samples the plane before the start
  point (it rounds the start down and the end up).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pet_projection import (ImageGrid, ListmodeProjector, LORProjector, PETSinogramProjector, RingScannerGeometry,
                            SinogramLayout, TOFParameters)
from pet_projection.geometry import segment_box_lengths

FLOAT32 = 1e-5  # relative to the largest value: parallelproj's float32 positions and sums (module docstring)
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

# 12 sides x 3 crystals (N = 36) at 60 mm, 5 rings 4 mm apart; the image fits inside the ring
RADIUS, SIDES, PER_SIDE, SPACING = 60.0, 12, 3, 4.0
RINGS = (np.arange(5) - 2.0) * 4.0
N_CRYSTALS = SIDES * PER_SIDE
GRID = ImageGrid((5, 24, 24), 3.5)


def pp_points(points: np.ndarray) -> np.ndarray:
    """Our ``(..., 3)`` ``(x, y, z)`` points in parallelproj's order, flat float32 ``(n, 3)`` ``(z, y, x)``."""
    return np.ascontiguousarray(points.reshape(-1, 3)[:, ::-1], dtype=np.float32)


def pp_grid(grid: ImageGrid) -> tuple[np.ndarray, np.ndarray]:
    """parallelproj's image origin (centre of voxel 0, ``(z, y, x)``) and voxel size of ``grid``."""
    origin = np.array([grid.centers_mm(axis)[0] for axis in range(3)], dtype=np.float32)
    return origin, np.asarray(grid.voxel_size_mm, dtype=np.float32)


def same_axis(xstart: np.ndarray, xend: np.ndarray, grid: ImageGrid, margin: float = 1e-5) -> np.ndarray:
    """Whether both libraries sample each LOR on the planes of the same axis, with a ``margin`` (relative) from
    either criterion's ties (module docstring): ours in voxels, ties x, y, z; parallelproj's in mm, ties y, x, z."""
    delta = np.abs(xend - xstart)
    voxels = delta / np.asarray(grid.voxel_size_mm[::-1])  # (x, y, z)
    ours = np.where((voxels[..., 0] >= voxels[..., 1]) & (voxels[..., 0] >= voxels[..., 2]), 0,
                    np.where(voxels[..., 1] >= voxels[..., 2], 1, 2))
    theirs = np.where((delta[..., 1] >= delta[..., 0]) & (delta[..., 1] >= delta[..., 2]), 1,
                      np.where(delta[..., 0] >= delta[..., 2], 0, 2))

    def clear(values: np.ndarray) -> np.ndarray:
        ordered = np.sort(values, axis=-1)
        return ordered[..., 2] - ordered[..., 1] > margin * ordered[..., 2]

    return (ours == theirs) & clear(voxels) & clear(delta)


def scanners(parallelproj):
    """The same scanner in both libraries (parallelproj's ring axis is its axis 0, our z)."""
    ours = RingScannerGeometry(RADIUS, SIDES, PER_SIDE, SPACING, RINGS)
    theirs = parallelproj.RegularPolygonPETScannerGeometry(np, "cpu", RADIUS, SIDES, PER_SIDE, SPACING, RINGS,
                                                           symmetry_axis=0)
    return ours, theirs


def layouts(parallelproj, trim: int, span: int = 1, max_ring_difference: int = 4):
    """Our layout and parallelproj's LOR descriptor with ``radial_trim=trim`` (``N + 1 - 2 trim`` radial bins)."""
    ours, theirs = scanners(parallelproj)
    layout = SinogramLayout(ours, span=span, max_ring_difference=max_ring_difference,
                            n_radial=N_CRYSTALS + 1 - 2 * trim)
    descriptor = parallelproj.RegularPolygonPETLORDescriptor(theirs, radial_trim=trim,
                                                             max_ring_difference=max_ring_difference)
    return layout, descriptor


def in_our_order(theirs: np.ndarray, layout: SinogramLayout) -> np.ndarray:
    """parallelproj's RVP sinogram (trailing TOF axis or ``(x, y, z)`` kept) in our span-1 bin order, radial bins
    ``1 ..`` (our bin 0 is not in it; :meth:`SinogramLayout.parallelproj_bins`)."""
    radial, view, plane = layout.parallelproj_bins()
    return theirs[radial[1:]][:, view][:, :, plane[:, 0]]


def test_lor_projector_matches_joseph3d(parallelproj) -> None:
    """Random LORs with both ends outside the grid, anisotropic voxels and a shifted origin, float32 and float64."""
    rng = np.random.default_rng(11)
    grid = ImageGrid((9, 14, 17), (2.5, 1.7, 1.2), origin_mm=(1.3, -2.1, 0.7))
    n = 2000
    through = np.asarray(grid.origin_mm[::-1]) + rng.uniform(-0.55, 0.55, (n, 3)) * np.asarray(grid.extent_mm[::-1])
    direction = rng.standard_normal((n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    reach = grid.bounding_radius_mm() + 5.0  # both ends on this sphere: outside the grid
    along = np.einsum("ij,ij->i", through, direction)
    half = np.sqrt(along**2 - np.einsum("ij,ij->i", through, through) + reach**2)
    xstart = through - (along + half)[:, None] * direction
    xend = through + (half - along)[:, None] * direction
    agree = same_axis(xstart, xend, grid)
    assert 0.5 < agree.mean() < 0.95  # anisotropic voxels: the criteria differ on some LORs
    origin, voxel = pp_grid(grid)
    for dtype in (np.float32, np.float64):
        image = rng.random(grid.shape).astype(dtype)
        op = LORProjector(grid, xstart.astype(dtype), xend.astype(dtype))
        ours = op(image)
        theirs = np.asarray(parallelproj.joseph3d_fwd(pp_points(xstart), pp_points(xend), image, origin, voxel))
        assert ours.dtype == dtype and theirs.dtype == np.float32  # parallelproj casts float64 to float32
        np.testing.assert_allclose(theirs[agree], ours[agree], rtol=0, atol=FLOAT32 * ours.max())
        assert np.abs(theirs - ours)[~agree].max() > 100 * FLOAT32 * ours.max()  # other planes, other values
        values = (rng.random(n) * agree).astype(dtype)
        back = op.H(values)
        theirs_back = np.asarray(parallelproj.joseph3d_back(pp_points(xstart), pp_points(xend), grid.shape, origin,
                                                            voxel, values))
        np.testing.assert_allclose(theirs_back, back, rtol=0, atol=FLOAT32 * back.max())


@pytest.mark.parametrize("trim", [1, 4])
def test_ring_geometry_same_lors_bin_by_bin(parallelproj, trim: int) -> None:
    """Span 1: the same start and end points in every bin after parallelproj_bins' conversion (radial shifted by one,
    views reversed, +-ring differences swapped), to float32 (its crystal positions: 60 mm with an ulp of 4e-6 mm)."""
    layout, descriptor = layouts(parallelproj, trim)
    assert descriptor.spatial_sinogram_shape == layout.shape
    theirs_start, theirs_end = (np.asarray(points)[..., ::-1] for points in descriptor.get_lor_coordinates())
    xstart, xend = layout.lor_endpoints()
    np.testing.assert_allclose(in_our_order(theirs_start, layout), xstart[1:], rtol=0, atol=1e-4)
    np.testing.assert_allclose(in_our_order(theirs_end, layout), xend[1:], rtol=0, atol=1e-4)
    # the bins without a partner: our first radial bin joins crystals N - t apart (counter-clockwise), its last
    # radial bin crystals t - 1 apart (t = 1: twice the same crystal)
    crystals = layout.scanner.crystal_positions_mm()[0, :, :2]

    def crystal(points: np.ndarray) -> np.ndarray:
        return np.linalg.norm(points[..., None, :2] - crystals, axis=-1).argmin(-1)

    c1, c2 = layout.crystal_pairs()
    assert np.all((c2[:, 0] - c1[:, 0]) % N_CRYSTALS == N_CRYSTALS - trim)
    last = (crystal(theirs_end[-1, :, 0]) - crystal(theirs_start[-1, :, 0])) % N_CRYSTALS
    assert np.all(last == trim - 1)


def test_ring_geometry_larger_span_with_radial_trimming(parallelproj) -> None:
    """Span 3 (parallelproj has span 1 only): each merged plane's LORs run between the mean points of
    parallelproj's LORs of its ring pairs."""
    layout, descriptor = layouts(parallelproj, trim=5, span=3)
    theirs_start, theirs_end = (np.asarray(points)[..., ::-1] for points in descriptor.get_lor_coordinates())
    radial, view, plane = layout.parallelproj_bins()
    assert plane.shape[1] > 1 and np.all(plane[:, 0] >= 0)
    pairs = plane >= 0
    xstart, xend = layout.lor_endpoints()
    for ours, theirs in ((xstart, theirs_start), (xend, theirs_end)):
        merged = theirs[radial[1:]][:, view][:, :, np.where(pairs, plane, 0)]  # (radial, view, plane, pair, 3)
        mean = (merged * pairs[..., None]).sum(-2) / pairs.sum(-1)[:, None]
        np.testing.assert_allclose(mean, ours[1:], rtol=0, atol=1e-4)


def test_sinogram_projections_match(parallelproj) -> None:
    """PETSinogramProjector against RegularPolygonPETProjector (span 1), forward and back, float32."""
    layout, descriptor = layouts(parallelproj, trim=4)
    theirs_op = parallelproj.RegularPolygonPETProjector(descriptor, GRID.shape, GRID.voxel_size_mm)
    op = PETSinogramProjector(layout, GRID)
    compared = same_axis(*op.lor_endpoints(), GRID)
    compared[0] = False  # not in parallelproj's sinogram
    assert 0.9 < compared.mean() < 1.0  # only the x/y ties (and radial bin 0) are left out
    rng = np.random.default_rng(3)
    image = rng.random(GRID.shape).astype(np.float32)
    ours = op(image)
    theirs = in_our_order(np.asarray(theirs_op(image)), layout)
    np.testing.assert_allclose(theirs[compared[1:]], ours[compared], rtol=0, atol=FLOAT32 * ours.max())
    values = (rng.random(op.out_shape) * compared).astype(np.float32)
    theirs_values = np.zeros(theirs_op.out_shape, dtype=np.float32)
    radial, view, plane = layout.parallelproj_bins()
    theirs_values[np.ix_(radial[1:], view, plane[:, 0])] = values[1:]
    back = op.H(values)
    np.testing.assert_allclose(np.asarray(theirs_op.adjoint(theirs_values)), back, rtol=0, atol=FLOAT32 * back.max())


def test_larger_span_projection_matches_joseph3d(parallelproj) -> None:
    """Span 3 with radial trimming: our merged-plane LORs projected by parallelproj's Joseph projector."""
    layout = layouts(parallelproj, trim=5, span=3)[0]
    op = PETSinogramProjector(layout, GRID)
    xstart, xend = op.lor_endpoints()
    compared = same_axis(xstart, xend, GRID)
    assert compared.mean() > 0.9
    image = np.random.default_rng(4).random(GRID.shape).astype(np.float32)
    ours = op(image)
    theirs = np.asarray(parallelproj.joseph3d_fwd(pp_points(xstart), pp_points(xend), image, *pp_grid(GRID)))
    np.testing.assert_allclose(theirs.reshape(ours.shape)[compared], ours[compared], rtol=0,
                               atol=FLOAT32 * ours.max())


def tof_bound(n_sigmas: float, width: float, sigma: float) -> float:
    """The most a TOF bin can differ by, as a fraction of its LOR's non-TOF value (module docstring): the larger of
    the Gaussian mass beyond ``+-n_sigmas`` (bins parallelproj keeps whole) and our mass beyond ``n_sigmas``
    effective sigmas less half a bin (bins it leaves out), both relative to the mass inside ``+-n_sigmas``."""
    inside = math.erf(n_sigmas / math.sqrt(2.0))
    cut = (n_sigmas * math.sqrt(sigma**2 + width**2 / 12.0) - width / 2.0) / sigma
    return max(1.0 - inside, (inside - math.erf(cut / math.sqrt(2.0))) / 2.0) / inside


@pytest.mark.parametrize("n_sigmas", [3.0, 5.0])
def test_tof_sinogram(parallelproj, n_sigmas: float) -> None:
    """TOF sinograms with matched parameters: 9 bins of 12 mm, sigma 6 mm, no centre offset; differences within the
    tail mass beyond ``n_sigmas`` (each library truncates its own way) plus float32."""
    layout, descriptor = layouts(parallelproj, trim=4)
    n_bins, width, sigma = 9, 12.0, 6.0
    theirs_op = parallelproj.RegularPolygonPETProjector(descriptor, GRID.shape, GRID.voxel_size_mm)
    theirs_op.tof_parameters = parallelproj.TOFParameters(num_tofbins=n_bins, tofbin_width=width, sigma_tof=sigma,
                                                          num_sigmas=n_sigmas, tofcenter_offset=0.0)
    theirs_op.tof = True
    op = PETSinogramProjector(layout, GRID, tof=TOFParameters(n_bins, width, sigma * FWHM_PER_SIGMA, n_sigmas))
    compared = same_axis(*op.lor_endpoints(), GRID)[1:]
    rng = np.random.default_rng(5)
    image = rng.random(GRID.shape).astype(np.float32)
    ours = op(image)[1:]
    theirs = in_our_order(np.asarray(theirs_op(image)), layout)
    non_tof = PETSinogramProjector(layout, GRID)(image)[1:, ..., None]
    relative = tof_bound(n_sigmas, width, sigma)
    assert np.all((np.abs(theirs - ours) <= relative * non_tof + FLOAT32 * ours.max())[compared])
    if n_sigmas == 5.0:  # the truncation no longer matters: float32 only
        np.testing.assert_allclose(theirs[compared], ours[compared], rtol=0, atol=FLOAT32 * ours.max())
    else:  # ... it does at 3 sigma: the bound is reached within a factor 4
        assert (np.abs(theirs - ours) / np.maximum(non_tof, 1e-6))[compared].max() > 0.25 * relative
    values = np.zeros(op.out_shape, dtype=np.float32)
    values[1:][compared] = rng.random((compared.sum(), n_bins))
    theirs_values = np.zeros(theirs_op.out_shape, dtype=np.float32)
    radial, view, plane = layout.parallelproj_bins()
    theirs_values[np.ix_(radial[1:], view, plane[:, 0])] = values[1:]
    back = op.H(values)
    error = np.abs(np.asarray(theirs_op.adjoint(theirs_values)) - back).max()
    assert error <= (relative + FLOAT32) * back.max()


def test_tof_listmode(parallelproj) -> None:
    """TOF listmode: random events on the sinogram's LORs; our bin ``b`` is parallelproj's ``b - (n - 1) / 2``."""
    layout = layouts(parallelproj, trim=4)[0]
    xstart, xend = PETSinogramProjector(layout, GRID).lor_endpoints()
    rng = np.random.default_rng(6)
    lors = rng.choice(np.flatnonzero(same_axis(xstart, xend, GRID)), 500)
    xstart, xend = xstart.reshape(-1, 3)[lors], xend.reshape(-1, 3)[lors]
    n_bins, width, sigma, n_sigmas = 9, 12.0, 6.0, 5.0
    bins = rng.integers(0, n_bins, lors.size)
    op = ListmodeProjector(GRID, xstart, xend, tof_bin=bins,
                           tof=TOFParameters(n_bins, width, sigma * FWHM_PER_SIGMA, n_sigmas))
    tof_args = (width, np.array([sigma], dtype=np.float32), np.array([0.0], dtype=np.float32), n_sigmas,
                (bins - (n_bins - 1) // 2).astype(np.int16))
    image = rng.random(GRID.shape).astype(np.float32)
    ours = op(image)
    theirs = np.asarray(parallelproj.joseph3d_fwd_tof_lm(pp_points(xstart), pp_points(xend), image, *pp_grid(GRID),
                                                         *tof_args))
    assert np.count_nonzero(ours) > 0.8 * lors.size
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=FLOAT32 * ours.max())
    values = rng.random(lors.size).astype(np.float32)
    back = op.H(values)
    theirs_back = parallelproj.joseph3d_back_tof_lm(pp_points(xstart), pp_points(xend), GRID.shape, *pp_grid(GRID),
                                                    values, *tof_args)
    np.testing.assert_allclose(np.asarray(theirs_back), back, rtol=0, atol=FLOAT32 * back.max())


def test_segment_versus_line_on_a_uniform_box(parallelproj) -> None:
    """An image box larger than the ring, so crystals lie inside it: on a uniform image both libraries give the
    exact chord to within a sample step where the LOR crosses the box, but where it ends inside, parallelproj
    also samples the plane before its start point, and we are the closer (numbers: docs/results/parallelproj.md)."""
    layout = layouts(parallelproj, trim=4)[0]
    grid = ImageGrid((7, 40, 40), 3.5)  # 140 mm wide: the 120 mm ring's crystals are inside
    op = PETSinogramProjector(layout, grid)
    xstart, xend = op.lor_endpoints()
    compared = same_axis(xstart, xend, grid)
    half = np.asarray(grid.extent_mm[::-1]) / 2.0
    chords = segment_box_lengths(xstart, xend, half)
    ours = op(np.ones(grid.shape, dtype=np.float32))
    theirs = np.asarray(parallelproj.joseph3d_fwd(pp_points(xstart), pp_points(xend),
                                                  np.ones(grid.shape, dtype=np.float32), *pp_grid(grid)))
    theirs = theirs.reshape(ours.shape)
    step = np.linalg.norm(xend - xstart, axis=-1) / np.max(np.abs(xend - xstart) / 3.5, axis=-1)
    ends_inside = np.all(np.abs(xstart) < half, axis=-1) | np.all(np.abs(xend) < half, axis=-1)
    assert ends_inside[compared].mean() > 0.5
    ours_error, theirs_error = (ours - chords)[compared], (theirs - chords)[compared]
    assert np.all(np.abs(ours_error) <= step[compared] + 1e-3)
    assert np.all(theirs_error > -step[compared] - 1e-3) and np.all(theirs_error < 2 * step[compared] + 1e-3)
    assert np.all(theirs[compared] >= ours[compared] - FLOAT32 * ours.max())  # it samples a superset of planes
    assert np.abs(ours_error).mean() < 0.5 * np.abs(theirs_error).mean()
