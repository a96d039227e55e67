"""``allpet view DATASET_OR_SAMPLE``: start the ROI editor on 127.0.0.1 and print its address.

With ``--checkpoint RUN`` the model is loaded once: it samples the folder at start (into
``FOLDER/view_outputs``, shown beside input and target), and the page's "apply" samples one sample again
with the edited attention (:meth:`tasks.viewer.session.ViewerSession.apply`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from tasks.viewer.server import DEFAULT_PORT, create_app, is_loopback
from tasks.viewer.session import ViewerError, ViewerSession

from .errors import command

OUTPUTS_FOLDER = "view_outputs"


def port_number(text: str) -> int:
    """argparse type of a TCP port: an integer in 1..65535."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"the port must be an integer in 1..65535, got {text!r}")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="allpet view",
        description="Start the clinician ROI editor: a local web page that shows a sample's OSEM image with its "
                    "label map, its sinogram and the TMA attention in both domains, and edits the attention "
                    "regions (add, remove, re-weight, draw), saving the edits as JSON specs under the folder.")
    parser.add_argument("path", type=Path, help="an allpet simulate dataset folder, or one sample .npz")
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT, help="TCP port, 1..65535 (%(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow binding to a non-loopback address (anyone on the network can then use it; the "
                             "page answers only requests for that address or, for 0.0.0.0, the machine's names)")
    parser.add_argument("--checkpoint", type=Path,
                        help="a trained LDM (allpet train), loaded once: its outputs for the dataset are sampled at "
                             f"start into FOLDER/{OUTPUTS_FOLDER} and shown beside input and target, and 'apply' "
                             "samples a sample again with the edited attention")
    parser.add_argument("--outputs", type=Path, help="an allpet sample samples.npz for this dataset (under the folder)")
    return parser


def _sample_outputs(sampler: Any, root: Path) -> Path:
    """``allpet sample`` of the dataset ``root`` with the loaded ``sampler`` into ``root/view_outputs``."""
    from tasks.cli.sample import sample_with

    out = root / OUTPUTS_FOLDER
    code = sample_with(sampler, ["--input", str(root), "--out", str(out), "--recon", "osem",
                                 "--overwrite"])  # the viewer's own folder, sampled afresh at each start
    if code != 0:
        raise ViewerError(f"allpet sample failed for {sampler.folder} (exit code {code})")
    return out / "samples.npz"


def _load_model(checkpoint: Path) -> Any:
    """The checkpoint's model, loaded once for the session; None (with a message) without the ldm extra."""
    try:
        from tasks.checkpoint_sampler import CheckpointSampler

        return CheckpointSampler(checkpoint)
    except ImportError as error:
        print(f"allpet view --checkpoint needs the ldm extra (pip install 'allpet[ldm]'): {error}", file=sys.stderr)
        return None


@command("view")
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
    outputs, sampler = args.outputs, None
    if args.checkpoint is not None:
        if not args.path.is_dir():
            raise ViewerError("--checkpoint needs a dataset folder")
        sampler = _load_model(args.checkpoint)
        if sampler is None:
            return 2
        outputs = _sample_outputs(sampler, args.path.resolve())
    session = ViewerSession(args.path, outputs, sampler)
    try:
        app = create_app(session, args.host, args.port)
    except ImportError as error:
        print(f"allpet view needs Flask (pip install 'allpet[view]'): {error}", file=sys.stderr)
        return 2
    address = f"[{args.host}]" if ":" in args.host else args.host
    print(f"ALL-PET ROI editor for {session.root}: http://{address}:{args.port}/  (Ctrl-C to stop)", flush=True)
    app.run(host=args.host, port=args.port, debug=False, use_reloader=False, threaded=True)
    return 0
