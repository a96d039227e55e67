"""``allpet info FILE``: the geometry of a data file (Interfile image, projection data or listmode, NIfTI, NumPy, a PET
DICOM series folder)."""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
import warnings
from typing import Optional, Sequence

import numpy as np

from pet_projection.grid import ImageGrid
from pet_projection.projdata import ProjDataLayout
from pet_projection.io.dicom import read_dicom_header, read_dicom_series
from pet_projection.io.formats import file_kind, load_image
from pet_projection.io.interfile import read_projdata, read_projdata_header
from pet_projection.io.numpy_files import open_npz
from pet_projection.io.petlink import read_listmode

from .errors import KNOWN_ERRORS, command, error_message


def describe_layout(layout: ProjDataLayout) -> list[str]:
    """Lines describing a STIR projection-data layout: scanner, segments, views, tangential sampling."""
    scanner = layout.scanner
    s = layout.tangential_positions_mm()
    phi = np.degrees(layout.view_angles_rad())
    lines = [f"scanner        {scanner.name}: {scanner.n_rings} rings x {scanner.n_detectors_per_ring} detectors, "
             f"effective radius {scanner.effective_radius_mm:g} mm (inner {scanner.inner_ring_radius_mm:g} + DOI "
             f"{scanner.average_doi_mm:g}), ring spacing {scanner.ring_spacing_mm:g} mm",
             f"shape          {layout.shape} ({', '.join(layout.axis_order)}); file order {layout.storage_order}",
             f"views          {layout.n_views} from {phi[0]:.4g} to {phi[-1]:.4g} deg "
             f"(mashing {layout.view_mashing or 'n/a'})",
             f"tangential     {layout.n_radial} bins, "
             + (f"arc-corrected, {layout.bin_size_mm:g} mm apart" if layout.arc_corrected
                else f"not arc-corrected (s = R sin(t pi / N)), central bin {float(np.diff(s).max()):.4g} mm")
             + f", s from {s[0]:.4g} to {s[-1]:.4g} mm",
             "segments       number: ring differences, axial positions"]
    for number, (low, high), n in sorted(zip(layout.segment_numbers(), layout.segments, layout.n_axial)):
        lines.append(f"  {number:+4d}: {low}..{high}, {n}")
    return lines


def describe(path: pathlib.Path) -> list[str]:
    kind = file_kind(path)
    if kind == "dicom":
        return describe_dicom(path)
    if kind == "projdata":
        try:
            data, layout = read_projdata(path)
        except (ValueError, OSError) as error:
            layout = read_projdata_header(path)
            return [f"{path}: STIR projection data (header only: {error})"] + describe_layout(layout)
        return ([f"{path}: STIR projection data, {data.dtype}"] + describe_layout(layout)
                + [f"values         min {data.min():.6g}, max {data.max():.6g}, sum {data.sum():.6g}"])
    if kind == "listmode":
        listmode = read_listmode(path)
        counts = listmode.counts()
        return ([f"{path}: Siemens PETLINK listmode, {listmode.n_words} words in {listmode.data_path.name}",
                 f"events         {counts.prompts} prompts, {counts.delayeds} delayeds; {counts.time_tags} time tags "
                 f"(last {counts.last_time_ms} ms), {counts.other_tags} other tags",
                 "event bins (the listmode's full span-1 layout):"] + describe_layout(listmode.layout)[:4])
    if kind == "numpy" and path.suffix == ".npy":
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        return [f"{path}: NumPy array {array.shape} {array.dtype} (no geometry)"]
    if kind == "numpy":
        with open_npz(path) as archive:
            if {"image", "voxel_size_mm", "origin_mm"} - set(archive.files):
                return [f"{path}: NumPy archive"] + [f"  {name}: {archive[name].shape} {archive[name].dtype}"
                                                      for name in archive.files]
    image, grid = load_image(path)
    return ([f"{path}: image ({'NIfTI' if kind == 'nifti' else 'STIR Interfile' if kind == 'image' else 'NumPy'}),"
             f" {image.dtype}"] + describe_image(image, grid))


def describe_image(image: np.ndarray, grid: ImageGrid) -> list[str]:
    """Lines describing an image's grid (shape, voxel size, extent, centre) and its values."""
    extent = [n * d for n, d in zip(grid.shape, grid.voxel_size_mm)]
    return [f"grid           {grid.shape} voxels (z, y, x) of {' x '.join(f'{d:g}' for d in grid.voxel_size_mm)} mm, "
            f"extent {' x '.join(f'{e:g}' for e in extent)} mm, centre (z, y, x) "
            f"{tuple(round(o, 6) for o in grid.origin_mm)} mm",
            f"values         min {image.min():.6g}, max {image.max():.6g}, sum {image.sum():.6g}"
            + ("" if math.isfinite(float(image.sum())) else " (not finite!)")]


def describe_dicom(path: pathlib.Path) -> list[str]:
    """Lines describing a PET DICOM series folder: slices, units, how SUV follows from its header, grid, values."""
    series = read_dicom_header(path)
    lines = [f"{path}: PET DICOM series, {len(series.files)} slices, {series.description or 'no description'!r} "
             f"(series UID {series.series_uid or 'missing'})",
             f"units          {series.units or 'missing'}" + (" (Bq/ml)" if series.units == "BQML" else
                                                             " (not read: only BQML, Bq/ml)"),
             f"suv            {series.suv_note}"] + [f"skipped        {entry}" for entry in series.skipped]
    if series.units != "BQML":
        return lines
    with warnings.catch_warnings():  # the skipped entries are listed above
        warnings.simplefilter("ignore")
        image, grid = read_dicom_series(path)
    return lines + describe_image(image, grid)


@command("info")
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``allpet info``; returns the exit code (2 for files it cannot read: one line each, the others shown)."""
    parser = argparse.ArgumentParser(prog="allpet info", description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("files", type=pathlib.Path, nargs="+")
    args = parser.parse_args(argv)
    code = 0
    for path in args.files:
        try:
            print("\n".join(describe(path)))
        except KNOWN_ERRORS as error:
            print(f"allpet info: {error_message(error)}", file=sys.stderr)
            code = 2
    return code
