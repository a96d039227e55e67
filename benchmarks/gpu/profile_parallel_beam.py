"""Launch the parallel-beam CUDA kernels on the batch of 256, for Nsight Compute to profile.

The batch is the issue's benchmark problem (256 slices of 128 x 128 pixels, 128
views x 185 bins, float32 on the device). After one forward with the default
launch, for each ``k`` given: one forward and one back with ``k`` slices per
thread. Each kernel compiles at its first launch, which is the one profiled.
Run under ``ncu`` with a kernel filter, for example::

    ncu --kernel-name "regex:^(forward|back)" --section SpeedOfLight --section Occupancy \\
        --section ComputeWorkloadAnalysis python3 -m benchmarks.gpu.profile_parallel_beam 1 4

Each call's wall time (ms) is printed too; under ncu it includes the
profiler's replays.
"""

from __future__ import annotations

import sys
import time


def main(slices_per_thread: list[int]) -> int:
    import torch

    import pet_projection as pp
    from benchmarks.bench_projectors import phantom
    from benchmarks.bench_projectors_gpu import GPU_CASES
    from pet_projection.kernels import cuda as kernels

    case = GPU_CASES["batch256"]
    image = torch.from_numpy(phantom(case)).cuda()
    projector = pp.ParallelBeamProjector(pp.ParallelBeamGeometry(pp.ImageGrid(case.image_shape, 1.0),
                                                                 case.n_views, case.n_bins, 1.0))
    sinogram = projector(image)
    for k in slices_per_thread:
        kernels.SLICES_PER_THREAD = {"forward": k, "back": k}
        for name, call in (("forward", lambda: projector(image)), ("back", lambda: projector.adjoint(sinogram))):
            torch.cuda.synchronize()
            start = time.perf_counter()
            call()
            torch.cuda.synchronize()
            print(f"k={k} {name}: {(time.perf_counter() - start) * 1e3:.3f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main([int(k) for k in sys.argv[1:]] or [1, 4]))
