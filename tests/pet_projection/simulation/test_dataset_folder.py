"""Simulated datasets on disk: writer/reader round trip, resume, atomic writes, workers, NIfTI, CLI, figures, 3D."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pet_projection.simulation import (SimulatedDataset, SimulationConfig, export_sample_nifti, sample_rng,
                                       save_sample, simulate_sample, write_dataset)
from pet_projection.simulation import dataset_folder as dataset_module
from tasks.cli.simulate import main
from pet_projection.io.nifti import nifti_affine
from pet_projection.simulation.dataset_folder import MANIFEST_NAME, sample_path
from pet_projection.simulation.phantoms import anatomy_grid

TINY = SimulationConfig(size=24, n_views=16)


def _assert_same(a, b):
    for key, array in a.arrays().items():
        np.testing.assert_array_equal(array, b.arrays()[key], err_msg=key)


def test_round_trip_matches_the_simulation(tmp_path):
    summary = write_dataset(tmp_path, "tracer_separation", 3, TINY, seed=11, compress=True, progress=False)
    assert (summary.n_written, summary.n_skipped) == (3, 0)
    dataset = SimulatedDataset(tmp_path)
    assert len(dataset) == 3 and dataset.task == "tracer_separation" and dataset.config == TINY
    for index, sample in enumerate(dataset):
        _assert_same(sample, simulate_sample("tracer_separation", TINY, sample_rng(11, index)))
        assert sample.metadata["sample_index"] == index and sample.metadata["dataset_seed"] == 11
        assert sample.names == sample.metadata["region_names"]
    assert dataset.stack("target").shape == (3, 2, 16, 24)
    np.testing.assert_array_equal(dataset.load_array(1, "labels"), dataset[1].labels)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["seed"] == 11 and manifest["task"] == "tracer_separation"
    assert set(manifest["geometry"]) == {"brain", "trunk"} and "fdg" in manifest["physics"]["tracers"]


def test_resume_skips_finished_samples_and_rejects_other_parameters(tmp_path):
    write_dataset(tmp_path, "low_dose", 3, TINY, seed=2, progress=False)
    kept = sample_path(tmp_path, 0).stat().st_mtime_ns
    sample_path(tmp_path, 1).unlink()
    with pytest.raises(ValueError, match="misses 1 of 3"):
        SimulatedDataset(tmp_path)
    assert SimulatedDataset(tmp_path, require_complete=False).missing() == [1]
    summary = write_dataset(tmp_path, "low_dose", 4, TINY, seed=2, progress=False)
    assert (summary.n_written, summary.n_skipped) == (2, 2)
    assert sample_path(tmp_path, 0).stat().st_mtime_ns == kept
    _assert_same(SimulatedDataset(tmp_path)[1], simulate_sample("low_dose", TINY, sample_rng(2, 1)))
    with pytest.raises(ValueError, match="other parameters"):
        write_dataset(tmp_path, "low_dose", 4, TINY, seed=3, progress=False)
    with pytest.raises(ValueError, match="other parameters"):
        write_dataset(tmp_path, "delayed_frame", 4, TINY, seed=2, progress=False)


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    sample = simulate_sample("low_dose", TINY, 0)
    path = tmp_path / "sample.npz"

    def crash(handle, **arrays):
        handle.write(b"PK partial npz data")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(dataset_module.np, "savez_compressed", crash)
    with pytest.raises(KeyboardInterrupt):
        save_sample(path, sample, compress=True)
    assert list(tmp_path.iterdir()) == []


def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    write_dataset(tmp_path / "one", "delayed_frame", 3, TINY, seed=5, workers=1, progress=False)
    write_dataset(tmp_path / "two", "delayed_frame", 3, TINY, seed=5, workers=2, progress=False)
    for a, b in zip(SimulatedDataset(tmp_path / "one"), SimulatedDataset(tmp_path / "two")):
        _assert_same(a, b)


def test_nifti_export_has_the_voxel_size_in_the_affine(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    sample = simulate_sample("tracer_conversion", TINY, 1)
    paths = export_sample_nifti(sample, tmp_path, "s")
    assert {p.name for p in paths} == {"s_input_image.nii.gz", "s_target_image.nii.gz", "s_mu_map.nii.gz",
                                       "s_labels.nii.gz"}
    image = nibabel.load(str(tmp_path / "s_mu_map.nii.gz"))
    pixel = 256.0 if sample.metadata["anatomy"] == "brain" else 500.0
    np.testing.assert_allclose(image.header.get_zooms()[:2], [pixel / 24] * 2)
    np.testing.assert_allclose(np.asarray(image.dataobj)[:, :, 0], sample.mu_map.T)
    # voxel (j, i) of the array sits at x = (j - (nx-1)/2) dx, y = (i - (ny-1)/2) dy, which NIfTI's RAS world
    # holds as (-x, -y) (this package's frame is LPS, see pet_projection.io.nifti)
    affine = nifti_affine(anatomy_grid("brain", 24))
    np.testing.assert_allclose(affine @ [0, 23, 0, 1], [11.5 * 256 / 24, -11.5 * 256 / 24, 0, 1])


def test_cli_writes_a_tiny_dataset_with_a_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "cli"
    code = main(["--task", "attenuation_correction", "--n", "2", "--out", str(out), "--size", "24", "--views", "16",
                 "--anatomy", "brain", "--counts", "1e5", "--seed", "4", "--figures", "1", "--quiet"])
    assert code == 0
    dataset = SimulatedDataset(out)
    assert len(dataset) == 2 and dataset.config.anatomy == "brain" and dataset.config.total_counts == 1e5
    assert dataset[0].input.sum() == pytest.approx(1e5, rel=0.02)
    figure = out / "figures" / "sample_00000.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "2 samples written" in capsys.readouterr().out


def test_cli_rejects_bad_parameters(tmp_path, capsys):
    assert main(["--task", "low_dose", "--n", "1", "--out", str(tmp_path), "--counts", "-5"]) == 2
    assert "total counts must be positive" in capsys.readouterr().err
    assert main(["--task", "low_dose", "--n", "1", "--out", str(tmp_path), "--dose-factors", "0.5"]) == 2
    assert "dose reduction factor" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--task", "no_such_task", "--n", "1", "--out", str(tmp_path)])


def test_3d_sample_with_the_clinical_scanner():
    config = SimulationConfig(dim=3, size=16, n_slices=4, view_step=20, anatomy="brain", n_lesions=(1, 1))
    sample = simulate_sample("low_dose", config, 0)
    projector = sample.metadata["projector"]
    assert projector["kind"] == "pet_sinogram" and sample.input.shape == tuple(projector["sinogram_shape"])
    assert projector["sinogram_axes"] == ["radial", "view", "plane"] and sample.input.shape[1] == 19
    assert sample.labels.shape == (4, 16, 16) and np.all(sample.input <= sample.target)


def test_count_support_keeps_the_body_and_the_background_rays():
    from pet_projection.masks import body_support
    from pet_projection.simulation import count_support, simulate_sample
    from pet_projection.simulation.acquisition import projector_from_description

    config = SimulationConfig(size=16, n_views=12)
    for task in ("low_dose", "tracer_separation", "attenuation_correction"):
        sample = simulate_sample(task, config, 0)
        support = count_support(sample)
        assert support.dtype == bool and support.shape == sample.target_background.shape
        projector = projector_from_description(sample.metadata["projector"])
        body = np.asarray(body_support((sample.labels != 0).astype(np.float32), projector), dtype=bool)
        np.testing.assert_array_equal(support, body | (sample.target_background > 0))
        if task == "attenuation_correction":  # a corrected target has no background: the body alone
            np.testing.assert_array_equal(support, body)
        else:
            assert np.any(support & ~body)  # randoms and scatter reach rays that miss the body
