"""Interfile headers: the ``key := value`` text that STIR, SIRF and Siemens' PETLINK files start from.

Keys are matched the way STIR matches them: case-insensitive, with a leading
``!`` (required key) or ``%`` (vendor key) dropped, runs of spaces collapsed
and an index written ``key [i]``. Values stay text until a reader asks for a
type (:meth:`InterfileHeader.integer`, :meth:`~InterfileHeader.numbers`, ...),
and every error names the header file and the key.
"""

from __future__ import annotations

import math
import os
import pathlib
import re
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Optional, Union

import numpy as np

from .reading import MAX_AXIS_SIZE, MAX_ELEMENTS, MAX_HEADER_BYTES, open_regular, resolve_inside

PathLike = Union[str, os.PathLike]

_INDEX = re.compile(r"\s*\[\s*(\d+)\s*\]\s*$")
_LIST = re.compile(r"^\{(.*)\}$", re.DOTALL)

# Interfile number formats and byte counts -> NumPy type characters (byte order added by the reader)
NUMBER_FORMATS = {
    ("float", 4): "f4", ("float", 8): "f8", ("short float", 4): "f4", ("long float", 8): "f8",
    ("signed integer", 1): "i1", ("signed integer", 2): "i2", ("signed integer", 4): "i4", ("signed integer", 8): "i8",
    ("unsigned integer", 1): "u1", ("unsigned integer", 2): "u2", ("unsigned integer", 4): "u4",
    ("unsigned integer", 8): "u8",
}
BYTE_ORDERS = {"littleendian": "<", "bigendian": ">"}


class InterfileError(ValueError):
    """A header or data file that cannot be read as asked: the message names the file and the key."""


def normalise_key(key: str) -> str:
    """STIR's key matching: ``'!Matrix  Size [ 1]'`` -> ``'matrix size [1]'``."""
    key = " ".join(key.strip().lstrip("!%").lower().split())  # one space per run first: no slow regex on long runs
    index = _INDEX.search(key)
    suffix = f" [{index.group(1)}]" if index else ""
    if index:
        key = key[:index.start()]
    return " ".join(key.split()) + suffix


@dataclass
class InterfileHeader:
    """A parsed Interfile header.

    Parameters
    ----------
    path : pathlib.Path
        The header file (data file names in it are relative to its folder).
    entries : dict of str to str
        Normalised key (see :func:`normalise_key`) -> value text, comments
        removed. Keys without a value (section titles such as ``!GENERAL
        DATA``) are kept with an empty value.
    """

    path: pathlib.Path
    entries: dict[str, str]
    _used: set = field(default_factory=set, repr=False)

    def __contains__(self, key: str) -> bool:
        return normalise_key(key) in self.entries

    def text(self, key: str, default: Optional[str] = None) -> str:
        """The value of ``key`` as text; ``default`` when absent (or an error naming the key if no default)."""
        name = normalise_key(key)
        self._used.add(name)
        if name in self.entries and self.entries[name] != "":
            return self.entries[name]
        if default is None:
            raise self.error(f"the key '{key}' is missing")
        return default

    def integer(self, key: str, default: Optional[int] = None) -> int:
        """The value of ``key`` as an integer (see :meth:`text`)."""
        value = self.text(key, None if default is None else str(default))
        try:
            return int(value)
        except ValueError:
            raise self.error(f"'{key} := {value}' must be an integer") from None

    def number(self, key: str, default: Optional[float] = None) -> float:
        """The value of ``key`` as a finite float (see :meth:`text`)."""
        value = self.text(key, None if default is None else repr(float(default)))
        try:
            number = float(value)
        except ValueError:
            raise self.error(f"'{key} := {value}' must be a number") from None
        if not np.isfinite(number):
            raise self.error(f"'{key} := {value}' must be finite")
        return number

    def integers(self, key: str) -> list[int]:
        """A list value ``{a, b, c}`` (or a single number) as integers."""
        value = self.text(key)
        match = _LIST.match(value.strip())
        items = [item.strip() for item in (match.group(1) if match else value).split(",")]
        try:
            return [int(item) for item in items]
        except ValueError:
            raise self.error(f"'{key} := {value}' must be a list of integers such as {{1, 2, 3}}") from None

    def size(self, key: str, default: Optional[int] = None, maximum: int = MAX_AXIS_SIZE, minimum: int = 1) -> int:
        """The value of ``key`` as a count of entries (a matrix size, views, rings): an integer in ``minimum`` ..
        ``maximum`` (default 1 .. :data:`~pet_projection.io.reading.MAX_AXIS_SIZE`)."""
        value = self.integer(key, default)
        if not minimum <= value <= maximum:
            raise self.error(f"'{key} := {value}' must lie in {minimum} .. {maximum}")
        return value

    def sizes(self, key: str, maximum: int = MAX_AXIS_SIZE) -> list[int]:
        """A list value ``{a, b, c}`` of counts (see :meth:`size`)."""
        values = self.integers(key)
        if not all(1 <= value <= maximum for value in values):
            raise self.error(f"'{key} := {self.text(key)}' must hold integers in 1 .. {maximum}")
        return values

    def lowercase(self, key: str, default: Optional[str] = None) -> str:
        """The value of ``key`` lower-cased with spaces collapsed (for keywords such as ``LITTLEENDIAN``)."""
        return " ".join(self.text(key, default).lower().split())

    def error(self, message: str) -> InterfileError:
        return InterfileError(f"{self.path}: {message}")

    def warn_unknown(self, known: Iterable[str]) -> None:
        """Warn once, naming every key that is neither read nor listed in ``known`` (it is ignored)."""
        known_set = {normalise_key(key) for key in known}
        unknown = [key for key in self.entries
                   if key not in self._used and _INDEX.sub("", key) not in known_set and key not in known_set]
        if unknown:
            warnings.warn(f"{self.path}: keys not interpreted by allpet (ignored): "
                          + ", ".join(repr(key) for key in unknown), stacklevel=3)

    def data_path(self) -> pathlib.Path:
        """``name of data file``, resolved against the header's folder.

        A name that leaves that folder (``../../etc/passwd``, or an absolute
        path elsewhere) raises :class:`InterfileError` naming the header and
        the file: a header cannot make a reader open files outside its own
        folder. Links placed in the folder are followed, so data kept
        elsewhere can be linked into the header's folder.
        """
        name = self.text("name of data file").strip()
        try:
            return resolve_inside(self.path.parent, name)
        except ValueError as error:
            raise self.error(f"'name of data file := {name}' is refused: {error} (the header's folder); a data "
                             f"file must lie in its header's folder or below it (link it there if it lives "
                             f"elsewhere)") from None

    def dtype(self) -> np.dtype:
        """The data file's element type from ``number format``, ``number of bytes per pixel`` and byte order."""
        number_format = self.lowercase("number format", "float")
        n_bytes = self.integer("number of bytes per pixel", 4 if number_format in ("float", "short float") else None)
        if (number_format, n_bytes) not in NUMBER_FORMATS:
            raise self.error(f"unsupported 'number format := {number_format}' with 'number of bytes per pixel := "
                             f"{n_bytes}'; supported: " + ", ".join(f"{f} ({b} bytes)" for f, b in NUMBER_FORMATS))
        order = self.lowercase("imagedata byte order", "littleendian")
        if order not in BYTE_ORDERS:
            raise self.error(f"unsupported 'imagedata byte order := {order}' (LITTLEENDIAN or BIGENDIAN)")
        return np.dtype(BYTE_ORDERS[order] + NUMBER_FORMATS[(number_format, n_bytes)])


def read_header(path: PathLike) -> InterfileHeader:
    """Parse the Interfile header ``path``.

    The first key must be ``!INTERFILE``; ``;`` starts a comment; every other
    non-empty line must hold ``:=``. A key given twice keeps its last value,
    as in STIR.
    """
    path = pathlib.Path(path)
    try:
        with open_regular(path) as (handle, _):
            raw = handle.read(MAX_HEADER_BYTES + 1)
    except OSError as error:
        raise InterfileError(f"cannot read the Interfile header {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise InterfileError(f"cannot read the Interfile header: {error}") from None
    if len(raw) > MAX_HEADER_BYTES:
        raise InterfileError(f"{path} is larger than {MAX_HEADER_BYTES} bytes (MAX_HEADER_BYTES), not an Interfile "
                             f"header (headers are a few kB of text)")
    text = raw.decode("latin-1")
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split(";", 1)[0].strip()
        if not content:
            continue
        if ":=" not in content:
            raise InterfileError(f"{path}, line {number}: expected 'key := value', got {line.strip()!r}")
        key, value = content.split(":=", 1)
        if not entries and normalise_key(key) != "interfile":
            raise InterfileError(f"{path} is not an Interfile header: it must start with '!INTERFILE :=', "
                                 f"got {line.strip()!r}")
        entries[normalise_key(key)] = value.strip()
    if not entries:
        raise InterfileError(f"{path} is empty, not an Interfile header")
    return InterfileHeader(path, entries)


def read_raw(header: InterfileHeader, shape: tuple[int, ...]) -> np.ndarray:
    """The data file of ``header`` as an array of ``shape`` in native float32 (or float64), scaled.

    Honours ``data offset in bytes[1]``, the number format, byte order and
    ``image scaling factor[1]``. Reads only a regular file, and only the
    bytes the header's sizes call for; a data file shorter than they say
    raises :class:`InterfileError` naming both sizes before anything is
    allocated, as does an array of more than
    :data:`~pet_projection.io.reading.MAX_ELEMENTS` elements.
    """
    dtype = header.dtype()
    offset = header.integer("data offset in bytes [1]", 0)
    scale = header.number("image scaling factor [1]", 1.0)
    if offset < 0:
        raise header.error(f"'data offset in bytes [1] := {offset}' must not be negative")
    data_path = header.data_path()
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise header.error(f"the header's sizes {shape} ask for {count} values, more than the {MAX_ELEMENTS} an "
                           f"allpet reader allocates (MAX_ELEMENTS)")
    try:
        with open_regular(data_path) as (handle, size):
            needed = offset + count * dtype.itemsize
            if size < needed:
                raise header.error(f"the data file {data_path} is truncated: the header's sizes {shape} of "
                                   f"{dtype.itemsize}-byte values from offset {offset} need {needed} bytes, "
                                   f"the file has {size}")
            handle.seek(offset)
            data = np.fromfile(handle, dtype=dtype, count=count).reshape(shape)
    except OSError as error:
        raise header.error(f"cannot open the data file {data_path}: {error.strerror or error}") from None
    except InterfileError:
        raise
    except ValueError as error:
        raise header.error(f"cannot read the data file: {error}") from None
    native = np.float64 if dtype.itemsize == 8 else np.float32
    data = data.astype(native)
    if scale != 1.0:
        data *= native(scale)
    return data
