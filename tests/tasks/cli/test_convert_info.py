"""``allpet convert`` and ``allpet info`` on the shipped STIR files."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from tasks.cli import main
from pet_projection.io import read_image, read_projdata, read_projdata_header

LISTMODE = "stir_recon_test_pack/PET_ACQ_small.l.hdr.STIR"
TEMPLATE = "stir_recon_test_pack/Siemens_mMR_seg2.hs"


def test_images_convert_between_interfile_nifti_and_numpy(third_party: pathlib.Path, tmp_path: pathlib.Path) -> None:
    pytest.importorskip("nibabel")
    source = third_party / "stir_exercises_thorax/CTAC_g1.hv"
    image, grid = read_image(source)
    assert main(["convert", str(source), str(tmp_path / "ct.nii.gz")]) == 0
    assert main(["convert", str(tmp_path / "ct.nii.gz"), str(tmp_path / "ct.npz")]) == 0
    assert main(["convert", str(tmp_path / "ct.npz"), str(tmp_path / "back.hv")]) == 0
    again, grid_again = read_image(tmp_path / "back.hv")
    np.testing.assert_array_equal(again, image)
    assert grid_again == grid
    np.save(tmp_path / "bare.npy", image)
    assert main(["convert", str(tmp_path / "bare.npy"), str(tmp_path / "bare.hv"), "--voxel-size-mm", "6.75", "3.129",
                 "3.129"]) == 0
    assert read_image(tmp_path / "bare.hv")[1].voxel_size_mm == (6.75, 3.129, 3.129)


def test_listmode_and_numpy_sinograms_convert_with_a_template(third_party: pathlib.Path, tmp_path: pathlib.Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    assert main(["convert", str(third_party / LISTMODE), str(tmp_path / "prompts.hs"), "--template",
                 str(third_party / TEMPLATE)]) == 0
    prompts, layout = read_projdata(tmp_path / "prompts.hs")
    assert prompts.sum() == 13_243 and layout.shape == read_projdata_header(third_party / TEMPLATE).shape
    assert main(["convert", str(tmp_path / "prompts.hs"), str(tmp_path / "prompts.npy")]) == 0
    assert main(["convert", str(tmp_path / "prompts.npy"), str(tmp_path / "again.hs"), "--template",
                 str(third_party / TEMPLATE)]) == 0
    assert (tmp_path / "again.s").read_bytes() == (tmp_path / "prompts.s").read_bytes()
    capsys.readouterr()
    assert main(["info", str(tmp_path / "again.hs"), str(third_party / LISTMODE)]) == 0
    out = capsys.readouterr().out
    assert "Siemens mMR: 64 rings x 504 detectors, effective radius 335 mm" in out
    assert "218881 prompts, 35320 delayeds; 613 time tags" in out
    assert "sum 13243" in out


def test_bad_conversions_exit_2_and_write_nothing(third_party: pathlib.Path, tmp_path: pathlib.Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    assert main(["convert", str(third_party / LISTMODE), str(tmp_path / "x.hs")]) == 2
    assert "needs --template HEADER.hs" in capsys.readouterr().err
    np.save(tmp_path / "wrong.npy", np.zeros((3, 4, 5), np.float32))
    assert main(["convert", str(tmp_path / "wrong.npy"), str(tmp_path / "x.hs"), "--template",
                 str(third_party / TEMPLATE)]) == 2
    assert "has shape (3, 4, 5), but the template" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "wrong.npy"), str(tmp_path / "x.hv")]) == 2
    assert "give its voxel size in mm" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing.hv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wrong.npy"]
