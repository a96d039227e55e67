"""``allpet bench``: the projector benchmark (``benchmarks/bench_projectors.py``) of a source checkout.

The benchmarks sit above the package and are not installed with it, so this
command runs ``python -m benchmarks.bench_projectors ARGS`` in a child
process, with the checkout that holds this package first on its path; its
options are the benchmark's own (``allpet bench --help``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

from .errors import command

__all__ = ["main"]


def checkout_root() -> Optional[Path]:
    """The source checkout holding this package and ``benchmarks/bench_projectors.py``; None if installed alone."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "benchmarks" / "bench_projectors.py").is_file() else None


@command("bench")
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark with ``argv``; returns its exit code (2 without a source checkout)."""
    root = checkout_root()
    if root is None:
        print("allpet bench: the benchmarks come with the source checkout, not with the installed package; run it "
              "from a clone of the repository (pip install -e '.[bench]')", file=sys.stderr)
        return 2
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    try:
        return subprocess.call([sys.executable, "-m", "benchmarks.bench_projectors", *(argv or [])],
                               env={**os.environ, "PYTHONPATH": path})
    except KeyboardInterrupt:
        return 130
