"""CPU timing of the allpet Joseph parallel-beam projector against ASTRA and scikit-image.

Every (library, case) pair runs in its own Python subprocess: Numba's OpenMP
threading layer sets the thread count of the shared libgomp, which would
otherwise leak into OpenMP peers. A worker warms its method up once, times
``--repeat`` forward and back projections, prints one JSON line to stdout and,
for single-slice cases, saves its forward sinogram converted to the allpet
convention so the parent can compute the relative L2 agreement.

Usage::

    python -m benchmarks.bench_projectors                  # all cases, all libraries
    python -m benchmarks.bench_projectors --quick          # smoke test: 256 case, repeat 2
    python -m benchmarks.bench_projectors --cases 256 --libs allpet,astra-linear --repeat 11
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np


@dataclass(frozen=True)
class Case:
    """One benchmark geometry: square ``size`` x ``size`` slices, 1 mm pixels and bins.

    Parameters
    ----------
    size : int
        Image side ``ny = nx`` in pixels.
    n_views : int
        Number of angles ``v * pi / n_views``.
    n_bins : int
        Number of radial bins.
    n_slices : int
        Number of slices; 1 means a single 2D image.
    """

    size: int
    n_views: int
    n_bins: int
    n_slices: int

    @property
    def angles(self) -> np.ndarray:
        """View angles in radians, shape ``(n_views,)``."""
        return np.arange(self.n_views) * (math.pi / self.n_views)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """allpet image shape: ``(ny, nx)`` or ``(nz, ny, nx)``."""
        plane = (self.size, self.size)
        return plane if self.n_slices == 1 else (self.n_slices,) + plane

    @property
    def sinogram_shape(self) -> tuple[int, ...]:
        """allpet sinogram shape: ``(n_views, n_bins)`` or ``(nz, n_views, n_bins)``."""
        return self.image_shape[:-2] + (self.n_views, self.n_bins)


@dataclass
class Method:
    """A library's projector pair, ready to time.

    Parameters
    ----------
    threads : int
        Threads the library computes with.
    threads_note : str
        How ``threads`` was found.
    native_image : object
        The phantom in the library's own layout, prepared outside the timing.
    forward : callable
        Native image -> native sinogram.
    back : callable
        Native sinogram -> native image.
    to_allpet : callable
        Native sinogram -> sinogram in the allpet convention (``Case.sinogram_shape``).
    """

    threads: int
    threads_note: str
    native_image: Any
    forward: Callable[[Any], Any]
    back: Callable[[Any], Any]
    to_allpet: Callable[[Any], np.ndarray]


CASES = {
    "256": Case(256, 180, 367, 1),
    "512": Case(512, 360, 729, 1),
    "batch64": Case(128, 128, 185, 64),
}
REFERENCE = "allpet"
SKIMAGE = "skimage-radon"
LIBRARIES = (REFERENCE, "astra-line", "astra-linear", "astra-strip", SKIMAGE)
DIRECTIONS = ("forward", "back")
DEFAULT_REPEAT = 7
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "projectors_cpu.json"
PHANTOM_SEED = 20240601
N_INNER_ELLIPSES = 6
OPENMP_RUNTIMES = ("libgomp", "libiomp", "libomp")
VERSIONED_PACKAGES = ("numpy", "numba", "astra-toolbox", "scikit-image", "allpet")
AGREEMENT = ("relative L2 of the forward sinogram vs allpet's, single-slice cases only, in allpet's convention: "
             "peers project the row-flipped image; "
             "ASTRA sinograms match allpet's angles and detector axis as they are; "
             "scikit-image sinograms are transposed and linearly resampled onto allpet's bins")


def phantom(case: Case) -> np.ndarray:
    """Ellipse phantom with fixed random ellipses, one draw per slice.

    Parameters
    ----------
    case : Case

    Returns
    -------
    numpy.ndarray
        float32, C-contiguous, shape ``case.image_shape``: a body ellipse of
        value 1 plus ``N_INNER_ELLIPSES`` random ellipses (values in [-0.5, 1]).
    """
    rng = np.random.default_rng(PHANTOM_SEED)
    axis = (np.arange(case.size) - (case.size - 1) / 2) / (case.size / 2)
    y, x = axis[:, None], axis[None, :]
    slices = np.zeros((case.n_slices, case.size, case.size), dtype=np.float32)
    for image in slices:
        image[(x / 0.85) ** 2 + (y / 0.7) ** 2 <= 1] = 1.0
        for _ in range(N_INNER_ELLIPSES):
            cx, cy = rng.uniform(-0.45, 0.45, 2)
            a, b = rng.uniform(0.05, 0.3, 2)
            phi = rng.uniform(0.0, math.pi)
            u = (x - cx) * math.cos(phi) + (y - cy) * math.sin(phi)
            w = (y - cy) * math.cos(phi) - (x - cx) * math.sin(phi)
            image[(u / a) ** 2 + (w / b) ** 2 <= 1] += rng.uniform(-0.5, 1.0)
    return slices.reshape(case.image_shape)


def _openmp_runtimes() -> Optional[list[str]]:
    """OpenMP runtimes mapped into this process (from ``/proc/self/maps``), or None off Linux."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    names = {Path(line.split()[-1]).name for line in maps.splitlines() if "/" in line}
    return sorted(name for name in names if name.startswith(OPENMP_RUNTIMES))


def _single_threaded_note() -> str:
    """Evidence that a peer library computes on one thread."""
    runtimes = _openmp_runtimes()
    if runtimes is None:
        return "1 (library is single-threaded)"
    loaded = ", ".join(runtimes) if runtimes else "none"
    return f"1 (library is single-threaded; OpenMP runtimes loaded in the worker: {loaded})"


def _per_slice(project: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], list[np.ndarray]]:
    """Apply a 2D peer function to each slice of a stack, as peers must be used."""
    return lambda stack: [project(plane) for plane in stack]


def _peer_image(case: Case, image: np.ndarray) -> np.ndarray:
    """Peer layout of the phantom: a ``(nz, ny, nx)`` stack with rows flipped (their y axis points up)."""
    return np.ascontiguousarray(image.reshape(-1, case.size, case.size)[:, ::-1])


@contextmanager
def _allpet(case: Case, image: np.ndarray) -> Iterator[Method]:
    """allpet Joseph projector; a stack of slices is one kernel call."""
    import numba
    import pet_projection as pp

    grid = pp.ImageGrid(case.image_shape, 1.0)
    projector = pp.ParallelBeamProjector(pp.ParallelBeamGeometry(grid, case.n_views, case.n_bins, 1.0))
    projector(image)  # numba.threading_layer() is only defined once a parallel kernel has run
    yield Method(threads=numba.get_num_threads(),
                 threads_note=f"numba.get_num_threads() ({numba.threading_layer()} threading layer)",
                 native_image=image, forward=projector, back=projector.adjoint, to_allpet=np.asarray)


@contextmanager
def _astra(kind: str, case: Case, image: np.ndarray) -> Iterator[Method]:
    """ASTRA CPU projector ``kind`` ('line', 'linear' or 'strip'), looped over slices.

    With the image rows flipped, ASTRA's angles and detector axis are exactly
    ours: an off-centre disc projects to the same bins, and the 'linear'
    (Joseph) kernel agrees with allpet to ~1e-5 relative L2. Timings include
    ``create_sino`` / ``create_backprojection`` allocating and freeing their
    data objects, which is how these calls are used.
    """
    import astra

    vol_geom = astra.create_vol_geom(case.size, case.size)
    proj_geom = astra.create_proj_geom("parallel", 1.0, case.n_bins, case.angles)
    projector_id = astra.create_projector(kind, proj_geom, vol_geom)

    def forward(plane: np.ndarray) -> np.ndarray:
        data_id, sinogram = astra.create_sino(plane, projector_id)
        astra.data2d.delete(data_id)
        return sinogram

    def back(sinogram: np.ndarray) -> np.ndarray:
        data_id, plane = astra.create_backprojection(sinogram, projector_id)
        astra.data2d.delete(data_id)
        return plane

    try:
        yield Method(threads=1, threads_note=_single_threaded_note(), native_image=_peer_image(case, image),
                     forward=_per_slice(forward), back=_per_slice(back),
                     to_allpet=lambda sinograms: np.stack(sinograms).reshape(case.sinogram_shape))
    finally:
        astra.projector.delete(projector_id)


def _skimage_to_allpet(case: Case, sinograms: list[np.ndarray]) -> np.ndarray:
    """Resample scikit-image sinograms ``(detector, angle)`` onto allpet's bins.

    skimage rotates the row-flipped image about pixel ``(size//2, size//2)``,
    which is ``(c, -c)`` mm in allpet coordinates with ``c = size//2 - (size-1)/2``
    (0.5 for even sizes), and puts that centre at detector ``n_det // 2``. So
    allpet's ``s_b`` sits at detector ``s_b - c (cos t - sin t) + n_det // 2``,
    an angle-dependent fractional shift: linear interpolation, zero outside.
    """
    centre_mm = case.size // 2 - (case.size - 1) / 2
    bins_mm = np.arange(case.n_bins) - (case.n_bins - 1) / 2
    out = np.empty((len(sinograms), case.n_views, case.n_bins), dtype=np.float32)
    for native, resampled in zip(sinograms, out):
        detectors = np.arange(native.shape[0])
        for view, angle in enumerate(case.angles):
            position = bins_mm - centre_mm * (math.cos(angle) - math.sin(angle)) + native.shape[0] // 2
            resampled[view] = np.interp(position, detectors, native[:, view], left=0.0, right=0.0)
    return out.reshape(case.sinogram_shape)


@contextmanager
def _skimage(case: Case, image: np.ndarray) -> Iterator[Method]:
    """scikit-image ``radon`` / unfiltered ``iradon``, looped over slices.

    ``iradon(filter_name=None)`` is pi / (2 n_views) times an approximate
    transpose of ``radon``, not its exact adjoint; it is timed as skimage's
    back projection.
    """
    from skimage.transform import iradon, radon

    theta = np.degrees(case.angles)

    def forward(plane: np.ndarray) -> np.ndarray:
        return radon(plane, theta=theta, circle=False)

    def back(sinogram: np.ndarray) -> np.ndarray:
        return iradon(sinogram, theta=theta, output_size=case.size, filter_name=None, circle=False)

    yield Method(threads=1, threads_note=_single_threaded_note(), native_image=_peer_image(case, image),
                 forward=_per_slice(forward), back=_per_slice(back),
                 to_allpet=partial(_skimage_to_allpet, case))


BUILDERS: dict[str, Callable[[Case, np.ndarray], AbstractContextManager[Method]]] = {
    REFERENCE: _allpet,
    "astra-line": partial(_astra, "line"),
    "astra-linear": partial(_astra, "linear"),
    "astra-strip": partial(_astra, "strip"),
    SKIMAGE: _skimage,
}


def time_calls(function: Callable[[Any], Any], argument: Any, repeat: int) -> tuple[list[float], float, Any]:
    """Warm ``function`` up once, then time ``repeat`` calls.

    Returns
    -------
    times_ms : list of float
        Wall time of each timed call in ms.
    cpu_s : float
        Process CPU time of all timed calls together, in s.
    result : object
        The last call's result.
    """
    result = function(argument)
    times_ms = []
    cpu_start = time.process_time()
    for _ in range(repeat):
        start = time.perf_counter()
        result = function(argument)
        times_ms.append((time.perf_counter() - start) * 1e3)
    return times_ms, time.process_time() - cpu_start, result


def _stats(times_ms: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(times_ms), "min": min(times_ms), "all": times_ms}


def run_worker(library: str, case_name: str, repeat: int, sinogram_path: Optional[Path]) -> dict[str, Any]:
    """Time one library on one case in this process.

    Parameters
    ----------
    library : str
        A key of ``BUILDERS``.
    case_name : str
        A key of ``CASES``.
    repeat : int
        Timed calls per direction, after one warm-up call.
    sinogram_path : Path or None
        Where to save the forward sinogram (allpet convention, ``.npy``).

    Returns
    -------
    dict
        ``{"skipped": reason}`` when the library cannot be imported, otherwise
        threads, forward / back timings in ms and the CPU-time / wall-time ratio.
    """
    case = CASES[case_name]
    image = phantom(case)
    with ExitStack() as stack:
        try:
            method = stack.enter_context(BUILDERS[library](case, image))
        except (ImportError, OSError) as error:
            return {"skipped": f"{type(error).__name__}: {error}"}
        forward_ms, forward_cpu_s, sinogram = time_calls(method.forward, method.native_image, repeat)
        back_ms, back_cpu_s, _ = time_calls(method.back, sinogram, repeat)
        if sinogram_path is not None:
            np.save(sinogram_path, method.to_allpet(sinogram))
    return {
        "threads": method.threads,
        "threads_note": method.threads_note,
        "forward_ms": _stats(forward_ms),
        "back_ms": _stats(back_ms),
        "cpu_per_wall": (forward_cpu_s + back_cpu_s) / ((sum(forward_ms) + sum(back_ms)) / 1e3),
    }


def _launch_worker(library: str, case_name: str, repeat: int, sinogram_path: Optional[Path]) -> dict[str, Any]:
    """Run ``run_worker`` in a fresh interpreter; return its JSON, or ``{"failed": reason}``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", library, "--case", case_name,
               "--repeat", str(repeat)]
    if sinogram_path is not None:
        command += ["--save-sinogram", str(sinogram_path)]
    completed = subprocess.run(command, capture_output=True, text=True)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return {"failed": f"worker exited with {completed.returncode}: {tail}"}
    return json.loads(lines[-1])


def _relative_l2(path: Path, reference_path: Path) -> float:
    """``||peer - allpet|| / ||allpet||`` of two saved sinograms, in float64."""
    peer = np.load(path).astype(np.float64)
    reference = np.load(reference_path).astype(np.float64)
    return float(np.linalg.norm(peer - reference) / np.linalg.norm(reference))


def _add_ratios(results: dict[str, dict[str, Any]]) -> None:
    """Store ``peer median / allpet median`` (how many times faster allpet is) per direction."""
    reference = results.get(REFERENCE)
    for result in results.values():
        for direction in DIRECTIONS:
            result[f"{direction}_ratio"] = None if reference is None else (
                result[f"{direction}_ms"]["median"] / reference[f"{direction}_ms"]["median"])


def _summary(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """allpet speed-up against the fastest peer (per direction) and against scikit-image."""
    peers = [name for name in results if name != REFERENCE]
    summary: dict[str, Any] = {}
    for direction in DIRECTIONS:
        fastest = min(peers, key=lambda name: results[name][f"{direction}_ms"]["median"], default=None)
        summary[f"fastest_peer_{direction}"] = fastest
        summary[f"speedup_vs_fastest_peer_{direction}"] = None if fastest is None else results[fastest][
            f"{direction}_ratio"]
        summary[f"speedup_vs_skimage_{direction}"] = results.get(SKIMAGE, {}).get(f"{direction}_ratio")
    return summary


def _format(value: Optional[float], spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _table(case_name: str, case: Case, results: dict[str, dict[str, Any]]) -> str:
    """Markdown table of one case, followed by its summary line."""
    header = (f"### Case {case_name}: {case.n_slices} x {case.size}x{case.size}, {case.n_views} views, "
              f"{case.n_bins} bins\n\n"
              "| library | threads | CPU/wall | fwd median ms | fwd min ms | back median ms | back min ms "
              "| fwd: allpet x faster | back: allpet x faster | rel. L2 vs allpet (fwd) |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for name, result in results.items():
        is_reference = name == REFERENCE
        rows.append(" | ".join([
            f"| {name}", str(result["threads"]), f"{result['cpu_per_wall']:.2f}",
            f"{result['forward_ms']['median']:.2f}", f"{result['forward_ms']['min']:.2f}",
            f"{result['back_ms']['median']:.2f}", f"{result['back_ms']['min']:.2f}",
            "-" if is_reference else _format(result["forward_ratio"], ".2f", "x"),
            "-" if is_reference else _format(result["back_ratio"], ".2f", "x"),
            "-" if is_reference else _format(result.get("rel_l2_vs_allpet"), ".2e"),
        ]) + " |")
    summary = _summary(results)
    line = (f"\n**{case_name}**: allpet vs fastest peer: forward "
            f"{_format(summary['speedup_vs_fastest_peer_forward'], '.2f', 'x')} "
            f"({summary['fastest_peer_forward'] or 'n/a'}), back "
            f"{_format(summary['speedup_vs_fastest_peer_back'], '.2f', 'x')} "
            f"({summary['fastest_peer_back'] or 'n/a'}); vs scikit-image: forward "
            f"{_format(summary['speedup_vs_skimage_forward'], '.2f', 'x')}, back "
            f"{_format(summary['speedup_vs_skimage_back'], '.2f', 'x')} (ratios = peer ms / allpet ms, medians)")
    return "\n".join([header] + rows) + "\n" + line


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> Optional[str]:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Platform, CPU, core count, Python and library versions (read without importing the libraries)."""
    return {
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {package: _version(package) for package in VERSIONED_PACKAGES},
    }


def _benchmark_case(case_name: str, libraries: list[str], repeat: int, scratch: Path,
                    skipped: dict[str, str], failed: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Run every library on one case, one worker each, with a progress line per worker.

    Libraries found missing are recorded in ``skipped`` and not tried again;
    crashed workers are recorded in ``failed`` as ``"library/case"``.
    """
    case = CASES[case_name]
    results: dict[str, dict[str, Any]] = {}
    for library in [name for name in libraries if name not in skipped]:
        sinogram_path = scratch / f"{case_name}-{library}.npy" if case.n_slices == 1 else None
        print(f"[{case_name}] {library:<14} ...", end=" ", flush=True)
        start = time.perf_counter()
        result = _launch_worker(library, case_name, repeat, sinogram_path)
        if "skipped" in result:
            skipped[library] = result["skipped"]
            print(f"skipped ({result['skipped']})", flush=True)
            continue
        if "failed" in result:
            failed[f"{library}/{case_name}"] = result["failed"]
            print(f"FAILED ({result['failed']})", flush=True)
            continue
        print(f"forward {result['forward_ms']['median']:.2f} ms, back {result['back_ms']['median']:.2f} ms "
              f"({time.perf_counter() - start:.1f} s)", flush=True)
        results[library] = result
    reference_path = scratch / f"{case_name}-{REFERENCE}.npy"
    if case.n_slices == 1 and REFERENCE in results:
        for library, result in results.items():
            if library != REFERENCE:
                result["rel_l2_vs_allpet"] = _relative_l2(scratch / f"{case_name}-{library}.npy", reference_path)
    _add_ratios(results)
    return results


def _parse_list(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = sorted(set(items) - set(allowed))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown}; choose from {list(allowed)}")
    return items


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES),
                        type=partial(_parse_list, allowed=tuple(CASES), what="cases"),
                        help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--libs", default=",".join(LIBRARIES),
                        type=partial(_parse_list, allowed=LIBRARIES, what="libraries"),
                        help=f"comma-separated subset of {','.join(LIBRARIES)}")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="timed calls after one warm-up")
    parser.add_argument("--quick", action="store_true", help="smoke test: only the 256 case, repeat 2")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--worker", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=tuple(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--save-sinogram", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    """Run the benchmark (or, with the internal ``--worker``, one worker); return the exit status."""
    args = _parser().parse_args(argv)
    if args.quick:
        args.cases, args.repeat = ["256"], 2
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    if args.worker is not None:
        if args.case is None:
            raise SystemExit("--worker needs --case")
        print(json.dumps(run_worker(args.worker, args.case, args.repeat, args.save_sinogram)))
        return 0

    report: dict[str, Any] = {"machine": machine_info(), "date": datetime.now(timezone.utc).isoformat(),
                              "repeat": args.repeat, "agreement": AGREEMENT, "cases": {}}
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for case_name in args.cases:
            results = _benchmark_case(case_name, args.libs, args.repeat, Path(scratch), skipped, failed)
            print("\n" + _table(case_name, CASES[case_name], results) + "\n", flush=True)
            report["cases"][case_name] = {**asdict(CASES[case_name]), "results": results,
                                          "summary": _summary(results)}
    report["skipped"], report["failed"] = skipped, failed
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
