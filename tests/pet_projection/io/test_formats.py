"""What a data file is, and images in any format: regular files only, damaged NumPy files named in the message."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from pet_projection import ImageGrid
from pet_projection.io.formats import file_kind, load_image, save_image

from .hostile import bounded, make_fifo


def test_images_round_trip_through_every_format(tmp_path: pathlib.Path) -> None:
    grid = ImageGrid((2, 3, 4), (2.0, 1.5, 1.0), (1.0, -2.0, 0.5))
    image = np.random.default_rng(0).random(grid.shape).astype(np.float32)
    for name in ("a.hv", "a.npz") + (("a.nii.gz",) if pytest.importorskip("nibabel") else ()):
        save_image(tmp_path / name, image, grid)
        again, grid_again = load_image(tmp_path / name)
        np.testing.assert_array_equal(again, image)
        np.testing.assert_allclose(grid_again.origin_mm, grid.origin_mm, atol=1e-5)
    save_image(tmp_path / "a.npy", image, grid)
    again, grid_again = load_image(tmp_path / "a.npy", voxel_size_mm=grid.voxel_size_mm)
    assert again.tobytes() == image.tobytes() and grid_again.voxel_size_mm == grid.voxel_size_mm


@pytest.mark.parametrize("name", ["fifo.npy", "fifo.npz", "fifo.nii", "fifo.hv"])
def test_a_fifo_is_refused_at_once_whatever_its_name(tmp_path: pathlib.Path, name: str) -> None:
    make_fifo(tmp_path / name)
    with bounded(), pytest.raises(ValueError, match=f"{name} is a FIFO, not a regular file"):
        file_kind(tmp_path / name)
    with bounded(), pytest.raises(ValueError, match=f"{name} is a FIFO, not a regular file"):
        load_image(tmp_path / name)


def test_missing_files_and_folders(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.npy does not exist"):
        file_kind(tmp_path / "missing.npy")
    (tmp_path / "folder.hv").mkdir()
    with pytest.raises(ValueError, match="folder.hv is a folder, not a regular file"):
        file_kind(tmp_path / "folder.hv")


@pytest.mark.parametrize("name, content, message", [
    ("empty.npy", b"", r"empty\.npy is not a NumPy \.npy array \(empty\)"),
    ("empty.npz", b"", r"empty\.npz is not a NumPy \.npz archive: an empty file"),
    ("text.npz", b"hello", r"text\.npz is not a NumPy \.npz archive: not a zip archive"),
])
def test_empty_and_damaged_numpy_files_name_the_file(tmp_path: pathlib.Path, name: str, content: bytes,
                                                     message: str) -> None:
    (tmp_path / name).write_bytes(content)
    with bounded(), pytest.raises(ValueError, match=message):
        load_image(tmp_path / name, voxel_size_mm=(1.0, 1.0))


def test_image_archives_with_wrong_arrays(tmp_path: pathlib.Path) -> None:
    np.savez(tmp_path / "a.npz", image=np.zeros((2, 2)), voxel_size_mm=np.array(["x", "y"]), origin_mm=np.zeros(2))
    with pytest.raises(ValueError, match=r"a\.npz: image, voxel_size_mm and origin_mm must hold real numbers"):
        load_image(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", image=np.zeros((2, 2)), voxel_size_mm=np.array([-1.0, 1.0]), origin_mm=np.zeros(2))
    with pytest.raises(ValueError, match=r"b\.npz holds no valid image grid"):
        load_image(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", image=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"c\.npz lacks the arrays \['origin_mm', 'voxel_size_mm'\]"):
        load_image(tmp_path / "c.npz")
