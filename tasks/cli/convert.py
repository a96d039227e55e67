"""``allpet convert``: images between Interfile, NIfTI and NumPy; sinograms between Interfile and NumPy; listmode
histogrammed into an Interfile template."""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Optional, Sequence

import numpy as np

from pet_projection.io.files import atomic_write
from pet_projection.io.formats import file_kind, load_image, save_image
from pet_projection.io.interfile import read_projdata, read_projdata_header, write_projdata
from pet_projection.io.petlink import read_listmode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="allpet convert",
        description="Convert PET data. Images: Interfile .hv, NIfTI .nii/.nii.gz, NumPy .npz (image + grid) or "
                    ".npy (array only). Sinograms: Interfile .hs to .npy/.npz or .hs, and NumPy to .hs with "
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
    return parser


def convert(args: argparse.Namespace) -> str:
    """Do the conversion; returns a one-line summary. Errors are ``ValueError``/``OSError`` with a clear message."""
    kind = file_kind(args.input)
    out = args.output
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
        data = np.load(args.input, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                if "data" not in data.files:
                    raise ValueError(f"{args.input} has no array named 'data' (it holds {data.files})")
                data = data["data"]
        if data.shape != layout.shape:
            raise ValueError(f"{args.input} has shape {data.shape}, but the template {args.template} has shape "
                             f"{layout.shape} ({' x '.join(layout.axis_order)})")
    write_projdata(out, data, layout)
    return f"sinogram {data.shape} ({data.sum():.0f} in all) -> {out}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``allpet convert``; returns the exit code (2 for bad input, nothing written)."""
    args = build_parser().parse_args(argv)
    try:
        print(convert(args))
    except (ValueError, OSError) as error:
        print(f"allpet convert: {error}", file=sys.stderr)
        return 2
    return 0
