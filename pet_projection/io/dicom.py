"""PET DICOM image series: one folder of one series read into an image in Bq/ml or SUV and its grid.
Over 500 lines because a series' files, geometry, values and SUV are checked tag by tag, each with its own message.

What is read
------------
The DICOM Part 10 files (PS3.10: a 128-byte preamble, then ``DICM``) of a
folder (not its subfolders), all of one PET series: Modality (0008,0060)
``PT``, one axial slice a file (PET Image Storage; multi-frame Enhanced PET is
refused), native (uncompressed) transfer syntaxes. Entries that are not DICOM
Part 10 files (a README, ``.DS_Store``, a subfolder, a FIFO) and a DICOMDIR
index are skipped, with a warning naming them; damaged DICOM files are errors.

Geometry (PS3.3 C.7.6.2 Image Plane module)
-------------------------------------------
DICOM's patient frame LPS is this package's ``(x, y, z)`` frame as it is
(:mod:`.nifti`): ``x`` towards the patient's left, ``y`` towards the back,
``z`` towards the head, in mm. Image Orientation (Patient) (0020,0037) must
give rows and columns along ``x`` and ``y`` (direction cosines 0 and +-1 to
:data:`ORIENTATION_TOLERANCE`: axial slices, any flips, rows or columns along
``x``); oblique, sagittal and coronal slices are refused, as an
:class:`~pet_projection.ImageGrid` is axis-aligned. Each slice is flipped or
transposed so that array axes ``(z, y, x)`` run along ``+z, +y, +x``, and
slices are sorted by ascending ``z`` of Image Position (Patient) (0020,0032)
(slice ``k = 0`` the one nearest the feet). ``dy, dx`` come from Pixel
Spacing (0028,0030) (row spacing, column spacing) and ``dz`` from the
positions, ``(z_last - z_first) / (n - 1)``: every step must match the
smallest to :data:`SPACING_TOLERANCE` (a missing slice, two slices at one
position, or uneven steps are errors); a one-slice series takes Slice Thickness
(0018,0050). The grid's origin is the centre of the voxel block,
``ox = x_0 + (n_x - 1) / 2 dx`` for the first voxel centre ``x_0`` (likewise
``y``, ``z``), so voxel ``(k, i, j)`` sits at ``x = (j - (nx-1)/2) dx + ox``
etc. (docs/architecture.md). All slices must share one in-plane position (a
gantry tilt's sheared stack is refused).

Values (PS3.3 C.8.9.1 PET Series and C.8.9.4 PET Image modules)
----------------------------------------------------------------
Each slice's stored values times its Rescale Slope (0028,1053) plus its
Rescale Intercept (0028,1052), in float64, then float32. Units (0054,1001)
must be ``BQML`` (Bq/ml): counts (``CNTS``) or already-scaled series (``GML``,
which DICOM uses for body-weight and lean-body-mass SUVs alike) are refused.

SUV (body weight)
-----------------
``SUVbw = C * W / (D * 2 ** (-t / T))``, the vendor-neutral definition of
the QIBA FDG-PET/CT profile ("SUV vendor-neutral pseudo-code", QIBA wiki,
Standardized Uptake Value) and of Kinahan & Fletcher, Semin. Ultrasound CT MR
31 (2010) 496: ``C`` the activity concentration in Bq/ml, ``W`` Patient's
Weight (0010,1030) in kg times 1000 g/kg (tissue taken as 1 g/ml, so SUV is
in g/ml, i.e. without unit), ``D`` Radionuclide Total Dose (0018,1074) in Bq
and ``T`` Radionuclide Half Life (0018,1075) in s, both from the first item
of the Radiopharmaceutical Information Sequence (0054,0016) (PS3.3 C.8.9.2
PET Isotope module). ``t`` is the time from Radiopharmaceutical Start
DateTime (0018,1078) (or Start Time (0018,1072) on the Series Date) to the
reference time of the images' decay correction: with Decay Correction
(0054,1102) ``START``, the Series Date and Time (0008,0021), (0008,0031),
which PS3.3 C.8.9.1 makes the reference of the series' activity values (as
QIBA's code does, the earliest Acquisition Date/Time (0008,0022), (0008,0032)
instead when it precedes the Series time: a series written again after
post-processing); with ``ADMIN`` (images corrected to the administration)
``t = 0``. ``NONE`` (no decay correction) and times in the wrong order are
refused. Times are local times of one zone (a DateTime's UTC offset is
ignored).

Sizes come from the headers and are checked before anything is allocated:
every file's pixel data against Rows x Columns x Bits Allocated, the whole
image against :data:`~.reading.MAX_ELEMENTS`, the folder against
:data:`MAX_FILES` entries. Bad series give a one-line ``ValueError`` naming
the folder or file and the problem.

Needs pydicom (``pip install allpet[io]``), imported when a function runs.
"""

from __future__ import annotations

import datetime
import math
import os
import pathlib
import stat
import warnings
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..grid import ImageGrid
from .reading import MAX_AXIS_SIZE, check_elements, open_regular, regular_file_size

__all__ = ["DicomSeries", "MAX_FILES", "ORIENTATION_TOLERANCE", "SPACING_TOLERANCE", "UNITS", "holds_dicom_files",
           "is_dicom_file", "read_dicom_header", "read_dicom_series"]

PathLike = Union[str, os.PathLike]

UNITS = ("Bq/ml", "SUV")
# Most entries of a series folder looked at (one slice a file: far more slices than any PET scanner has)
MAX_FILES = MAX_AXIS_SIZE
# A direction cosine counts as 0 or +-1 within this: scanners write them rounded to 6 or more decimals
ORIENTATION_TOLERANCE = 1e-4
# Slice steps may differ from the mean step, and slices' in-plane positions from the first's, by this fraction of
# a voxel: positions are decimal strings (DS) of at most 16 characters, written rounded
SPACING_TOLERANCE = 0.01
PREAMBLE_BYTES = 128
MAGIC = b"DICM"
PET_MODALITY = "PT"
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
BITS_ALLOCATED = (8, 16, 32)
# most skipped entries named in the warning
NAMED_SKIPS = 5


@dataclass(frozen=True)
class DicomSeries:
    """The header of a PET DICOM series: its files in slice order, grid, units and SUV scale (no pixel data).

    Attributes
    ----------
    folder : pathlib.Path
    files : tuple of pathlib.Path
        One a slice, in the image's slice order (ascending ``z``).
    grid : ImageGrid
        ``(nz, ny, nx)`` in this package's frame (module notes).
    units : str
        The Units (0054,1001) tag (``"BQML"`` for a series that can be read).
    series_uid, description : str
        Series Instance UID (0020,000E) and Series Description (0008,103E) (``""`` if absent).
    suv_factor : float or None
        SUV per Bq/ml (ml/Bq times g/ml: ``W / decayed D``), ``None`` where SUV cannot be computed.
    suv_note : str
        How ``suv_factor`` was computed (weight, dose, decay), or why it cannot be.
    skipped : tuple of str
        ``"name: reason"`` of each entry of the folder that is not a slice of the series.
    transposed, flip_y, flip_x : bool
        How a slice's ``(row, column)`` array becomes ``(y, x)``: transposed first, then flipped.
    rows, columns : int
        Rows (0028,0010) and Columns (0028,0011) of every slice.
    """

    folder: pathlib.Path
    files: tuple[pathlib.Path, ...]
    grid: ImageGrid
    units: str
    series_uid: str
    description: str
    suv_factor: Optional[float]
    suv_note: str
    skipped: tuple[str, ...]
    transposed: bool
    flip_y: bool
    flip_x: bool
    rows: int
    columns: int


def _pydicom() -> Any:
    try:
        import pydicom
    except ImportError as error:
        raise ImportError("DICOM needs pydicom: pip install pydicom (or allpet[io])") from error
    return pydicom


def _has_magic(path: PathLike) -> bool:
    """Whether the regular file ``path`` starts as DICOM Part 10 does (raises as :func:`~.reading.open_regular`)."""
    with open_regular(path) as (handle, size):
        if size < PREAMBLE_BYTES + len(MAGIC):
            return False
        return handle.read(PREAMBLE_BYTES + len(MAGIC))[PREAMBLE_BYTES:] == MAGIC


def is_dicom_file(path: PathLike) -> bool:
    """Whether ``path`` is a regular file with the DICOM Part 10 marker (``DICM`` after a 128-byte preamble)."""
    try:
        regular_file_size(path)
        return _has_magic(path)
    except (OSError, ValueError):
        return False


def _entries(folder: pathlib.Path) -> list[pathlib.Path]:
    """The folder's entries sorted by name; ``ValueError`` for a missing or non-folder path or too many entries."""
    try:
        mode = os.stat(folder).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder} does not exist") from None
    except ValueError as error:
        raise ValueError(f"{folder!r} is not a usable folder name: {error}") from None
    if not stat.S_ISDIR(mode):
        raise ValueError(f"{folder} is not a folder: a DICOM series is read from the folder of its files")
    entries = []
    with os.scandir(folder) as scan:
        for entry in scan:
            entries.append(folder / entry.name)
            if len(entries) > MAX_FILES:
                raise ValueError(f"{folder} holds more than {MAX_FILES} entries (MAX_FILES): not one PET series")
    return sorted(entries)


def holds_dicom_files(folder: PathLike) -> bool:
    """Whether the folder ``folder`` holds at least one DICOM Part 10 file (its subfolders are not searched)."""
    return any(is_dicom_file(path) for path in _entries(pathlib.Path(folder)))


def _tag(keyword: str) -> str:
    """``"Keyword (gggg,eeee)"`` for messages."""
    tag = _pydicom().datadict.tag_for_keyword(keyword)
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _get(dataset: Any, keyword: str, path: PathLike) -> Any:
    """The value of ``keyword`` in ``dataset`` or ``None`` if absent or empty; ``ValueError`` if it cannot be read."""
    try:
        value = dataset.get(keyword)
    except Exception as error:  # pydicom raises many kinds on damaged values; the user needs the file and tag
        raise ValueError(f"{path}: {_tag(keyword)} cannot be read: {error}") from None
    return None if value is None or value == "" else value


def _floats(dataset: Any, keyword: str, path: PathLike, count: int) -> tuple[float, ...]:
    """``count`` finite numbers of a (multi-valued) numeric tag; ``ValueError`` naming the file and tag otherwise."""
    value = _get(dataset, keyword, path)
    if value is None:
        raise ValueError(f"{path}: {_tag(keyword)} is missing")
    items = list(value) if count > 1 and not isinstance(value, (str, bytes)) else [value]
    try:
        numbers = tuple(float(item) for item in items)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {_tag(keyword)} is {value!r}, not {count} numbers") from None
    if len(numbers) != count or not all(math.isfinite(n) for n in numbers):
        raise ValueError(f"{path}: {_tag(keyword)} is {value!r}, not {count} finite numbers")
    return numbers


def _integer(dataset: Any, keyword: str, path: PathLike, default: Optional[int] = None) -> int:
    """An integer tag (``default`` if absent; ``ValueError`` naming the file and tag if absent without one)."""
    value = _get(dataset, keyword, path)
    if value is None:
        if default is None:
            raise ValueError(f"{path}: {_tag(keyword)} is missing")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{path}: {_tag(keyword)} is {value!r}, not an integer")
    return int(value)


def _text(dataset: Any, keyword: str, path: PathLike) -> str:
    """A text tag, stripped (``""`` if absent)."""
    value = _get(dataset, keyword, path)
    return "" if value is None else str(value).strip()


def _read(path: pathlib.Path, pixels: bool) -> Any:
    """The dataset of a DICOM file (without its pixel data unless ``pixels``); ``ValueError`` naming it if damaged."""
    pydicom = _pydicom()
    with open_regular(path) as (handle, _):
        try:
            dataset = pydicom.dcmread(handle, stop_before_pixels=not pixels)
        except Exception as error:  # pydicom raises many kinds on damaged files
            raise ValueError(f"{path}: not a readable DICOM file: {' '.join(str(error).split())}") from None
    return dataset


def _axis(cosines: tuple[float, ...]) -> tuple[int, bool]:
    """``(axis, negative)`` of a direction along ``x`` (0) or ``y`` (1) within the tolerance, else ``(-1, False)``."""
    a = int(np.argmax(np.abs(cosines)))
    others = [abs(c) for i, c in enumerate(cosines) if i != a]
    if a == 2 or abs(abs(cosines[a]) - 1.0) > ORIENTATION_TOLERANCE or max(others) > ORIENTATION_TOLERANCE:
        return -1, False
    return a, cosines[a] < 0


def _timestamp(date: Any, time: Any, what: str, path: PathLike) -> Optional[datetime.datetime]:
    """A DA and a TM value as one datetime, ``None`` if either is absent; ``ValueError`` if malformed."""
    if date is None or time is None:
        return None
    valuerep = _pydicom().valuerep
    try:
        return datetime.datetime.combine(valuerep.DA(str(date)), valuerep.TM(str(time)))
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {what} {date!r} {time!r} is not a DICOM date and time") from None


def _positive(dataset: Any, keyword: str, path: PathLike, what: str) -> float:
    """A positive finite number of one value for SUV; ``ValueError`` saying that SUV needs ``what`` otherwise."""
    value = _get(dataset, keyword, path)
    try:
        number = _floats(dataset, keyword, path, 1)[0]
    except ValueError:
        number = math.nan
    if not 0 < number < math.inf:
        raise ValueError(f"{path}: SUV needs {what}: {_tag(keyword)} is {'missing' if value is None else repr(value)}")
    return number


def _suv(datasets: Sequence[Any], paths: Sequence[pathlib.Path], units: str) -> tuple[float, str]:
    """SUVbw per Bq/ml of a series and a sentence on how (module notes); ``ValueError`` naming what is missing."""
    first, path = datasets[0], paths[0]
    if units != "BQML":
        raise ValueError(f"{path}: SUV needs values in Bq/ml, but {_tag('Units')} is {units!r}")
    correction = _text(first, "DecayCorrection", path).upper()
    if correction not in ("START", "ADMIN"):
        raise ValueError(f"{path}: SUV needs images decay-corrected to the scan start or the administration, but "
                         f"{_tag('DecayCorrection')} is {correction or 'missing'!r}")
    weight = _positive(first, "PatientWeight", path, "the patient's weight")
    sequence = _get(first, "RadiopharmaceuticalInformationSequence", path)
    if not sequence:
        raise ValueError(f"{path}: SUV needs the injected dose: {_tag('RadiopharmaceuticalInformationSequence')} "
                         f"is missing")
    item = sequence[0]
    dose = _positive(item, "RadionuclideTotalDose", path, "the injected dose")
    half_life = _positive(item, "RadionuclideHalfLife", path, "the radionuclide's half-life")
    series_date = _get(first, "SeriesDate", path)
    reference = _timestamp(series_date, _get(first, "SeriesTime", path), "Series Date/Time", path)
    if reference is None:
        raise ValueError(f"{path}: SUV needs the scan time: {_tag('SeriesDate')} or {_tag('SeriesTime')} is missing")
    acquired = [_timestamp(_get(ds, "AcquisitionDate", p), _get(ds, "AcquisitionTime", p), "Acquisition Date/Time", p)
                for ds, p in zip(datasets, paths)]
    earliest = min((a for a in acquired if a is not None), default=None)
    if earliest is not None and earliest < reference:
        reference = earliest
    start_value = _get(item, "RadiopharmaceuticalStartDateTime", path)
    if start_value is not None:
        try:
            start = _pydicom().valuerep.DT(str(start_value)).replace(tzinfo=None)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: {_tag('RadiopharmaceuticalStartDateTime')} {start_value!r} is not a DICOM "
                             f"date and time") from None
    else:
        start = _timestamp(series_date, _get(item, "RadiopharmaceuticalStartTime", path),
                           "Radiopharmaceutical Start Time", path)
    if start is None:
        raise ValueError(f"{path}: SUV needs the injection time: {_tag('RadiopharmaceuticalStartDateTime')} and "
                         f"{_tag('RadiopharmaceuticalStartTime')} are missing")
    decay_s = 0.0 if correction == "ADMIN" else (reference - start).total_seconds()
    if decay_s < 0:
        raise ValueError(f"{path}: the injection ({start}) is after the scan's reference time ({reference})")
    decayed = dose * 2.0 ** (-decay_s / half_life)
    factor = weight * 1000.0 / decayed
    note = (f"SUVbw = Bq/ml x {weight:g} kg / ({dose / 1e6:.6g} MBq decayed by {decay_s / 60.0:.4g} min "
            f"at a half-life of {half_life / 60.0:.6g} min to {decayed / 1e6:.6g} MBq; decay correction "
            f"{correction}, reference {reference})")
    return factor, note


def _group_by_series(datasets: list[Any], paths: list[pathlib.Path], folder: pathlib.Path) -> str:
    """The one Series Instance UID of ``datasets``; ``ValueError`` listing the series of a mixed folder."""
    series: dict[str, list[pathlib.Path]] = {}
    for ds, path in zip(datasets, paths):
        uid = _text(ds, "SeriesInstanceUID", path)
        if not uid:
            raise ValueError(f"{path}: {_tag('SeriesInstanceUID')} is missing")
        series.setdefault(uid, []).append(path)
    if len(series) > 1:
        found = "; ".join(f"{uid}: {len(files)} files, e.g. {files[0].name}"
                          for uid, files in series.items())
        raise ValueError(f"{folder} mixes {len(series)} series ({found}): give a folder holding one series")
    return next(iter(series))


def _check_slice(ds: Any, path: pathlib.Path, first: Any, first_path: pathlib.Path, file_size: int) -> None:
    """One file is a single-frame PET slice like the first, and holds the pixel data its header announces."""
    modality = _text(ds, "Modality", path)
    if modality != PET_MODALITY:
        raise ValueError(f"{path}: {_tag('Modality')} is {modality or 'missing'!r}, not PET ({PET_MODALITY!r})")
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None:
        raise ValueError(f"{path}: {_tag('TransferSyntaxUID')} is missing from the file meta information")
    if syntax.is_compressed or syntax.is_deflated:
        raise ValueError(f"{path}: transfer syntax {syntax} is not read (compressed or deflated): "
                         f"write the series uncompressed (e.g. gdcmconv --raw, dcmdjpeg)")
    if _integer(ds, "NumberOfFrames", path, default=1) != 1:
        raise ValueError(f"{path}: a multi-frame file ({_tag('NumberOfFrames')} "
                         f"{_get(ds, 'NumberOfFrames', path)}): only one slice a file is read")
    if _integer(ds, "SamplesPerPixel", path, default=1) != 1:
        raise ValueError(f"{path}: {_tag('SamplesPerPixel')} is not 1: not a PET image")
    bits = _integer(ds, "BitsAllocated", path)
    if bits not in BITS_ALLOCATED:
        raise ValueError(f"{path}: {_tag('BitsAllocated')} is {bits}, not one of {BITS_ALLOCATED}")
    for keyword in ("Rows", "Columns", "BitsAllocated", "PixelRepresentation"):
        mine, theirs = _integer(ds, keyword, path), _integer(first, keyword, first_path)
        if mine != theirs:
            raise ValueError(f"{path}: {_tag(keyword)} is {mine}, but {theirs} in {first_path.name} of the same series")
    for keyword, count in (("PixelSpacing", 2), ("ImageOrientationPatient", 6)):
        mine, theirs = _floats(ds, keyword, path, count), _floats(first, keyword, first_path, count)
        if not np.allclose(mine, theirs, rtol=0.0, atol=ORIENTATION_TOLERANCE):
            raise ValueError(f"{path}: {_tag(keyword)} is {list(mine)}, but {list(theirs)} in {first_path.name}")
    check_elements(path, "Rows x Columns", (_integer(ds, "Rows", path), _integer(ds, "Columns", path)), bits // 8,
                   file_size)


def read_dicom_header(folder: PathLike) -> DicomSeries:
    """The header of the PET DICOM series in ``folder``: files in slice order, grid, units, SUV scale.

    Reads no pixel data. See the module notes for what is read, the
    geometry and the SUV.

    Raises
    ------
    FileNotFoundError
        If ``folder`` does not exist.
    ValueError
        One line naming the folder or a file: not a folder, no DICOM files,
        mixed series, not PET, compressed or multi-frame files, slices
        disagreeing in size, spacing or orientation, non-axial slices, a
        missing slice or uneven spacing, sizes beyond the maxima or beyond
        what a file holds.
    """
    folder = pathlib.Path(folder)
    paths, skipped, sizes, datasets = [], [], [], []
    for path in _entries(folder):
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            skipped.append(f"{path.name}: {'a folder' if stat.S_ISDIR(mode) else 'not a regular file'}")
            continue
        if not _has_magic(path):
            skipped.append(f"{path.name}: not a DICOM file (no DICM marker at byte {PREAMBLE_BYTES})")
            continue
        ds = _read(path, pixels=False)
        if str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "")) == DICOMDIR_SOP_CLASS:
            skipped.append(f"{path.name}: a DICOMDIR index")
            continue
        if len(ds) == 0:
            raise ValueError(f"{path}: not a readable DICOM file: no data set after the file meta information "
                             f"(truncated?)")
        paths.append(path)
        sizes.append(regular_file_size(path))
        datasets.append(ds)
    if not paths:
        raise ValueError(f"{folder} holds no DICOM files" + (f" ({len(skipped)} entries skipped: "
                                                             f"{'; '.join(skipped[:NAMED_SKIPS])})" if skipped else ""))
    series_uid = _group_by_series(datasets, paths, folder)
    for ds, path, size in zip(datasets, paths, sizes):
        _check_slice(ds, path, datasets[0], paths[0], size)
    first, first_path = datasets[0], paths[0]
    rows, columns = _integer(first, "Rows", first_path), _integer(first, "Columns", first_path)
    check_elements(folder, "Rows x Columns x slices", (len(paths), rows, columns), _integer(
        first, "BitsAllocated", first_path) // 8, sum(sizes))
    orientation = _floats(first, "ImageOrientationPatient", first_path, 6)
    (row_axis, row_negative), (column_axis, column_negative) = _axis(orientation[:3]), _axis(orientation[3:])
    if row_axis < 0 or column_axis < 0 or row_axis == column_axis:
        raise ValueError(f"{first_path}: {_tag('ImageOrientationPatient')} {list(orientation)} is not an axial slice "
                         f"with rows and columns along x and y: oblique, sagittal and coronal slices are not read")
    # unit vectors of the rows (along which the column index grows) and the columns (the row index), snapped
    along_row, along_column = np.zeros(3), np.zeros(3)
    along_row[row_axis], along_column[column_axis] = (-1.0 if row_negative else 1.0), (-1.0 if column_negative else 1.0)
    row_spacing, column_spacing = _floats(first, "PixelSpacing", first_path, 2)
    if not (row_spacing > 0 and column_spacing > 0):
        raise ValueError(f"{first_path}: {_tag('PixelSpacing')} {[row_spacing, column_spacing]} is not positive")
    centres = np.array([np.array(_floats(ds, "ImagePositionPatient", path, 3))
                        + (columns - 1) / 2.0 * column_spacing * along_row
                        + (rows - 1) / 2.0 * row_spacing * along_column for ds, path in zip(datasets, paths)])
    order = np.argsort(centres[:, 2], kind="stable")
    centres, files = centres[order], [paths[k] for k in order]
    transposed = column_axis == 0
    dy, dx = (column_spacing, row_spacing) if transposed else (row_spacing, column_spacing)
    shifted = np.abs(centres[:, :2] - centres[0, :2]).max(axis=1) > SPACING_TOLERANCE * min(dx, dy)
    if shifted.any():
        k = int(np.argmax(shifted))
        raise ValueError(f"{files[k]}: its slice is centred at (x, y) = {tuple(centres[k, :2].round(4))} mm, but "
                         f"{files[0].name}'s at {tuple(centres[0, :2].round(4))} mm: a tilted or sheared stack is not "
                         f"read")
    dz = _slice_step(centres[:, 2], files, first, first_path, min(dx, dy))
    grid_shape = (len(files), columns, rows) if transposed else (len(files), rows, columns)
    try:
        grid = ImageGrid(grid_shape, (dz, dy, dx),
                         ((centres[0, 2] + centres[-1, 2]) / 2.0, centres[0, 1], centres[0, 0]))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{folder}: the series gives no valid image grid: {error}") from None
    units = _text(first, "Units", first_path).upper()
    try:
        suv_factor, suv_note = _suv([datasets[k] for k in order], files, units)
    except ValueError as error:
        suv_factor, suv_note = None, f"no SUV: {error}"
    flip_y, flip_x = (row_negative, column_negative) if transposed else (column_negative, row_negative)
    return DicomSeries(folder, tuple(files), grid, units, series_uid, _text(first, "SeriesDescription", first_path),
                       suv_factor, suv_note, tuple(skipped), transposed, flip_y, flip_x, rows, columns)


def _slice_step(z: np.ndarray, files: Sequence[pathlib.Path], first: Any, first_path: pathlib.Path,
                pixel_mm: float) -> float:
    """The slice spacing in mm from sorted slice positions ``z`` (mm); ``ValueError`` on gaps and uneven steps.

    Two slices closer than :data:`SPACING_TOLERANCE` pixels (``pixel_mm``) share a position; every other step must
    match the smallest one to :data:`SPACING_TOLERANCE` of it (a step of about m times it: m - 1 slices missing).
    """
    if len(z) == 1:
        thickness = _get(first, "SliceThickness", first_path)
        if thickness is None or not 0 < float(thickness) < math.inf:
            raise ValueError(f"{first_path}: a one-slice series needs a positive {_tag('SliceThickness')}")
        return float(thickness)
    steps = np.diff(z)
    for k, step in enumerate(steps):
        if step <= SPACING_TOLERANCE * pixel_mm:
            raise ValueError(f"{files[k]} and {files[k + 1].name} are both at z = {z[k]:.4f} mm: two slices at one "
                             f"position (a dynamic or gated series? give one frame's files)")
    smallest = float(steps.min())
    for k, step in enumerate(steps):
        if abs(step - smallest) > SPACING_TOLERANCE * smallest:
            missing = round(step / smallest) - 1
            what = (f"{missing} slice{'s' if missing > 1 else ''} missing"
                    if abs(step - (missing + 1) * smallest) <= SPACING_TOLERANCE * smallest else "uneven slice spacing")
            raise ValueError(f"{files[k].parent}: {what}: a step of {step:.4f} mm from z = {z[k]:.4f} mm "
                             f"({files[k].name}) to z = {z[k + 1]:.4f} mm ({files[k + 1].name}), where the smallest "
                             f"step is {smallest:.4f} mm")
    return float((z[-1] - z[0]) / (len(z) - 1))


def _slice_values(series: DicomSeries, path: pathlib.Path, scale: float) -> np.ndarray:
    """One file's values (module notes) times ``scale``, float32, as ``(ny, nx)`` of the series' grid."""
    ds = _read(path, pixels=True)
    bits = _integer(ds, "BitsAllocated", path)
    expected = series.rows * series.columns * bits // 8
    data = _get(ds, "PixelData", path)
    if data is None:
        raise ValueError(f"{path}: no pixel data (truncated?)")
    if len(data) not in (expected, expected + 1):  # an odd length is padded to even
        raise ValueError(f"{path}: {len(data)} bytes of pixel data, but Rows x Columns x Bits Allocated is "
                         f"{series.rows} x {series.columns} x {bits} bits = {expected} bytes")
    try:
        stored = ds.pixel_array
    except Exception as error:  # pydicom's pixel handlers raise many kinds
        raise ValueError(f"{path}: the pixel data cannot be decoded: {error}") from None
    if stored.shape != (series.rows, series.columns):
        raise ValueError(f"{path}: pixel data of shape {stored.shape}, not {(series.rows, series.columns)}")
    slope = _floats(ds, "RescaleSlope", path, 1)[0] if _get(ds, "RescaleSlope", path) is not None else 1.0
    intercept = _floats(ds, "RescaleIntercept", path, 1)[0] if _get(ds, "RescaleIntercept", path) is not None else 0.0
    values = stored.astype(np.float64) * slope + intercept
    if scale != 1.0:
        values = values * scale
    if series.transposed:
        values = values.T
    if series.flip_y:
        values = values[::-1]
    if series.flip_x:
        values = values[:, ::-1]
    return values.astype(np.float32)


def read_dicom_series(folder: PathLike, units: str = "Bq/ml") -> tuple[np.ndarray, ImageGrid]:
    """A PET DICOM series (one folder, one slice a file) as an image and its grid.

    Parameters
    ----------
    folder : path
        The folder of the series' files (module notes: what is read, what is skipped with a warning).
    units : {"Bq/ml", "SUV"}
        Activity concentration, or body-weight SUV (g/ml; module notes: the formula and the tags it uses).

    Returns
    -------
    image : ndarray, float32, shape ``(nz, ny, nx)``
        Axes along ``+z`` (towards the head), ``+y`` (towards the back), ``+x`` (towards the patient's left).
    grid : ImageGrid
        Voxel sizes from Pixel Spacing and the slice positions, origin at the centre of the voxel block in
        DICOM's patient frame (LPS), mm.

    Raises
    ------
    ValueError
        As :func:`read_dicom_header`; also for Units other than ``BQML``,
        SUV without the dose, weight or times it needs, and pixel data that
        does not match its header.
    """
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}")
    series = read_dicom_header(folder)
    if series.skipped:
        warnings.warn(f"{series.folder}: skipped {len(series.skipped)} entries that are not slices of the series: "
                      f"{'; '.join(series.skipped[:NAMED_SKIPS])}{' ...' if len(series.skipped) > NAMED_SKIPS else ''}",
                      stacklevel=2)
    if series.units != "BQML":
        raise ValueError(f"{series.files[0]}: {_tag('Units')} is {series.units or 'missing'!r}, not 'BQML' (Bq/ml): "
                         f"only activity concentrations are read")
    if units == "SUV" and series.suv_factor is None:
        raise ValueError(series.suv_note.removeprefix("no SUV: "))
    scale = 1.0 if units == "Bq/ml" else series.suv_factor
    image = np.empty(series.grid.shape, np.float32)
    for k, path in enumerate(series.files):
        image[k] = _slice_values(series, path, scale)
    return image, series.grid
