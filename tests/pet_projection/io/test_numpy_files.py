"""NumPy .npy and .npz read safely: the arrays numpy.load gives, and a message naming the file for anything else."""

from __future__ import annotations

import io
import pathlib
import struct
import zipfile

import numpy as np
import pytest

from pet_projection.io.numpy_files import load_npy, open_npz

from .hostile import bounded, make_fifo

ARRAYS = {
    "float32": np.random.default_rng(0).random((3, 4)).astype(np.float32),
    "big_endian_int16": np.arange(12, dtype=">i2").reshape(3, 4),
    "fortran": np.asfortranarray(np.random.default_rng(1).random((3, 5))),
    "unicode_scalar": np.array('{"task": "low_dose", "é": 1}'),
    "empty": np.zeros((0, 3), np.float32),
    "structured": np.zeros(3, dtype=[("a", "<f4"), ("b", "i1", (2,))]),
    "bool_3d": np.random.default_rng(2).random((2, 3, 4)) > 0.5,
}


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_arrays_read_back_as_numpy_load_gives_them(tmp_path: pathlib.Path, name: str) -> None:
    array = ARRAYS[name]
    np.save(tmp_path / "a.npy", array)
    again = load_npy(tmp_path / "a.npy")
    reference = np.load(tmp_path / "a.npy", allow_pickle=False)
    assert again.dtype == reference.dtype and again.shape == reference.shape
    assert again.tobytes(order="A") == reference.tobytes(order="A") and again.flags.writeable
    for save in (np.savez, np.savez_compressed):
        save(tmp_path / "a.npz", x=array, y=np.arange(3))
        with open_npz(tmp_path / "a.npz") as archive, np.load(tmp_path / "a.npz") as numpy_archive:
            assert archive.files == numpy_archive.files == ["x", "y"] and "x" in archive and "z" not in archive
            assert archive["x"].tobytes(order="A") == numpy_archive["x"].tobytes(order="A")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _with_header(header: str, version: int = 1, data: bytes = b"") -> bytes:
    length = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + length + header.encode("latin-1") + data


@pytest.mark.parametrize("content, message", [
    (b"", r"is not a NumPy \.npy array \(empty\)"),
    (b"\x93NUM", r"is not a NumPy \.npy array \(too short\)"),
    (b"PK\x03\x04 not an array", r"no \\x93NUMPY magic"),
    (_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (32767, 32767, 32767), }"),
     r"asks for \(32767, 32767, 32767\) = 35181150961663 elements, more than the 2147483648"),
    (_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000, 1000), }", data=bytes(64)),
     r"bad\.npy: the \.npy header asks for \(1000, 1000\) elements of 8 bytes .* but the file holds \d+ \(trunc"),
    (_with_header("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"), "holds Python objects"),
    (_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }"), "non-negative integers"),
    (_with_header("{'descr': 'nonsense', 'fortran_order': False, 'shape': (3,), }"), "is no NumPy dtype"),
    (_with_header("{'descr': '<f4', 'shape': (3,), }"), "must be a dict of 'descr', 'fortran_order' and 'shape'"),
    (_with_header("__import__('os')"), "not a Python literal"),
    (b"\x93NUMPY\x02\x00" + struct.pack("<I", 2 ** 31), r"claims 2147483648 bytes, more than the 10000"),
    (b"\x93NUMPY\x07\x00", "unknown .npy format version 7.0"),
    (_npy_bytes(np.arange(100.0))[:-8], r"asks for \(100,\) elements of 8 bytes .* but the file holds"),
])
def test_bad_npy_files_name_the_file_and_allocate_nothing(tmp_path: pathlib.Path, content: bytes,
                                                          message: str) -> None:
    (tmp_path / "bad.npy").write_bytes(content)
    with bounded(), pytest.raises(ValueError, match=message) as error:
        load_npy(tmp_path / "bad.npy")
    assert str(tmp_path / "bad.npy") in str(error.value)


def test_bad_npz_files_name_the_file_and_allocate_nothing(tmp_path: pathlib.Path) -> None:
    np.savez(tmp_path / "good.npz", image=np.arange(1000.0), other=np.arange(3))
    raw = (tmp_path / "good.npz").read_bytes()
    for size, message in ((0, "is not a NumPy .npz archive: an empty file"), (200, "not a zip archive"),
                          (len(raw) - 30, "not a zip archive")):
        (tmp_path / "cut.npz").write_bytes(raw[:size])
        with bounded(), pytest.raises(ValueError, match=message):
            with open_npz(tmp_path / "cut.npz") as archive:
                archive["image"]
    # a member whose .npy header asks for far more than the member holds
    with zipfile.ZipFile(tmp_path / "huge.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("image.npy", _with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (10000, 10000),"
                                                   " }"))
    with bounded(), open_npz(tmp_path / "huge.npz") as archive, pytest.raises(
            ValueError, match=r"huge\.npz \(array 'image'\).* asks for \(10000, 10000\) elements of 8 bytes"):
        archive["image"]
    # damaged data: the member's checksum no longer matches
    damaged = bytearray(raw)
    damaged[raw.index(b"image.npy") + 200] ^= 0xFF
    (tmp_path / "damaged.npz").write_bytes(damaged)
    with open_npz(tmp_path / "damaged.npz") as archive, pytest.raises(
            ValueError, match=r"damaged\.npz \(array 'image'\) cannot be read .*Bad CRC-32"):
        archive["image"]
    with zipfile.ZipFile(tmp_path / "bz2.npz", "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("image.npy", _npy_bytes(np.arange(3.0)))
    with open_npz(tmp_path / "bz2.npz") as archive, pytest.raises(ValueError, match="compressed with method 12"):
        archive["image"]
    with open_npz(tmp_path / "good.npz") as archive, pytest.raises(KeyError, match="'missing' is not an array of"):
        archive["missing"]


def test_fifos_and_devices_are_refused_at_once(tmp_path: pathlib.Path) -> None:
    make_fifo(tmp_path / "fifo.npy")
    with bounded(), pytest.raises(ValueError, match="fifo.npy is a FIFO, not a regular file"):
        load_npy(tmp_path / "fifo.npy")
    (tmp_path / "zero.npz").symlink_to("/dev/zero")
    with bounded(), pytest.raises(ValueError, match="zero.npz is a device, not a regular file"):
        with open_npz(tmp_path / "zero.npz"):
            pass
    with pytest.raises(FileNotFoundError, match="missing.npy does not exist"):
        load_npy(tmp_path / "missing.npy")
