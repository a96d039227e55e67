"""Random anatomy deformations (pet_projection.simulation.deformation) and the low-dose task's warped patients."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pet_projection import ImageGrid
from pet_projection.simulation import Acquisition, AcquisitionSettings, SimulationConfig, simulate_sample
from pet_projection.physics import attenuation_factors
from pet_projection.simulation.acquisition import parallel_beam_projector
from pet_projection.simulation.deformation import (DeformationSettings, random_deformation, warp_nearest,
                                                   warp_regions)

IDENTITY = DeformationSettings(rotation_rad=0.0, scale=0.0, shift_mm=0.0, elastic_mm=0.0)
GRID = ImageGrid((12, 14), (2.0, 3.0))


def _mm(grid: ImageGrid, index: np.ndarray) -> np.ndarray:
    """Fractional in-plane indices ``(2, ...)`` -> (y, x) in mm."""
    centre = (np.asarray(grid.shape[-2:], dtype=float) - 1.0) / 2.0
    voxel = np.asarray(grid.voxel_size_mm[-2:])
    origin = np.asarray(grid.origin_mm[-2:])
    shape = (2,) + (1,) * (index.ndim - 1)
    return (index - centre.reshape(shape)) * voxel.reshape(shape) + origin.reshape(shape)


labels_strategy = st.integers(0, 2**32 - 1).map(
    lambda seed: np.random.default_rng(seed).integers(0, 4, GRID.shape).astype(np.int16))


@given(labels_strategy, st.integers(0, 2**32 - 1))
def test_identity_deformation_changes_nothing(labels, seed):
    rng = np.random.default_rng(seed)
    image = rng.uniform(0.0, 5.0, (2, *GRID.shape))
    coordinates = random_deformation(GRID, rng, IDENTITY)
    np.testing.assert_allclose(coordinates, np.indices(GRID.shape), atol=1e-12)
    warped, warped_labels = warp_regions(image, labels, coordinates)
    np.testing.assert_allclose(warped, image, rtol=1e-12)
    np.testing.assert_array_equal(warped_labels, labels)
    assert warped_labels.dtype == labels.dtype


@given(labels_strategy, st.integers(0, 2**32 - 1))
def test_piecewise_constant_images_keep_their_region_values(labels, seed):
    rng = np.random.default_rng(seed)
    values = np.array([0.0, 1.5, 4.0, 7.25])
    settings = DeformationSettings(rotation_rad=0.5, scale=0.2, shift_mm=5.0, elastic_mm=3.0, correlation_mm=8.0)
    warped, warped_labels = warp_regions(values[labels], labels, random_deformation(GRID, rng, settings))
    np.testing.assert_allclose(warped, values[warped_labels], rtol=1e-12)  # sharp: no blend of two regions
    assert set(np.unique(warped_labels)) <= set(np.unique(labels)) | {0}


@given(st.integers(0, 2**32 - 1))
def test_rotation_alone_keeps_distances_to_the_axis(seed):
    rotation = dataclasses.replace(IDENTITY, rotation_rad=1.0)
    grid = ImageGrid((9, 11), (2.0, 2.0))
    points = _mm(grid, np.indices(grid.shape).astype(float))
    sources = _mm(grid, random_deformation(grid, np.random.default_rng(seed), rotation))
    np.testing.assert_allclose(np.hypot(*sources), np.hypot(*points), atol=1e-9)
    assert not np.allclose(sources, points)


def test_shift_scale_and_elastic_amplitudes():
    grid = ImageGrid((40, 40), (2.0, 4.0))
    index = np.indices(grid.shape).astype(float)
    shifted = random_deformation(grid, np.random.default_rng(0), dataclasses.replace(IDENTITY, shift_mm=6.0))
    offset_mm = (shifted - index) * np.asarray(grid.voxel_size_mm)[:, None, None]
    assert np.ptp(offset_mm.reshape(2, -1), axis=1).max() < 1e-9  # one constant shift per axis
    assert 0 < np.abs(offset_mm).max() <= 6.0
    elastic = random_deformation(grid, np.random.default_rng(1), dataclasses.replace(IDENTITY, elastic_mm=3.0))
    displacement_mm = (elastic - index) * np.asarray(grid.voxel_size_mm)[:, None, None]
    np.testing.assert_allclose(displacement_mm.reshape(2, -1).std(axis=1), 3.0, rtol=1e-9)
    scaled = random_deformation(grid, np.random.default_rng(2), dataclasses.replace(IDENTITY, scale=0.2))
    ratio = _mm(grid, scaled)[:, 0, 0] / _mm(grid, index)[:, 0, 0]  # a corner: q = p / s per axis
    assert np.all((ratio >= 1 / 1.2 - 1e-12) & (ratio <= 1 / 0.8 + 1e-12)) and not np.allclose(ratio, 1.0)


def test_3d_grids_deform_every_slice_alike():
    grid = ImageGrid((3, 10, 10), (3.0, 2.0, 2.0))
    coordinates = random_deformation(grid, np.random.default_rng(0), DeformationSettings(elastic_mm=2.0,
                                                                                         correlation_mm=6.0))
    assert coordinates.shape == (3, 3, 10, 10)
    np.testing.assert_array_equal(coordinates[0], np.indices(grid.shape)[0])  # axial index unchanged
    np.testing.assert_array_equal(coordinates[1:, 0], coordinates[1:, 2])


def test_warp_nearest_reads_zero_outside():
    image = np.ones((6, 6), dtype=np.float32)
    coordinates = np.indices(image.shape).astype(float) + 10.0
    out = warp_nearest(image, coordinates)
    assert out.dtype == np.float32 and not out.any()


def test_bad_deformation_input():
    with pytest.raises(ValueError, match="rotation_rad"):
        DeformationSettings(rotation_rad=-0.1)
    with pytest.raises(ValueError, match="scale must be below 1"):
        DeformationSettings(scale=1.0)
    with pytest.raises(ValueError, match="correlation_mm must be positive"):
        DeformationSettings(correlation_mm=0.0)
    with pytest.raises(TypeError, match="elastic_mm"):
        DeformationSettings(elastic_mm=math.nan)
    with pytest.raises(TypeError, match="ImageGrid"):
        random_deformation((4, 4), np.random.default_rng(0))
    labels = np.zeros(GRID.shape, dtype=np.int16)
    coordinates = random_deformation(GRID, np.random.default_rng(0))
    with pytest.raises(ValueError, match="coordinates have shape"):
        warp_regions(np.zeros(GRID.shape), labels, coordinates[:, :-1])
    with pytest.raises(TypeError, match="integer"):
        warp_regions(np.zeros(GRID.shape), labels.astype(float), coordinates)
    with pytest.raises(ValueError, match="does not end in the labels' shape"):
        warp_regions(np.zeros((12, 13)), labels, coordinates)


def test_acquisition_takes_a_given_normalisation():
    grid = ImageGrid((8, 8), 4.0)
    projector = parallel_beam_projector(grid, 6)
    norm = np.random.default_rng(0).uniform(0.5, 1.5, projector.out_shape)
    acquisition = Acquisition(projector, np.zeros(grid.shape), AcquisitionSettings(), np.random.default_rng(1),
                              normalisation=norm)
    np.testing.assert_array_equal(acquisition.normalisation, norm)
    with pytest.raises(ValueError, match="normalisation has shape"):
        Acquisition(projector, np.zeros(grid.shape), AcquisitionSettings(), np.random.default_rng(1),
                    normalisation=norm[:, :-1])
    with pytest.raises(ValueError, match="positive"):
        Acquisition(projector, np.zeros(grid.shape), AcquisitionSettings(), np.random.default_rng(1),
                    normalisation=norm * 0)


# ----------------------------------------------------------------------------------------------- tasks

def test_low_dose_warped_patients_follow_the_sample_physics():
    pytest.importorskip("torch")
    from tasks.examples import with_warped_anatomies
    from tasks.registry import get_task
    from tasks.task import sample_projector

    task = get_task("low_dose")
    # brains (16 mm pixels): a trunk slice of 16 pixels has 31 mm ones, too coarse for a warp to move a label
    config = SimulationConfig(size=16, n_views=16, anatomy="brain")
    samples = [simulate_sample("low_dose", config, seed) for seed in range(2)]
    out = with_warped_anatomies(task, samples, 2, seed=5)
    assert len(out) == 6 and out[:2] == samples
    again = with_warped_anatomies(task, samples, 2, seed=5)
    for i, (warped, twin) in enumerate(zip(out[2:], again[2:])):
        source = samples[i % 2]
        task.check_sample(warped)
        assert np.array_equal(warped.target, twin.target) and np.array_equal(warped.input, twin.input)
        assert not np.array_equal(warped.labels, source.labels)
        assert set(np.unique(warped.labels)) <= set(np.unique(source.labels)) | {0}
        np.testing.assert_array_equal(warped.normalisation, source.normalisation)  # the same scanner
        assert task.input_scale(warped) == task.input_scale(source)
        assert np.all(warped.input <= warped.target) and np.all(warped.target == np.rint(warped.target))
        # attenuation of the warped mu-map, and E[target] = A x + b of the warped truth
        np.testing.assert_allclose(warped.attenuation, attenuation_factors(sample_projector(warped),
                                                                           warped.mu_map.astype(float)), rtol=1e-5)
        expected = np.asarray(task.target_system(warped).expected(warped.target_image.astype(float)))
        assert abs(warped.target.sum() - expected.sum()) < 5 * math.sqrt(expected.sum())
        np.testing.assert_allclose(warped.input_image * task.input_scale(warped), warped.target_image, rtol=1e-6)
        assert warped.metadata["anatomy_warp"] == DeformationSettings().to_dict()
        lesions = warped.metadata["lesions"]
        assert [lesion["name"] for lesion in lesions] == [lesion["name"] for lesion in source.metadata["lesions"]]
        assert all(lesion["n_voxels"] == np.count_nonzero(warped.labels == lesion["label"]) for lesion in lesions)
    with pytest.raises(ValueError, match="n_warps"):
        with_warped_anatomies(task, samples, -1)


@pytest.mark.parametrize("name", ["attenuation_correction", "delayed_frame", "tracer_separation",
                                  "tracer_conversion"])
def test_every_task_warps_patients_through_its_own_physics(name):
    pytest.importorskip("torch")
    from pet_projection.simulation import system_model
    from tasks.registry import get_task
    from tasks.task import sample_projector

    task = get_task(name)
    # a brain (16 mm pixels): a trunk slice of 16 pixels has 31 mm ones, too coarse for a warp to move a label
    source = simulate_sample(name, SimulationConfig(size=16, n_views=16, n_lesions=(1, 2), anatomy="brain"), 1)
    warped = task.warp_sample(source, np.random.default_rng(2))
    task.check_sample(warped)
    again = task.warp_sample(source, np.random.default_rng(2))
    assert np.array_equal(warped.input, again.input) and np.array_equal(warped.target, again.target)
    assert not np.array_equal(warped.labels, source.labels) and warped.labels.shape == source.labels.shape
    assert task.input_scale(warped) == task.input_scale(source)  # count scales are kept
    # E[input] = A x + b of the warped input image, through the new attenuation
    expected_input = np.asarray(system_model(warped, "input").expected(warped.input_image.astype(float)))
    assert abs(warped.input.sum() - expected_input.sum()) < 5 * math.sqrt(expected_input.sum())
    np.testing.assert_allclose(warped.attenuation, attenuation_factors(sample_projector(warped),
                                                                       warped.mu_map.astype(float)), rtol=1e-5)
    for channel in range(task.n_outputs):
        target = warped.target[channel] if task.n_outputs > 1 else warped.target
        image = warped.target_image[channel] if task.n_outputs > 1 else warped.target_image
        mean = np.asarray(task.target_system(warped, channel).expected(image.astype(float)))
        if name == "attenuation_correction":  # a noise-free target
            np.testing.assert_allclose(target, mean, rtol=1e-5, atol=1e-3)
        else:
            assert abs(target.sum() - mean.sum()) < 5 * math.sqrt(mean.sum())
    if task.n_outputs > 1:  # the dual-tracer scan is the sum of the single-tracer ones
        np.testing.assert_array_equal(warped.input, warped.target.sum(axis=0))
        np.testing.assert_allclose(warped.input_image, warped.target_image.sum(axis=0), rtol=1e-6)
    if "expected_counts" in source.metadata:
        assert warped.metadata["expected_counts"] != source.metadata["expected_counts"]
        assert len(warped.metadata["expected_counts"]) == 2


def test_relocate_lesions_follows_the_warp():
    from pet_projection.grid import ImageGrid
    from pet_projection.simulation.deformation import relocate_lesions

    grid = ImageGrid((8, 10), voxel_size_mm=2.0)
    labels = np.zeros(grid.shape, np.int16)
    labels[2:4, 6:8] = 7  # rows y, columns x
    lesions = [{"name": "lesion_1", "label": 7, "center_mm": [0.0, 0.0, 5.0], "diameter_mm": 4.0, "n_voxels": 3},
               {"name": "lesion_2", "label": 8, "center_mm": [1.0, 1.0, 5.0], "diameter_mm": 4.0, "n_voxels": 2}]
    moved, gone = relocate_lesions(lesions, labels, grid, axial_position_mm=5.0)
    x, y = grid.centers_mm(-1)[6:8].mean(), grid.centers_mm(-2)[2:4].mean()
    assert moved["center_mm"] == pytest.approx([x, y, 5.0]) and moved["n_voxels"] == 4
    assert moved["diameter_mm"] == 4.0 and moved["name"] == "lesion_1"
    assert gone["n_voxels"] == 0 and gone["center_mm"] is None
    assert lesions[0]["n_voxels"] == 3  # the input is not changed
    with pytest.raises(ValueError, match="shape"):
        relocate_lesions(lesions, labels.T, grid, 0.0)
