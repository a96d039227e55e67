"""Simulated datasets on disk: writer/reader round trip, resume, atomic writes, workers, NIfTI, CLI, figures, 3D."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from pet_projection.simulation import (SimulatedDataset, SimulationConfig, export_sample_nifti, sample_rng,
                                       save_sample, simulate_sample, write_dataset)
from pet_projection.simulation import dataset_folder as dataset_module
from tasks.cli.simulate import main
from pet_projection.io.nifti import nifti_affine
from pet_projection.simulation.dataset_folder import MANIFEST_NAME, load_sample, sample_path
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


# --- the manifest's records: hostile or damaged folders ------------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    ("[1, 2]", "holds a JSON list, not the object of an allpet manifest"),
    ('{"format": ', "is not valid JSON"),
    ("[" * 100_000, "is nested too deeply|is not valid JSON"),
])
def test_a_manifest_that_is_not_an_object_is_named_in_the_message(tmp_path, content, message):
    (tmp_path / MANIFEST_NAME).write_text(content)
    with pytest.raises(ValueError, match=f"{MANIFEST_NAME} ({message})"):
        SimulatedDataset(tmp_path)
    with pytest.raises(ValueError, match=f"{MANIFEST_NAME} ({message})"):
        write_dataset(tmp_path, "low_dose", 1, TINY, progress=False)
    assert main(["--task", "low_dose", "--n", "1", "--out", str(tmp_path), "--size", "24", "--views", "16",
                 "--quiet"]) == 2


def test_the_manifest_records_size_and_sha256_of_every_sample(tmp_path):
    write_dataset(tmp_path, "low_dose", 2, TINY, seed=1, progress=False)
    records = json.loads((tmp_path / MANIFEST_NAME).read_text())["sample_files"]
    for index, record in enumerate(records):
        content = sample_path(tmp_path, index).read_bytes()
        assert record == {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}


def test_a_rerun_rebuilds_missing_truncated_foreign_and_unrecorded_samples(tmp_path, capsys):
    write_dataset(tmp_path, "low_dose", 5, TINY, seed=2, progress=False)
    good = [sample_path(tmp_path, i).read_bytes() for i in range(5)]
    sample_path(tmp_path, 0).unlink()  # missing
    sample_path(tmp_path, 1).write_bytes(good[1][:-100])  # truncated
    sample_path(tmp_path, 2).write_bytes(good[4])  # foreign: another sample's file
    damaged = bytearray(good[3])
    damaged[len(damaged) // 2] ^= 1  # same size, one bit flipped
    sample_path(tmp_path, 3).write_bytes(damaged)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    manifest["sample_files"][4] = None  # no record (a run killed before writing it)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    summary = write_dataset(tmp_path, "low_dose", 5, TINY, seed=2, progress=False)
    assert (summary.n_written, summary.n_rebuilt, summary.n_skipped) == (5, 4, 0)
    assert [sample_path(tmp_path, i).read_bytes() for i in range(5)] == good  # deterministic: as a fresh run
    sample_path(tmp_path, 1).write_bytes(good[1][:-100])
    assert main(["--task", "low_dose", "--n", "5", "--out", str(tmp_path), "--size", "24", "--views", "16",
                 "--seed", "2", "--quiet"]) == 0
    assert "1 samples written (1 of them rebuilt" in capsys.readouterr().out
    SimulatedDataset(tmp_path).verify()


def test_reading_checks_each_sample_against_the_manifest_the_first_time(tmp_path):
    write_dataset(tmp_path, "low_dose", 2, TINY, seed=3, progress=False)
    dataset = SimulatedDataset(tmp_path)
    first = dataset[0]
    content = sample_path(tmp_path, 1).read_bytes()
    sample_path(tmp_path, 1).write_bytes(content[:-10])
    with pytest.raises(ValueError, match=r"sample_00001\.npz does not match the manifest: it has \d+ bytes, the "
                                         r"manifest records \d+ .* rerun the allpet simulate command"):
        dataset[1]
    with pytest.raises(ValueError, match=r"sample_00001\.npz does not match"):
        dataset.load_array(1, "input")
    with pytest.raises(ValueError, match=r"1 of 2 samples of .* do not match the manifest"):
        SimulatedDataset(tmp_path).verify()
    _assert_same(dataset[0], first)


def test_adding_nifti_on_a_rerun_writes_it_for_every_sample(tmp_path):
    pytest.importorskip("nibabel")
    write_dataset(tmp_path, "tracer_separation", 2, TINY, seed=4, progress=False)
    summary = write_dataset(tmp_path, "tracer_separation", 3, TINY, seed=4, nifti=True, progress=False)
    assert (summary.n_written, summary.n_skipped) == (1, 2)
    names = sorted(path.name for path in (tmp_path / "nifti").iterdir())
    assert len(names) == 3 * 5  # input, mu-map, labels and one target per tracer, for each sample
    assert {name[:12] for name in names} == {"sample_00000", "sample_00001", "sample_00002"}
    kept = (tmp_path / "nifti" / names[0]).stat().st_mtime_ns
    write_dataset(tmp_path, "tracer_separation", 3, TINY, seed=4, nifti=True, progress=False)
    assert (tmp_path / "nifti" / names[0]).stat().st_mtime_ns == kept  # present files are not written again


@pytest.mark.parametrize("cut", [0, 100, -50])
def test_empty_or_truncated_sample_files_name_the_file(tmp_path, cut):
    save_sample(tmp_path / "s.npz", simulate_sample("low_dose", TINY, 0))
    content = (tmp_path / "s.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(content[:cut])
    with pytest.raises(ValueError, match=r"cut\.npz"):
        load_sample(tmp_path / "cut.npz")
    np.savez(tmp_path / "foreign.npz", input=np.zeros(3))
    with pytest.raises(ValueError, match=r"foreign\.npz is not a sample written by allpet simulate: it lacks"):
        load_sample(tmp_path / "foreign.npz")
