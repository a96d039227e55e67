"""Ring scanner geometry and Michelogram sinogram layout: crystal positions, bins, planes, axis orders, LORs."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pet_projection import ImageGrid, LORProjector
from pet_projection.scanner import RingScannerGeometry, SinogramLayout, lor_endpoints


@st.composite
def scanners(draw: st.DrawFn) -> RingScannerGeometry:
    """Small random polygon scanners whose crystals fill 50-100% of each side."""
    n_sides = draw(st.integers(3, 12))
    per_side = draw(st.integers(1, 5).filter(lambda k: n_sides * k % 2 == 0))
    radius = draw(st.floats(20.0, 200.0))
    fill = draw(st.floats(0.5, 1.0))
    pitch = fill * 2.0 * radius * math.tan(math.pi / n_sides) / per_side
    rings = np.cumsum(draw(st.lists(st.floats(0.5, 5.0), min_size=1, max_size=6))) - 10.0
    return RingScannerGeometry(radius, n_sides, per_side, pitch, rings, draw(st.floats(-math.pi, math.pi)))


def normal_angles(layout: SinogramLayout) -> np.ndarray:
    """Angle of the normal of every LOR's transaxial projection, shape ``(n_views, n_radial)``, in [0, pi)."""
    xy = layout.scanner.crystal_positions_mm()[0, :, :2]
    c1, c2 = layout.crystal_pairs()
    direction = xy[c2] - xy[c1]
    return np.mod(np.arctan2(direction[..., 1], direction[..., 0]) - math.pi / 2.0, math.pi)


def angle_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| for line directions, modulo pi."""
    d = np.mod(a - b, math.pi)
    return np.minimum(d, math.pi - d)


@given(scanners())
def test_crystals_lie_on_the_polygon(scanner: RingScannerGeometry) -> None:
    positions = scanner.crystal_positions_mm()
    n = scanner.n_crystals_per_ring
    assert positions.shape == (scanner.n_rings, n, 3)
    np.testing.assert_array_equal(positions[..., 2], np.repeat(scanner.ring_positions_mm[:, None], n, axis=1))
    # Crystal j of a side lies t_j along the side from its centre: distance sqrt(R^2 + t_j^2) from the axis.
    t = (np.arange(scanner.crystals_per_side) - (scanner.crystals_per_side - 1) / 2.0) * scanner.crystal_spacing_mm
    expected = np.tile(np.hypot(scanner.radius_mm, t), scanner.n_sides)
    np.testing.assert_allclose(np.hypot(positions[..., 0], positions[..., 1]),
                               expected[None].repeat(scanner.n_rings, 0), rtol=1e-12)
    # Its projection on the side's normal is the radius (the inner face is flat).
    side = np.repeat(scanner.phi0_rad + 2.0 * math.pi * np.arange(scanner.n_sides) / scanner.n_sides,
                     scanner.crystals_per_side)
    along_normal = positions[0, :, 0] * np.cos(side) + positions[0, :, 1] * np.sin(side)
    np.testing.assert_allclose(along_normal, scanner.radius_mm, rtol=1e-12)
    # Numbered in increasing polar angle: every step turns counter-clockwise by less than pi.
    polar = np.arctan2(positions[0, :, 1], positions[0, :, 0])
    steps = np.mod(np.diff(np.append(polar, polar[0])), 2.0 * math.pi)
    assert np.all(steps > 0) and math.isclose(steps.sum(), 2.0 * math.pi, rel_tol=1e-12)


def test_presets_have_documented_sizes() -> None:
    small = RingScannerGeometry.small_research()   # Siemens Inveon numbers in its docstring
    assert (small.n_crystals_per_ring, small.n_rings, small.radius_mm) == (16 * 20, 80, 80.0)
    clinical = RingScannerGeometry.clinical_whole_body()   # Biograph Vision numbers in its docstring
    assert (clinical.n_crystals_per_ring, clinical.n_rings, clinical.radius_mm) == (38 * 20, 80, 410.0)
    np.testing.assert_allclose(np.diff(clinical.ring_positions_mm), 3.29)
    assert "RingScannerGeometry(radius_mm=410.0" in repr(clinical)


@given(scanners(), st.data())
def test_span1_planes_are_ring_pairs_once(scanner: RingScannerGeometry, data: st.DataObject) -> None:
    n = scanner.n_rings
    mrd = data.draw(st.integers(0, n - 1))
    layout = SinogramLayout(scanner, span=1, max_ring_difference=mrd)
    pairs = [p for plane in layout.plane_ring_pairs() for p in plane]
    assert all(len(plane) == 1 for plane in layout.plane_ring_pairs())
    expected = {(a, b) for a in range(n) for b in range(n) if abs(a - b) <= mrd}
    assert len(pairs) == len(set(pairs)) == layout.n_planes == len(expected) and set(pairs) == expected
    assert list(layout.segment_numbers[:3]) == [0, -1, 1][:len(layout.segments)]


@given(st.integers(2, 12), st.sampled_from([3, 5, 7]), st.data())
def test_span_planes_follow_stir_counts(n_rings: int, span: int, data: st.DataObject) -> None:
    """Segment s covers ring differences from m_s = |s| span - (span-1)/2 (m_0 = 0) upwards; summing
    ring pairs of equal r1 + r2 leaves one plane per sum in |d| .. 2(n-1) - |d|, i.e. 2 n_rings - 1 - 2 m_s
    planes when the segment holds at least two differences (STIR's num_axial_poss; 2 n_rings - 1 for segment 0)."""
    mrd = data.draw(st.integers(0, n_rings - 1))
    layout = SinogramLayout(RingScannerGeometry(40.0, 6, 2, 5.0, np.arange(n_rings) * 4.0), span, mrd)
    segments = layout.plane_segment_numbers()
    all_pairs = [p for plane in layout.plane_ring_pairs() for p in plane]
    expected = {(a, b) for a in range(n_rings) for b in range(n_rings) if abs(a - b) <= mrd}
    assert len(all_pairs) == len(set(all_pairs)) and set(all_pairs) == expected
    for number, (low, high) in zip(layout.segment_numbers, layout.segments):
        m = min(abs(low), abs(high)) if number else 0
        count = np.count_nonzero(segments == number)
        assert count == (2 * n_rings - 1 - 2 * m if high > low else n_rings - abs(low))
    for plane in layout.plane_ring_pairs():
        assert len({a + b for a, b in plane}) == 1
    # Storage order of segments: 0, -1, +1, -2, +2, ... each contiguous.
    order = [s for i, s in enumerate(segments) if i == 0 or segments[i - 1] != s]
    assert order == list(layout.segment_numbers) == [0] + [k * sign for k in range(1, len(order) // 2 + 1)
                                                           for sign in (-1, 1)]


@given(scanners())
def test_every_crystal_pair_once_per_ring_pair(scanner: RingScannerGeometry) -> None:
    layout = SinogramLayout(scanner)
    c1, c2 = layout.crystal_pairs()
    pairs = Counter(zip(np.minimum(c1, c2).ravel().tolist(), np.maximum(c1, c2).ravel().tolist()))
    n = scanner.n_crystals_per_ring
    assert np.all(c1 != c2) and max(pairs.values()) == 1 and len(pairs) == n * (n - 1) // 2


@given(st.integers(2, 40).map(lambda h: 2 * h), st.floats(20.0, 500.0), st.floats(-math.pi, math.pi))
def test_views_are_parallel_on_a_circle(n: int, radius: float, phi0: float) -> None:
    """One crystal per side puts the crystals on a circle at angles phi0 + 2 pi c / N: the LOR of view v,
    radial offset i is exactly x cos(phi) + y sin(phi) = R sin(pi i / N), phi = 2 pi v / N + phi0 (+ pi / N)."""
    scanner = RingScannerGeometry(radius, n, 1, 1e-3, [0.0], phi0)
    layout = SinogramLayout(scanner)
    offset = np.arange(n - 1) - (n // 2 - 1)
    parity = (n // 2 - offset) % 2
    phi = phi0 + math.pi * (2 * np.arange(n // 2)[:, None] + parity) / n
    assert np.all(angle_difference(normal_angles(layout), phi) < 1e-9)
    xstart, _ = layout.lor_endpoints()
    s = xstart[..., 0, 0] * np.cos(phi.T) + xstart[..., 0, 1] * np.sin(phi.T)
    np.testing.assert_allclose(s, radius * np.sin(math.pi * offset / n)[:, None].repeat(n // 2, 1),
                               atol=1e-9 * radius)


@given(scanners())
def test_views_parallel_within_faceting(scanner: RingScannerGeometry) -> None:
    """Each crystal sits |e| from the circle point at its nominal angle; a chord of length L then turns by at most
    asin((|e1| + |e2|) / L) from the ideal one, whose normal angle the circle test pins down."""
    layout = SinogramLayout(scanner)
    n, k = scanner.n_crystals_per_ring, scanner.crystals_per_side
    nominal = scanner.phi0_rad + 2.0 * math.pi * (np.arange(n) - (k - 1) / 2.0) / n
    ideal = scanner.radius_mm * np.stack([np.cos(nominal), np.sin(nominal)], axis=-1)
    error = np.linalg.norm(scanner.crystal_positions_mm()[0, :, :2] - ideal, axis=-1)
    c1, c2 = layout.crystal_pairs()
    chord = np.linalg.norm(ideal[c2] - ideal[c1], axis=-1)
    bound = np.arcsin(np.minimum(1.0, (error[c1] + error[c2]) / chord))
    phi = scanner.phi0_rad + math.pi * (2 * c1 + (c2 - c1) % n - (k - 1)) / n   # pi (S - (k-1)) / N, S = 2 c1 + d
    assert np.all(angle_difference(normal_angles(layout), phi) <= bound + 1e-9)


@given(scanners(), st.data())
def test_radial_trimming_keeps_central_bins(scanner: RingScannerGeometry, data: st.DataObject) -> None:
    full = SinogramLayout(scanner)
    n_radial = data.draw(st.integers(0, (full.n_radial - 1) // 2)) * 2 + 1
    trimmed = SinogramLayout(scanner, n_radial=n_radial)
    cut = (full.n_radial - n_radial) // 2
    for a, b in zip(full.crystal_pairs(), trimmed.crystal_pairs()):
        np.testing.assert_array_equal(a[:, cut:cut + n_radial], b)
    assert trimmed.shape == (n_radial, full.n_views, full.n_planes)


@given(scanners(), st.data())
def test_view_subsets_partition_views(scanner: RingScannerGeometry, data: st.DataObject) -> None:
    layout = SinogramLayout(scanner)
    n_subsets = data.draw(st.integers(1, layout.n_views))
    subsets = layout.view_subsets(n_subsets)
    np.testing.assert_array_equal(np.sort(np.concatenate(subsets)), np.arange(layout.n_views))
    for k, subset in enumerate(subsets):
        np.testing.assert_array_equal(subset, np.arange(k, layout.n_views, n_subsets))


orders = st.permutations(["radial", "view", "plane"]).map(tuple)


@given(orders, orders, st.integers(0, 2**32 - 1))
def test_axis_order_round_trips(order: tuple, other: tuple, seed: int) -> None:
    layout = SinogramLayout(RingScannerGeometry(40.0, 6, 1, 5.0, [0.0, 4.0, 8.0]), axis_order=order)
    data = np.random.default_rng(seed).standard_normal((2,) + layout.shape)
    converted = layout.to_axis_order(data, other)
    assert converted.shape == (2,) + layout._shape(other)
    np.testing.assert_array_equal(layout.from_axis_order(converted, other), data)
    np.testing.assert_array_equal(layout.from_parallelproj(layout.to_parallelproj(data)), data)
    np.testing.assert_array_equal(layout.from_stir(layout.to_stir(data)), data)
    rvp = layout.to_parallelproj(data)
    stir = layout.to_stir(data)
    np.testing.assert_array_equal(stir, rvp.transpose(0, 3, 2, 1))
    # The LOR endpoints follow the layout's axis order like the data does.
    reference = SinogramLayout(layout.scanner).lor_endpoints()[0]
    np.testing.assert_array_equal(np.moveaxis(layout.to_parallelproj(np.moveaxis(layout.lor_endpoints()[0], -1, 0)),
                                              0, -1), reference)


@given(scanners(), st.data())
def test_parallelproj_bins_follow_its_order(scanner: RingScannerGeometry, data: st.DataObject) -> None:
    """The documented conversion to parallelproj's sinogram (checked against parallelproj itself in
    test_parallelproj.py): its crystal pairs, from its descriptor's rule, and its plane order."""
    n = scanner.n_crystals_per_ring
    trim = data.draw(st.integers(1, n // 2))
    span = data.draw(st.sampled_from([1, 3]))
    layout = SinogramLayout(scanner, span=span, n_radial=n + 1 - 2 * trim)
    radial, view, plane = layout.parallelproj_bins()
    # RegularPolygonPETLORDescriptor: radial position r of view w joins (r // 2 - w, -((r + 3) // 2) - w), mod n
    r = radial[1:, None] + trim
    theirs = ((r // 2 - view[None, :]) % n, (-((r + 3) // 2) - view[None, :]) % n)
    c1, c2 = layout.crystal_pairs()
    assert radial[0] == -1 and np.array_equal(theirs[0], c1.T[1:]) and np.array_equal(theirs[1], c2.T[1:])
    # its planes: ring difference 0, then (r, r + i) and (r + i, r) for i = 1, 2, ...
    rings = range(scanner.n_rings)
    order = [(k, k) for k in rings]
    for i in range(1, scanner.n_rings):
        order += [(k, k + i) for k in rings if k + i < scanner.n_rings] + [(k + i, k) for k in rings
                                                                            if k + i < scanner.n_rings]
    for pairs, indices in zip(layout.plane_ring_pairs(), plane):
        assert [order[index] for index in indices if index >= 0] == list(pairs)
    if span == 1:
        assert sorted(plane[:, 0]) == list(range(layout.n_planes))


def test_axis_order_torch_round_trip() -> None:
    torch = pytest.importorskip("torch")
    layout = SinogramLayout(RingScannerGeometry(40.0, 6, 1, 5.0, [0.0, 4.0]), axis_order=("plane", "radial", "view"))
    data = torch.arange(math.prod(layout.shape), dtype=torch.float64).reshape(layout.shape)
    assert torch.equal(layout.from_stir(layout.to_stir(data)), data)


def test_merged_planes_use_mean_z() -> None:
    rings = np.array([0.0, 4.0, 10.0])
    layout = SinogramLayout(RingScannerGeometry(40.0, 6, 1, 5.0, rings), span=3)
    xstart, xend = lor_endpoints(layout)
    for p, pairs in enumerate(layout.plane_ring_pairs()):
        assert np.all(xstart[:, :, p, 2] == np.mean([rings[a] for a, _ in pairs]))
        assert np.all(xend[:, :, p, 2] == np.mean([rings[b] for _, b in pairs]))


def test_projected_cylinder_has_the_polygon_symmetry() -> None:
    """A centred cylinder on a square grid centred on the axis is invariant under 90-degree turns and the
    mirror z -> -z; so is an 8-sided ring scanner with rings at +-2 mm. A turn by 90 degrees moves crystals by
    N/4, view v to v + N/4 (past N/2 - 1 it wraps to v - N/4 with the radial axis reversed); the mirror swaps
    the planes (0, 1) and (1, 0)."""
    scanner = RingScannerGeometry(40.0, 8, 2, 6.0, [-2.0, 2.0], phi0_rad=0.3)
    layout = SinogramLayout(scanner)
    grid = ImageGrid((4, 24, 24), 2.0)
    x, y, _ = grid.meshgrid_mm()
    image = (x * x + y * y <= 15.0**2).astype(np.float64)
    sino = LORProjector(grid, *layout.lor_endpoints())(image)   # (radial, view, plane)
    quarter = scanner.n_crystals_per_ring // 4
    turned = np.concatenate([sino[:, quarter:], sino[::-1, :quarter]], axis=1)
    assert sino.max() > 0
    np.testing.assert_allclose(turned, sino, rtol=1e-10, atol=1e-10)
    planes = layout.plane_ring_pairs()
    np.testing.assert_allclose(sino[..., planes.index(((0, 1),))], sino[..., planes.index(((1, 0),))], rtol=1e-10)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"radius_mm": -1.0}, ValueError, "radius_mm"),
    ({"n_sides": 2}, ValueError, "n_sides"),
    ({"n_sides": 5, "crystals_per_side": 1}, ValueError, "even"),
    ({"crystal_spacing_mm": 50.0}, ValueError, "does not fit"),
    ({"ring_positions_mm": [0.0, 4.0, 2.0]}, ValueError, "strictly increasing"),
    ({"ring_positions_mm": "abc"}, TypeError, "ring_positions_mm"),
    ({"crystals_per_side": 2.0}, TypeError, "crystals_per_side"),
])
def test_bad_scanner_raises(kwargs: dict, error: type, match: str) -> None:
    args = {"radius_mm": 40.0, "n_sides": 6, "crystals_per_side": 2, "crystal_spacing_mm": 5.0,
            "ring_positions_mm": [0.0, 4.0]} | kwargs
    with pytest.raises(error, match=match):
        RingScannerGeometry(**args)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"span": 2}, ValueError, "span must be odd"),
    ({"max_ring_difference": 2}, ValueError, "max_ring_difference"),
    ({"max_ring_difference": -1}, ValueError, "max_ring_difference"),
    ({"n_radial": 4}, ValueError, "n_radial"),
    ({"n_radial": 25}, ValueError, "n_radial"),
    ({"axis_order": ("radial", "view", "view")}, ValueError, "axis_order"),
    ({"scanner": "ring"}, TypeError, "scanner"),
])
def test_bad_layout_raises(kwargs: dict, error: type, match: str) -> None:
    args = {"scanner": RingScannerGeometry(40.0, 6, 2, 5.0, [0.0, 4.0])} | kwargs
    with pytest.raises(error, match=match):
        SinogramLayout(**args)


def test_bad_conversion_input_raises() -> None:
    layout = SinogramLayout(RingScannerGeometry(40.0, 6, 2, 5.0, [0.0, 4.0]))
    with pytest.raises(ValueError, match="data must have shape"):
        layout.to_stir(np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="n_subsets"):
        layout.view_subsets(layout.n_views + 1)
