"""GPU timing of the allpet parallel-beam projector (torch CUDA tensors) against ASTRA's CUDA projector.

Needs a CUDA GPU with torch (and optionally astra-toolbox with CUDA); prints a
table and writes ``benchmarks/results/projectors_gpu.json`` with the card's
name. Without a GPU it says so and exits 0 (nothing to measure).

Usage::

    python -m benchmarks.bench_projectors_gpu [--repeat 20] [--out PATH]

Reported per case and direction: median time (CUDA events, after a warm-up),
ray-samples per second (rays x planes crossed, ``n_slices * n_views * n_bins * n``),
and the compulsory memory traffic (image + sinogram bytes once) over the time
as a fraction of the card's nominal bandwidth. ASTRA is timed through its
Python 2D API, one slice at a time as it must be used, including its own
host/device copies; allpet's operands stay on the device.
"""

from __future__ import annotations

import argparse
import json
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from benchmarks.bench_projectors import CASES, Case, phantom

GPU_CASES = {**CASES, "batch256": Case(128, 128, 185, 256)}
# Nominal memory bandwidth in bytes/s by card name (vendor data sheets).
NOMINAL_BANDWIDTH = {"H100 PCIe": 2.0e12, "H100 80GB HBM3": 3.35e12, "H100 SXM": 3.35e12, "H200": 4.8e12}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "projectors_gpu.json"


def _cuda_time_ms(torch: Any, function: Callable[[], Any], repeat: int) -> list[float]:
    function()
    times = []
    for _ in range(repeat):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        function()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return times


def _astra_cuda(case: Case, image: np.ndarray) -> Optional[tuple[Callable[[], Any], Callable[[], Any]]]:
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


def _bandwidth(name: str) -> Optional[float]:
    return next((value for key, value in NOMINAL_BANDWIDTH.items() if key in name), None)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch is not installed: no GPU benchmark")
        return 0
    if not torch.cuda.is_available():
        print("no CUDA device: no GPU benchmark")
        return 0
    import pet_projection as pp

    card = torch.cuda.get_device_name()
    bandwidth = _bandwidth(card)
    report: dict[str, Any] = {"card": card, "date": datetime.now(timezone.utc).isoformat(), "cases": {}}
    for name, case in GPU_CASES.items():
        image = torch.from_numpy(phantom(case)).cuda()
        projector = pp.ParallelBeamProjector(pp.ParallelBeamGeometry(pp.ImageGrid(case.image_shape, 1.0),
                                                                     case.n_views, case.n_bins, 1.0))
        sinogram = projector(image)
        samples = case.n_slices * case.n_views * case.n_bins * case.size
        traffic = (image.numel() + sinogram.numel()) * image.element_size()
        rows = {"allpet-cuda": (lambda: projector(image), lambda: projector.adjoint(sinogram))}
        astra_methods = _astra_cuda(case, phantom(case))
        if astra_methods is not None:
            rows["astra-cuda"] = astra_methods
        results = {}
        for library, (forward, back) in rows.items():
            results[library] = {}
            for direction, function in (("forward", forward), ("back", back)):
                median = statistics.median(_cuda_time_ms(torch, function, args.repeat))
                results[library][direction] = {
                    "median_ms": median, "ray_samples_per_s": samples / (median / 1e3),
                    "bandwidth_fraction": traffic / (median / 1e3) / bandwidth if bandwidth else None}
        report["cases"][name] = results
        print(f"[{name}] " + "; ".join(f"{lib} fwd {r['forward']['median_ms']:.3f} ms back {r['back']['median_ms']:.3f} ms"
                                       for lib, r in results.items()), flush=True)
        if "astra-cuda" in results:
            print(f"    allpet-cuda x faster than astra-cuda: forward "
                  f"{results['astra-cuda']['forward']['median_ms'] / results['allpet-cuda']['forward']['median_ms']:.2f}, "
                  f"back {results['astra-cuda']['back']['median_ms'] / results['allpet-cuda']['back']['median_ms']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"results written to {args.out} ({card})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
