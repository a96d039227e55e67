"""Opening files that anyone may have written: regular files only, and sizes checked before anything is allocated.

Every reader of this package sizes its arrays from a header (Interfile keys,
a NIfTI or ``.npy`` header, a zip directory). The helpers here check those
sizes against the file's size and against the stated maxima below before a
byte is allocated, and open only regular files, so that a device such as
``/dev/zero``, a FIFO or a folder gives a ``ValueError`` at once instead of a
read that never ends.
"""

from __future__ import annotations

import contextlib
import math
import os
import pathlib
import stat
from typing import BinaryIO, Iterator, Sequence, Union

__all__ = ["DEFLATE_MAX_RATIO", "MAX_AXIS_SIZE", "MAX_ELEMENTS", "MAX_HEADER_BYTES", "check_elements",
           "open_regular", "read_exactly", "regular_file_size", "resolve_inside"]

PathLike = Union[str, os.PathLike]

# Most elements of one array that a reader builds (8 GiB as float32). The largest PET array this package reads,
# the Siemens mMR's full span-1 listmode sinogram, has 354 million bins; a header that asks for more than six
# times that is wrong or hostile, and is refused before anything is allocated.
MAX_ELEMENTS = 2 ** 31
# Most entries along one axis of an Interfile image or sinogram, and most rings or detectors per ring of a
# scanner: real scanners have at most a few thousand detectors per ring, and images a few thousand voxels per
# side. Sinogram layouts are built from headers alone (templates need no data file), so this bounds what
# building one allocates.
MAX_AXIS_SIZE = 2 ** 16
# Largest Interfile header read (1 MiB): real headers are a few kB of text, so a data file given as a header is
# refused unread.
MAX_HEADER_BYTES = 2 ** 20
# Deflate (zip, gzip) never expands data more than 1032-fold (RFC 1951: a match of at most 258 bytes costs at
# least 2 bits), so a compressed stream of n bytes holds at most 1032 n bytes.
DEFLATE_MAX_RATIO = 1032
# Bytes asked of a stream at a time when filling an array
READ_BLOCK_BYTES = 2 ** 24


def _not_regular(path: PathLike, mode: int) -> ValueError:
    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file")
    return ValueError(f"{path} is {kind}, not a regular file: allpet reads data only from regular files")


def regular_file_size(path: PathLike) -> int:
    """The size in bytes of ``path`` if it is a regular file (links followed).

    ``os.stat`` opens nothing, so a FIFO cannot block here. Raises
    ``FileNotFoundError`` (message ``"... does not exist"``) for a missing
    file and ``ValueError`` for a folder, device, FIFO or socket.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist") from None
    except ValueError as error:  # a name with a NUL character
        raise ValueError(f"{path!r} is not a usable file name: {error}") from None
    if not stat.S_ISREG(info.st_mode):
        raise _not_regular(path, info.st_mode)
    return info.st_size


@contextlib.contextmanager
def open_regular(path: PathLike) -> Iterator[tuple[BinaryIO, int]]:
    """Open ``path`` for binary reading if it is a regular file; yields ``(file, size in bytes)``.

    The file is opened non-blocking (so opening a FIFO returns at once) and
    checked with ``fstat`` on the open descriptor, so nothing but a regular
    file is ever read, even if the name is swapped after a check. Raises as
    :func:`regular_file_size`.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist") from None
    except ValueError as error:
        raise ValueError(f"{path!r} is not a usable file name: {error}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, info.st_mode)
        handle = os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    with handle:
        yield handle, info.st_size


def check_elements(path: PathLike, field: str, shape: Sequence[int], itemsize: int, available: int,
                   offset: int = 0) -> int:
    """The number of elements of an array of ``shape`` read from ``path``, after checking that it can be.

    Parameters
    ----------
    path : path
        The file (named in the messages).
    field : str
        Where the shape comes from (e.g. ``"'matrix size'"``), named in the messages.
    shape : sequence of int
        Array shape from the header (Python integers: no overflow).
    itemsize : int
        Bytes per element.
    available : int
        Bytes the file holds (or can hold, for compressed data) from its start.
    offset : int
        Byte offset of the array in the file.

    Raises
    ------
    ValueError
        If a size is negative, the array has more than :data:`MAX_ELEMENTS`
        elements or needs more bytes than ``available - offset``.
    """
    shape = [int(n) for n in shape]
    if any(n < 0 for n in shape) or offset < 0:
        raise ValueError(f"{path}: {field} gives negative sizes {tuple(shape)} (offset {offset})")
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise ValueError(f"{path}: {field} asks for {tuple(shape)} = {count} elements, more than the "
                         f"{MAX_ELEMENTS} an allpet reader allocates (MAX_ELEMENTS)")
    needed = offset + count * itemsize
    if needed > available:
        raise ValueError(f"{path}: {field} asks for {tuple(shape)} elements of {itemsize} bytes from byte {offset}, "
                         f"{needed} bytes, but the file holds {available} (truncated, or the header is wrong)")
    return count


def read_exactly(handle: BinaryIO, size: int, path: PathLike, what: str) -> bytearray:
    """``size`` bytes from ``handle`` (which must hold them: check the size first); ``ValueError`` naming ``path``
    and ``what`` if the file ends early."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    filled = 0
    while filled < size:  # in blocks: a stream's readinto may build a temporary of the size it is asked for
        got = handle.readinto(view[filled:filled + READ_BLOCK_BYTES])  # type: ignore[attr-defined]
        if not got:
            raise ValueError(f"{path}: the file ends after {filled} of the {size} bytes of {what} (truncated)")
        filled += got
    return buffer


def resolve_inside(folder: PathLike, name: str) -> pathlib.Path:
    """``folder / name`` with ``.`` and ``..`` removed; ``ValueError`` if it leaves ``folder``.

    The check is on the names (links are followed when the file is opened,
    not here): whoever can place a link in ``folder`` can also edit the file
    that names it, whereas a name alone must not reach other folders.
    """
    folder = pathlib.Path(folder)
    joined = os.path.normpath(os.path.join(os.path.abspath(folder), name))
    base = os.path.normpath(os.path.abspath(folder))
    if os.path.commonpath([joined, base]) != base:
        raise ValueError(f"{name!r} names {joined}, outside the folder {base}")
    return pathlib.Path(os.path.normpath(folder / name))
