"""NIfTI in and out: affines in mm, RAS world coordinates, reorientation of other tools' files."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from pet_projection import ImageGrid
from pet_projection.io import read_image
from pet_projection.io.nifti import nifti_affine, read_nifti, write_nifti

from .hostile import bounded, make_fifo

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


def _small_nifti(path: pathlib.Path) -> bytes:
    grid = ImageGrid((4, 6, 5), (2.5, 1.5, 2.0))
    write_nifti(path, np.random.default_rng(1).random(grid.shape).astype(np.float32), grid)
    return path.read_bytes()


def test_a_huge_header_is_refused_naming_the_file_and_the_field(tmp_path: pathlib.Path) -> None:
    raw = bytearray(_small_nifti(tmp_path / "a.nii"))
    raw[40:48] = np.array([3, 32767, 32767, 32767], "<i2").tobytes()  # dim[0..3] of the NIfTI-1 header
    (tmp_path / "huge.nii").write_bytes(raw)
    with bounded(), pytest.raises(ValueError, match=r"huge\.nii: the header's 'dim' asks for \(32767, 32767, 32767\)"
                                                    r" = 35181150961663 elements, more than the 2147483648"):
        read_nifti(tmp_path / "huge.nii")
    raw[40:48] = np.array([3, 300, 300, 300], "<i2").tobytes()  # within the limit, but not in the file
    (tmp_path / "big.nii").write_bytes(raw)
    with bounded(), pytest.raises(ValueError, match=r"big\.nii: the header's 'dim' asks for \(300, 300, 300\) "
                                                    r"elements of 4 bytes .* but the file holds"):
        read_nifti(tmp_path / "big.nii")
    gzip = pytest.importorskip("gzip")
    (tmp_path / "big.nii.gz").write_bytes(gzip.compress(bytes(raw)))
    with bounded(), pytest.raises(ValueError, match=r"big\.nii\.gz: the header's 'dim' asks for \(300, 300, 300\)"):
        read_nifti(tmp_path / "big.nii.gz")


@pytest.mark.parametrize("name", ["a.nii", "a.nii.gz"])
def test_empty_and_truncated_files_give_a_message_naming_them(tmp_path: pathlib.Path, name: str) -> None:
    raw = _small_nifti(tmp_path / name)
    for size in (0, 100, len(raw) - 4):
        (tmp_path / f"cut{size}_{name}").write_bytes(raw[:size])
        with bounded(), pytest.raises(ValueError, match=f"cut{size}_{name}"):
            read_nifti(tmp_path / f"cut{size}_{name}")


def test_fifos_devices_and_missing_files(tmp_path: pathlib.Path) -> None:
    make_fifo(tmp_path / "fifo.nii")
    with bounded(), pytest.raises(ValueError, match="fifo.nii is a FIFO, not a regular file"):
        read_nifti(tmp_path / "fifo.nii")
    (tmp_path / "zero.nii.gz").symlink_to("/dev/zero")
    with bounded(), pytest.raises(ValueError, match="zero.nii.gz is a device, not a regular file"):
        read_nifti(tmp_path / "zero.nii.gz")
    with pytest.raises(FileNotFoundError, match="missing.nii does not exist"):
        read_nifti(tmp_path / "missing.nii")


def test_complex_and_non_finite_files_are_refused(tmp_path: pathlib.Path) -> None:
    nibabel.save(nibabel.Nifti1Image(np.zeros((3, 3, 3), np.complex64), np.eye(4)), str(tmp_path / "c.nii"))
    with pytest.raises(ValueError, match=r"c\.nii: the image holds complex64 values; only real numbers are read"):
        read_nifti(tmp_path / "c.nii")
    raw = bytearray(_small_nifti(tmp_path / "a.nii"))
    raw[280:284] = np.array([np.nan], "<f4").tobytes()  # srow_x[0] of the sform (sform_code 1) that gives the affine
    (tmp_path / "nan.nii").write_bytes(raw)
    with pytest.raises(ValueError, match=r"nan\.nii: the affine holds values that are not finite"):
        read_nifti(tmp_path / "nan.nii")
