"""The 3D PET sinogram projectors raced against parallelproj on the CPU, and timed on a CUDA GPU.

CPU (default): the clinical preset (:meth:`RingScannerGeometry.clinical_whole_body`: 760 crystals x 80 rings,
820 mm ring diameter) with a span-11 Michelogram over all ring differences and 355 radial bins, two views (0 and
190: 918,030 LORs, a (355, 2, 1293) sinogram), on grids of 2.78 mm voxels: 71 x 200 x 200 (556 mm wide, every
crystal outside it) and 71 x 215 x 215 (598 mm: its corners reach past the 410 mm ring, so some crystals lie inside
it; parallelproj's own benchmark grid). Both libraries project the same float32 image and back project the same
float32 sinogram on the same LORs (parallelproj, which has no span, gets our LORs' end points through its
``joseph3d_*`` functions), non-TOF and TOF (214 ps FWHM, the Biograph Vision's, in 29 bins of 143 ps, cut at 3
sigma; TOF on the first grid only). Each library runs in its own process, since Numba's and OpenMP's thread pools
interfere in one, with ``NUMBA_NUM_THREADS`` and ``OMP_NUM_THREADS`` both set to ``--threads``, recorded per row.
Times are the best of ``--repeat`` calls, ours after a warm-up call (it compiles on the first). The result also
holds the two libraries' relative L2 differences and, on the larger grid, the segment-versus-line study: a uniform
image against the exact chord of every LOR through the image box. Writes ``benchmarks/results/pet_cpu.json``;
without parallelproj (``PARALLELPROJ_C_LIB``, see .ci/run) only our rows. Results: docs/results/parallelproj.md.

CUDA (``--device cuda``): our projectors on torch CUDA tensors, one OSEM subset of ``1 / subsets`` of the views
of the 215 grid problem, each call timed between two ``torch.cuda.synchronize()``; writes
``benchmarks/results/pet_gpu.json``. Without a CUDA device that run says so and exits 0.

Usage::

    NUMBA_NUM_THREADS=2 OMP_NUM_THREADS=2 python -m benchmarks.bench_pet      # the race, 2 threads (a few minutes)
    python -m benchmarks.bench_pet --threads 2 --repeat 3
    python -m benchmarks.bench_pet --device cuda --subsets 4 --repeat 5
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
VIEWS = (0, 190)
GRIDS = (200, 215)
TOF_GRIDS = (200,)
LIBRARIES = ("allpet", "parallelproj")


def _timed(run: Callable[[], Any], repeat: int, synchronize: Callable[[], Any] = lambda: None,
           warm_up: bool = True) -> tuple[float, Any]:
    """Shortest wall time (s) of ``run`` over ``repeat`` calls (after one warm-up call), each ended by
    ``synchronize``, and the last call's result."""
    if warm_up:
        run()
        synchronize()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        synchronize()
        times.append(time.perf_counter() - start)
    return min(times), result


def _best_time(run: Callable[[], Any], repeat: int, synchronize: Callable[[], Any] = lambda: None) -> float:
    """Shortest wall time (s) of ``run`` over ``repeat`` calls after one warm-up call (see :func:`_timed`)."""
    return _timed(run, repeat, synchronize)[0]


def _geometry_bytes(op: Any) -> int:
    """Bytes of the arrays a projector keeps to describe its rays (tables or endpoint arrays)."""
    fields = list(op._rays) + (list(op._tof) if op._tof is not None else [])
    return sum(field.nbytes for field in fields if isinstance(field, np.ndarray))


def _problem(n: int, views: Optional[np.ndarray] = None) -> tuple:
    """The layout, grid (71, n, n), TOF parameters and views of the benchmark (default: :data:`VIEWS`)."""
    from pet_projection import ImageGrid, RingScannerGeometry, SinogramLayout, TOFParameters

    layout = SinogramLayout(RingScannerGeometry.clinical_whole_body(), span=11, max_ring_difference=79, n_radial=355)
    tof = TOFParameters.from_timing(214.0, n_bins=29, bin_width_ps=143.0)
    return layout, ImageGrid((71, n, n), 2.78), tof, np.array(VIEWS) if views is None else views


def _inputs(grid: Any, sinogram_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The float32 image and sinogram both libraries project (the same seeds in every process)."""
    image = np.random.default_rng(0).random(grid.shape).astype(np.float32)
    return image, np.random.default_rng(1).random(sinogram_shape).astype(np.float32)


def _worker(library: str, n: int, tof_case: bool, repeat: int, scratch: Path) -> dict:
    """Time one library on grid ``n`` in this process; save its results in ``scratch``; return the row."""
    from pet_projection import PETSinogramProjector

    layout, grid, tof, views = _problem(n)
    op = PETSinogramProjector(layout, grid, views=views, tof=tof if tof_case else None)
    image, sinogram = _inputs(grid, op.out_shape)
    row: dict[str, Any] = {"library": library, "grid": list(grid.shape), "tof": tof_case, "n_lors": op._n_rays,
                           "threads": {name: os.environ.get(name) for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS")}}
    if library == "allpet":
        import numba

        row["threads"]["numba_get_num_threads"] = numba.get_num_threads()
        forward, back, uniform = (lambda: op(image)), (lambda: op.H(sinogram)), op
        warm_up = True
    else:
        with contextlib.redirect_stdout(io.StringIO()):  # its import prints a banner
            import parallelproj
        xstart, xend = (np.ascontiguousarray(end.reshape(-1, 3)[:, ::-1], dtype=np.float32)
                        for end in op.lor_endpoints())
        origin = np.array([grid.centers_mm(axis)[0] for axis in range(3)], dtype=np.float32)
        voxel = np.asarray(grid.voxel_size_mm, dtype=np.float32)
        tof_args = (tof.bin_width_mm, np.array([tof.sigma_mm], dtype=np.float32), np.array([0.0], dtype=np.float32),
                    tof.n_sigmas, tof.n_bins)
        flat = sinogram.reshape(-1, tof.n_bins) if tof_case else sinogram.reshape(-1)

        def forward(x: np.ndarray = image) -> np.ndarray:
            if tof_case:
                return np.asarray(parallelproj.joseph3d_fwd_tof_sino(xstart, xend, x, origin, voxel, *tof_args))
            return np.asarray(parallelproj.joseph3d_fwd(xstart, xend, x, origin, voxel))

        def back() -> np.ndarray:
            if tof_case:
                return np.asarray(parallelproj.joseph3d_back_tof_sino(xstart, xend, grid.shape, origin, voxel, flat,
                                                                      *tof_args))
            return np.asarray(parallelproj.joseph3d_back(xstart, xend, grid.shape, origin, voxel, flat))

        uniform = forward
        row["parallelproj"] = {"version": metadata.version("parallelproj"),
                               "library": parallelproj.lib_parallelproj_c_fname}
        warm_up = False  # nothing to compile
    row["forward_s"], projected = _timed(forward, repeat, warm_up=warm_up)
    row["back_s"], back_projected = _timed(back, repeat, warm_up=warm_up)
    case = f"{n}_{'tof' if tof_case else 'nontof'}_{library}"
    np.save(scratch / f"{case}_forward.npy", np.asarray(projected).reshape(op.out_shape))
    np.save(scratch / f"{case}_back.npy", np.asarray(back_projected).reshape(grid.shape))
    if not tof_case and n == max(GRIDS):
        np.save(scratch / f"{case}_uniform.npy", np.asarray(uniform(np.ones(grid.shape, dtype=np.float32))))
    if library == "allpet":
        row["geometry_bytes"] = _geometry_bytes(op)
    return row


def _run_worker(library: str, n: int, tof_case: bool, args: argparse.Namespace, scratch: Path) -> Optional[dict]:
    """Run :func:`_worker` in a fresh process with both thread pools set to ``args.threads``; None if it fails."""
    environment = {**os.environ, "NUMBA_NUM_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads)}
    command = [sys.executable, "-m", "benchmarks.bench_pet", "--worker", library, "--grid", str(n),
               "--repeat", str(args.repeat), "--scratch", str(scratch)] + (["--tof"] if tof_case else [])
    result = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=ROOT)
    if result.returncode != 0:
        print(f"{library} on grid {n} (TOF {tof_case}) failed:\n{result.stderr[-2000:]}", flush=True)
        return None
    row = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"{library:13s} grid {n} {'TOF    ' if tof_case else 'non-TOF'}: forward {row['forward_s']:7.3f} s, "
          f"back {row['back_s']:7.3f} s", flush=True)
    return row


def _relative_l2(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.linalg.norm(theirs.astype(np.float64) - ours) / np.linalg.norm(ours.astype(np.float64)))


def _chords(scratch: Path) -> dict:
    """Segment against line on the larger grid: both libraries' projections of a uniform image against the exact
    chord (mm) through the image box, for the LORs with a crystal inside the box and for the others."""
    from pet_projection import PETSinogramProjector
    from pet_projection.geometry import segment_box_lengths

    n = max(GRIDS)
    layout, grid, _, views = _problem(n)
    xstart, xend = PETSinogramProjector(layout, grid, views=views).lor_endpoints()
    half = np.asarray(grid.extent_mm[::-1]) / 2.0
    chords = segment_box_lengths(xstart, xend, half)
    values = {library: np.load(scratch / f"{n}_nontof_{library}_uniform.npy").reshape(chords.shape).astype(np.float64)
              for library in LIBRARIES}
    crystal_inside = np.all(np.abs(xstart) < half, axis=-1) | np.all(np.abs(xend) < half, axis=-1)
    result: dict[str, Any] = {"grid": list(grid.shape), "box_half_extent_mm": half.tolist()}
    for name, selected in (("crystal_inside_box", crystal_inside & (chords > 0)),
                           ("crystals_outside_box", ~crystal_inside & (chords > 0))):
        errors = {library: values[library][selected] - chords[selected] for library in LIBRARIES}
        result[name] = {"n_lors": int(selected.sum()),
                        **{f"{library}_mean_error_mm": float(errors[library].mean()) for library in LIBRARIES},
                        **{f"{library}_mean_abs_error_mm": float(np.abs(errors[library]).mean())
                           for library in LIBRARIES},
                        **{f"{library}_max_abs_error_mm": float(np.abs(errors[library]).max())
                           for library in LIBRARIES},
                        "allpet_closer_fraction": float(np.mean(np.abs(errors["allpet"]) <
                                                                np.abs(errors["parallelproj"])))}
    worst = np.unravel_index(np.argmax(np.where(crystal_inside, np.abs(values["parallelproj"] - values["allpet"]),
                                                0.0)), chords.shape)
    result["largest_difference"] = {
        "bin": [int(i) for i in worst], "xstart_mm": xstart[worst].tolist(), "xend_mm": xend[worst].tolist(),
        "exact_chord_mm": float(chords[worst]), "allpet_mm": float(values["allpet"][worst]),
        "parallelproj_mm": float(values["parallelproj"][worst])}
    return result


def _cpu_race(args: argparse.Namespace) -> dict:
    """The CPU race: workers per library, grid and case, then ratios, agreement and the chord study."""
    from pet_projection import PETSinogramProjector

    rows, ratios, agreement = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench_pet_") as folder:
        scratch = Path(folder)
        for n in GRIDS:
            for tof_case in ((False, True) if n in TOF_GRIDS else (False,)):
                done = {library: _run_worker(library, n, tof_case, args, scratch) for library in LIBRARIES}
                rows += [row for row in done.values() if row is not None]
                if done["parallelproj"] is None or done["allpet"] is None:
                    continue
                case = {"grid": done["allpet"]["grid"], "tof": tof_case}
                ours, theirs = done["allpet"], done["parallelproj"]
                ratios.append({**case, "forward_speedup": theirs["forward_s"] / ours["forward_s"],
                               "back_speedup": theirs["back_s"] / ours["back_s"]})
                prefix = f"{n}_{'tof' if tof_case else 'nontof'}_"
                agreement.append({**case, **{f"{direction}_relative_l2": _relative_l2(
                    np.load(scratch / f"{prefix}allpet_{direction}.npy"),
                    np.load(scratch / f"{prefix}parallelproj_{direction}.npy")) for direction in ("forward", "back")}})
        chords = _chords(scratch) if all((scratch / f"{max(GRIDS)}_nontof_{library}_uniform.npy").exists()
                                         for library in LIBRARIES) else None
    layout, grid, tof, views = _problem(max(GRIDS))
    return {
        "problem": {"layout": repr(layout), "views": list(VIEWS), "grids": [[71, n, n] for n in GRIDS],
                    "tof_grids": [[71, n, n] for n in TOF_GRIDS], "voxel_mm": 2.78, "tof": repr(tof),
                    "sinogram_shape": list(PETSinogramProjector(layout, grid, views=views).out_shape),
                    "dtype": "float32", "repeat": args.repeat, "threads": args.threads,
                    "timing": "best of repeat calls; ours after one warm-up call (it compiles on the first)"},
        "parallelproj": next((row["parallelproj"] for row in rows if "parallelproj" in row),
                             "not installed (set PARALLELPROJ_C_LIB; .ci/run builds it): no peer rows"),
        "rows": rows, "speedup_over_parallelproj": ratios, "agreement": agreement, "segment_versus_line": chords,
    }


def _gpu(args: argparse.Namespace) -> Optional[dict]:
    """Our projectors on torch CUDA tensors: one OSEM subset of the 215 grid problem; None without a CUDA device."""
    from benchmarks.bench_projectors_gpu import torch_with_cuda
    from pet_projection import LORProjector, PETSinogramProjector

    torch = torch_with_cuda()
    if torch is None:
        return None
    layout, grid, tof, _ = _problem(max(GRIDS))
    views = layout.view_subsets(args.subsets)[0]
    image = torch.from_numpy(np.random.default_rng(0).random(grid.shape).astype(np.float32)).cuda()
    full_lors = math.prod(layout.shape)
    full_op = PETSinogramProjector(layout, grid)  # its (view, radial) and plane tables: the geometry of all views
    sinogram_op = PETSinogramProjector(layout, grid, views=views)
    xstart, xend = sinogram_op.lor_endpoints()
    candidates = [
        ("allpet PETSinogramProjector (non-TOF)", sinogram_op),
        ("allpet PETSinogramProjector (TOF)", PETSinogramProjector(layout, grid, views=views, tof=tof)),
        ("allpet LORProjector, stored float32 endpoints (non-TOF)",
         LORProjector(grid, xstart.astype(np.float32), xend.astype(np.float32))),
    ]
    rows = []
    for name, op in candidates:
        sinogram = op(image)
        forward = _best_time(lambda: op(image), args.repeat, torch.cuda.synchronize)
        back = _best_time(functools.partial(op.H, sinogram), args.repeat, torch.cuda.synchronize)
        n_lors = op._n_rays
        rows.append({
            "method": name, "sinogram_shape": list(op.out_shape), "n_lors": n_lors,
            "forward_s": forward, "back_s": back,
            "forward_mlors_per_s": n_lors / forward / 1e6, "back_mlors_per_s": n_lors / back / 1e6,
            "full_sinogram_forward_plus_back_s": (forward + back) * full_lors / n_lors,
            "geometry_bytes_for_full_sinogram": (_geometry_bytes(full_op) if "PETSinogram" in name
                                                 else _geometry_bytes(op) * full_lors // n_lors),
        })
        print(f"{name}: forward {forward:.3f} s, back {back:.3f} s ({n_lors} LORs)", flush=True)
    return {"card": torch.cuda.get_device_name(),
            "problem": {"layout": repr(layout), "grid": repr(grid), "tof": repr(tof), "timed_views": int(views.size),
                        "subsets": args.subsets, "dtype": "float32", "repeat": args.repeat},
            "rows": rows}


def _print_race(result: dict) -> None:
    print(f"{'grid':>12s} {'case':8s} {'allpet fwd s':>12s} {'pp fwd s':>9s} {'x':>5s} {'allpet back s':>13s} "
          f"{'pp back s':>9s} {'x':>5s}")
    rows = {(tuple(row["grid"]), row["tof"], row["library"]): row for row in result["rows"]}
    for ratio in result["speedup_over_parallelproj"]:
        key = (tuple(ratio["grid"]), ratio["tof"])
        ours, theirs = rows[key + ("allpet",)], rows[key + ("parallelproj",)]
        print(f"{'x'.join(map(str, key[0])):>12s} {'TOF' if key[1] else 'non-TOF':8s} {ours['forward_s']:12.3f} "
              f"{theirs['forward_s']:9.3f} {ratio['forward_speedup']:5.2f} {ours['back_s']:13.3f} "
              f"{theirs['back_s']:9.3f} {ratio['back_speedup']:5.2f}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark, print a table and write ``benchmarks/results/pet_{cpu,gpu}.json``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_pet", description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cpu: the race against parallelproj; cuda: our projectors on torch CUDA tensors")
    parser.add_argument("--threads", type=int, default=2, help="NUMBA_NUM_THREADS and OMP_NUM_THREADS of the race")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--subsets", type=int, default=38, help="cuda: time one subset of 1/SUBSETS of the views")
    parser.add_argument("--out", type=Path, default=None,
                        help="result file (default benchmarks/results/pet_cpu.json or pet_gpu.json)")
    parser.add_argument("--worker", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--grid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tof", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.grid, args.tof, args.repeat, args.scratch)))
        return 0
    out = args.out or RESULTS / ("pet_gpu.json" if args.device == "cuda" else "pet_cpu.json")
    result: dict[str, Any] = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "device": args.device,
                              "machine": {"processor": platform.processor() or platform.machine(),
                                          "cpu_count": os.cpu_count()}}
    measured = _cpu_race(args) if args.device == "cpu" else _gpu(args)
    if measured is None:
        return 0
    result.update(measured)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.device == "cpu":
        _print_race(result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
