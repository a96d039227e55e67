"""Property-based fuzzing of everything that reads what users hand in: Interfile images and projection data,
listmode, NIfTI, NumPy ``.npy`` / ``.npz`` and the ROI spec parser.

Each reader gets random bytes, a valid file with its header mutated (values replaced by huge, negative, NaN and
non-numbers, lines dropped, duplicated and swapped, data files named outside the folder or at a device or FIFO)
and truncated files. Every outcome must be a result, or a ``ValueError`` / ``TypeError`` / ``OSError`` (or a
subclass) whose message names the file; never another exception, a hang (a time limit per example) or an
allocation beyond :data:`hostile.ALLOCATION_LIMIT_BYTES` (tracemalloc, on files of a few kB).

``HYPOTHESIS_PROFILE=thorough`` runs 400 examples per test, the default profile (CI) 40.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import os
import pathlib
import shutil
import struct
import tempfile
import warnings
import zipfile
from typing import Any, Callable, Optional

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pet_projection import ImageGrid
from pet_projection.attention import RoiEditSpec
from pet_projection.io import read_header, read_image, read_projdata, read_projdata_header, write_image, write_projdata
from pet_projection.io.formats import file_kind, load_image
from pet_projection.io.numpy_files import load_npy, open_npz
from pet_projection.io.petlink import read_listmode
from pet_projection.projdata import CylindricalScanner, ProjDataLayout, known_scanner

from .hostile import bounded

ACCEPTED = (ValueError, TypeError, OSError)

# Values a mutated header field takes: huge, negative, zero, not finite, not numbers, lists, paths out of the folder,
# and the names of the device link and the FIFO that every example's folder holds.
HOSTILE_VALUES = ["100000000", "1000000000", "99999999999999999999999", "1" * 5000, "-1", "-100000000", "0", "NaN",
                  "nan", "inf", "-inf", "1e308", "-1e308", "1e-320", "abc", "", "{1, 2}", "{}", "{100000000}", "{-1}",
                  "{0, 0, 0}", "1.5", "0x10", "LITTLEENDIAN", "BIGENDIAN", "signed integer", "unsigned integer",
                  "float", "8", "2", "../../../../etc/passwd", "/etc/passwd", "zero.dat", "fifo.dat", "sub/../x",
                  "\x00", "Image", "Emission", "segment", "view", "axial coordinate", "tangential coordinate"]
VALUES = st.one_of(st.sampled_from(HOSTILE_VALUES), st.text(max_size=12),
                   st.integers(-2 ** 40, 2 ** 40).map(str), st.floats().map(repr))
MUTATION = st.tuples(st.sampled_from(["replace", "drop", "duplicate", "swap", "key"]), st.integers(0, 10 ** 6),
                     st.integers(0, 10 ** 6), VALUES)
MUTATIONS = st.lists(MUTATION, max_size=6)
# None: keep the data file; an int: cut it to that many bytes (or pad it with zeros up to them)
DATA_SIZE = st.one_of(st.none(), st.integers(0, 4096))
RANDOM_BYTES = st.binary(max_size=2048)
SOMETIMES_CUT = st.one_of(st.none(), st.none(), st.none(), st.integers(0, 4096))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("fuzz") / "files"


def _fresh(folder: pathlib.Path, files: dict[str, bytes]) -> None:
    """``folder`` holding exactly ``files``, a link to ``/dev/zero`` and a FIFO (named ``zero.dat``, ``fifo.dat``)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    if os.path.exists("/dev/zero"):
        (folder / "zero.dat").symlink_to("/dev/zero")
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "fifo.dat")


def _outcome(folder: Optional[pathlib.Path], call: Callable[[], Any], argument: str = "\0") -> None:
    """Run ``call`` under the time and allocation limits: a result, or an accepted error with a message that names
    the file (a path in ``folder``) or the bad ``argument``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown keys, overflow in scaling: warnings are fine
        with bounded():
            try:
                call()
            except ACCEPTED as error:
                message = str(error)
                assert message.strip(), f"{type(error).__name__} without a message"
                assert folder is None or str(folder) in message or message.startswith(argument), \
                    f"the message names no file: {message}"


def _mutated_lines(text: str, mutations: list) -> str:
    lines = text.splitlines()
    for action, first, second, value in mutations:
        if len(lines) < 2:
            break
        # the first line ('!INTERFILE :=') only now and then: without it every header is refused at once
        i, j = (first // 8 % len(lines) if first % 8 == 0 else 1 + first // 8 % (len(lines) - 1)), second % len(lines)
        key, _, old = lines[i].partition(":=")
        if action == "replace":
            lines[i] = f"{key}:= {value}"
        elif action == "key":
            lines[i] = f"{value} :={old}"
        elif action == "drop":
            del lines[i]
        elif action == "duplicate":
            lines.insert(j, f"{key}:= {value}")
        else:
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines) + "\n"


def _resized(data: bytes, size: Optional[int]) -> bytes:
    return data if size is None else data[:size] + bytes(max(0, size - len(data)))


@functools.lru_cache(maxsize=None)
def _written(kind: str) -> dict[str, bytes]:
    """The files of a small valid example of ``kind``, written by this package's writers (or numpy, nibabel)."""
    with tempfile.TemporaryDirectory() as name:
        path = pathlib.Path(name)
        if kind == "image":
            grid = ImageGrid((2, 3, 4), (2.0, 1.5, 1.0))
            write_image(path / "img.hv", np.arange(24, dtype=np.float32).reshape(grid.shape), grid)
        elif kind == "projdata":
            scanner = CylindricalScanner("fuzz", 3, 16, 50.0, 5.0, 4.0, 3.0)
            layout = ProjDataLayout(scanner, [(0, 0), (-1, -1), (1, 1)], [3, 2, 2], 8, 5, False)
            write_projdata(path / "p.hs", np.arange(np.prod(layout.shape), dtype=np.float32).reshape(layout.shape),
                           layout)
        elif kind == "nifti":
            pytest.importorskip("nibabel")
            from pet_projection.io.nifti import write_nifti

            grid = ImageGrid((2, 3, 4), (2.0, 1.5, 1.0))
            write_nifti(path / "a.nii", np.arange(24, dtype=np.float32).reshape(grid.shape), grid)
        elif kind == "numpy":
            np.save(path / "a.npy", np.arange(12, dtype="<f4").reshape(3, 4))
            np.savez(path / "a.npz", image=np.arange(24.0).reshape(2, 3, 4), voxel_size_mm=np.array([2.0, 1.5, 1.0]),
                     origin_mm=np.zeros(3))
        return {file.name: file.read_bytes() for file in path.iterdir()}


# --- Interfile ---------------------------------------------------------------------------------------------------

@given(mutations=MUTATIONS, data_size=DATA_SIZE)
def test_interfile_images(folder: pathlib.Path, mutations: list, data_size: Optional[int]) -> None:
    files = _written("image")
    _fresh(folder, {"img.hv": _mutated_lines(files["img.hv"].decode("latin-1"), mutations).encode("latin-1", "replace"),
                    "img.v": _resized(files["img.v"], data_size)})
    _outcome(folder, lambda: read_image(folder / "img.hv"))
    _outcome(folder, lambda: load_image(folder / "img.hv"))


@given(mutations=MUTATIONS, data_size=DATA_SIZE)
def test_interfile_projection_data(folder: pathlib.Path, mutations: list, data_size: Optional[int]) -> None:
    files = _written("projdata")
    _fresh(folder, {"p.hs": _mutated_lines(files["p.hs"].decode("latin-1"), mutations).encode("latin-1", "replace"),
                    "p.s": _resized(files["p.s"], data_size)})
    _outcome(folder, lambda: read_projdata(folder / "p.hs"))
    _outcome(folder, lambda: read_projdata_header(folder / "p.hs"))


@given(content=RANDOM_BYTES, prefix=st.booleans())
def test_interfile_random_bytes(folder: pathlib.Path, content: bytes, prefix: bool) -> None:
    _fresh(folder, {"x.hs": (b"!INTERFILE :=\n" if prefix else b"") + content})
    for read in (read_header, read_projdata, read_image, file_kind):
        _outcome(folder, lambda: read(folder / "x.hs"))


@given(cut=st.integers(0, 4000))
def test_interfile_truncated_headers(folder: pathlib.Path, cut: int) -> None:
    files = _written("projdata")
    _fresh(folder, {"p.hs": files["p.hs"][:cut], "p.s": files["p.s"]})
    _outcome(folder, lambda: read_projdata(folder / "p.hs"))


# --- listmode ----------------------------------------------------------------------------------------------------

LISTMODE_HEADER = """!INTERFILE:=
!originating system:=2008
!data offset in bytes:=0
name of data file := lm.l
number of rings:=64
%number of TOF time bins:=1
%LM event and tag words format (bits):=32
%axial compression:=1
%maximum ring difference:=60
%number of projections:=344
%number of views:=252
!END OF INTERFILE:=
"""
N_BINS = 4084 * 252 * 344  # the mMR's span-1 sinogram up to ring difference 60: the event addresses
WORDS = st.one_of(st.integers(0, N_BINS - 1).map(lambda a: a | (1 << 30)),  # prompt
                  st.integers(0, N_BINS - 1),  # delayed
                  st.integers(0, (1 << 29) - 1).map(lambda ms: ms | (1 << 31)),  # time tag
                  st.integers(0, 2 ** 32 - 1))  # anything (other tags, addresses beyond the sinogram)
WINDOWS = st.one_of(st.none(), st.tuples(st.floats(), st.floats()), st.lists(st.integers(0, 10), max_size=3))


@functools.lru_cache(maxsize=None)
def _mmr_template() -> ProjDataLayout:
    return ProjDataLayout(known_scanner("mmr"), [(0, 0), (-1, -1), (1, 1)], [4, 3, 3], 252, 7, False)


@given(mutations=MUTATIONS, words=st.lists(WORDS, max_size=64), extra=st.binary(max_size=3), window=WINDOWS)
def test_listmode(folder: pathlib.Path, mutations: list, words: list, extra: bytes, window: Any) -> None:
    _fresh(folder, {"lm.l.hdr": _mutated_lines(LISTMODE_HEADER, mutations).encode("latin-1", "replace"),
                    "lm.l": np.array(words, dtype="<u4").tobytes() + extra})

    def read() -> None:
        listmode = read_listmode(folder / "lm.l.hdr", chunk_words=16)
        listmode.counts()
        listmode.histogram(_mmr_template(), time_window_ms=window)
        listmode.event_lors(prompts=False, time_window_ms=window)

    _outcome(folder, read, "time_window_ms")
    _outcome(folder, lambda: file_kind(folder / "lm.l.hdr"))


# --- NIfTI -------------------------------------------------------------------------------------------------------

# NIfTI-1 header fields (byte offset, struct format): sizeof_hdr, dim[0..7], datatype, bitpix, pixdim[0..7],
# vox_offset, scl_slope, scl_inter, qform_code, sform_code, quatern_b/c/d, qoffset_x/y/z, srow_x/y/z, magic
NIFTI_FIELDS = ([(0, "<i")] + [(40 + 2 * i, "<h") for i in range(8)] + [(70, "<h"), (72, "<h")]
                + [(76 + 4 * i, "<f") for i in range(8)] + [(108, "<f"), (112, "<f"), (116, "<f"), (252, "<h"),
                                                             (254, "<h")] + [(256 + 4 * i, "<f") for i in range(18)]
                + [(344, "4s")])
NIFTI_NUMBERS = st.one_of(st.sampled_from([0, 1, -1, 3, 4, 7, 8, 16, 32, 64, 128, 255, 256, 511, 1792, 2304, 32767,
                                           -32768, 2 ** 31 - 1, -2 ** 31]),
                          st.integers(-2 ** 31, 2 ** 31 - 1), st.floats(width=32))
# the sizes, data type and offset more often than the rest (sizeof_hdr and magic only make nibabel refuse the file)
NIFTI_MUTATION = st.tuples(st.one_of(st.sampled_from(range(1, 13)), st.sampled_from([21, 22, 23]),
                                     st.sampled_from(range(len(NIFTI_FIELDS)))),
                           NIFTI_NUMBERS, st.binary(min_size=4, max_size=4))


def _mutated_nifti(raw: bytes, mutations: list) -> bytes:
    data = bytearray(raw)
    for field, number, magic in mutations:
        offset, form = NIFTI_FIELDS[field]
        if form == "4s":
            value = struct.pack(form, magic)
        elif form == "<f":
            value = struct.pack(form, float(number))
        else:
            limit = 2 ** (8 * struct.calcsize(form) - 1)
            value = struct.pack(form, int(number) % (2 * limit) - limit if np.isfinite(number) else 0)
        data[offset:offset + len(value)] = value
    return bytes(data)


@given(mutations=st.lists(NIFTI_MUTATION, max_size=5), flips=st.lists(st.integers(0, 10 ** 6), max_size=3),
       cut=SOMETIMES_CUT, compress=st.booleans(), cut_compressed=SOMETIMES_CUT)
def test_nifti(folder: pathlib.Path, mutations: list, flips: list, cut: Optional[int], compress: bool,
               cut_compressed: Optional[int]) -> None:
    from pet_projection.io.nifti import read_nifti

    raw = bytearray(_mutated_nifti(_written("nifti")["a.nii"], mutations))
    for flip in flips:  # any byte: the extension flag and sizes after the header too
        raw[flip % len(raw)] ^= 1 + flip % 255
    raw = _resized(bytes(raw), cut)
    name = "a.nii.gz" if compress else "a.nii"
    _fresh(folder, {name: _resized(gzip.compress(raw, mtime=0), cut_compressed) if compress else raw})
    _outcome(folder, lambda: read_nifti(folder / name))
    _outcome(folder, lambda: load_image(folder / name))


@given(content=RANDOM_BYTES, name=st.sampled_from(["r.nii", "r.nii.gz"]))
def test_nifti_random_bytes(folder: pathlib.Path, content: bytes, name: str) -> None:
    pytest.importorskip("nibabel")
    from pet_projection.io.nifti import read_nifti

    _fresh(folder, {name: content})
    _outcome(folder, lambda: read_nifti(folder / name))


# --- NumPy -------------------------------------------------------------------------------------------------------

NPY_HEADER_VALUES = st.one_of(
    st.sampled_from(["(100000000, 100000000)", "(32767, 32767, 32767)", "(-1,)", "(3, -4)", "()", "(0,)", "3",
                     "(3.0, 4)", "(True,)", "'<f4'", "'|O'", "'<c16'", "'V0'", "'<U0'", "'<U9999999999'", "'S0'",
                     "[('a', '<f4'), ('b', '|O')]", "[('a',)]", "('<f4', (100000, 100000))", "('<f4', -1)",
                     "'M8[xx]'", "True", "None", "{}", "[]", "'" + "(" * 300 + "'", "(" * 300, "1" * 5000,
                     "10**10", "__import__('os')"]),
    st.text(max_size=20))
NPY_MUTATION = st.tuples(st.sampled_from(["descr", "fortran_order", "shape", "length", "version", "flip"]),
                         NPY_HEADER_VALUES, st.integers(0, 10 ** 6))


def _mutated_npy(raw: bytes, mutations: list) -> bytes:
    data = raw
    for field, value, number in mutations:
        if field == "length":
            data = data[:8] + struct.pack("<H", number % 2 ** 16) + data[10:]
        elif field == "version":
            data = data[:6] + bytes([number % 4, number // 4 % 2]) + data[8:]
        elif field == "flip":
            if data:
                position = number % len(data)
                data = data[:position] + bytes([data[position] ^ (1 + number % 255)]) + data[position + 1:]
        else:
            header_length = struct.unpack("<H", data[8:10])[0] if len(data) >= 10 else 0
            header = data[10:10 + header_length].decode("latin-1")
            fields = {"descr": "'<f4'", "fortran_order": "False", "shape": "(3, 4)"}
            for key in fields:
                start = header.find(f"'{key}': ")
                if start >= 0:
                    end = header.find(", '", start + 1) if key != "shape" else header.find("), ", start) + 1
                    fields[key] = header[start + len(key) + 4:end] if end > start else fields[key]
            fields[field] = value
            text = "{" + ", ".join(f"'{k}': {v}" for k, v in fields.items()) + ", }\n"
            encoded = text.encode("latin-1", "replace")
            data = data[:8] + struct.pack("<H", len(encoded) % 2 ** 16) + encoded + data[10 + header_length:]
    return data


@given(mutations=st.lists(NPY_MUTATION, max_size=4), cut=SOMETIMES_CUT)
def test_npy(folder: pathlib.Path, mutations: list, cut: Optional[int]) -> None:
    _fresh(folder, {"a.npy": _resized(_mutated_npy(_written("numpy")["a.npy"], mutations), cut)})
    _outcome(folder, lambda: load_npy(folder / "a.npy"))
    _outcome(folder, lambda: load_image(folder / "a.npy", voxel_size_mm=(1.0, 1.0)))


def _npz(members: dict[str, bytes], method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@given(mutations=st.lists(NPY_MUTATION, max_size=3), member=st.sampled_from(["image", "voxel_size_mm", "origin_mm"]),
       method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]), flips=st.lists(st.integers(0, 10 ** 6),
                                                                                        max_size=3), cut=DATA_SIZE)
def test_npz(folder: pathlib.Path, mutations: list, member: str, method: int, flips: list,
             cut: Optional[int]) -> None:
    with zipfile.ZipFile(io.BytesIO(_written("numpy")["a.npz"])) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members[f"{member}.npy"] = _mutated_npy(members[f"{member}.npy"], mutations)
    content = bytearray(_npz(members, method))
    for flip in flips:
        content[flip % len(content)] ^= 0xFF
    _fresh(folder, {"a.npz": _resized(bytes(content), cut)})

    def read_all() -> None:
        with open_npz(folder / "a.npz") as archive:
            for name in archive.files:
                archive[name]

    _outcome(folder, read_all)
    _outcome(folder, lambda: load_image(folder / "a.npz"))


@given(content=RANDOM_BYTES, name=st.sampled_from(["r.npy", "r.npz"]), magic=st.booleans())
def test_numpy_random_bytes(folder: pathlib.Path, content: bytes, name: str, magic: bool) -> None:
    prefix = (b"\x93NUMPY" if name.endswith("y") else b"PK\x03\x04") if magic else b""
    _fresh(folder, {name: prefix + content})
    _outcome(folder, lambda: load_image(folder / name, voxel_size_mm=(1.0,)))


# --- the ROI spec parser -----------------------------------------------------------------------------------------

SPEC = {"version": 1, "edits": [
    {"op": "add", "region": "brainstem", "weight": 0.5},
    {"op": "add", "region": "node", "weight": 1.0, "drawn": {"shape": "circle", "center_mm": [12.0, -30.0],
                                                           "radius_mm": 8.0}},
    {"op": "add", "region": "liver", "drawn": {"shape": "polygon", "vertices_mm": [[0, 0], [40, 0], [40, 30]]}},
    {"op": "add", "region": "m", "drawn": {"shape": "mask", "values": [[0, 1], [1, 0]]}},
    {"op": "add", "region": "e", "drawn": {"shape": "ellipse", "center_mm": [0, 0], "semi_axes_mm": [3, 4],
                                           "angle_rad": 0.5}},
    {"op": "remove", "region": "hypo"}, {"op": "scale", "region": "hyper", "factor": 0.5}]}
JSON_VALUES = st.sampled_from(['1e999', '-1e999', 'NaN', 'Infinity', '-1', '0', '1e308', '1' * 5000, '"x"', '""',
                               'null', 'true', '[]', '{}', '[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]',
                               '[' * 5000 + ']' * 5000, '"' + 'a' * 1000 + '"', '[1e999, 1]', '[[0, 1], [1]]',
                               '{"shape": "mask", "values": [[2]]}', '"\\ud800"', '1.5', '100000000'])


def _places(data: Any, path: tuple = ()) -> list[tuple]:
    """Paths (keys and list indices) to every value in ``data``."""
    places = [path] if path else []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        places += _places(value, path + (key,))
    return places


def _spec_text(mutations: list) -> str:
    """SPEC as JSON text, with values replaced by raw JSON text (also invalid: NaN, 1e999), keys dropped or given
    twice."""
    spec = json.loads(json.dumps(SPEC))
    raw: dict[str, str] = {}
    for number, (place, value, action) in enumerate(mutations):
        places = _places(spec)
        if not places:
            break
        *parents, last = places[place % len(places)]
        container = functools.reduce(lambda item, key: item[key], parents, spec)
        marker = f"@@{number}@@"
        if action == "replace":
            container[last] = marker
            raw[f'"{marker}"'] = value
        elif action == "drop":
            del container[last]
        elif isinstance(container, dict):  # the key twice: JSON text that json.dumps cannot write
            container[marker] = marker
            raw[f'"{marker}": "{marker}"'] = f"{json.dumps(last)}: {value}"
    text = json.dumps(spec)
    for old, new in raw.items():
        text = text.replace(old, new)
    return text


@given(mutations=st.lists(st.tuples(st.integers(0, 10 ** 6), JSON_VALUES, st.sampled_from(["replace", "drop",
                                                                                         "duplicate"])),
                          max_size=4),
       cut=st.one_of(st.none(), st.none(), st.none(), st.integers(0, 700)), as_bytes=st.booleans())
def test_roi_spec_parser(mutations: list, cut: Optional[int], as_bytes: bool) -> None:
    text = _spec_text(mutations)
    if cut is not None:
        text = text[:cut]
    _outcome(None, lambda: RoiEditSpec.from_json(text.encode("utf-8", "surrogatepass") if as_bytes else text))


@given(content=RANDOM_BYTES)
def test_roi_spec_random_bytes(content: bytes) -> None:
    _outcome(None, lambda: RoiEditSpec.from_json(content))
