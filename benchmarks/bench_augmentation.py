"""CPU throughput of Radon mask augmentation: DMM masks, arbitrary masks and the positive/negative split.

Images are 128 x 128 (2 mm pixels), sinograms 128 views x 185 bins (2 mm),
float32. Every row times one batch call after a warm-up call (Numba compiles
on first use) and reports the median of ``--repeat`` calls as samples/s:

- ``dmm/<layout>``: draw cell activities and threshold ``activity @ basis``
  (:class:`CellSinogramBasis`, 8 x 8 cells, 1 to 16 active);
- ``arbitrary/<shape>``: draw random ellipse or polygon masks and project
  every one (:func:`radon_mask`), with the generation and the projection
  also timed alone;
- ``split``: :func:`split_by_mask` of sinograms by sinogram masks.

Targets (ALL-PET issue 7, 2-core CPU): DMM >= 5,000 samples/s, arbitrary
masks >= 300 samples/s.

Usage::

    python -m benchmarks.bench_augmentation            # writes benchmarks/results/augmentation_cpu.json
    python -m benchmarks.bench_augmentation --quick    # smoke test: repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import numba
import numpy as np

from benchmarks.bench_projectors import time_calls, machine_info
from pet_projection import ImageGrid, ParallelBeamGeometry, ParallelBeamProjector
from pet_projection.masks import (LAYOUTS, CellGrid, CellSinogramBasis, radon_mask, random_ellipses, random_polygons,
                                  split_by_mask)

IMAGE_SIZE, PIXEL_MM, N_VIEWS, N_BINS = 128, 2.0, 128, 185
CELLS_PER_SIDE, N_ACTIVE = 8, (1, 16)
DMM_BATCH, ARBITRARY_BATCH, SPLIT_BATCH = 512, 64, 256
TARGETS = {"dmm": 5000.0, "arbitrary": 300.0}  # samples/s, from the issue
DEFAULT_REPEAT = 7
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "augmentation_cpu.json"
SEED = 20260907
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _row(name: str, batch: int, function: Callable[[Any], Any], argument: Any, repeat: int,
         target: Optional[float] = None) -> dict[str, Any]:
    """Time ``function(argument)`` on one batch; samples/s from the median wall time."""
    times_ms, cpu_s, _ = time_calls(function, argument, repeat)
    median_s = statistics.median(times_ms) / 1e3
    row = {"name": name, "batch": batch, "median_ms": median_s * 1e3, "min_ms": min(times_ms), "times_ms": times_ms,
           "samples_per_s": batch / median_s, "cpu_per_wall": cpu_s / (sum(times_ms) / 1e3)}
    if target is not None:
        row.update(target_samples_per_s=target, met=row["samples_per_s"] >= target)
    return row


def run(repeat: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All rows, plus the one-off costs (basis build)."""
    grid = ImageGrid((IMAGE_SIZE, IMAGE_SIZE), PIXEL_MM)
    projector = ParallelBeamProjector(ParallelBeamGeometry(grid, N_VIEWS, N_BINS, PIXEL_MM))
    cells = CellGrid(grid, CELLS_PER_SIDE)
    start = time.perf_counter()
    basis = CellSinogramBasis(cells, projector)  # includes the projector's first-call compilation
    one_off = {"basis_build_s": time.perf_counter() - start, "basis_shape": list(basis.matrix.shape)}
    rng = np.random.default_rng(SEED)
    rows = [_row(f"dmm/{layout}", DMM_BATCH,
                 lambda r, layout=layout: basis.masks(cells.sample_activity(DMM_BATCH, r, layout, N_ACTIVE)),
                 rng, repeat, TARGETS["dmm"]) for layout in LAYOUTS]
    for shape, generate in (("ellipses", random_ellipses), ("polygons", random_polygons)):
        rows.append(_row(f"arbitrary/{shape}", ARBITRARY_BATCH,
                         lambda r, generate=generate: radon_mask(generate(grid, ARBITRARY_BATCH, r), projector),
                         rng, repeat, TARGETS["arbitrary"]))
        rows.append(_row(f"  generate {shape} only", ARBITRARY_BATCH,
                         lambda r, generate=generate: generate(grid, ARBITRARY_BATCH, r), rng, repeat))
    masks = random_ellipses(grid, ARBITRARY_BATCH, rng)
    rows.append(_row("  radon_mask only (project + threshold)", ARBITRARY_BATCH,
                     lambda m: radon_mask(m, projector), masks, repeat))
    sinograms = rng.random((SPLIT_BATCH, N_VIEWS, N_BINS), dtype=np.float32)
    sino_masks = basis.masks(cells.sample_activity(SPLIT_BATCH, rng))
    rows.append(_row("split (positive, negative)", SPLIT_BATCH, lambda m: split_by_mask(sinograms, m), sino_masks,
                     repeat))
    return rows, one_off


def _table(rows: list[dict[str, Any]]) -> str:
    header = f"{'case':<40} {'batch':>5} {'ms/batch':>9} {'samples/s':>10} {'CPU/wall':>8}  target"
    lines = [header, "-" * len(header)]
    for row in rows:
        target = ""
        if "target_samples_per_s" in row:
            target = f">= {row['target_samples_per_s']:,.0f}: {'met' if row['met'] else 'MISSED'}"
        lines.append(f"{row['name']:<40} {row['batch']:>5} {row['median_ms']:>9.2f} {row['samples_per_s']:>10,.0f} "
                     f"{row['cpu_per_wall']:>8.2f}  {target}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="timed calls after one warm-up")
    parser.add_argument("--quick", action="store_true", help="smoke test: repeat 2")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    """Run the benchmark, print the table and write the JSON; return the exit status (0)."""
    args = _parser().parse_args(argv)
    repeat = 2 if args.quick else args.repeat
    if repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    load_before = os.getloadavg()
    rows, one_off = run(repeat)
    print(_table(rows))
    met = all(row["met"] for row in rows if "met" in row)
    report = {
        "machine": machine_info(),
        "date": datetime.now(timezone.utc).isoformat(),
        "load_average_1_5_15min": {
            "before": load_before, "after": os.getloadavg(),
            "note": "a 1-minute load above ~0.5 before the run means other work shared the cores"},
        "threads": {"numba": numba.get_num_threads(), **{name: os.environ.get(name) for name in THREAD_VARIABLES}},
        "settings": {"image": [IMAGE_SIZE, IMAGE_SIZE], "pixel_mm": PIXEL_MM, "n_views": N_VIEWS, "n_bins": N_BINS,
                     "dtype": "float32", "cells_per_side": CELLS_PER_SIDE, "n_active": list(N_ACTIVE),
                     "repeat": repeat, "statistic": "median wall time of one batch call after one warm-up call"},
        "one_off": one_off,
        "rows": rows,
        "all_targets_met": met,
    }
    return write_report(report, args.out)


def write_report(report: dict[str, Any], out: Path) -> int:
    """Write the JSON report, say whether every target was met; the exit status (0)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nall targets met: {report['all_targets_met']}; results written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
