"""GPU timing of the allpet parallel-beam projector against ASTRA's CUDA projectors, on torch and CuPy arrays.

Needs a CUDA GPU with torch (and optionally astra-toolbox with CUDA, and CuPy);
prints a table and writes ``benchmarks/results/projectors_gpu.json`` with the
card's name. Without a GPU it says so and exits 0 (nothing to measure).

Usage::

    python -m benchmarks.bench_projectors_gpu [--repeat 20] [--slices-per-thread 1 2 4 8]
        [--threads-per-block 128 512] [--out PATH]

Reported per case and direction: median wall time of a synchronised call
(``torch.cuda.synchronize`` before both clock reads, after a warm-up that
includes compilation; the targets are judged on it), the time per call of
calls queued without synchronisation (``queued_ms``), ray-samples per second (rays x planes crossed,
``n_slices * n_views * n_bins * n``), and the compulsory memory traffic
(image + sinogram bytes once) over the time as a fraction of the card's
nominal bandwidth. Rows:

- ``allpet-cuda`` / ``allpet-cuda-cupy``: torch CUDA tensors / CuPy arrays,
  operands on the device, one launch for the whole batch;
- ``allpet-cuda-kK``: torch CUDA tensors with ``K`` slices per thread in
  both directions (``--slices-per-thread``; ``allpet-cuda`` uses the
  defaults of :data:`pet_projection.kernels.cuda.SLICES_PER_THREAD`, one
  per direction): a ray's positions and weights computed once for K
  slices of the batch, the same bits;
- ``allpet-cuda-kK-tT``: the same with ``T`` threads per block
  (``--threads-per-block``; ``allpet-cuda-kK`` uses the default of
  :data:`pet_projection.kernels.cuda.THREADS_PER_BLOCK`), the same bits;
  ``fastest`` in the result names the row of shortest forward + back time
  on the batch of 256;
- ``astra-cuda-3d``: ASTRA's ``FP3D_CUDA`` / ``BP3D_CUDA`` on the batch as one
  ``parallel3d`` volume (slices = detector rows), its data linked to torch
  CUDA tensors (``astra.data3d.link``), so nothing crosses the bus: the
  fastest way ASTRA offers for a batch;
- ``astra-cuda-2d``: ASTRA's 2D ``FP_CUDA`` / ``BP_CUDA``, one slice at a time
  as its 2D API must be used, including its host/device copies.

Targets (ALL-PET issue 4, on an H100): the batch of 256 x (128 views x 185
bins) forward at >= 1e10 ray-samples/s and >= 3x ASTRA's GPU forward; back
projection within 2x of the forward's time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from benchmarks.bench_projectors import CASES, Case, phantom

GPU_CASES = {**CASES, "batch256": Case(128, 128, 185, 256)}
# Nominal memory bandwidth in bytes/s by card name (vendor data sheets).
NOMINAL_BANDWIDTH = {"H100 PCIe": 2.0e12, "H100 80GB HBM3": 3.35e12, "H100 SXM": 3.35e12, "H200": 4.8e12}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "projectors_gpu.json"


def _clocks_up(torch: Any, seconds: float = 1.0) -> None:
    """Keep the GPU busy for ``seconds`` so that its clocks leave their idle state before the first timing."""
    a = torch.ones((4096, 4096), device="cuda")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        a @ a
        torch.cuda.synchronize()


def _time_ms(torch: Any, function: Callable[[], Any], repeat: int) -> list[float]:
    function()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _queued_ms(torch: Any, function: Callable[[], Any], repeat: int) -> float:
    """Time per call (ms) of ``repeat`` calls queued back to back with one synchronisation at the end.

    What a training loop sees: the host prepares the next call while the GPU
    runs the last one. A library that waits for its own kernels inside each
    call gains nothing here.
    """
    function()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3 / repeat


def _astra_cuda_3d(case: Case, torch: Any, image: Any) -> Optional[tuple[Callable[[], Any], Callable[[], Any]]]:
    try:
        import astra
    except ImportError:
        return None
    if not astra.use_cuda():
        return None
    volume_geometry = astra.create_vol_geom(case.size, case.size, case.n_slices)  # array (slices, rows, columns)
    projection_geometry = astra.create_proj_geom("parallel3d", 1.0, 1.0, case.n_slices, case.n_bins, case.angles)
    volume = image.reshape(case.n_slices, case.size, case.size).contiguous()
    sinogram = torch.empty((case.n_slices, case.n_views, case.n_bins), dtype=torch.float32, device=image.device)
    volume_id = astra.data3d.link("-vol", volume_geometry, volume)
    sinogram_id = astra.data3d.link("-sino", projection_geometry, sinogram)

    def algorithm(kind: str, volume_key: str) -> int:
        config = astra.astra_dict(kind)
        config["ProjectionDataId"] = sinogram_id
        config[volume_key] = volume_id
        return astra.algorithm.create(config)

    forward, back = algorithm("FP3D_CUDA", "VolumeDataId"), algorithm("BP3D_CUDA", "ReconstructionDataId")
    return (lambda: astra.algorithm.run(forward)), (lambda: astra.algorithm.run(back))


def _astra_cuda_2d(case: Case, image: np.ndarray) -> Optional[tuple[Callable[[], Any], Callable[[], Any]]]:
    try:
        import astra
    except ImportError:
        return None
    if not astra.use_cuda():
        return None
    volume = astra.create_vol_geom(case.size, case.size)
    projection = astra.create_proj_geom("parallel", 1.0, case.n_bins, case.angles)
    planes = np.ascontiguousarray(image.reshape(-1, case.size, case.size)[:, ::-1])

    def run(algorithm: str) -> None:
        for plane in planes:
            volume_id = astra.data2d.create("-vol", volume, plane)
            sinogram_id = astra.data2d.create("-sino", projection, 1.0)
            config = astra.astra_dict(algorithm)
            config["ProjectionDataId"] = sinogram_id
            config["VolumeDataId" if algorithm == "FP_CUDA" else "ReconstructionDataId"] = volume_id
            algorithm_id = astra.algorithm.create(config)
            astra.algorithm.run(algorithm_id)
            astra.algorithm.delete(algorithm_id)
            astra.data2d.delete([volume_id, sinogram_id])

    return (lambda: run("FP_CUDA")), (lambda: run("BP_CUDA"))


def torch_with_cuda() -> Any:
    """The torch module when it sees a CUDA device; else None, after saying why (GPU benchmarks then exit 0)."""
    try:
        import torch
    except ImportError:
        print("torch is not installed: no GPU benchmark")
        return None
    if not torch.cuda.is_available():
        print("no CUDA device: no GPU benchmark")
        return None
    return torch


def _with_launch(kernels: Any, k: int, threads: int, function: Callable[[], Any]) -> Callable[[], Any]:
    """``function`` run with ``k`` slices per thread in both directions and ``threads`` threads per block."""
    def run() -> Any:
        defaults = kernels.SLICES_PER_THREAD, kernels.THREADS_PER_BLOCK
        kernels.SLICES_PER_THREAD, kernels.THREADS_PER_BLOCK = {"forward": k, "back": k}, threads
        try:
            return function()
        finally:
            kernels.SLICES_PER_THREAD, kernels.THREADS_PER_BLOCK = defaults
    return run


def _launch_rows(kernels: Any, slices_per_thread: list[int],
                 threads_per_block: list[int]) -> list[tuple[str, int, int]]:
    """``(row name, k, threads)`` of the sweep: every ``k`` at the default block size, then every block size."""
    default = kernels.THREADS_PER_BLOCK
    rows = [(f"allpet-cuda-k{k}", k, default) for k in slices_per_thread]
    rows += [(f"allpet-cuda-k{k}-t{threads}", k, threads) for k in sorted({1, *slices_per_thread})
             for threads in threads_per_block if threads != default]
    return rows


def _fastest(batch: dict[str, Any]) -> dict[str, Any]:
    """The allpet row of shortest forward + back time, with its times (every row gives the same bits)."""
    rows = {name: row for name, row in batch.items() if name.startswith("allpet-cuda") and name != "allpet-cuda-cupy"}
    name = min(rows, key=lambda row: rows[row]["forward"]["median_ms"] + rows[row]["back"]["median_ms"])
    return {"row": name, "forward_ms": rows[name]["forward"]["median_ms"], "back_ms": rows[name]["back"]["median_ms"]}


def _bandwidth(name: str) -> Optional[float]:
    return next((value for key, value in NOMINAL_BANDWIDTH.items() if key in name), None)


def _verdicts(batch: dict[str, Any], row: str = "allpet-cuda") -> dict[str, Any]:
    """The issue's three targets on the batch of 256 for ``row``, measured against this run's numbers."""
    ours = batch[row]
    verdicts: dict[str, Any] = {
        "forward_ray_samples_per_s": {"value": ours["forward"]["ray_samples_per_s"], "target": 1e10},
        "back_over_forward_time": {"value": ours["back"]["median_ms"] / ours["forward"]["median_ms"], "target": 2.0}}
    verdicts["forward_ray_samples_per_s"]["met"] = verdicts["forward_ray_samples_per_s"]["value"] >= 1e10
    verdicts["back_over_forward_time"]["met"] = verdicts["back_over_forward_time"]["value"] <= 2.0
    peers = [peer for peer in ("astra-cuda-3d", "astra-cuda-2d") if peer in batch]
    if peers:
        best = min(batch[peer]["forward"]["median_ms"] for peer in peers)
        ratio = best / ours["forward"]["median_ms"]
        verdicts["forward_speedup_over_fastest_astra"] = {"value": ratio, "target": 3.0, "met": ratio >= 3.0}
    return verdicts


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--slices-per-thread", type=int, nargs="*", default=[1, 2, 4, 8],
                        help="extra allpet-cuda-kK rows, one per K")
    parser.add_argument("--threads-per-block", type=int, nargs="*", default=[128, 512],
                        help="extra allpet-cuda-kK-tT rows, one per K (1 and those above) and T")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch = torch_with_cuda()
    if torch is None:
        return 0
    import pet_projection as pp
    from pet_projection.kernels import cuda as kernels

    card = torch.cuda.get_device_name()
    bandwidth = _bandwidth(card)
    _clocks_up(torch)
    report: dict[str, Any] = {"card": card, "date": datetime.now(timezone.utc).isoformat(), "repeat": args.repeat,
                              "timing": "median wall time of a call between two torch.cuda.synchronize()",
                              "cases": {}}
    try:
        import cupy
    except ImportError:
        cupy = None
    for name, case in GPU_CASES.items():
        image = torch.from_numpy(phantom(case)).cuda()
        projector = pp.ParallelBeamProjector(pp.ParallelBeamGeometry(pp.ImageGrid(case.image_shape, 1.0),
                                                                     case.n_views, case.n_bins, 1.0))
        sinogram = projector(image)
        samples = case.n_slices * case.n_views * case.n_bins * case.size
        traffic = (image.numel() + sinogram.numel()) * image.element_size()
        rows = {"allpet-cuda": (lambda: projector(image), lambda: projector.adjoint(sinogram))}
        for row, k, threads in _launch_rows(kernels, args.slices_per_thread, args.threads_per_block):
            rows[row] = (_with_launch(kernels, k, threads, lambda: projector(image)),
                         _with_launch(kernels, k, threads, lambda: projector.adjoint(sinogram)))
        if cupy is not None:
            image_cupy, sinogram_cupy = cupy.asarray(image), cupy.asarray(sinogram)
            rows["allpet-cuda-cupy"] = (lambda: projector(image_cupy), lambda: projector.adjoint(sinogram_cupy))
        for peer, methods in (("astra-cuda-3d", _astra_cuda_3d(case, torch, image)),
                              ("astra-cuda-2d", _astra_cuda_2d(case, phantom(case)))):
            if methods is not None:
                rows[peer] = methods
        results, failed = {}, {}
        for library, (forward, back) in rows.items():
            try:
                results[library] = {}
                for direction, function in (("forward", forward), ("back", back)):
                    repeat = args.repeat if library != "astra-cuda-2d" else max(3, args.repeat // 4)  # slice loop
                    median = statistics.median(_time_ms(torch, function, repeat))
                    results[library][direction] = {
                        "median_ms": median, "ray_samples_per_s": samples / (median / 1e3),
                        "bandwidth_fraction": traffic / (median / 1e3) / bandwidth if bandwidth else None,
                        "queued_ms": _queued_ms(torch, function, repeat)}
            except Exception as error:  # a peer that fails must not cost the other rows
                del results[library]
                failed[library] = f"{type(error).__name__}: {error}"
                print(f"[{name}] {library} failed: {failed[library]}", flush=True)
        report["cases"][name] = {**results, **({"failed": failed} if failed else {})}
        for library, result in results.items():
            forward, back = result["forward"], result["back"]
            print(f"[{name}] {library:<20} fwd {forward['median_ms']:9.3f} ms (queued {forward['queued_ms']:.3f}, "
                  f"{forward['ray_samples_per_s']:.2e} samples/s)  back {back['median_ms']:9.3f} ms "
                  f"(queued {back['queued_ms']:.3f}, {back['ray_samples_per_s']:.2e} samples/s)", flush=True)
        ours = results["allpet-cuda"]
        for peer in ("astra-cuda-3d", "astra-cuda-2d"):
            if peer in results:
                print(f"    allpet-cuda x faster than {peer}: forward "
                      f"{results[peer]['forward']['median_ms'] / ours['forward']['median_ms']:.2f}, back "
                      f"{results[peer]['back']['median_ms'] / ours['back']['median_ms']:.2f}")
    report["targets"] = _verdicts(report["cases"]["batch256"])
    fastest = _fastest(report["cases"]["batch256"])
    report["fastest"] = {**fastest, "targets": _verdicts(report["cases"]["batch256"], fastest["row"])}
    print(json.dumps({"default": report["targets"], "fastest": report["fastest"]}, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"results written to {args.out} ({card})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
