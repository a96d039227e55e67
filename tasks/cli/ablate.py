"""``allpet ablate``: RMAS/DMM, TMA and constraints on/off, and a small vs a large training set, in one table.

Examples::

    allpet ablate --task low_dose --n-small 500 --n-large 5000 --out ablations   # the issue's setting (hours on a CPU)
    allpet ablate --quick                                                        # CI size

Writes ``OUT/ablations.md``, ``OUT/ablations.csv`` and ``OUT/ablations.json``. The ablations
switch parts of the tiny LDM trained from scratch (``allpet demo --model tiny``): the
pretrained foundation model was trained with all of them on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from .arguments import TASK_HELP, task_name
from .errors import command

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="allpet ablate", description=__doc__.split("\n")[0].split(": ", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="low_dose", type=task_name, help=TASK_HELP)
    parser.add_argument("--out", default="ablations")
    parser.add_argument("--quick", action="store_true", help="CI-sized run")
    parser.add_argument("--n-small", type=int, default=None, help="training samples with RMAS/DMM (default 500)")
    parser.add_argument("--n-large", type=int, default=None, help="training samples without augmentation "
                        "(default 5000)")
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument("--variants", nargs="*", default=None, help="run only these variants")
    parser.add_argument("--guidance-scale", type=float, default=None,
                        help="TMA guidance scale at sampling for the variants with TMA (default 0: none)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-progress", action="store_true")
    return parser


@command("ablate")
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``allpet ablate``; 0 on success, 2 for bad arguments or data (an earlier table is kept)."""
    args = _parser().parse_args(argv)
    try:
        from tasks.ablations import run_ablations
        from tasks.demo import demo_config
    except ImportError as error:
        print(f"allpet ablate needs the ldm extra and scikit-image: {error}", file=sys.stderr)
        return 2
    n_small = args.n_small or (4 if args.quick else 500)
    n_large = args.n_large or (8 if args.quick else 5000)
    changes = {"n_test": args.n_test} if args.n_test else {}
    if args.guidance_scale is not None:
        changes["guidance_scale"] = args.guidance_scale
    try:
        base = demo_config(args.task, args.quick, "tiny", device=args.device, threads=args.threads, **changes)
        run_ablations(base, args.out, n_small=n_small, n_large=n_large, variants=args.variants,
                      progress=not args.no_progress)
    except (ValueError, TypeError) as error:
        print(f"allpet ablate: {error}", file=sys.stderr)
        return 2
    print(Path(args.out, "ablations.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
