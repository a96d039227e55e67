"""NIfTI in and out: affines in mm, RAS world coordinates, reorientation of other tools' files."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from pet_projection import ImageGrid
from pet_projection.io import read_image
from pet_projection.io.nifti import nifti_affine, read_nifti, write_nifti

nibabel = pytest.importorskip("nibabel")


def _marked(grid: ImageGrid) -> np.ndarray:
    image = np.zeros(grid.shape, np.float32)
    image[1, 2, 3] = 5.0  # voxel (k, i, j) = (1, 2, 3)
    return image


def test_round_trip_keeps_array_and_grid(tmp_path: pathlib.Path) -> None:
    grid = ImageGrid((4, 6, 5), (2.5, 1.5, 2.0), (3.0, -4.0, 7.5))
    image = np.random.default_rng(0).random(grid.shape).astype(np.float32)
    for name in ("a.nii", "b.nii.gz"):
        write_nifti(tmp_path / name, image, grid)
        again, grid_again = read_nifti(tmp_path / name)
        np.testing.assert_array_equal(again, image)
        assert grid_again.shape == grid.shape
        np.testing.assert_allclose(grid_again.voxel_size_mm, grid.voxel_size_mm)
        np.testing.assert_allclose(grid_again.origin_mm, grid.origin_mm, atol=1e-9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii", "b.nii.gz"]  # no temporary files left


def test_world_coordinates_are_ras_of_the_lps_frame(tmp_path: pathlib.Path) -> None:
    grid = ImageGrid((4, 6, 5), (2.5, 1.5, 2.0), (3.0, -4.0, 7.5))
    write_nifti(tmp_path / "m.nii.gz", _marked(grid), grid)
    nifti = nibabel.load(str(tmp_path / "m.nii.gz"))
    assert nibabel.aff2axcodes(nifti.affine) == ("L", "P", "S")
    assert nifti.header.get_xyzt_units()[0] == "mm" and int(nifti.header["sform_code"]) == 1
    i, j, k = np.argwhere(np.asarray(nifti.dataobj) == 5.0)[0]
    x, y, z = (grid.centers_mm(2)[3], grid.centers_mm(1)[2], grid.centers_mm(0)[1])
    np.testing.assert_allclose(nifti.affine @ [i, j, k, 1], [-x, -y, z, 1])


def test_a_ras_file_from_another_tool_lands_in_place(tmp_path: pathlib.Path) -> None:
    # another tool's RAS-oriented volume: index i runs towards the patient's right (-x here)
    data = np.zeros((5, 6, 4), np.float32)
    data[1, 4, 2] = 7.0
    affine = np.diag([2.0, 1.5, 2.5, 1.0])
    affine[:3, 3] = [-4.0, -3.75, -3.75]
    nibabel.save(nibabel.Nifti1Image(data, affine), str(tmp_path / "ras.nii"))
    image, grid = read_nifti(tmp_path / "ras.nii")
    k, i, j = np.argwhere(image == 7.0)[0]
    ras = affine @ [1, 4, 2, 1]
    np.testing.assert_allclose([grid.centers_mm(2)[j], grid.centers_mm(1)[i], grid.centers_mm(0)[k]],
                               [-ras[0], -ras[1], ras[2]])
    assert grid.shape == (4, 6, 5)


def test_stir_images_convert_to_nifti_in_place(third_party: pathlib.Path, tmp_path: pathlib.Path) -> None:
    image, grid = read_image(third_party / "stir_exercises_thorax/CTAC_g1.hv")
    write_nifti(tmp_path / "ct.nii.gz", image, grid)
    nifti = nibabel.load(str(tmp_path / "ct.nii.gz"))
    np.testing.assert_allclose(nifti.header.get_zooms(), (3.129, 3.129, 6.75), rtol=1e-6)
    np.testing.assert_allclose(nifti_affine(grid) @ [77, 77, 7, 1], [0, 0, 0, 1], atol=1e-9)  # centred image


def test_bad_files(tmp_path: pathlib.Path) -> None:
    affine = np.eye(4)
    affine[:2, :2] = [[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]]
    nibabel.save(nibabel.Nifti1Image(np.zeros((3, 3, 3), np.float32), affine), str(tmp_path / "oblique.nii"))
    with pytest.raises(ValueError, match="the affine is oblique"):
        read_nifti(tmp_path / "oblique.nii")
    nibabel.save(nibabel.Nifti1Image(np.zeros((3, 3, 3, 2), np.float32), np.eye(4)), str(tmp_path / "4d.nii"))
    with pytest.raises(ValueError, match="only single 3D volumes are read"):
        read_nifti(tmp_path / "4d.nii")
    with pytest.raises(ValueError, match="expected the grid shape"):
        write_nifti(tmp_path / "x.nii", np.zeros((2, 2)), ImageGrid((3, 3)))
