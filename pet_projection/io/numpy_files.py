"""NumPy ``.npy`` arrays and ``.npz`` archives read from files anyone may have written.

``numpy.load`` trusts the header of a file: it allocates what the header's
shape asks for before it reads a byte of data, reads a version-2 header of
any length, and on a FIFO waits for ever. These readers parse the header
themselves and check every size against the file (or, in an ``.npz``, the
zip member's sizes, with :data:`~pet_projection.io.reading.DEFLATE_MAX_RATIO`
for compressed members) and :data:`~pet_projection.io.reading.MAX_ELEMENTS`
before allocating; they read regular files only, never load pickled objects,
and turn a damaged file into a ``ValueError`` that names it. Arrays read back
equal those that ``numpy.save`` / ``numpy.savez`` wrote, bit for bit.
"""

from __future__ import annotations

import ast
import contextlib
import os
import pathlib
import struct
import zipfile
import zlib
from typing import Any, BinaryIO, Iterator, Union

import numpy as np

from .reading import DEFLATE_MAX_RATIO, check_elements, open_regular, read_exactly

__all__ = ["NpzArchive", "NPY_MAX_HEADER_BYTES", "load_npy", "open_npz"]

PathLike = Union[str, os.PathLike]

NPY_MAGIC = b"\x93NUMPY"
# Longest .npy header read: numpy's own limit (numpy.lib.format's max_header_size); numpy writes ~128 bytes
NPY_MAX_HEADER_BYTES = 10_000
# what a damaged zip archive or member raises in zipfile, zlib and struct
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError,
               struct.error, OverflowError, OSError)


def _npy_header(stream: BinaryIO, name: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, header bytes)`` of the ``.npy`` data starting at ``stream``'s position."""
    magic = stream.read(len(NPY_MAGIC) + 2)
    if len(magic) < len(NPY_MAGIC) + 2 or not magic.startswith(NPY_MAGIC):
        what = "empty" if not magic else "too short" if len(magic) < len(NPY_MAGIC) + 2 else "no \\x93NUMPY magic"
        raise ValueError(f"{name} is not a NumPy .npy array ({what})")
    version = (magic[-2], magic[-1])
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise ValueError(f"{name}: unknown .npy format version {version[0]}.{version[1]} (1.0, 2.0 or 3.0)")
    length_format = "<H" if version == (1, 0) else "<I"
    length_bytes = stream.read(struct.calcsize(length_format))
    if len(length_bytes) < struct.calcsize(length_format):
        raise ValueError(f"{name}: the .npy header is truncated")
    (length,) = struct.unpack(length_format, length_bytes)
    if length > NPY_MAX_HEADER_BYTES:
        raise ValueError(f"{name}: the .npy header claims {length} bytes, more than the {NPY_MAX_HEADER_BYTES} "
                         f"allpet reads (numpy writes about 128)")
    header = stream.read(length)
    if len(header) < length:
        raise ValueError(f"{name}: the .npy header is truncated ({len(header)} of {length} bytes)")
    try:
        fields = ast.literal_eval(header.decode("utf-8" if version == (3, 0) else "latin-1"))
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as error:
        raise ValueError(f"{name}: the .npy header is not a Python literal: {error}") from None
    if not isinstance(fields, dict) or set(fields) != {"descr", "fortran_order", "shape"}:
        raise ValueError(f"{name}: the .npy header must be a dict of 'descr', 'fortran_order' and 'shape', got "
                         f"{str(fields)[:200]}")
    shape, fortran = fields["shape"], fields["fortran_order"]
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise ValueError(f"{name}: the .npy header's shape must be a tuple of non-negative integers, got {shape!r}")
    if not isinstance(fortran, bool):
        raise ValueError(f"{name}: the .npy header's fortran_order must be True or False, got {fortran!r}")
    try:
        dtype = np.lib.format.descr_to_dtype(fields["descr"])
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, RecursionError, MemoryError) as error:
        raise ValueError(f"{name}: the .npy header's descr {str(fields['descr'])[:200]} is no NumPy dtype: "
                         f"{error}") from None
    if dtype.hasobject:
        raise ValueError(f"{name} holds Python objects (dtype {dtype}); allpet never loads pickled data")
    return shape, fortran, dtype, len(magic) + len(length_bytes) + length


def _read_npy(stream: BinaryIO, size: int, name: str) -> np.ndarray:
    """The array of ``.npy`` data of ``size`` bytes at ``stream``'s position (``name`` starts the messages)."""
    shape, fortran, dtype, header_bytes = _npy_header(stream, name)
    count = check_elements(name, "the .npy header", shape, dtype.itemsize, size, header_bytes)
    if count * dtype.itemsize == 0:
        array = np.zeros(count, dtype=dtype)
    else:
        array = np.frombuffer(read_exactly(stream, count * dtype.itemsize, name, "the array"), dtype=dtype)
    return array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)


def load_npy(path: PathLike) -> np.ndarray:
    """The array of the ``.npy`` file ``path`` (as ``numpy.load(path, allow_pickle=False)``, but see the module
    notes); ``ValueError`` naming the file for anything that is not a complete ``.npy`` array."""
    path = pathlib.Path(path)
    with open_regular(path) as (handle, size):
        return _read_npy(handle, size, str(path))


class NpzArchive:
    """The arrays of an ``.npz`` file, read one at a time (as ``numpy.load`` of an ``.npz``, see the module notes).

    Use :func:`open_npz` (a context manager). ``files`` lists the arrays'
    names; ``archive[name]`` reads one, checking its sizes first; ``name in
    archive`` tests for one. Only stored and deflated members are read (what
    ``numpy.savez`` and ``numpy.savez_compressed`` write).
    """

    def __init__(self, path: pathlib.Path, handle: BinaryIO, size: int) -> None:
        self.path, self._size = path, size
        try:
            self._zip = zipfile.ZipFile(handle)
            members = self._zip.infolist()
        except _ZIP_ERRORS as error:
            what = "an empty file" if size == 0 else f"not a zip archive ({error})"
            raise ValueError(f"{path} is not a NumPy .npz archive: {what}") from None
        except ValueError as error:
            raise ValueError(f"{path} is not a NumPy .npz archive: {error}") from None
        self._members = {info.filename[:-4]: info for info in members if info.filename.endswith(".npy")}

    @property
    def files(self) -> list[str]:
        return list(self._members)

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __getitem__(self, name: str) -> np.ndarray:
        info = self._members.get(name)
        if info is None:
            raise KeyError(f"{name!r} is not an array of {self.path} (it holds {self.files})")
        label = f"{self.path} (array {name!r})"
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 1:
            raise ValueError(f"{label}: the member is encrypted or compressed with method {info.compress_type}; "
                             f"only stored and deflated members (numpy.savez, savez_compressed) are read")
        if info.header_offset + info.compress_size > self._size:
            raise ValueError(f"{label}: the archive is truncated ({self._size} bytes; the member needs "
                             f"{info.header_offset + info.compress_size})")
        most = info.compress_size * (DEFLATE_MAX_RATIO if info.compress_type == zipfile.ZIP_DEFLATED else 1)
        if info.file_size > most:
            raise ValueError(f"{label}: the member claims {info.file_size} bytes, more than its {info.compress_size} "
                             f"stored bytes can hold")
        try:
            with self._zip.open(info) as stream:
                return _read_npy(stream, info.file_size, label)  # type: ignore[arg-type]
        except _ZIP_ERRORS as error:
            raise ValueError(f"{label} cannot be read (the archive is truncated or damaged): {error}") from None

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "NpzArchive":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextlib.contextmanager
def open_npz(path: PathLike) -> Iterator[NpzArchive]:
    """The ``.npz`` archive ``path`` as an :class:`NpzArchive`, open while the ``with`` block runs."""
    path = pathlib.Path(path)
    with open_regular(path) as (handle, size):
        archive = NpzArchive(path, handle, size)
        try:
            yield archive
        finally:
            archive.close()
