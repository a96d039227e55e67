"""``allpet view DATASET_OR_SAMPLE``: start the ROI editor on 127.0.0.1 and print its address."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from tasks.viewer.server import create_app, is_loopback
from tasks.viewer.session import ViewerError, ViewerSession

OUTPUTS_FOLDER = "view_outputs"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="allpet view",
        description="Start the clinician ROI editor: a local web page that shows a sample's OSEM image with its "
                    "label map, its sinogram and the TMA attention in both domains, and edits the attention "
                    "regions (add, remove, re-weight, draw), saving the edits as JSON specs under the folder.")
    parser.add_argument("path", type=Path, help="an allpet simulate dataset folder, or one sample .npz")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow binding to a non-loopback address (anyone on the network can then use it)")
    parser.add_argument("--checkpoint", type=Path,
                        help="a trained LDM (allpet train): its outputs for the dataset are sampled once at start "
                             f"into FOLDER/{OUTPUTS_FOLDER} and shown beside input and target")
    parser.add_argument("--outputs", type=Path, help="an allpet sample samples.npz for this dataset (under the folder)")
    return parser


def _sample_outputs(checkpoint: Path, root: Path) -> Path:
    from tasks.cli.sample import main as sample

    out = root / OUTPUTS_FOLDER
    code = sample(["--checkpoint", str(checkpoint), "--input", str(root), "--out", str(out), "--recon", "osem"])
    if code != 0:
        raise ViewerError(f"allpet sample failed for {checkpoint} (exit code {code})")
    return out / "samples.npz"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``allpet view``; returns the exit code (2 for bad arguments)."""
    args = build_parser().parse_args(argv)
    if not is_loopback(args.host):
        if not args.allow_remote:
            print(f"allpet view: refusing to bind to {args.host}, which is not a loopback address: anyone who can "
                  f"reach this machine could read and write the folder through it. Use --allow-remote to do it "
                  f"anyway.", file=sys.stderr)
            return 2
        print(f"allpet view: WARNING: serving {args.path} on {args.host}, reachable from other machines, without "
              f"authentication", file=sys.stderr)
    try:
        outputs = args.outputs
        if args.checkpoint is not None:
            if not args.path.is_dir():
                raise ViewerError("--checkpoint needs a dataset folder")
            outputs = _sample_outputs(args.checkpoint, args.path.resolve())
        session = ViewerSession(args.path, outputs)
    except (ViewerError, OSError) as error:
        print(f"allpet view: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        print(f"allpet view needs Flask (pip install 'allpet[view]'): {error}", file=sys.stderr)
        return 2
    app = create_app(session)
    print(f"ALL-PET ROI editor for {session.root}: http://{args.host}:{args.port}/  (Ctrl-C to stop)", flush=True)
    app.run(host=args.host, port=args.port, debug=False, use_reloader=False, threaded=True)
    return 0
