"""A user's image: its body region and its regions and lesions (pet_projection.simulation.image_segmentation)."""

from __future__ import annotations

import numpy as np
import pytest

from pet_projection import ImageGrid
from pet_projection.simulation import anatomy_grid, get_tracer, make_phantom
from pet_projection.simulation.image_segmentation import detect_region, segment_image


def _fdg_image(region: str, grid: ImageGrid, axial_position_mm: float) -> tuple[np.ndarray, np.ndarray]:
    phantom = make_phantom(region, grid, np.random.default_rng(3), n_lesions=(0, 0),
                           axial_position_mm=axial_position_mm)
    uptake = {name: kinetics.suv for name, kinetics in get_tracer("fdg").uptake.items()}
    return phantom.region_image(uptake).astype(np.float64), phantom.mu_map.astype(np.float64)


@pytest.mark.parametrize("region, grid, axial_position_mm", [
    ("brain", ImageGrid((40, 60, 60), (3.0, 3.5, 3.5)), 0.0),  # 210 mm across
    ("chest", ImageGrid((30, 48, 48), (8.0, 10.4, 10.4)), 150.0),
    ("abdomen", ImageGrid((30, 48, 48), (8.0, 10.4, 10.4)), -250.0),
    ("trunk", ImageGrid((60, 48, 48), (10.0, 10.4, 10.4)), 0.0),  # neck to pelvis: lungs in about half the slices
])
def test_region_detection_from_body_size_and_lungs(region, grid, axial_position_mm):
    activity, mu = _fdg_image(region if region != "trunk" else "trunk", grid, axial_position_mm)
    detected, reason = detect_region(activity, mu, grid)
    assert detected == region and f"region {region!r} detected" in reason and "mm across" in reason


def _disc(grid: ImageGrid, centre: tuple[float, float], radius: float | tuple[float, float]) -> np.ndarray:
    x, y = grid.meshgrid_mm()
    a, b = (radius, radius) if np.isscalar(radius) else radius
    return ((x - centre[0]) / a) ** 2 + ((y - centre[1]) / b) ** 2 <= 1.0


def test_trunk_image_lesions_are_relative_to_soft_tissue():
    grid = ImageGrid((128, 128), 2.5)
    body = _disc(grid, (0.0, 0.0), (140.0, 100.0))
    liver, lung = _disc(grid, (-50.0, 10.0), 45.0), _disc(grid, (70.0, 10.0), 35.0)
    spine = _disc(grid, (0.0, -70.0), 15.0)
    hot, cold = _disc(grid, (40.0, -40.0), 9.0), _disc(grid, (-55.0, 10.0), 12.0)
    activity = np.where(body, 1.0, 0.0)
    activity[liver], activity[lung], activity[spine] = 2.3, 0.4, 1.8
    activity[hot], activity[cold] = 6.0, 0.1
    mu = np.where(body, 0.0096, 0.0)
    mu[lung], mu[spine] = 0.003, 0.013
    regions = segment_image(activity, mu, grid, "abdomen")
    kinds = sorted((lesion.kind, lesion.host) for lesion in regions.lesions)
    assert kinds == [("cold", "soft_tissue"), ("hot", "soft_tissue")]  # the liver (2.3 x) is no lesion
    hot_lesion = next(lesion for lesion in regions.lesions if lesion.kind == "hot")
    assert hot_lesion.center_mm[:2] == pytest.approx((40.0, -40.0), abs=1.5) and hot_lesion.name == "lesion_hot_1"
    assert {"soft_tissue", "lungs", "spine"} <= set(regions.names)
    np.testing.assert_array_equal(regions.labels == regions.names["lungs"], lung)


def test_brain_image_has_no_lungs_and_grey_matter_is_no_lesion():
    grid = ImageGrid((100, 100), 2.0)
    head, skull_out, skull_in = _disc(grid, (0, 0), (75, 90)), _disc(grid, (0, 0), (70, 85)), _disc(grid, (0, 0),
                                                                                                 (64, 79))
    cortex, white = _disc(grid, (0, 0), (60, 75)), _disc(grid, (0, 0), (40, 55))
    ventricles = _disc(grid, (0, 0), (6, 20))
    hot, cold = _disc(grid, (15.0, 20.0), 8.0), _disc(grid, (0.0, 65.0), 6.0)  # in white matter; in the cortex
    activity = np.where(head, 1.0, 0.0)
    activity[skull_out] = 0.8
    activity[skull_in] = 0.3
    activity[cortex], activity[white], activity[ventricles] = 8.0, 3.0, 0.2
    activity[hot], activity[cold] = 15.0, 1.0
    activity[cortex & ~white & ~cold] *= 1.0 + 0.3 * _disc(grid, (-45.0, 0.0), 10.0)[cortex & ~white & ~cold]
    mu = np.where(head, 0.0096, 0.0)
    mu[skull_out & ~skull_in] = 0.015
    regions = segment_image(activity, mu, grid, "brain")
    assert "lungs" not in regions.names and {"skull", "scalp", "grey_matter", "white_matter", "csf"} <= set(
        regions.names)
    assert sorted((lesion.kind, lesion.host) for lesion in regions.lesions) == [("cold", "grey_matter"),
                                                                                ("hot", "white_matter")]
    grey = regions.labels == regions.names["grey_matter"]
    assert grey.sum() > 0.9 * (cortex & ~white & ~cold).sum()  # the cortex, its brighter spot included


def test_a_3d_brain_phantom_image_segments_without_lesions():
    grid = anatomy_grid("brain", 64, n_slices=30)
    activity, mu = _fdg_image("brain", grid, 10.0)
    regions = segment_image(activity, mu, grid, "brain", axial_position_mm=10.0)
    assert regions.lesions == () and "lungs" not in regions.names
    grey = regions.labels == regions.names["grey_matter"]
    assert np.median(activity[grey]) > 6.0  # the cortex and deep grey matter (FDG 6.5 to 8.6)
