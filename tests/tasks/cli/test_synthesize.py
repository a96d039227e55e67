"""``allpet synthesize``: the files it writes, its manifest, seeds, windows, Interfile sinograms and its errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pet_projection import __version__
from pet_projection.io import read_image, read_projdata
from pet_projection.io.nifti import read_nifti
from tasks.cli import main as allpet
from tasks.cli import synthesize as cli
from tests.tasks.test_synthesis import TINY_SIZE, write_tiny_weights

FAST = ["--steps", "2", "--batch-size", "2", "--osem-iterations", "2", "--osem-subsets", "4", "--device", "cpu",
        "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_tiny_weights(tmp_path_factory.mktemp("weights") / "tiny")


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _run(weights, out, *options, prompt="FDG brain", n=3):
    return cli.main(["--prompt", prompt, "--n", str(n), "--model", str(weights), "--out", str(out), *FAST,
                     *options])


def _manifest(out):
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def test_cli_writes_every_file_and_the_manifest(weights, tmp_path, capsys):
    out = tmp_path / "synth"
    assert _run(weights, out, "--seed", "7") == 0
    assert "3 sinograms (16, 16)" in capsys.readouterr().err
    sinograms, images = np.load(out / "sinograms.npy"), np.load(out / "images.npy")
    assert sinograms.shape == (3, TINY_SIZE, TINY_SIZE) and sinograms.dtype == np.float32
    assert images.shape == (3, TINY_SIZE, TINY_SIZE) and images.dtype == np.float32
    manifest = _manifest(out)
    for k in range(3):
        nifti, grid = read_nifti(out / f"image_{k:05d}.nii.gz")
        np.testing.assert_array_equal(nifti.reshape(images[k].shape), images[k])
        interfile, grid3d = read_image(out / f"image_{k:05d}.hv")
        np.testing.assert_array_equal(interfile, images[k][None])
        assert grid3d.voxel_size_mm[1:] == (16.0, 16.0)  # the bin width: 256 mm brain FOV / 16 bins
        assert not (out / f"sinogram_{k:05d}.hs").exists()  # 16 bins centred: half a bin off STIR's
        sample = manifest["samples"][k]
        assert sample["total_counts"] == pytest.approx(float(sinograms[k].sum(dtype=np.float64)))
        assert sample["negative_fraction"] == float((sinograms[k] < 0).mean())
    assert (out / "montage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert manifest["prompt"] == {"text": "FDG brain", "words": "synthesis fdg brain", "task": "synthesis",
                                  "tracer": "fdg", "region": "brain",
                                  "label_ids": {"task": 0, "tracer": 0, "region": 0}}
    geometry = manifest["geometry"]
    assert (geometry["n_views"], geometry["n_bins"]) == (TINY_SIZE, TINY_SIZE)
    assert geometry["angle_range_deg"] == [0.0, 180.0] and geometry["radial_range_mm"] == [-128.0, 128.0]
    assert geometry["bin_width_mm"] == 16.0
    assert (manifest["seed"], manifest["steps"], manifest["sampler"], manifest["n_samples"]) == (7, 2, "ddim", 3)
    assert manifest["model"] == {"folder": str(weights), "card": "# tiny test model"}
    assert manifest["allpet_version"] == __version__
    assert manifest["interfile_sinograms"]["written"] is False
    assert "--radial-range -136 120" in manifest["interfile_sinograms"]["reason"]
    assert "unit attenuation" in manifest["reconstruction"]["note"]


def test_cli_same_seed_same_sinograms_other_seed_other_ones(weights, tmp_path):
    runs = {}
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert _run(weights, tmp_path / name, "--seed", seed, n=2) == 0
        runs[name] = np.load(tmp_path / name / "sinograms.npy")
    np.testing.assert_array_equal(runs["a"], runs["b"])
    assert not np.array_equal(runs["a"], runs["c"])
    assert _run(weights, tmp_path / "a", "--seed", "2", n=2) == 2  # an earlier output needs --overwrite
    assert _run(weights, tmp_path / "a", "--seed", "2", "--overwrite", n=2) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "sinograms.npy"), runs["c"])


def test_cli_honours_a_non_square_window(weights, tmp_path):
    out = tmp_path / "window"
    assert _run(weights, out, "--views", "24", "--angle-range", "0", "120", "--radial-bins", "40",
                "--radial-range", "-80", "40", prompt="68Ga-PSMA chest", n=2) == 0
    assert np.load(out / "sinograms.npy").shape == (2, 24, 40)
    assert np.load(out / "images.npy").shape == (2, 40, 40)
    _, grid = read_nifti(out / "image_00001.nii.gz")
    assert grid.voxel_size_mm[-2:] == pytest.approx((3.0, 3.0))  # 120 mm over 40 bins
    manifest = _manifest(out)
    geometry = manifest["geometry"]
    assert (geometry["n_views"], geometry["n_bins"]) == (24, 40)
    assert geometry["angle_range_deg"] == pytest.approx([0.0, 120.0])
    assert geometry["view_step_deg"] == pytest.approx(5.0)
    assert geometry["radial_range_mm"] == [-80.0, 40.0] and geometry["bin_width_mm"] == pytest.approx(3.0)
    np.testing.assert_allclose(geometry["window_row"], [0.0, math.radians(5.0), -78.5, 3.0])
    assert manifest["prompt"]["tracer"] == "psma" and manifest["prompt"]["region"] == "chest"
    assert "covers [0, 120) degrees" in manifest["interfile_sinograms"]["reason"]


def test_cli_interfile_sinograms_read_back_equal_with_the_windows_rays(weights, tmp_path):
    out = tmp_path / "stir"
    assert _run(weights, out, "--radial-bins", "17", prompt="brain", n=2) == 0  # 17 bins centred: STIR's bins
    sinograms = np.load(out / "sinograms.npy")
    assert _manifest(out)["interfile_sinograms"]["written"] is True
    for k in range(2):
        data, layout = read_projdata(out / f"sinogram_{k:05d}.hs")
        np.testing.assert_array_equal(data, sinograms[k][None])
        np.testing.assert_allclose(layout.view_angles_rad(), np.arange(TINY_SIZE) * math.pi / TINY_SIZE, atol=1e-12)
        np.testing.assert_allclose(layout.tangential_positions_mm(), (np.arange(17) - 8) * 16.0, atol=1e-9)


@pytest.mark.parametrize("prompt, message", [
    ("FDG liver", "unknown word 'liver'"),
    ("low-dose FDG brain", "'low-dose', which transforms an input sinogram"),
])
def test_cli_bad_prompts_are_one_line_errors_before_any_work(weights, tmp_path, capsys, prompt, message):
    out = tmp_path / "never"
    assert allpet(["synthesize", "--prompt", prompt, "--n", "2", "--model", str(weights), "--out", str(out),
                   *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith("allpet synthesize: ") and err.count("\n") == 1 and message in err
    if "low-dose" in prompt:
        assert "allpet sample" in err
    assert not out.exists()


def test_cli_output_and_model_errors(weights, tmp_path, capsys, monkeypatch):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    assert _run(weights, taken) == 2
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    assert _run(weights, taken, "--overwrite") == 2  # not an earlier synthesize output: left alone
    assert "holds other files" in capsys.readouterr().err
    assert (taken / "notes.txt").read_text() == "mine"
    assert _run(weights, tmp_path / "x", n=0) == 2
    assert "--n must be at least 1" in capsys.readouterr().err
    assert _run(weights, tmp_path / "x", "--radial-range", "40", "-80") == 2
    assert "--radial-range must be two finite numbers" in capsys.readouterr().err
    assert cli.main(["--prompt", "FDG brain", "--n", "1", "--model", str(tmp_path), "--out", str(tmp_path / "x"),
                     *FAST]) == 2
    assert "holds no model" in capsys.readouterr().err
    monkeypatch.setattr("ldm.weights.shipped_weights", lambda name="foundation": tmp_path / "not_shipped")
    assert cli.main(["--prompt", "FDG brain", "--n", "1", "--out", str(tmp_path / "x"), *FAST]) == 2
    assert "the foundation weights are not installed" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
