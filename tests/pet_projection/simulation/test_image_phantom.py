"""Image phantoms (the STIR-exercises thorax) as simulator input for the tasks."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from pet_projection import ImageGrid
from pet_projection.io import read_image, write_image
from pet_projection.io.formats import save_image
from pet_projection.simulation import TASKS, SimulationConfig, anatomy_grid, make_phantom, simulate_sample, system_model
from tasks.cli.simulate import main
from pet_projection.simulation.image_phantom import load_image_phantom
from pet_projection.simulation.image_resampling import resample_to_grid
from pet_projection.simulation.phantoms import REGION_LABELS, smooth_texture
from pet_projection.simulation.tracers import get_tracer

THORAX = "stir_exercises_thorax"


def _config(third_party: pathlib.Path, **changes) -> SimulationConfig:
    folder = third_party / THORAX
    return SimulationConfig(**{"dim": 2, "size": 48, "n_views": 40, "activity_image": str(folder / "FDG_g1.hv"),
                               "mu_map_image": str(folder / "CTAC_g1.hv"), **changes})


@pytest.mark.parametrize("task", TASKS)
def test_every_task_simulates_from_the_thorax(third_party: pathlib.Path, task: str) -> None:
    sample = simulate_sample(task, _config(third_party), 1)
    assert sample.input.shape == (40, 48) and sample.input_image.shape == (48, 48)
    # the thorax (lungs in every slice) is detected as a chest; it used to be called "trunk" whatever it showed
    assert sample.metadata["region"] == sample.metadata["anatomy"] == "chest"
    assert "FDG_g1.hv" in sample.metadata["phantom_source"]
    assert {"soft_tissue", "lungs", "spine"} <= set(sample.names)
    assert np.all(sample.input >= 0) and sample.input.sum() > 0
    # the mu-map is the thorax's own (1/cm in the file, 1/mm here): soft tissue near 0.0096 /mm
    soft = sample.labels == REGION_LABELS["soft_tissue"]
    assert np.median(sample.mu_map[soft]) == pytest.approx(0.0096, rel=0.05)


def test_the_reference_frame_reproduces_the_activity_image(third_party: pathlib.Path) -> None:
    config = _config(third_party, kinetic_variability=0.0, size=64)
    sample = simulate_sample("low_dose", config, 2)
    activity, grid = read_image(third_party / THORAX / "FDG_g1.hv")
    # the sample's slice, resampled to the simulation grid (the chest's 500 mm) with the same (conservative) remap
    k = int(np.argmin(np.abs(grid.centers_mm(0) - sample.metadata["axial_position_mm"])))
    target = sample.target_image
    region = (sample.labels > 0) & (sample.labels < 100)
    reference = activity[k]
    assert reference.shape == (155, 155)
    # without kinetic jitter the reference tracer's reference frame is the activity image up to one scale
    ratio = target[region] / _resample_like(reference, grid, config)[region]
    assert np.std(ratio) / np.mean(ratio) < 1e-5


def _resample_like(image: np.ndarray, grid, config: SimulationConfig) -> np.ndarray:
    plane = type(grid)(grid.shape[1:], grid.voxel_size_mm[1:], grid.origin_mm[1:])
    return resample_to_grid(image, plane, anatomy_grid("chest", config.size))


def test_the_lung_nodule_is_a_hot_lesion_and_conversion_follows_the_uptake_tables(third_party) -> None:
    config = _config(third_party, kinetic_variability=0.0, size=96)
    sample = simulate_sample("tracer_conversion", config, 1)  # seed 1 draws the slice through the nodule (z = 0)
    assert sample.metadata["axial_position_mm"] == 0.0
    nodules = [lesion for lesion in sample.metadata["lesions"] if lesion["host"] == "lungs"]
    assert len(nodules) == 1 and nodules[0]["center_mm"][0] == pytest.approx(-106, abs=8)
    fdg, met = get_tracer("fdg"), get_tracer("met")
    spine, soft = (sample.labels == REGION_LABELS[name] for name in ("spine", "soft_tissue"))

    def ratio(image: np.ndarray) -> float:
        return float(np.median(image[spine]) / np.median(image[soft]))

    # bone-to-soft-tissue uptake: FDG 1.8 / 0.8, methionine 3.5 / 1.0 (tracer tables); the image keeps its texture
    expected = (met.uptake["spine"].suv / met.uptake["soft_tissue"].suv) / (
        fdg.uptake["spine"].suv / fdg.uptake["soft_tissue"].suv)
    assert ratio(sample.target_image) / ratio(sample.input_image) == pytest.approx(expected, rel=0.02)


def test_three_dimensional_thorax(third_party: pathlib.Path) -> None:
    # the thorax's 15 slices of 6.75 mm (101 mm) resampled onto the simulation grid's slices of 3.29 mm (they used to
    # keep their own slices); 31 slices cover 102 mm
    config = _config(third_party, dim=3, size=32, view_step=16, n_slices=31)
    sample = simulate_sample("delayed_frame", config, 0)
    assert sample.input_image.shape == (31, 32, 32)
    assert sample.input.ndim == 3 and sample.target.sum() < sample.input.sum()  # decay and washout
    # images and sinograms agree: each frame's system model maps its image to the mean of its prompts, the
    # first frame's mean sums to the requested counts, and the measured prompts are Poisson about those means
    first, delayed = sample.metadata["expected_counts"]
    assert first == pytest.approx(config.counts, rel=1e-9)
    for which, image, counts, total in (("input", sample.input_image, sample.input, first),
                                        ("target", sample.target_image, sample.target, delayed)):
        mean = np.asarray(system_model(sample, which).expected(image.astype(np.float64)))
        assert float(mean.sum()) == pytest.approx(total, rel=1e-4)
        assert abs(float(counts.sum()) - total) < 5.0 * np.sqrt(total)
        # per plane, too: the counts follow the activity along the axis, not just in total
        others = tuple(a for a, name in enumerate(sample.metadata["projector"]["sinogram_axes"]) if name != "plane")
        per_plane, measured = mean.sum(axis=others), counts.sum(axis=others)
        assert per_plane.shape == (80,) and per_plane.max() > 10.0 * per_plane.min()
        assert np.all(np.abs(measured - per_plane) < 5.0 * np.sqrt(per_plane) + 1.0)


def test_bad_image_phantoms(third_party: pathlib.Path, tmp_path: pathlib.Path) -> None:
    folder = third_party / THORAX
    with pytest.raises(ValueError, match="reaches 0.1541 /mm .* is its unit '1/mm' right"):
        load_image_phantom(folder / "FDG_g1.hv", folder / "CTAC_g1.hv", "1/mm")
    image, grid = read_image(folder / "CTAC_g1.hv")
    write_image(tmp_path / "small.hv", image[:5], type(grid)((5,) + grid.shape[1:], grid.voxel_size_mm))
    with pytest.raises(ValueError, match="must share one 3D grid"):
        load_image_phantom(folder / "FDG_g1.hv", tmp_path / "small.hv")
    with pytest.raises(ValueError, match="needs both activity_image and mu_map_image"):
        SimulationConfig(activity_image=str(folder / "FDG_g1.hv"))
    with pytest.raises(ValueError, match="mu_map_unit must be one of"):
        SimulationConfig(mu_map_unit="HU")


def test_cli_simulates_a_thorax_dataset(third_party: pathlib.Path, tmp_path: pathlib.Path) -> None:
    folder = third_party / THORAX
    code = main(["--task", "low_dose", "--n", "2", "--out", str(tmp_path / "d"), "--size", "32", "--views", "24",
                 "--activity-image", str(folder / "FDG_g1.hv"), "--mu-map-image", str(folder / "CTAC_g1.hv"),
                 "--quiet"])
    assert code == 0
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    # the chest's grid (500 mm across), the one of procedural chest data, no longer the image's own 155 x 3.129 mm
    assert list(manifest["geometry"]) == ["chest"]
    assert manifest["geometry"]["chest"]["field_of_view_mm"] == pytest.approx(500.0)
    assert manifest["config"]["activity_image"].endswith("FDG_g1.hv")


def _brain_image(folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """An FDG brain (procedural phantom with texture) on a 211.2 mm grid of 2.2 mm voxels, and its mu-map (1/mm)."""
    grid = ImageGrid((40, 96, 96), (3.0, 2.2, 2.2))
    rng = np.random.default_rng(8)
    phantom = make_phantom("brain", grid, rng, n_lesions=(0, 0), axial_position_mm=5.0)
    uptake = {name: kinetics.suv for name, kinetics in get_tracer("fdg").uptake.items()}
    activity = phantom.region_image(uptake) * smooth_texture(grid, rng, 0.1)
    save_image(folder / "brain.npz", activity, grid)
    save_image(folder / "brain_mu.npz", phantom.mu_map, grid)
    return folder / "brain.npz", folder / "brain_mu.npz"


def test_a_211_mm_brain_image_on_the_256_mm_brain_grid(tmp_path: pathlib.Path) -> None:
    activity, mu = _brain_image(tmp_path)
    config = SimulationConfig(size=64, n_views=48, activity_image=str(activity), mu_map_image=str(mu),
                              mu_map_unit="1/mm")
    assert config.image_region[0] == "brain" and config.anatomies == ("brain",)  # detected: no longer "trunk"
    procedural = simulate_sample("low_dose", SimulationConfig(size=64, n_views=48, anatomy="brain"), 0)
    for seed in range(3):
        sample = simulate_sample("low_dose", config, seed)
        # the brain data's projector (256 mm, 64 pixels): no "geometry mismatch" against procedural brains
        assert sample.metadata["projector"] == procedural.metadata["projector"]
        assert sample.metadata["region"] == "brain" and "lungs" not in sample.names
        assert {"skull", "grey_matter", "white_matter"} <= set(sample.names)
        assert sample.metadata["lesions"] == []  # grey-matter hot spots are not lesions
    # the activity of the slice is conserved by the resampling: 211 mm of 2.2 mm voxels onto 4 mm pixels
    source = config.image_source
    k = int(np.argmin(np.abs(source.grid.centers_mm(0) - sample.metadata["axial_position_mm"])))
    plane = ImageGrid(source.grid.shape[1:], source.grid.voxel_size_mm[1:], source.grid.origin_mm[1:])
    placed = resample_to_grid(source.activity[k], plane, anatomy_grid("brain", 64))
    assert placed.sum() * 16.0 == pytest.approx(source.activity[k].sum() * 2.2 ** 2, rel=1e-9)


def test_cli_prints_the_detected_region_and_takes_region_and_anatomy(tmp_path: pathlib.Path, capsys) -> None:
    activity, mu = _brain_image(tmp_path)
    common = ["--task", "low_dose", "--n", "1", "--size", "32", "--views", "24", "--activity-image", str(activity),
              "--mu-map-image", str(mu), "--mu-map-unit", "1/mm", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "a")]) == 0
    assert "region 'brain' detected from the image" in capsys.readouterr().out
    assert main(common + ["--out", str(tmp_path / "b"), "--region", "brain"]) == 0
    assert "region 'brain' given for the image" in capsys.readouterr().out
    # --anatomy is an alias of --region
    assert main(["--task", "low_dose", "--n", "1", "--size", "16", "--views", "12", "--anatomy", "abdomen",
                 "--tracer", "psma", "--quiet", "--out", str(tmp_path / "c")]) == 0
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["config"]["anatomy"] == "abdomen" and manifest["config"]["tracer"] == "psma"
