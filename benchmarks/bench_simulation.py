"""Throughput of the physics simulator: 2D task datasets and one 3D clinical-size sample.

2D: ``write_dataset`` of ``--n`` samples per task (128 x 128 images, 128 views
x 128 bins, the default physics) with ``--workers`` processes, timed end to end
(process start-up, Numba cache loading, simulation and ``.npz`` writing).
Target (ALL-PET issue 6): 500 samples in under 2 minutes on a 2-core CPU.

3D: one ``low_dose`` trunk sample on the reduced clinical scanner
(:func:`~pet_projection.simulation.acquisition.reduced_clinical_projector`,
80 slices of 3.29 mm, ``--size-3d`` pixels over 500 mm), timed after a tiny
warm-up sample that compiles the kernels. Target: under 1 minute.

Usage::

    python -m benchmarks.bench_simulation                 # writes benchmarks/results/simulation_cpu.json
    python -m benchmarks.bench_simulation --quick         # smoke test: 20 samples, low_dose only, small 3D
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numba

from benchmarks.bench_projectors import machine_info
from pet_projection.simulation import TASKS, SimulationConfig, simulate_sample, write_dataset

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "simulation_cpu.json"
TARGET_2D_S, TARGET_2D_SAMPLES = 120.0, 500
TARGET_3D_S = 60.0
SEED = 20261125


def bench_2d(tasks: list[str], n: int, workers: int, size: int, views: int) -> list[dict[str, Any]]:
    config = SimulationConfig(size=size, n_views=views)
    rows = []
    for task in tasks:
        with tempfile.TemporaryDirectory() as folder:
            print(f"2D {task}: {n} samples, {workers} workers ...", end=" ", flush=True)
            start = time.perf_counter()
            write_dataset(folder, task, n, config, seed=SEED, workers=workers, progress=False)
            seconds = time.perf_counter() - start
            size_mb = sum(f.stat().st_size for f in Path(folder, "samples").iterdir()) / 1e6
        per_500 = seconds * TARGET_2D_SAMPLES / n
        print(f"{seconds:.1f} s ({n / seconds:.1f} samples/s)")
        rows.append({"task": task, "n_samples": n, "workers": workers, "seconds": seconds,
                     "samples_per_s": n / seconds, "seconds_per_500_samples": per_500,
                     "dataset_mb": size_mb, "target_s_per_500": TARGET_2D_S, "met": per_500 <= TARGET_2D_S})
    return rows


def bench_3d(sizes: list[int], view_step: int) -> list[dict[str, Any]]:
    rows = []
    warm = SimulationConfig(dim=3, size=16, n_slices=4, view_step=view_step, anatomy="trunk")
    start = time.perf_counter()
    simulate_sample("low_dose", warm, 0)  # compiles (or loads from the Numba cache) the 3D kernels
    warm_up_s = time.perf_counter() - start
    for size in sizes:
        config = SimulationConfig(dim=3, size=size, view_step=view_step, anatomy="trunk")
        print(f"3D low_dose trunk {size} x {size} x {config.n_slices} ...", end=" ", flush=True)
        start = time.perf_counter()
        sample = simulate_sample("low_dose", config, SEED)
        seconds = time.perf_counter() - start
        print(f"{seconds:.1f} s, sinogram {sample.input.shape}")
        rows.append({"task": "low_dose", "anatomy": "trunk", "image_shape": list(sample.labels.shape),
                     "voxel_size_mm": sample.metadata["projector"]["voxel_size_mm"],
                     "sinogram_shape": list(sample.input.shape),
                     "sinogram_axes": sample.metadata["projector"]["sinogram_axes"], "view_step": view_step,
                     "seconds": seconds, "warm_up_s": warm_up_s, "target_s": TARGET_3D_S,
                     "met": seconds <= TARGET_3D_S})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=TARGET_2D_SAMPLES)
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--views", type=int, default=128)
    parser.add_argument("--sizes-3d", type=int, nargs="*", default=[128, 200])
    parser.add_argument("--view-step-3d", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="20 samples of low_dose, 3D at 64 pixels")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.tasks, args.sizes_3d = 20, ["low_dose"], [64]
    load_before = os.getloadavg()
    rows_2d = bench_2d(args.tasks, args.n, args.workers, args.size, args.views)
    rows_3d = bench_3d(args.sizes_3d, args.view_step_3d) if args.sizes_3d else []
    result = {
        "machine": machine_info(),
        "date": datetime.now(timezone.utc).isoformat(),
        "load_average_1_5_15min": {"before": list(load_before), "after": list(os.getloadavg()),
                                   "note": "a 1-minute load above ~0.5 before the run means other work shared "
                                           "the cores"},
        "threads": {"numba_main_process": numba.get_num_threads(), "numba_per_worker": 1,
                    "workers_2d": args.workers},
        "config_2d": SimulationConfig(size=args.size, n_views=args.views).to_dict(),
        "results_2d": rows_2d,
        "results_3d": rows_3d,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
