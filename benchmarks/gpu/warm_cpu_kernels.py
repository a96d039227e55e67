"""Compile the CPU kernels that the GPU tests use as references into Numba's disk cache, one kind per process.

On the lent GPU machine, Numba's CPU compilation of the segment drivers (LOR, TOF listmode, sinogram, TOF
sinogram) took minutes per pytest worker, which a time-limited run cannot afford. Run once before the tests
with a shared ``NUMBA_CACHE_DIR`` (run_device_checks.sh does, all kinds in parallel); the workers then load
the compiled drivers from the cache.

Usage::

    NUMBA_CACHE_DIR=/tmp/allpet-numba python -m benchmarks.gpu.warm_cpu_kernels KIND    # KIND as in KINDS
"""

from __future__ import annotations

import sys
import time

import numpy as np

from pet_projection import (ImageGrid, ListmodeProjector, LORProjector, ParallelBeamGeometry, ParallelBeamProjector,
                            PETSinogramProjector, RingScannerGeometry, SinogramLayout, TOFParameters)

KINDS = ("parallel-beam", "lor", "listmode-tof", "sinogram", "sinogram-tof")


def projector(kind: str):
    """A small projector of ``kind``; the drivers compiled for it serve every size."""
    grid = ImageGrid((2, 6, 6), 4.0)
    ends = np.array([[-30.0, 1.0, 0.0], [0.0, -30.0, 1.0]]), np.array([[30.0, -1.0, 1.0], [2.0, 30.0, -1.0]])
    tof = TOFParameters(n_bins=3, bin_width_mm=40.0, fwhm_mm=30.0)
    scanner = RingScannerGeometry(radius_mm=60.0, n_sides=12, crystals_per_side=3, crystal_spacing_mm=4.0,
                                  ring_positions_mm=(-2.0, 2.0))
    return {"parallel-beam": lambda: ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((6, 6), 1.0), 4, 9, 1.0)),
            "lor": lambda: LORProjector(grid, *ends),
            "listmode-tof": lambda: ListmodeProjector(grid, *ends, tof_bin=[0, 2], tof=tof),
            "sinogram": lambda: PETSinogramProjector(SinogramLayout(scanner), grid),
            "sinogram-tof": lambda: PETSinogramProjector(SinogramLayout(scanner), grid, tof=tof)}[kind]()


def main(kind: str) -> int:
    start = time.perf_counter()
    op = projector(kind)
    for dtype in (np.float64, np.float32):
        for batch in ((), (2,)):
            op(np.ones(batch + tuple(op.in_shape), dtype=dtype))
            op.adjoint(np.ones(batch + tuple(op.out_shape), dtype=dtype))
    print(f"{kind}: compiled in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in KINDS:
        raise SystemExit(f"usage: python -m benchmarks.gpu.warm_cpu_kernels KIND, KIND one of {KINDS}")
    sys.exit(main(sys.argv[1]))
