"""``allpet attention SAMPLE --spec EDITS.json``: the TMA attention of a sample after saved ROI edits."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from pet_projection.io.files import atomic_write
from tasks.viewer.session import ViewerSession, parse_spec

from .errors import check_outputs, command


@command("attention")
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``allpet attention``; writes ``image`` and ``sinogram`` attention to ``--out`` (.npz).

    Exit status 2 on bad input or an output that exists (without ``--overwrite``), is a folder or cannot be
    written (checked first).
    """
    parser = argparse.ArgumentParser(prog="allpet attention", description=__doc__.split(": ", 1)[1])
    parser.add_argument("path", type=Path, help="an allpet simulate dataset folder or one sample .npz")
    parser.add_argument("--index", type=int, default=0, help="sample index in a dataset folder")
    parser.add_argument("--spec", type=Path, help="ROI edit spec (JSON, e.g. saved by allpet view); none: defaults")
    parser.add_argument("--out", type=Path, required=True, help="output .npz with arrays image and sinogram")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    args = parser.parse_args(argv)
    check_outputs([args.out], args.overwrite)
    session = ViewerSession(args.path)
    spec = parse_spec(args.spec.read_bytes()) if args.spec is not None else parse_spec('{"edits": []}')
    maps = session.attention(args.index, spec)
    atomic_write(args.out, lambda handle: np.savez(handle, image=maps.image, sinogram=maps.sinogram))
    print(f"attention of sample {args.index} with {len(spec.edits)} edits: image {maps.image.shape}, sinogram "
          f"{maps.sinogram.shape} -> {args.out}")
    return 0
