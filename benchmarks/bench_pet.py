"""Timing of the 3D PET sinogram projectors (non-TOF and TOF) for the clinical preset, on the CPU or a CUDA GPU.

Problem: :meth:`RingScannerGeometry.clinical_whole_body` (760 crystals x 80
rings, 820 mm ring diameter) with a span-11 Michelogram over all ring
differences, radial bins trimmed to the 600 mm field of view, and the
215 x 215 x 71 grid of 2.78 mm voxels that parallelproj's own benchmark uses.
TOF: 214 ps FWHM (the Biograph Vision's published timing resolution) in
29 bins of 143 ps (our choice; they cover +-310 mm along each LOR).

A full sinogram has 174 million LORs; by default one OSEM subset of
``1 / subsets`` of the views is timed (what one OSEM sub-iteration projects),
and rates are reported in LORs per second so they carry over to any subset
size. The same subset is also projected by :class:`LORProjector` with stored
float32 endpoint arrays (the interface of parallelproj's Joseph projector),
which gives the cost of in-kernel endpoints and the memory they save.
parallelproj itself is not on PyPI (conda-forge only), so it is not timed
here; where it is importable, compare with ``parallelproj.joseph3d_fwd``.

With ``--device cuda`` the image is a torch CUDA tensor, so every projector
runs its CUDA kernel (one thread per LOR, the same ray functions as the CPU),
and each call is timed between two ``torch.cuda.synchronize()``; the card's
name goes into the result (``benchmarks/results/pet_gpu.json``). Without a
CUDA device that run says so and exits 0.

Usage::

    python -m benchmarks.bench_pet                 # 1/38 of the views (10 views), repeat 2
    python -m benchmarks.bench_pet --subsets 10    # 38 views
    python -m benchmarks.bench_pet --device cuda --subsets 4 --repeat 5
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def _best_time(run: Callable[[], Any], repeat: int, synchronize: Callable[[], Any]) -> float:
    """Shortest wall time (s) of ``run`` over ``repeat`` calls after one warm-up, each ended by ``synchronize``."""
    run()  # compile and warm up
    synchronize()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def _geometry_bytes(op: Any) -> int:
    """Bytes of the arrays a projector keeps to describe its rays (tables or endpoint arrays)."""
    fields = list(op._rays) + (list(op._tof) if op._tof is not None else [])
    return sum(field.nbytes for field in fields if isinstance(field, np.ndarray))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark, print a table and write ``benchmarks/results/pet_{cpu,gpu}.json``."""
    import numba

    from pet_projection import (ImageGrid, LORProjector, PETSinogramProjector, RingScannerGeometry, SinogramLayout,
                                TOFParameters)

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_pet", description=__doc__.split("\n")[0])
    parser.add_argument("--subsets", type=int, default=38, help="time one subset of 1/SUBSETS of the views")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: project torch CUDA tensors on the GPU")
    parser.add_argument("--out", type=Path, default=None,
                        help="result file (default benchmarks/results/pet_cpu.json or pet_gpu.json)")
    args = parser.parse_args(argv)
    out = args.out or RESULTS / ("pet_gpu.json" if args.device == "cuda" else "pet_cpu.json")
    machine: dict[str, Any] = {"processor": platform.processor() or platform.machine(),
                               "numba_threads": numba.get_num_threads()}
    if args.device == "cuda":
        from benchmarks.bench_projectors_gpu import torch_with_cuda

        torch = torch_with_cuda()
        if torch is None:
            return 0
        machine["card"] = torch.cuda.get_device_name()
        synchronize: Callable[[], Any] = torch.cuda.synchronize
    else:
        def synchronize() -> None:
            return None

    scanner = RingScannerGeometry.clinical_whole_body()
    layout = SinogramLayout(scanner, span=11, max_ring_difference=79, n_radial=355)
    grid = ImageGrid((71, 215, 215), 2.78)
    tof = TOFParameters.from_timing(214.0, n_bins=29, bin_width_ps=143.0)
    views = layout.view_subsets(args.subsets)[0]
    image = np.random.default_rng(0).random(grid.shape).astype(np.float32)
    if args.device == "cuda":
        image = torch.from_numpy(image).cuda()
    full_lors = math.prod(layout.shape)

    rows = []
    full_op = PETSinogramProjector(layout, grid)  # its (view, radial) and plane tables: the geometry of all views
    sinogram_op = PETSinogramProjector(layout, grid, views=views)
    xstart, xend = sinogram_op.lor_endpoints()
    candidates = [
        ("allpet PETSinogramProjector (non-TOF)", sinogram_op),
        ("allpet PETSinogramProjector (TOF)", PETSinogramProjector(layout, grid, views=views, tof=tof)),
        ("allpet LORProjector, stored float32 endpoints (non-TOF)",
         LORProjector(grid, xstart.astype(np.float32), xend.astype(np.float32))),
    ]
    del xstart, xend
    for name, op in candidates:
        sinogram = op(image)
        forward = _best_time(lambda: op(image), args.repeat, synchronize)
        back = _best_time(functools.partial(op.H, sinogram), args.repeat, synchronize)
        n_lors = op._n_rays
        rows.append({
            "method": name, "sinogram_shape": list(op.out_shape), "n_lors": n_lors,
            "forward_s": forward, "back_s": back,
            "forward_mlors_per_s": n_lors / forward / 1e6, "back_mlors_per_s": n_lors / back / 1e6,
            "full_sinogram_forward_plus_back_s": (forward + back) * full_lors / n_lors,
            "geometry_bytes": _geometry_bytes(op),
            "geometry_bytes_for_full_sinogram": (_geometry_bytes(full_op) if "PETSinogram" in name
                                                 else _geometry_bytes(op) * full_lors // n_lors),
        })
        print(f"{name}: forward {forward:.3f} s, back {back:.3f} s ({n_lors} LORs)", flush=True)  # before any limit
        del sinogram
    reference = rows[0]
    for row in rows:
        row["forward_time_ratio_to_sinogram_projector"] = row["forward_s"] / reference["forward_s"]
        row["back_time_ratio_to_sinogram_projector"] = row["back_s"] / reference["back_s"]

    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": args.device,
        "machine": machine,
        "problem": {"scanner": repr(scanner), "layout": repr(layout), "full_sinogram_shape": list(layout.shape),
                    "grid": repr(grid), "tof": repr(tof), "timed_views": int(views.size),
                    "subsets": args.subsets, "dtype": "float32", "repeat": args.repeat},
        "parallelproj": "not installed (conda-forge only, not on PyPI): no peer timing in this run",
        "rows": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'method':58s} {'fwd s':>8s} {'back s':>8s} {'MLOR/s f':>9s} {'MLOR/s b':>9s} {'full f+b s':>10s} "
          f"{'geometry MB (full)':>18s}")
    for row in rows:
        print(f"{row['method']:58s} {row['forward_s']:8.2f} {row['back_s']:8.2f} {row['forward_mlors_per_s']:9.2f} "
              f"{row['back_mlors_per_s']:9.2f} {row['full_sinogram_forward_plus_back_s']:10.1f} "
              f"{row['geometry_bytes_for_full_sinogram'] / 1e6:18.2f}")
    print(f"wrote {out} ({machine.get('card', machine['processor'])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
