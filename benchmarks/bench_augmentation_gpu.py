"""GPU throughput of Radon mask augmentation (torch CUDA tensors), the same problems as the CPU benchmark.

Images 128 x 128 (2 mm pixels), sinograms 128 views x 185 bins (2 mm),
float32, as in :mod:`benchmarks.bench_augmentation`. Each row times one batch
call end to end (wall clock, ``torch.cuda.synchronize`` before the clock is
read) after a warm-up call and reports the median of ``--repeat`` calls:

- ``dmm/<layout>``: cell activities drawn on the CPU (NumPy, so that a seed
  gives the same masks on every machine), copied to the GPU and turned into
  sinogram masks by one matrix product with the cell basis on the GPU
  (:class:`~pet_projection.masks.CellSinogramBasis`);
- ``dmm on the GPU only``: the same from activities already on the GPU;
- ``arbitrary/<shape>``: random ellipse or polygon masks drawn on the CPU,
  copied, projected by the CUDA projector and thresholded (:func:`radon_mask`);
- ``split``: :func:`split_by_mask` on the GPU.

Target (ALL-PET issue 7, on an H100): DMM masks at >= 100,000 samples/s.
Without a CUDA device the script says so and exits 0.

Usage::

    python -m benchmarks.bench_augmentation_gpu     # writes benchmarks/results/augmentation_gpu.json
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from benchmarks.bench_augmentation import (CELLS_PER_SIDE, IMAGE_SIZE, N_ACTIVE, N_BINS, N_VIEWS, PIXEL_MM, SEED, _row,
                                          _table, write_report)
from benchmarks.bench_projectors import machine_info
from benchmarks.bench_projectors_gpu import torch_with_cuda
from pet_projection import ImageGrid, ParallelBeamGeometry, ParallelBeamProjector
from pet_projection.masks import (LAYOUTS, CellGrid, CellSinogramBasis, radon_mask, random_ellipses, random_polygons,
                                  split_by_mask)

DMM_BATCH, ARBITRARY_BATCH, SPLIT_BATCH = 4096, 256, 1024
TARGET = 100_000.0  # DMM samples/s on an H100, from the issue
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "augmentation_gpu.json"


def run(torch: Any, repeat: int) -> list[dict[str, Any]]:
    """All rows (see the module docstring)."""
    device = torch.device("cuda")

    def synchronised(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def call(argument: Any) -> Any:
            result = function(argument)
            torch.cuda.synchronize(device)
            return result
        return call

    grid = ImageGrid((IMAGE_SIZE, IMAGE_SIZE), PIXEL_MM)
    projector = ParallelBeamProjector(ParallelBeamGeometry(grid, N_VIEWS, N_BINS, PIXEL_MM))
    cells = CellGrid(grid, CELLS_PER_SIDE)
    basis = CellSinogramBasis(cells, projector)
    rng = np.random.default_rng(SEED)
    rows = [_row(f"dmm/{layout}", DMM_BATCH, synchronised(
        lambda r, layout=layout: basis.masks(torch.as_tensor(cells.sample_activity(DMM_BATCH, r, layout, N_ACTIVE),
                                                             device=device))), rng, repeat, TARGET)
            for layout in LAYOUTS]
    rows.append(_row("  draw activities on the CPU only (random)", DMM_BATCH,
                     lambda r: cells.sample_activity(DMM_BATCH, r, "random", N_ACTIVE), rng, repeat))
    activity = torch.as_tensor(cells.sample_activity(DMM_BATCH, rng, "random", N_ACTIVE), device=device)
    rows.append(_row("  dmm on the GPU only (activities there)", DMM_BATCH, synchronised(basis.masks), activity,
                     repeat))
    for shape, generate in (("ellipses", random_ellipses), ("polygons", random_polygons)):
        rows.append(_row(f"arbitrary/{shape}", ARBITRARY_BATCH, synchronised(
            lambda r, generate=generate: radon_mask(torch.as_tensor(generate(grid, ARBITRARY_BATCH, r),
                                                                    device=device), projector)), rng, repeat))
    masks = torch.as_tensor(random_ellipses(grid, ARBITRARY_BATCH, rng), device=device)
    rows.append(_row("  radon_mask on the GPU only (project + threshold)", ARBITRARY_BATCH,
                     synchronised(lambda m: radon_mask(m, projector)), masks, repeat))
    sinograms = torch.rand((SPLIT_BATCH, N_VIEWS, N_BINS), device=device)
    sino_masks = basis.masks(torch.as_tensor(cells.sample_activity(SPLIT_BATCH, rng), device=device))
    rows.append(_row("split (positive, negative) on the GPU", SPLIT_BATCH,
                     synchronised(lambda m: split_by_mask(sinograms, m)), sino_masks, repeat))
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    """Run the benchmark, print the table and write the JSON; return the exit status (0)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="timed calls after one warm-up")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args(argv)
    torch = torch_with_cuda()
    if torch is None:
        return 0
    rows = run(torch, args.repeat)
    card = torch.cuda.get_device_name()
    print(f"{card}\n{_table(rows)}")
    met = all(row["met"] for row in rows if "met" in row)
    report = {"card": card, "machine": machine_info(), "date": datetime.now(timezone.utc).isoformat(),
              "settings": {"image": [IMAGE_SIZE, IMAGE_SIZE], "pixel_mm": PIXEL_MM, "n_views": N_VIEWS,
                           "n_bins": N_BINS, "dtype": "float32", "cells_per_side": CELLS_PER_SIDE,
                           "n_active": list(N_ACTIVE), "repeat": args.repeat,
                           "statistic": "median wall time of one synchronised batch call after one warm-up call"},
              "rows": rows, "all_targets_met": met}
    return write_report(report, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
