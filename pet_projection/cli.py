"""``allpet`` command line: the main jobs of the package.

Commands
--------
``allpet bench [options]``
    Projector benchmark against scikit-image and ASTRA (see ``benchmarks/bench_projectors.py``;
    ``allpet bench --help`` lists its options).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``allpet`` command line; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="allpet", description="ALL-PET: exact, fast PET/Radon projectors.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("bench", help="time forward/back projection against peers and write JSON results",
                        add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        try:
            from benchmarks.bench_projectors import main as bench_main
        except ImportError as error:
            print(f"allpet bench needs the benchmarks package of an ALL-PET checkout: {error}", file=sys.stderr)
            return 2
        return bench_main(rest)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
