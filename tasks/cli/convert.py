"""``allpet convert``: images between Interfile, NIfTI and NumPy (and from a PET DICOM series folder, in Bq/ml or
SUV); sinograms between Interfile and NumPy; listmode histogrammed into an Interfile template.

The output (with an Interfile header, also its data file) is checked before the
input is read, written atomically, and never replaces an existing file without
``--overwrite``.
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Optional, Sequence

import numpy as np

from pet_projection.io.dicom import UNITS, read_dicom_series
from pet_projection.io.files import atomic_write
from pet_projection.io.formats import file_kind, load_image, save_image
from pet_projection.io.interfile import read_projdata, read_projdata_header, write_projdata
from pet_projection.io.numpy_files import load_npy, open_npz
from pet_projection.io.petlink import read_listmode

from .errors import check_outputs, command

# data files written next to an Interfile header (image, projection data)
DATA_SUFFIXES = {".hv": ".v", ".hs": ".s"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="allpet convert",
        description="Convert PET data. Images: Interfile .hv, NIfTI .nii/.nii.gz, NumPy .npz (image + grid) or "
                    ".npy (array only), and from a folder holding a PET DICOM series. Sinograms: Interfile .hs to "
                    ".npy/.npz or .hs, and NumPy to .hs with "
                    "--template. Siemens mMR listmode (.l.hdr): histogrammed into --template's layout.")
    parser.add_argument("input", type=pathlib.Path)
    parser.add_argument("output", type=pathlib.Path)
    parser.add_argument("--template", type=pathlib.Path,
                        help="Interfile projection-data header (.hs) whose layout a NumPy sinogram or a listmode "
                             "histogram takes")
    parser.add_argument("--delayeds", action="store_true", help="listmode: histogram delayeds instead of prompts")
    parser.add_argument("--time-window-ms", type=float, nargs=2, metavar=("START", "END"),
                        help="listmode: only events from START to END ms after the scan start")
    parser.add_argument("--voxel-size-mm", type=float, nargs="+", help="voxel size of a bare .npy image, per axis")
    parser.add_argument("--origin-mm", type=float, nargs="+", help="grid centre of a bare .npy image, per axis")
    parser.add_argument("--units", choices=UNITS, help="DICOM series: values in Bq/ml (the default) or body-weight SUV")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    return parser


def output_files(path: pathlib.Path) -> list[pathlib.Path]:
    """The files a conversion to ``path`` writes: the file, and an Interfile header's data file."""
    suffix = DATA_SUFFIXES.get(path.suffix.lower())
    return [path] + ([path.with_suffix(suffix)] if suffix else [])


def convert(args: argparse.Namespace) -> str:
    """Do the conversion; returns a one-line summary. Errors are ``ValueError``/``OSError`` with a clear message."""
    out = args.output
    check_outputs(output_files(out), args.overwrite)
    kind = file_kind(args.input)
    if args.units is not None and kind != "dicom":
        raise ValueError(f"--units applies to a DICOM series folder, and {args.input} holds {kind} data")
    if kind == "dicom":
        image, grid = read_dicom_series(args.input, args.units or UNITS[0])
        save_image(out, image, grid)
        return f"image {image.shape} in {args.units or UNITS[0]} on {grid} -> {out}"
    if kind in ("image", "nifti") or (kind == "numpy" and args.template is None):
        image, grid = load_image(args.input, args.voxel_size_mm, args.origin_mm)
        save_image(out, image, grid)
        return f"image {image.shape} on {grid} -> {out}"
    if kind == "projdata":
        data, layout = read_projdata(args.input)
        if out.suffix == ".hs":
            write_projdata(out, data, layout)
        elif out.suffix in (".npy", ".npz"):
            atomic_write(out, (lambda handle: np.save(handle, data)) if out.suffix == ".npy"
                         else (lambda handle: np.savez(handle, data=data)))
        else:
            raise ValueError(f"cannot write projection data to {out}: use .hs, .npy or .npz")
        return f"sinogram {data.shape} ({' x '.join(layout.axis_order)}) -> {out}"
    if args.template is None:
        raise ValueError(f"{args.input} ({kind}) needs --template HEADER.hs for the sinogram layout")
    layout = read_projdata_header(args.template)
    if out.suffix != ".hs":
        raise ValueError(f"sinograms with a template are written as Interfile: give an output ending in .hs, got {out}")
    if kind == "listmode":
        window = tuple(args.time_window_ms) if args.time_window_ms else None
        data = read_listmode(args.input).histogram(layout, prompts=not args.delayeds, time_window_ms=window)
    else:
        if pathlib.Path(args.input).suffix == ".npz":
            with open_npz(args.input) as archive:
                if "data" not in archive.files:
                    raise ValueError(f"{args.input} has no array named 'data' (it holds {archive.files})")
                data = archive["data"]
        else:
            data = load_npy(args.input)
        if data.shape != layout.shape:
            raise ValueError(f"{args.input} has shape {data.shape}, but the template {args.template} has shape "
                             f"{layout.shape} ({' x '.join(layout.axis_order)})")
    write_projdata(out, data, layout)
    return f"sinogram {data.shape} ({data.sum():.0f} in all) -> {out}"


@command("convert")
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``allpet convert``; returns the exit code (2 for bad input, nothing written; 130 after Ctrl-C)."""
    print(convert(build_parser().parse_args(argv)))
    return 0
