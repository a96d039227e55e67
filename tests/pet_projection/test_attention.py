"""Transparent medical attention (TMA): segmentation, image/sinogram attention, ROI edits, JSON specs, plots."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import ellipse_projection, ray_coordinates
from pet_projection import DiagonalOperator, ImageGrid, LinearOperator, ParallelBeamGeometry, ParallelBeamProjector
from pet_projection.attention import (
    DEFAULT_HYPER_RATIO,
    DEFAULT_HYPO_RATIO,
    ArrayMask,
    AttentionRegions,
    Circle,
    Ellipse,
    Polygon,
    RegionTable,
    RoiEdit,
    RoiEditSpec,
    TransparentMedicalAttention,
    default_weight,
    segment_metabolic,
)

# Phantom values (arbitrary units): a uniform body, a lesion 4x hotter and one at a tenth, well beyond the
# default ratios 1.5 and 0.5 so the segmentation is unambiguous.
BODY, HOT, COLD = 1.0, 4.0, 0.1


class CountingOperator(LinearOperator):
    """Wraps an operator and counts forward calls."""

    def __init__(self, op: LinearOperator) -> None:
        self.op, self.calls = op, 0
        self.in_shape, self.out_shape = op.in_shape, op.out_shape

    def _apply(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.op._apply(x)

    def _adjoint(self, y: np.ndarray) -> np.ndarray:
        return self.op._adjoint(y)


def disc(grid: ImageGrid, center: tuple[float, float], radius: float) -> np.ndarray:
    x, y = grid.meshgrid_mm()[:2]
    return (x - center[0]) ** 2 + (y - center[1]) ** 2 <= radius**2


def phantom(grid: ImageGrid) -> dict[str, np.ndarray]:
    """A disc body with a hot lesion (right) and a larger cold lesion (lower left), sizes relative to the grid."""
    half = min(grid.extent_mm[-2:]) / 2.0
    body = disc(grid, (0.0, 0.0), 0.85 * half)
    hot = disc(grid, (0.4 * half, 0.1 * half), 0.15 * half)
    cold = disc(grid, (-0.35 * half, -0.3 * half), 0.22 * half)
    activity = np.where(body, BODY, 0.0)
    activity[hot], activity[cold] = HOT, COLD
    return {"activity": activity, "body": body, "hot": hot, "cold": cold}


def near_rays(geometry: ParallelBeamGeometry, support: np.ndarray) -> np.ndarray:
    """Rays that pass closer than one voxel spacing to the centre of a voxel of ``support`` (2D).

    Joseph's method interpolates between the two voxels next to a ray along one image axis, so only voxels whose
    centre is nearer to the ray than max(dx, dy) can enter a ray's value: all other rays see none of ``support``.
    A voxel exactly one spacing away has weight zero only up to rounding (1 - w with w one ulp below 1), so the
    bound is widened by a relative 1e-9.
    """
    x, y = geometry.grid.meshgrid_mm()
    theta, s = ray_coordinates(geometry)
    distance = np.abs(x[support] * np.cos(theta)[..., None] + y[support] * np.sin(theta)[..., None] - s[..., None])
    return (distance < max(geometry.grid.voxel_size_mm) * (1.0 + 1e-9)).any(axis=-1)


@pytest.fixture(scope="module")
def geometry() -> ParallelBeamGeometry:
    return ParallelBeamGeometry(ImageGrid((40, 40), 2.0), n_views=30, n_bins=60, bin_width_mm=2.0)


@pytest.fixture(scope="module")
def tma(geometry: ParallelBeamGeometry) -> TransparentMedicalAttention:
    return TransparentMedicalAttention(ParallelBeamProjector(geometry), margin_mm=4.0)


@pytest.fixture(scope="module")
def ph(geometry: ParallelBeamGeometry) -> dict[str, np.ndarray]:
    return phantom(geometry.grid)


def lesion_regions(ph: dict[str, np.ndarray]) -> AttentionRegions:
    """The phantom's lesions as segmented (default weight 1) and the body as an organ label (default weight 0)."""
    return AttentionRegions({"hyper": ph["hot"], "hypo": ph["cold"], "liver": ph["body"]})


# ------------------------------------------------------------------------------------------- segmentation

def test_segmentation_finds_the_hot_and_cold_lesions_but_not_air(geometry: ParallelBeamGeometry, ph: dict) -> None:
    table = segment_metabolic(ph["activity"], ph["body"], ph["body"], geometry.grid)
    assert table.names == {"hyper": 1, "hypo": 2}
    np.testing.assert_array_equal(table.mask("hyper"), ph["hot"])
    np.testing.assert_array_equal(table.mask("hypo"), ph["cold"])
    assert not table.mask("hypo")[~ph["body"]].any()


@given(hyper=st.floats(1.0, 5.0), hypo=st.floats(0.0, 0.99), seed=st.integers(0, 2**32 - 1))
def test_segmentation_is_the_ratio_rule(hyper: float, hypo: float, seed: int) -> None:
    grid = ImageGrid((12, 14), (1.5, 2.0))
    rng = np.random.default_rng(seed)
    activity = rng.gamma(2.0, size=(3,) + grid.shape)
    reference = rng.random(grid.shape) < 0.5
    body = rng.random((3,) + grid.shape) < 0.7
    reference[0, 0] = True
    table = segment_metabolic(activity, reference, body, grid, hyper_ratio=hyper, hypo_ratio=hypo)
    mean = (activity * reference).sum(axis=(-2, -1), keepdims=True) / reference.sum()
    np.testing.assert_array_equal(table.mask("hyper"), activity > hyper * mean)
    np.testing.assert_array_equal(table.mask("hypo"), body & (activity < hypo * mean))


def test_segmentation_batch_equals_single_items(geometry: ParallelBeamGeometry, ph: dict) -> None:
    activities = np.stack([ph["activity"], ph["activity"][:, ::-1]])
    batched = segment_metabolic(activities, ph["body"], ph["body"], geometry.grid, min_diameter_mm=5.0)
    for item in range(2):
        single = segment_metabolic(activities[item], ph["body"], ph["body"], geometry.grid, min_diameter_mm=5.0)
        np.testing.assert_array_equal(batched.labels[item], single.labels)


def test_size_filter_drops_specks_and_keeps_lesions(geometry: ParallelBeamGeometry, ph: dict) -> None:
    activity = ph["activity"].copy()
    speck = np.zeros_like(ph["body"])
    speck[20, 12] = True  # one 2 mm pixel inside the body, away from the lesions
    activity[speck] = HOT
    kept = segment_metabolic(activity, ph["body"], ph["body"], geometry.grid)
    assert kept.mask("hyper")[speck].all()
    # A 4 mm disc (12.6 mm^2) is larger than one 2 x 2 mm pixel and smaller than the 6 mm-radius hot lesion.
    filtered = segment_metabolic(activity, ph["body"], ph["body"], geometry.grid, min_diameter_mm=4.0)
    np.testing.assert_array_equal(filtered.mask("hyper"), ph["hot"])


def test_segmentation_takes_torch_cpu_tensors(geometry: ParallelBeamGeometry, ph: dict) -> None:
    torch = pytest.importorskip("torch", reason="torch is optional (extra [torch])")
    table = segment_metabolic(torch.from_numpy(ph["activity"]), torch.from_numpy(ph["body"]),
                              torch.from_numpy(ph["body"]), geometry.grid)
    np.testing.assert_array_equal(table.labels,
                                  segment_metabolic(ph["activity"], ph["body"], ph["body"], geometry.grid).labels)


def test_segmentation_in_3d() -> None:
    grid = ImageGrid((8, 20, 20), (3.0, 2.0, 2.0))
    x, y, z = grid.meshgrid_mm()
    body = x**2 + y**2 < 18.0**2
    sphere = (x - 5.0) ** 2 + y**2 + z**2 < 7.0**2
    activity = np.where(body, BODY, 0.0) + (HOT - BODY) * sphere
    table = segment_metabolic(activity, body, body, grid, min_diameter_mm=4.0)
    np.testing.assert_array_equal(table.mask("hyper"), sphere)
    assert not table.mask("hypo").any()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"reference_mask": np.zeros((40, 40), bool)}, ValueError, "selects no voxel"),
    ({"activity": np.zeros((40, 40))}, ValueError, "must be positive"),
    ({"activity": np.zeros((40, 41))}, ValueError, r"activity has shape \(40, 41\)"),
    ({"activity": np.full((40, 40), np.nan)}, ValueError, "finite"),
    ({"body_mask": np.ones((3, 40), bool)}, ValueError, r"body_mask has shape \(3, 40\)"),
    ({"body_mask": np.full((40, 40), 2)}, ValueError, "only 0 and 1"),
    ({"body_mask": np.ones((40, 40))}, TypeError, "bool"),
    ({"hyper_ratio": 0.4}, ValueError, "hypo_ratio .* below hyper_ratio"),
    ({"hypo_ratio": -1.0}, ValueError, "hypo_ratio"),
    ({"min_diameter_mm": math.inf}, ValueError, "min_diameter_mm"),
    ({"grid": (40, 40)}, TypeError, "ImageGrid"),
])
def test_segmentation_bad_input(geometry: ParallelBeamGeometry, ph: dict, kwargs: dict, error: type,
                                match: str) -> None:
    args = {"activity": ph["activity"], "reference_mask": ph["body"], "body_mask": ph["body"],
            "grid": geometry.grid} | kwargs
    with pytest.raises(error, match=match):
        segment_metabolic(**args)


def test_default_ratios_are_percist_and_half() -> None:
    # PERCIST 1.0 (Wahl et al. 2009): 1.5 x mean liver uptake; the hypo default is half the reference mean.
    assert (DEFAULT_HYPER_RATIO, DEFAULT_HYPO_RATIO) == (1.5, 0.5)


# ------------------------------------------------------------------------------------ label maps, weights

def test_region_table_masks_and_default_weights() -> None:
    labels = np.array([[0, 3, 5], [10, 10, 5]])
    table = RegionTable(labels, {"lesion": 10, "brainstem": 3, "liver": 5, "spleen": 7})
    np.testing.assert_array_equal(table.mask("liver"), labels == 5)
    assert not table.mask("spleen").any()
    regions = AttentionRegions.from_table(table, {"liver": 0.25})
    assert regions.weights == {"lesion": 1.0, "brainstem": 0.0, "liver": 0.25, "spleen": 0.0}
    assert [default_weight(n) for n in ("hyper", "hypo", "lesion_3", "liver")] == [1.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("labels, names, error, match", [
    (np.zeros((2, 2)), {"a": 1}, TypeError, "integer label map"),
    (np.zeros((2, 2), int), {"a": 1, "b": 1}, ValueError, "own label value"),
    (np.zeros((2, 2), int), {"a": 1.5}, TypeError, r"names\['a'\]"),
    (np.zeros((2, 2), int), {"": 1}, ValueError, "empty"),
    (np.zeros((2, 2), int), [("a", 1)], TypeError, "mapping"),
])
def test_region_table_bad_input(labels: np.ndarray, names: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        RegionTable(labels, names)  # type: ignore[arg-type]


def test_region_table_unknown_name_and_bad_weights() -> None:
    table = RegionTable(np.zeros((2, 2), int), {"liver": 5})
    with pytest.raises(ValueError, match="unknown region 'lung'"):
        table.mask("lung")
    with pytest.raises(ValueError, match="unknown region"):
        AttentionRegions.from_table(table, {"lung": 1.0})
    with pytest.raises(ValueError, match=r"weight of 'liver' must lie in \[0, 1\]"):
        AttentionRegions.from_table(table, {"liver": 1.5})


# ---------------------------------------------------------------------------------------- image attention

MARGINS_MM = st.one_of(st.just(0.0), st.floats(0.01, 12.0))  # 0 (hard edges) or a soft edge in mm


@given(margin=MARGINS_MM, dy=st.floats(0.5, 3.0), dx=st.floats(0.5, 3.0))
def test_image_attention_is_a_linear_soft_edge_in_mm(margin: float, dy: float, dx: float) -> None:
    grid = ImageGrid((15, 17), (dy, dx))
    seed = np.zeros(grid.shape, dtype=bool)
    seed[7, 8] = True  # the single-voxel region at the grid centre, (x, y) = (0, 0)
    tma = TransparentMedicalAttention(ParallelBeamProjector(ParallelBeamGeometry(grid, 3, 5, 1.0)), margin_mm=margin)
    attention = tma.image_attention(AttentionRegions({"lesion": seed}))
    x, y = grid.meshgrid_mm()
    distance = np.hypot(x, y)
    expected = (distance == 0.0) * 1.0 if margin == 0.0 else np.clip(1.0 - distance / margin, 0.0, 1.0)
    np.testing.assert_allclose(attention, expected, rtol=0.0, atol=1e-12)


def test_image_attention_uses_weights_and_max_over_regions(tma: TransparentMedicalAttention, ph: dict) -> None:
    attention = tma.image_attention(AttentionRegions({"hot": ph["hot"], "cold": ph["cold"], "body": ph["body"]},
                                                     {"hot": 1.0, "cold": 0.5, "body": 0.2}))
    assert np.all(attention[ph["hot"]] == 1.0) and np.all(attention[ph["cold"]] == 0.5)
    assert attention.max() == 1.0 and attention.min() == 0.0
    assert np.all(attention[ph["body"] & ~ph["hot"] & ~ph["cold"]] >= 0.2)


# ------------------------------------------------------------------------------------- sinogram attention

@st.composite
def scenes(draw: st.DrawFn) -> tuple[ParallelBeamGeometry, list[tuple[tuple[float, float], float]], float]:
    """A random small geometry, one to three disc lesions (centre mm, radius mm) inside the grid and a margin."""
    ny, nx = draw(st.integers(12, 28)), draw(st.integers(12, 28))
    dy, dx = draw(st.floats(0.7, 2.5)), draw(st.floats(0.7, 2.5))
    grid = ImageGrid((ny, nx), (dy, dx))
    bin_width = draw(st.floats(0.6, 2.5))
    n_bins = math.ceil(2.0 * grid.bounding_radius_mm() / bin_width) + 2
    geometry = ParallelBeamGeometry(grid, draw(st.integers(3, 20)), n_bins, bin_width,
                                    radial_offset_mm=draw(st.floats(-1.0, 1.0)))
    half_x, half_y = grid.extent_mm[1] / 2.0, grid.extent_mm[0] / 2.0
    lesions = [((draw(st.floats(-0.6, 0.6)) * half_x, draw(st.floats(-0.6, 0.6)) * half_y),
                draw(st.floats(0.5, 2.0)) * max(dy, dx)) for _ in range(draw(st.integers(1, 3)))]
    return geometry, lesions, draw(MARGINS_MM)


@given(scene=scenes())
def test_sinogram_attention_is_zero_off_the_regions_and_one_at_the_peak(scene: tuple) -> None:
    geometry, lesions, margin = scene
    grid = geometry.grid
    mask = np.zeros(grid.shape, dtype=bool)
    for center, radius in lesions:
        mask |= disc(grid, center, radius)
    projector = ParallelBeamProjector(geometry)
    maps = TransparentMedicalAttention(projector, margin_mm=margin)(AttentionRegions({"lesion": mask}))
    assert maps.sinogram.shape == geometry.sinogram_shape
    assert np.all(maps.sinogram[~near_rays(geometry, maps.image > 0.0)] == 0.0)
    assert maps.sinogram.min() >= 0.0
    # a lesion smaller than the ray spacing can fall between rays: then no data sees it and its attention is 0
    visible = projector(maps.image).max() > 0.0
    assert maps.sinogram.max() == (1.0 if visible else 0.0)


def test_every_lesion_reaches_its_weight_on_its_own_rays(geometry: ParallelBeamGeometry,
                                                         tma: TransparentMedicalAttention, ph: dict) -> None:
    # One region with two components of different sizes: each is normalised by its own peak.
    maps = tma(AttentionRegions({"lesion": ph["hot"] | ph["cold"]}))
    for lesion in (ph["hot"], ph["cold"]):
        assert maps.sinogram[near_rays(geometry, lesion)].max() == 1.0
    assert maps.sinogram.max() == 1.0


def test_hard_disc_attention_is_chord_over_diameter() -> None:
    # Path length through the lesion over its longest chord: for a disc of radius R, 2 sqrt(R^2 - s^2) / 2R.
    grid = ImageGrid((48, 48), 1.0)
    geometry = ParallelBeamGeometry(grid, 36, 70, 1.0)
    radius = 12.0
    attention = TransparentMedicalAttention(ParallelBeamProjector(geometry), margin_mm=0.0)(
        AttentionRegions({"lesion": disc(grid, (0.0, 0.0), radius)})).sinogram
    theta, s = ray_coordinates(geometry)
    expected = ellipse_projection(theta, s, (0.0, 0.0), (radius, radius)) / (2.0 * radius)
    # Rasterising the disc moves each chord end by up to one voxel: allow 2 voxels over the diameter.
    assert np.linalg.norm(attention - expected) / np.linalg.norm(expected) < 2.0 / (2.0 * radius)


def test_batch_axes_equal_single_items_with_one_projector_call(geometry: ParallelBeamGeometry, ph: dict) -> None:
    counting = CountingOperator(ParallelBeamProjector(geometry))
    tma = TransparentMedicalAttention(counting, grid=geometry.grid, margin_mm=4.0)
    lesions = np.stack([np.stack([ph["hot"], ph["cold"], ph["hot"] | ph["cold"]]),
                        np.stack([ph["cold"], ph["hot"][::-1], np.zeros_like(ph["hot"])])])  # (2, 3, ny, nx)
    regions = AttentionRegions({"lesion": lesions, "drawn": disc(geometry.grid, (-10.0, 20.0), 5.0)})
    maps = tma(regions)
    assert counting.calls == 1
    assert maps.image.shape == (2, 3) + geometry.grid.shape and maps.sinogram.shape == (2, 3, 30, 60)
    for index in np.ndindex(2, 3):
        single = tma(AttentionRegions({"lesion": lesions[index], "drawn": regions.masks["drawn"]}))
        np.testing.assert_array_equal(maps.image[index], single.image)
        np.testing.assert_array_equal(maps.sinogram[index], single.sinogram)


def test_any_linear_operator_with_a_grid(geometry: ParallelBeamGeometry, ph: dict) -> None:
    projector = ParallelBeamProjector(geometry)
    composed = DiagonalOperator(np.ones(geometry.sinogram_shape)) @ projector
    regions = AttentionRegions({"lesion": ph["hot"]})
    expected = TransparentMedicalAttention(projector)(regions).sinogram
    np.testing.assert_array_equal(TransparentMedicalAttention(composed, grid=geometry.grid)(regions).sinogram,
                                  expected)
    with pytest.raises(TypeError, match="pass grid="):
        TransparentMedicalAttention(composed)
    with pytest.raises(ValueError, match="grid has shape"):
        TransparentMedicalAttention(projector, grid=ImageGrid((40, 41), 2.0))
    with pytest.raises(TypeError, match="LinearOperator"):
        TransparentMedicalAttention(np.eye(3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="margin_mm"):
        TransparentMedicalAttention(projector, margin_mm=-1.0)


def test_masks_of_the_wrong_shape(tma: TransparentMedicalAttention) -> None:
    with pytest.raises(ValueError, match=r"mask of 'lesion' has shape \(40, 39\)"):
        tma(AttentionRegions({"lesion": np.ones((40, 39), bool)}))
    with pytest.raises(ValueError, match="batch axes do not broadcast"):
        tma(AttentionRegions({"a": np.ones((2, 40, 40), bool), "b": np.ones((3, 40, 40), bool)}))
    with pytest.raises(TypeError, match="AttentionRegions"):
        tma({"lesion": np.ones((40, 40), bool)})  # type: ignore[arg-type]


def test_3d_grid_slice_projector() -> None:
    grid = ImageGrid((6, 24, 24), (3.0, 1.5, 1.5))
    geometry = ParallelBeamGeometry(grid, 12, 40, 1.5)
    x, y, z = grid.meshgrid_mm()
    sphere = (x - 4.0) ** 2 + y**2 + (z - 1.5) ** 2 <= 5.0**2
    maps = TransparentMedicalAttention(ParallelBeamProjector(geometry), margin_mm=2.0)(
        AttentionRegions({"lesion": sphere}))
    assert maps.sinogram.shape == geometry.sinogram_shape and maps.sinogram.max() == 1.0
    empty_slices = ~(maps.image > 0.0).any(axis=(1, 2))
    assert empty_slices.any()
    assert np.all(maps.sinogram[empty_slices] == 0.0)


# ------------------------------------------------------------------------------------------------ ROI edits

def region_support(tma: TransparentMedicalAttention, mask: np.ndarray) -> np.ndarray:
    """Voxels within the soft margin of ``mask``."""
    return tma.image_attention(AttentionRegions({"r": mask}, {"r": 1.0})) > 0.0


@given(op=st.sampled_from(["scale", "remove", "add_circle", "add_name"]), factor=st.floats(0.0, 3.0),
       x=st.floats(-30.0, 30.0), y=st.floats(-30.0, 30.0), radius=st.floats(1.0, 8.0))
@settings(max_examples=20)
def test_an_edit_changes_only_the_rays_through_the_edited_region(
        geometry: ParallelBeamGeometry, tma: TransparentMedicalAttention, ph: dict, op: str, factor: float,
        x: float, y: float, radius: float) -> None:
    regions = lesion_regions(ph)
    edit = {"scale": RoiEdit.scale("hyper", factor), "remove": RoiEdit.remove("hypo"),
            "add_circle": RoiEdit.add("node", 0.7, Circle((x, y), radius)),
            "add_name": RoiEdit.add("liver", 0.4)}[op]
    edited, after = tma.edit(regions, RoiEditSpec([edit]))
    before = tma(regions)
    changed = region_support(tma, edited.masks[edit.region])
    untouched = ~near_rays(geometry, changed)
    np.testing.assert_array_equal(after.sinogram[untouched], before.sinogram[untouched])
    np.testing.assert_array_equal(after.image[~changed], before.image[~changed])


def lesion_only_rays(geometry: ParallelBeamGeometry, tma: TransparentMedicalAttention, lesion: np.ndarray,
                     other: np.ndarray) -> np.ndarray:
    """Rays that meet the soft support of ``lesion`` but not that of ``other``."""
    near = near_rays(geometry, region_support(tma, lesion))
    return near & ~near_rays(geometry, region_support(tma, other))


def test_attention_is_the_max_over_regions(tma: TransparentMedicalAttention, ph: dict) -> None:
    regions = lesion_regions(ph)
    both = tma(regions)
    hyper, hypo = (tma(AttentionRegions({name: regions.masks[name]})) for name in ("hyper", "hypo"))
    np.testing.assert_array_equal(both.sinogram, np.maximum(hyper.sinogram, hypo.sinogram))
    np.testing.assert_array_equal(both.image, np.maximum(hyper.image, hypo.image))


def test_remove_zeroes_the_rays_of_a_region_unless_another_covers_them(
        geometry: ParallelBeamGeometry, tma: TransparentMedicalAttention, ph: dict) -> None:
    regions = lesion_regions(ph)
    hot_only = lesion_only_rays(geometry, tma, ph["hot"], ph["cold"])
    assert tma(regions).sinogram[hot_only].max() == 1.0
    _, after = tma.edit(regions, RoiEditSpec([RoiEdit.remove("hyper")]))
    assert np.all(after.sinogram[hot_only] == 0.0) and np.all(after.image[ph["hot"]] == 0.0)
    # Rays through both lesions keep the cold lesion's attention.
    np.testing.assert_array_equal(after.sinogram, tma(AttentionRegions({"hypo": ph["cold"]})).sinogram)


def test_scale_multiplies_the_weight_and_saturates_at_one(geometry: ParallelBeamGeometry,
                                                          tma: TransparentMedicalAttention, ph: dict) -> None:
    regions = lesion_regions(ph)
    before = tma(regions)
    edited, half = tma.edit(regions, RoiEditSpec([RoiEdit.scale("hyper", 0.5)]))
    assert edited.weights["hyper"] == 0.5
    hot_only = lesion_only_rays(geometry, tma, ph["hot"], ph["cold"])
    assert before.sinogram[hot_only].max() == 1.0
    np.testing.assert_array_equal(half.sinogram[hot_only], 0.5 * before.sinogram[hot_only])
    saturated, _ = tma.edit(regions, RoiEditSpec([RoiEdit.scale("hyper", 0.5), RoiEdit.scale("hyper", 3.0)]))
    assert saturated.weights["hyper"] == 1.0


def test_add_by_name_switches_on_a_table_region(tma: TransparentMedicalAttention, ph: dict) -> None:
    labels = ph["body"].astype(np.int16) * 5
    labels[ph["hot"]] = 10
    regions = AttentionRegions.from_table(RegionTable(labels, {"lesion": 10, "liver": 5}))
    assert regions.weights == {"lesion": 1.0, "liver": 0.0}
    assert np.all(tma(regions).sinogram == tma(AttentionRegions({"lesion": ph["hot"]})).sinogram)
    edited, maps = tma.edit(regions, RoiEditSpec([RoiEdit.add("liver", 0.3)]))
    assert edited.weights["liver"] == 0.3
    liver = tma(AttentionRegions({"liver": labels == 5}, {"liver": 0.3}))
    assert liver.sinogram.max() == 0.3
    np.testing.assert_array_equal(maps.sinogram,
                                  np.maximum(liver.sinogram, tma(AttentionRegions({"lesion": ph["hot"]})).sinogram))


def test_add_drawn_to_an_existing_region_takes_the_union(tma: TransparentMedicalAttention, ph: dict) -> None:
    circle = Circle((-20.0, 20.0), 6.0)
    edited = RoiEditSpec([RoiEdit.add("hyper", 0.8, circle)]).apply(lesion_regions(ph), tma.grid)
    np.testing.assert_array_equal(edited.masks["hyper"], ph["hot"] | circle.rasterize(tma.grid))
    assert edited.weights["hyper"] == 0.8


def test_drawn_shapes_rasterise_at_voxel_centres() -> None:
    grid = ImageGrid((3, 20, 24), (2.0, 1.0, 1.5))
    x, y, _ = grid.meshgrid_mm()
    circle = Circle((3.0, -2.0), 5.0).rasterize(grid)
    np.testing.assert_array_equal(circle, (x - 3.0) ** 2 + (y + 2.0) ** 2 <= 25.0)
    assert circle.shape == grid.shape and np.array_equal(circle[0], circle[2])
    turned = Ellipse((1.0, 2.0), (8.0, 3.0), math.pi / 2.0).rasterize(grid)
    np.testing.assert_array_equal(turned, ((x - 1.0) / 3.0) ** 2 + ((y - 2.0) / 8.0) ** 2 <= 1.0 + 1e-12)
    # Box edges between voxel centres (x centres at odd multiples of 0.75 mm, y centres at half-integers).
    square = Polygon([(-4.0, -3.0), (5.0, -3.0), (5.0, 4.0), (-4.0, 4.0)]).rasterize(grid)
    np.testing.assert_array_equal(square, (np.abs(x - 0.5) < 4.5) & (np.abs(y - 0.5) < 3.5))
    mask = np.zeros(grid.shape, bool)
    mask[1, 3:5, 7] = True
    np.testing.assert_array_equal(ArrayMask(mask).rasterize(grid), mask)


def polygon_area(vertices: list[tuple[float, float]]) -> float:
    """Shoelace area (mm^2): Polygon refuses outlines of zero area."""
    x, y = np.array(vertices).T
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


@st.composite
def specs(draw: st.DrawFn) -> RoiEditSpec:
    """Random valid edit lists on the regions of :func:`lesion_regions` (40 x 40 grid)."""
    finite = st.floats(-40.0, 40.0)
    drawn = st.one_of(
        st.builds(Circle, st.tuples(finite, finite), st.floats(0.5, 15.0)),
        st.builds(Ellipse, st.tuples(finite, finite), st.tuples(st.floats(0.5, 15.0), st.floats(0.5, 15.0)),
                  st.floats(-4.0, 4.0)),
        st.lists(st.tuples(finite, finite), min_size=3, max_size=6).filter(polygon_area).map(Polygon),
        st.builds(ArrayMask, st.builds(lambda seed: np.random.default_rng(seed).random((40, 40)) < 0.05,
                                       st.integers(0, 2**32 - 1))))
    names = st.sampled_from(["hyper", "hypo", "liver"])
    edit = st.one_of(
        st.builds(RoiEdit.add, names, st.floats(0.0, 1.0)),
        st.builds(RoiEdit.add, st.sampled_from(["hyper", "node", "lesion_new"]), st.floats(0.0, 1.0), drawn),
        st.builds(RoiEdit.remove, names),
        st.builds(RoiEdit.scale, names, st.floats(0.0, 4.0)))
    return RoiEditSpec(draw(st.lists(edit, max_size=4)))


@given(spec=specs())
@settings(max_examples=15)
def test_json_round_trip_is_exact(tma: TransparentMedicalAttention, ph: dict, spec: RoiEditSpec) -> None:
    text = spec.to_json()
    again = RoiEditSpec.from_json(text)
    assert again == spec and again.to_json() == text
    regions = lesion_regions(ph)
    first, second = tma.edit(regions, spec)[1], tma.edit(regions, again)[1]
    np.testing.assert_array_equal(first.image, second.image)
    np.testing.assert_array_equal(first.sinogram, second.sinogram)


def test_json_form_is_plain_and_documented() -> None:
    text = json.dumps({"version": 1, "edits": [
        {"op": "add", "region": "brainstem", "weight": 0.5},
        {"op": "add", "region": "node_4r", "drawn": {"shape": "circle", "center_mm": [12, -30], "radius_mm": 8}},
        {"op": "add", "region": "liver", "drawn": {"shape": "polygon", "vertices_mm": [[0, 0], [40, 0], [40, 30]]}},
        {"op": "add", "region": "cyst", "drawn": {"shape": "mask", "values": [[0, 1], [1, 0]]}},
        {"op": "remove", "region": "hypo"},
        {"op": "scale", "region": "hyper", "factor": 0.5}]})
    spec = RoiEditSpec.from_json(text)
    assert spec.edits[1] == RoiEdit.add("node_4r", 1.0, Circle((12.0, -30.0), 8.0))
    assert spec.edits[3].drawn == ArrayMask(np.array([[False, True], [True, False]]))
    assert [e.op for e in spec.edits] == ["add", "add", "add", "add", "remove", "scale"]


@pytest.mark.parametrize("data, error, match", [
    ({"edits": [{"op": "grow", "region": "hot"}]}, ValueError, "'op' must be one of"),
    ({"edits": [{"op": "scale", "region": "hot", "factor": -0.5}]}, ValueError, r"factor must lie in \[0"),
    ({"edits": [{"op": "scale", "region": "hot"}]}, ValueError, "missing 'factor'"),
    ({"edits": [{"op": "remove", "region": "hot", "factor": 2}]}, ValueError, "unknown key.*'factor'"),
    ({"edits": [{"op": "add", "region": "hot", "weight": 2}]}, ValueError, r"weight must lie in \[0, 1\]"),
    ({"edits": [{"op": "add", "region": "hot", "weight": "1"}]}, TypeError, "weight must be a real number"),
    ({"edits": [{"op": "add", "region": 3}]}, TypeError, "region name must be a string"),
    ({"edits": [{"op": "add", "region": "n", "drawn": {"shape": "star"}}]}, ValueError, "'shape' must be one of"),
    ({"edits": [{"op": "add", "region": "n", "drawn": {"shape": "circle", "center_mm": [0, 0]}}]}, ValueError,
     "circle is missing 'radius_mm'"),
    ({"edits": [{"op": "add", "region": "n", "drawn": {"shape": "circle", "center_mm": [0], "radius_mm": 1}}]},
     ValueError, "center_mm must have 2 entries"),
    ({"edits": [{"op": "add", "region": "n", "drawn": {"shape": "polygon", "vertices_mm": [[0, 0], [1, 1]]}}]},
     ValueError, "n >= 3 vertices"),
    ({"edits": [{"op": "add", "region": "n", "drawn": {"shape": "polygon",
                                                        "vertices_mm": [[0, 0], [1, 1], [2, 2]]}}]},
     ValueError, "zero area"),
    ({"edits": [{"op": "add", "region": "n", "drawn": {"shape": "mask", "values": [[0, 2]]}}]}, ValueError,
     "only 0 and 1"),
    ({"edits": [{"op": "add", "region": "n", "drawn": {"shape": "mask", "values": [[0, 1], [1]]}}]}, ValueError,
     "rectangular"),
    ({"edits": [], "version": 2}, ValueError, "version must be 1"),
    ({"edits": {}}, TypeError, "'edits' must be a list"),
    ([], TypeError, "spec must be a JSON object"),
])
def test_bad_specs_name_the_problem(data: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        RoiEditSpec.from_dict(data)


@pytest.mark.parametrize("text, match", [
    ('{"edits": [', "not valid JSON"),
    ('{"edits": [{"op": "scale", "region": "a", "factor": NaN}]}', "NaN"),
    ("[" * 100000, "nested too deeply|not valid JSON"),
    ('{"edits": [{"op": "scale", "region": "a", "factor": ' + "1" * 5000 + "}]}", "spec is not valid JSON: Exceeds"),
    (b'{"edits": [\xff]}', "not UTF-8/16/32 encoded JSON"),
])
def test_malformed_json(text: str | bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RoiEditSpec.from_json(text)


def test_errors_found_when_applying(tma: TransparentMedicalAttention, ph: dict) -> None:
    regions = lesion_regions(ph)
    with pytest.raises(ValueError, match=r"'scale' edit names unknown region 'lung'; known regions: \['hyper'"):
        RoiEditSpec([RoiEdit.scale("lung", 2.0)]).apply(regions, tma.grid)
    with pytest.raises(ValueError, match="unknown region 'brainstem'.*draw a shape"):
        tma.edit(regions, RoiEditSpec([RoiEdit.add("brainstem")]))
    with pytest.raises(ValueError, match=r"drawn mask has shape \(8, 8\), expected the grid shape \(40, 40\)"):
        tma.edit(regions, RoiEditSpec([RoiEdit.add("n", drawn=np.ones((8, 8), bool))]))
    with pytest.raises(TypeError, match="RoiEditSpec"):
        tma.edit(regions, [RoiEdit.remove("hyper")])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="edits must contain RoiEdit"):
        RoiEditSpec([{"op": "remove", "region": "hot"}])  # type: ignore[list-item]


# Hypothesis fuzzing: random JSON-like data must give a spec or a TypeError/ValueError, nothing else.
KEYS = st.sampled_from(["op", "region", "weight", "factor", "drawn", "shape", "center_mm", "radius_mm",
                        "semi_axes_mm", "angle_rad", "vertices_mm", "values", "edits", "version"])
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                   st.text(max_size=8), st.sampled_from(["add", "remove", "scale", "circle", "ellipse", "polygon",
                                                         "mask", "hot"]))
JSON_LIKE = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.one_of(KEYS, st.text(max_size=4)), inner, max_size=5), max_leaves=20)


def edit_dicts() -> st.SearchStrategy:
    shapes = st.fixed_dictionaries({"shape": st.sampled_from(["circle", "ellipse", "polygon", "mask", "x"])},
                                   optional={k: JSON_LIKE for k in ("center_mm", "radius_mm", "semi_axes_mm",
                                                                     "angle_rad", "vertices_mm", "values")})
    return st.fixed_dictionaries({"op": st.sampled_from(["add", "remove", "scale", "grow"]), "region": JSON_LIKE},
                                 optional={"weight": JSON_LIKE, "factor": JSON_LIKE, "drawn": shapes | JSON_LIKE})


@given(data=st.one_of(JSON_LIKE, st.fixed_dictionaries({"edits": st.lists(edit_dicts(), max_size=3)},
                                                       optional={"version": JSON_LIKE})))
def test_fuzz_from_dict_raises_only_type_or_value_errors(data: object) -> None:
    try:
        spec = RoiEditSpec.from_dict(data)
    except (TypeError, ValueError):
        return
    assert RoiEditSpec.from_json(spec.to_json()) == spec


@given(text=st.one_of(st.text(max_size=40), JSON_LIKE.map(lambda d: json.dumps(d, allow_nan=True))))
def test_fuzz_from_json_raises_only_type_or_value_errors(text: str) -> None:
    try:
        RoiEditSpec.from_json(text)
    except (TypeError, ValueError):
        pass


@given(kwargs=st.dictionaries(st.sampled_from(["op", "region", "weight", "factor", "drawn"]), JSON_LIKE),
       shape=st.sampled_from([Circle, Ellipse, Polygon, ArrayMask]), args=st.lists(JSON_LIKE, max_size=3))
def test_fuzz_constructors_raise_only_type_or_value_errors(kwargs: dict, shape: type, args: list) -> None:
    for build in (lambda: RoiEdit(**kwargs), lambda: shape(*args)):
        try:
            build()
        except (TypeError, ValueError):
            pass


# ------------------------------------------------------------------------------------------------- plotting

def test_plot_attention_renders_and_saves_a_png(tmp_path, geometry: ParallelBeamGeometry,
                                                tma: TransparentMedicalAttention, ph: dict) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is needed for the figure helper (extra [bench])")
    from pet_projection.plotting import plot_attention

    maps = tma(lesion_regions(ph))
    path = tmp_path / "attention.png"
    figure = plot_attention(ph["activity"], maps.image, maps.sinogram, geometry, path=path, title="TMA")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = [(ax.get_xlabel(), ax.get_ylabel()) for ax in figure.axes[:2]]
    assert labels == [("x (mm)", "y (mm)"), ("radial position s (mm)", "view angle θ (degrees)")]
    with pytest.raises(ValueError, match=r"sinogram_attention has shape \(60, 30\), expected \(30, 60\)"):
        plot_attention(ph["activity"], maps.image, maps.sinogram.T, geometry)
    with pytest.raises(ValueError, match="2D slice"):
        plot_attention(ph["activity"], maps.image, maps.sinogram,
                       ParallelBeamGeometry(ImageGrid((2, 40, 40), 2.0), 30, 60, 2.0))
