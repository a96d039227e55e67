"""STIR Interfile images (``.hv`` / ``.v``) and projection data (``.hs`` / ``.s``), read and written.

Images become ``(nz, ny, nx)`` arrays on an :class:`~pet_projection.ImageGrid`;
projection data become ``(plane, view, radial)`` arrays (STIR's
``Segment_AxialPos_View_TangPos`` order, segments in the file's order) with the
:class:`~pet_projection.projdata.ProjDataLayout` that places every bin's LOR
as STIR does, so they can be projected (``PETSinogramProjector(layout,
grid)``), reconstructed and written back.

Image placement follows STIR (``read_interfile_image`` and its ray-tracing
projector): STIR indexes ``x`` and ``y`` from ``-(n // 2)`` with index 0 at
``x = 0`` (plus ``first pixel offset``), and centres the image axially on the
scanner (plus the ``z`` offset). In this package's grid convention that is
``origin_mm = (oz, oy, ox)`` with ``ox = first_pixel_offset_x + (nx - 1) / 2
dx`` (default ``((nx - 1) / 2 - nx // 2) dx``: half a voxel for even ``nx``)
and ``oz = first_pixel_offset_z`` (default 0).

Files are written as little-endian float32 (float64 arrays as 8-byte floats),
data file first and header last, both under temporary names renamed into place
only when complete, so a failed write leaves nothing half written.
"""

from __future__ import annotations

import math
import os
import pathlib
from typing import Union

import numpy as np

from ..grid import ImageGrid
from ..projdata import STORAGE_ORDERS, CylindricalScanner, ProjDataLayout, known_scanner
from .files import atomic_paths
from .header import InterfileError, InterfileHeader, read_header, read_raw
from .reading import MAX_ELEMENTS

PathLike = Union[str, os.PathLike]

# grid origins read from 'first pixel offset' are rounded to 1e-9 mm, so that written and re-read grids are equal
ORIGIN_DECIMALS = 9

# keys that carry no geometry: read past silently (anything else not interpreted is named in a warning)
INFORMATIONAL_KEYS = (
    "interfile", "imaging modality", "originating system", "version of keys", "general data", "general image data",
    "type of data", "patient orientation", "patient rotation", "pet study (general)", "pet study (emission data)",
    "pet data type", "process status", "image duration (sec)", "image relative start time (sec)",
    "quantification units", "end of interfile", "scanner parameters", "end scanner parameters",
    "number of energy windows", "energy window lower level", "energy window upper level",
    "start vertical bed position (mm)", "start horizontal bed position (mm)", "applied corrections",
    "name of data file", "number format", "number of bytes per pixel", "imagedata byte order",
    "data offset in bytes", "image scaling factor", "number of time frames", "number of dimensions",
    "matrix axis label", "matrix size", "scaling factor (mm/pixel)", "first pixel offset (mm)",
)
# STIR scanner keys that this package keeps verbatim (no geometry it models), in the order STIR writes them
SCANNER_DETAIL_KEYS = (
    "Number of blocks per bucket in transaxial direction", "Number of blocks per bucket in axial direction",
    "Number of crystals per block in axial direction", "Number of crystals per block in transaxial direction",
    "Number of detector layers", "Number of crystals per singles unit in axial direction",
    "Number of crystals per singles unit in transaxial direction", "Energy resolution", "Reference energy (in keV)",
)
SCANNER_KEYS = (
    "scanner type", "number of rings", "number of detectors per ring", "inner ring diameter (cm)",
    "average depth of interaction (cm)", "distance between rings (cm)", "default bin size (cm)",
    "view offset (degrees)", "maximum number of non-arc-corrected bins", "default number of arc-corrected bins",
    "effective central bin size (cm)",
) + tuple(key.lower() for key in SCANNER_DETAIL_KEYS)


def _number(value: float) -> str:
    """A float as header text, without float noise below 12 significant digits."""
    return repr(float(f"{value:.12g}"))


def _check_frames(header: InterfileHeader) -> None:
    frames = header.integer("number of time frames", 1)
    if frames != 1:
        raise header.error(f"'number of time frames := {frames}' is not supported: one frame per file")


def _check_type(header: InterfileHeader, accepted: tuple[str, ...], what: str) -> None:
    kind = header.lowercase("pet data type", accepted[0])
    if kind not in accepted:
        raise header.error(f"'PET data type := {kind}' is not {what} (expected {' or '.join(accepted)})")


# --- images ----------------------------------------------------------------------------------------

def read_image(path: PathLike) -> tuple[np.ndarray, ImageGrid]:
    """Read a STIR Interfile image.

    Parameters
    ----------
    path : str or path
        The ``.hv`` header.

    Returns
    -------
    image : ndarray, shape ``(nz, ny, nx)``
        float32 (float64 for 8-byte data), scaled by ``image scaling factor``.
    grid : ImageGrid
        Voxel sizes from ``scaling factor (mm/pixel)``, origin from ``first
        pixel offset (mm)`` as STIR places images (see the module notes),
        rounded to 1e-9 mm.
    """
    header = read_header(path)
    _check_type(header, ("image",), "an image")
    if header.integer("number of dimensions") != 3:
        raise header.error(f"'number of dimensions := {header.text('number of dimensions')}' is not supported: "
                           f"images must be 3D (x, y, z)")
    for index, label in enumerate("xyz", start=1):
        found = header.lowercase(f"matrix axis label [{index}]", label)
        if found != label:
            raise header.error(f"'matrix axis label [{index}] := {found}' is not supported: expected {label}")
    _check_frames(header)
    sizes = [header.size(f"matrix size [{index}]") for index in (1, 2, 3)]
    voxel = [header.number(f"scaling factor (mm/pixel) [{index}]", 1.0) for index in (1, 2, 3)]
    if min(sizes) < 1 or min(voxel) <= 0:
        raise header.error(f"matrix sizes {sizes} and voxel sizes {voxel} mm must be positive")
    (nx, ny, nz), (dx, dy, dz) = sizes, voxel
    ox, oy = (round(header.number(f"first pixel offset (mm) [{index}]") + (n - 1) / 2.0 * d, ORIGIN_DECIMALS)
              if f"first pixel offset (mm) [{index}]" in header else ((n - 1) / 2.0 - n // 2) * d
              for index, n, d in ((1, nx, dx), (2, ny, dy)))
    oz = header.number("first pixel offset (mm) [3]", 0.0)
    try:
        grid = ImageGrid((nz, ny, nx), (dz, dy, dx), (oz, oy, ox))
    except (TypeError, ValueError) as error:
        raise header.error(f"the header describes no valid image grid: {error}") from None
    image = read_raw(header, (nz, ny, nx))
    header.warn_unknown(INFORMATIONAL_KEYS)
    return image, grid


def write_image(path: PathLike, image: np.ndarray, grid: ImageGrid) -> pathlib.Path:
    """Write ``image`` (shape ``grid.shape``, 3D) as a STIR Interfile image ``path`` (``.hv``) plus its ``.v`` data.

    Returns the header path. The inverse of :func:`read_image`: reading the
    files back gives the same array (bit for bit, float32 or float64) and grid.
    """
    path = pathlib.Path(path)
    image = np.asarray(image)
    if not isinstance(grid, ImageGrid) or grid.ndim != 3:
        raise ValueError(f"grid must be a 3D ImageGrid (nz, ny, nx), got {grid!r}")
    if image.shape != grid.shape:
        raise ValueError(f"image has shape {image.shape}, but the grid has shape {grid.shape}")
    data = _little_endian_float(image, "image", path)
    (nz, ny, nx), (dz, dy, dx), (oz, oy, ox) = grid.shape, grid.voxel_size_mm, grid.origin_mm
    data_path = path.with_suffix(".v")
    lines = ["!INTERFILE  :=", f"name of data file := {data_path.name}", "!GENERAL DATA :=",
             "!GENERAL IMAGE DATA :=", "!type of data := PET", "imagedata byte order := LITTLEENDIAN",
             "!PET STUDY (General) :=", "!PET data type := Image", "process status := Reconstructed",
             "!number format := float", f"!number of bytes per pixel := {data.dtype.itemsize}",
             "number of dimensions := 3"]
    for index, (label, n, d) in enumerate((("x", nx, dx), ("y", ny, dy), ("z", nz, dz)), start=1):
        lines += [f"matrix axis label [{index}] := {label}", f"!matrix size [{index}] := {n}",
                  f"scaling factor (mm/pixel) [{index}] := {_number(d)}"]
    offsets = (ox - (nx - 1) / 2.0 * dx, oy - (ny - 1) / 2.0 * dy, oz)
    lines += [f"first pixel offset (mm) [{index}] := {_number(value)}" for index, value in enumerate(offsets, 1)]
    lines += ["number of time frames := 1", "!END OF INTERFILE :="]
    _write_pair(path, data_path, lines, [data])
    return path


def _little_endian_float(array: np.ndarray, name: str, path: pathlib.Path) -> np.ndarray:
    if array.dtype.kind not in "biuf":
        raise ValueError(f"cannot write {path}: Interfile holds real numbers (float32 or float64), but the {name} "
                         f"has dtype {array.dtype}")
    dtype = "<f8" if array.dtype == np.float64 else "<f4"
    return np.ascontiguousarray(array, dtype=dtype)


def _write_pair(header_path: pathlib.Path, data_path: pathlib.Path, lines: list[str], blocks: list[np.ndarray]) -> None:
    if header_path.resolve() == data_path.resolve():
        raise ValueError(f"the header {header_path} and its data file must differ (use .hv/.hs)")
    with atomic_paths(data_path, header_path) as (data_tmp, header_tmp):
        with open(data_tmp, "wb") as handle:
            for block in blocks:
                block.tofile(handle)
        header_tmp.write_text("\n".join(lines) + "\n", encoding="latin-1")


# --- projection data -------------------------------------------------------------------------------

def _scanner(header: InterfileHeader) -> CylindricalScanner:
    """The scanner of a projection-data header: its keys, completed from STIR's known scanner of that name."""
    name = header.text("scanner type", header.text("originating system", "unknown"))
    known = known_scanner(name)

    def value(key: str, known_value: float | None, scale: float = 1.0, integer: bool = False,
              minimum: int = 1) -> float:
        if key in header:
            return header.size(key, minimum=minimum) if integer else header.number(key) * scale
        if known_value is None:
            raise header.error(f"the key '{key}' is missing and STIR knows no scanner named {name!r} to take it from")
        return known_value

    try:
        return CylindricalScanner(
            name=known.name if known and "scanner type" not in header else name,
            n_rings=int(value("number of rings", known and known.n_rings, integer=True)),
            n_detectors_per_ring=int(value("number of detectors per ring", known and known.n_detectors_per_ring,
                                           integer=True)),
            inner_ring_radius_mm=value("inner ring diameter (cm)", known and known.inner_ring_radius_mm, 5.0),
            average_doi_mm=value("average depth of interaction (cm)", known and known.average_doi_mm, 10.0),
            ring_spacing_mm=value("distance between rings (cm)", known and known.ring_spacing_mm, 10.0),
            default_bin_size_mm=value("default bin size (cm)", known and known.default_bin_size_mm, 10.0),
            view_offset_rad=math.radians(header.number("view offset (degrees)", 0.0)),  # STIR's parser default is 0
            max_non_arc_corrected_bins=int(value("maximum number of non-arc-corrected bins",
                                                 known and known.max_non_arc_corrected_bins or 0, integer=True,
                                                 minimum=0)),
            default_arc_corrected_bins=int(value("default number of arc-corrected bins",
                                                 known and known.default_arc_corrected_bins or 0, integer=True,
                                                 minimum=0)),
            details=tuple((key, header.text(key)) for key in SCANNER_DETAIL_KEYS if key in header),
        )
    except InterfileError:
        raise
    except (TypeError, ValueError) as error:
        raise header.error(f"the header describes no valid scanner: {error}") from None


def _projdata_layout(header: InterfileHeader) -> ProjDataLayout:
    _check_type(header, ("emission", "transmission"), "projection data")
    dimensions = header.integer("number of dimensions")
    if dimensions != 4:
        raise header.error(f"'number of dimensions := {dimensions}' is not supported: projection data must be 4D "
                           f"(segment, view, axial coordinate, tangential coordinate); TOF data are not read yet")
    labels = {index: header.lowercase(f"matrix axis label [{index}]") for index in (1, 2, 3, 4)}
    if labels[4] != "segment" or labels[1] != "tangential coordinate" \
            or {labels[2], labels[3]} != {"view", "axial coordinate"}:
        raise header.error("unsupported 'matrix axis label' order " + ", ".join(f"[{i}] {labels[i]}" for i in
                                                                             (4, 3, 2, 1))
                           + ": expected [4] segment, [3]/[2] view and axial coordinate, [1] tangential coordinate")
    view_index = 2 if labels[2] == "view" else 3
    storage = STORAGE_ORDERS[0] if view_index == 2 else STORAGE_ORDERS[1]
    n_segments = header.size("matrix size [4]")
    n_axial = header.sizes(f"matrix size [{5 - view_index}]")
    low, high = header.integers("minimum ring difference per segment"), header.integers(
        "maximum ring difference per segment")
    if not len(n_axial) == len(low) == len(high) == n_segments:
        raise header.error(f"'matrix size [4] := {n_segments}' segments, but {len(n_axial)} axial sizes, "
                           f"{len(low)} minimum and {len(high)} maximum ring differences")
    _check_frames(header)
    bins = sum(n_axial) * header.size(f"matrix size [{view_index}]") * header.size("matrix size [1]")
    if bins > MAX_ELEMENTS:
        raise header.error(f"the matrix sizes ask for {bins} bins, more than the {MAX_ELEMENTS} an allpet reader "
                           f"allocates (MAX_ELEMENTS)")
    corrections = header.lowercase("applied corrections", "{arc correction}")  # STIR assumes arc-corrected
    arc_corrected = "arc correct" in corrections
    scanner = _scanner(header)
    bin_size = scanner.default_bin_size_mm
    if arc_corrected and "effective central bin size (cm)" in header:
        bin_size = header.number("effective central bin size (cm)") * 10.0
    try:
        return ProjDataLayout(scanner, list(zip(low, high)), n_axial, header.size(f"matrix size [{view_index}]"),
                              header.size("matrix size [1]"), arc_corrected, bin_size, storage_order=storage)
    except (TypeError, ValueError) as error:
        raise header.error(f"the header describes no valid projection data: {error}") from None


def read_projdata_header(path: PathLike) -> ProjDataLayout:
    """The :class:`ProjDataLayout` of a STIR projection-data header ``.hs`` (no data file needed: templates)."""
    header = read_header(path)
    layout = _projdata_layout(header)
    header.warn_unknown(INFORMATIONAL_KEYS + SCANNER_KEYS)
    return layout


def read_projdata(path: PathLike) -> tuple[np.ndarray, ProjDataLayout]:
    """Read STIR Interfile projection data.

    Returns
    -------
    data : ndarray, shape ``layout.shape`` = ``(n_planes, n_views, n_tangential)``
        float32 (float64 for 8-byte data), scaled by ``image scaling factor``;
        segments follow each other along the plane axis in the file's order.
    layout : ProjDataLayout
        Scanner, segments, views, tangential bins and arc correction; the
        scanner's keys come from the header, completed from STIR's known
        scanner of that name where the header lacks them.
    """
    header = read_header(path)
    layout = _projdata_layout(header)
    raw = read_raw(header, (layout.n_planes * layout.n_views * layout.n_radial,))
    header.warn_unknown(INFORMATIONAL_KEYS + SCANNER_KEYS)
    return np.ascontiguousarray(_from_storage(raw, layout)), layout


def _segment_blocks(layout: ProjDataLayout) -> list[tuple[int, int]]:
    first = np.concatenate([[0], np.cumsum(layout.n_axial)]).tolist()
    return [(first[i], first[i + 1]) for i in range(len(layout.n_axial))]


def _from_storage(raw: np.ndarray, layout: ProjDataLayout) -> np.ndarray:
    """Flat file data to ``(plane, view, radial)``."""
    if layout.storage_order == STORAGE_ORDERS[0]:
        return raw.reshape(layout.n_planes, layout.n_views, layout.n_radial)
    blocks, start = [], 0
    for lo, hi in _segment_blocks(layout):
        size = (hi - lo) * layout.n_views * layout.n_radial
        blocks.append(raw[start:start + size].reshape(layout.n_views, hi - lo, layout.n_radial).transpose(1, 0, 2))
        start += size
    return np.concatenate(blocks, axis=0)


def _to_storage(data: np.ndarray, layout: ProjDataLayout) -> list[np.ndarray]:
    """``(plane, view, radial)`` to the file's blocks, in order."""
    if layout.storage_order == STORAGE_ORDERS[0]:
        return [data]
    return [np.ascontiguousarray(data[lo:hi].transpose(1, 0, 2)) for lo, hi in _segment_blocks(layout)]


def write_projdata(path: PathLike, data: np.ndarray, layout: ProjDataLayout) -> pathlib.Path:
    """Write sinograms ``data`` (shape ``layout.shape``, in ``layout.axis_order``) as STIR Interfile ``path`` (``.hs``)
    plus its ``.s`` data file, in ``layout.storage_order``; returns the header path.

    The header carries every key STIR needs to rebuild the layout (the
    scanner block, segments, arc correction); :func:`read_projdata` of the
    result gives back the same array bit for bit and an equal layout.
    """
    path = pathlib.Path(path)
    if not isinstance(layout, ProjDataLayout):
        raise TypeError(f"layout must be a ProjDataLayout, got {type(layout).__name__}")
    data = np.asarray(data)
    if data.shape != layout.shape:
        raise ValueError(f"data has shape {data.shape}, but the layout has shape {layout.shape} "
                         f"in axis order {layout.axis_order}")
    stir = _little_endian_float(np.asarray(layout.to_stir(data)), "data", path)
    scanner = layout.scanner
    data_path = path.with_suffix(".s")
    view_index, axial_index = (2, 3) if layout.storage_order == STORAGE_ORDERS[0] else (3, 2)
    axes = {view_index: ("view", str(layout.n_views)),
            axial_index: ("axial coordinate", "{ " + ",".join(map(str, layout.n_axial)) + "}")}
    lines = ["!INTERFILE  :=", "!imaging modality := PT", f"name of data file := {data_path.name}",
             f"originating system := {scanner.name}", "!version of keys := STIR3.0", "!GENERAL DATA :=",
             "!GENERAL IMAGE DATA :=", "!type of data := PET", "imagedata byte order := LITTLEENDIAN",
             "!PET STUDY (General) :=", "!PET data type := Emission",
             f"applied corrections := {{{'arc correction' if layout.arc_corrected else 'None'}}}",
             "!number format := float", f"!number of bytes per pixel := {stir.dtype.itemsize}",
             "number of dimensions := 4", "matrix axis label [4] := segment",
             f"!matrix size [4] := {len(layout.segments)}"]
    for index in (3, 2):
        lines += [f"matrix axis label [{index}] := {axes[index][0]}", f"!matrix size [{index}] := {axes[index][1]}"]
    lines += ["matrix axis label [1] := tangential coordinate", f"!matrix size [1] := {layout.n_radial}",
              "minimum ring difference per segment := { " + ",".join(str(lo) for lo, _ in layout.segments) + "}",
              "maximum ring difference per segment := { " + ",".join(str(hi) for _, hi in layout.segments) + "}",
              "Scanner parameters:= ", f"Scanner type := {scanner.name}",
              f"Number of rings := {scanner.n_rings}",
              f"Number of detectors per ring := {scanner.n_detectors_per_ring}",
              f"Inner ring diameter (cm) := {_number(scanner.inner_ring_radius_mm / 5.0)}",
              f"Average depth of interaction (cm) := {_number(scanner.average_doi_mm / 10.0)}",
              f"Distance between rings (cm) := {_number(scanner.ring_spacing_mm / 10.0)}",
              f"Default bin size (cm) := {_number(scanner.default_bin_size_mm / 10.0)}",
              f"View offset (degrees) := {math.degrees(scanner.view_offset_rad)!r}",  # all digits: an angle
              f"Maximum number of non-arc-corrected bins := {scanner.max_non_arc_corrected_bins}",
              f"Default number of arc-corrected bins := {scanner.default_arc_corrected_bins}"]
    lines += [f"{key} := {value}" for key, value in scanner.details]
    central = layout.bin_size_mm if layout.arc_corrected else float(layout.scanner.effective_radius_mm * math.sin(
        math.pi / scanner.n_detectors_per_ring))
    lines += ["end scanner parameters:=", f"effective central bin size (cm) := {_number(central / 10.0)}",
              "number of time frames := 1", "!END OF INTERFILE :="]
    _write_pair(path, data_path, lines, _to_storage(stir, layout))
    return path


__all__ = ["InterfileError", "read_image", "write_image", "read_projdata", "read_projdata_header", "write_projdata"]
