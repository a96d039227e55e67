"""Compile every CUDA kernel of pet_projection to PTX for a Hopper GPU (sm_90), without a GPU.

Numba's CUDA simulator runs the kernels as Python, so it cannot tell whether
they type-check and lower for a real device; this script does, with NVVM and
NVRTC on the machine and no driver. numba-cuda asks the current device for its
compute capability when it compiles device functions, so a stand-in device is
installed first. It also checks that both parallel-beam kernels compute their
positions with the explicit fused multiply-adds of the CUDA ``plane_position``
(the condition for their bitwise transpose on a GPU), which the simulator never
runs. Run with ``NUMBA_ENABLE_CUDASIM=0``; prints one line per kernel and exits
0 when all compile, 1 when one fails, 2 (with the reason) when the CUDA compiler
libraries are missing.

Usage::

    NUMBA_ENABLE_CUDASIM=0 python -m tests.pet_projection.compile_cuda_kernels
"""

from __future__ import annotations

import sys
import time

import numpy as np

COMPUTE_CAPABILITY = (9, 0)


class _Hopper:
    compute_capability = COMPUTE_CAPABILITY


def _prepare() -> None:
    import numba.cuda.dispatcher as dispatcher
    from numba.cuda.cudadrv import nvvm

    dispatcher.get_current_device = _Hopper  # called as get_current_device().compute_capability
    nvvm.NVVM()  # raises when libNVVM is missing


def _cases() -> list[tuple[str, object, tuple]]:
    from numba import typeof, types

    from pet_projection import (ImageGrid, ListmodeProjector, LORProjector, PETSinogramProjector,
                                RingScannerGeometry, SinogramLayout, TOFParameters)
    from pet_projection.kernels import cuda as kernels

    grid = ImageGrid((2, 4, 4), 1.0)
    scanner = RingScannerGeometry(radius_mm=60.0, n_sides=12, crystals_per_side=3, crystal_spacing_mm=4.0,
                                  ring_positions_mm=(-2.0, 2.0))
    tof = TOFParameters(n_bins=3, bin_width_mm=40.0, fwhm_mm=30.0)
    ends = np.zeros((2, 3)), np.ones((2, 3))
    projectors = {"lor": LORProjector(grid, *ends),
                  "listmode-tof": ListmodeProjector(grid, *ends, tof_bin=[0, 1], tof=tof),
                  "sinogram": PETSinogramProjector(SinogramLayout(scanner), grid),
                  "sinogram-tof": PETSinogramProjector(SinogramLayout(scanner), grid, tof=tof)}
    cases = []
    for dtype in (types.float32, types.float64):
        a1, a2, a3 = dtype[::1], dtype[:, ::1], dtype[:, :, ::1]
        table = types.float64[:, ::1]
        for k in (1, 4):
            forward, back = kernels._parallel_beam_kernels(k)
            cases += [(f"parallel_beam_forward {k} slice(s) per thread {dtype}", forward, (a3, a3, table, a3)),
                      (f"parallel_beam_back {k} slice(s) per thread {dtype}", back, (a3, table, a3))]
        cases += [(f"scaled_copy {dtype}", kernels._scaled_copy, (a1, types.float64, a1)),
                  (f"fill_zero {dtype}", kernels._fill_zero, (a1,)),
                  (f"from_fixed_point {dtype}", kernels._from_fixed_point, (types.int64[::1], types.float64, a1))]
        for name, op in projectors.items():
            rays = typeof(op._rays)
            if op._tof is None:
                cases += [(f"segment_forward {name} {dtype}", kernels._segment_forward, (a1, types.int64, rays, a2)),
                          (f"segment_back {name} {dtype}", kernels._segment_back,
                           (a2, types.int64, rays, types.int64[::1]))]
            else:
                tof_bins = typeof(op._tof)
                cases += [(f"segment_forward {name} {dtype}", kernels._segment_forward_tof,
                           (a1, types.int64, rays, tof_bins, a3)),
                          (f"segment_back {name} {dtype}", kernels._segment_back_tof,
                           (a3, types.int64, rays, tof_bins, types.int64[::1]))]
    return cases


def _positions_fused() -> bool:
    """Whether the parallel-beam forward and back kernels call the CUDA ``plane_position`` (``llvm.fma`` in their IR).

    The generic ``plane_position`` lowers to ``fmul`` / ``fadd``, which NVVM may or may not contract; only the CUDA
    overload calls ``llvm.fma`` explicitly, so its presence in both kernels' LLVM IR shows which one numba chose.
    """
    from numba import types
    from numba.cuda.compiler import compile_cuda

    from pet_projection.kernels import cuda as kernels

    a3, table = types.float32[:, :, ::1], types.float64[:, ::1]
    forward, back = kernels._parallel_beam_kernels(1)
    fused = True
    for name, kernel, signature in (("forward", forward, (a3, a3, table, a3)), ("back", back, (a3, table, a3))):
        ir = compile_cuda(kernel.py_func, types.void, signature, cc=COMPUTE_CAPABILITY).library.get_llvm_str()
        explicit = "llvm.fma.f64" in ir
        print(f"parallel_beam {name}: {'explicit' if explicit else 'NO'} fused multiply-adds")
        fused = fused and explicit
    return fused


def main() -> int:
    from numba import config

    if config.ENABLE_CUDASIM:
        print("run with NUMBA_ENABLE_CUDASIM=0: the simulator compiles nothing")
        return 2
    try:
        _prepare()
    except Exception as error:  # the compiler libraries are optional on CPU machines
        print(f"no CUDA compiler here: {type(error).__name__}: {error}")
        return 2
    from numba import cuda

    failed = 0
    cases = _cases()
    for name, kernel, signature in cases:
        start = time.perf_counter()
        try:
            ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=COMPUTE_CAPABILITY)
        except Exception as error:
            if "Failure finding" in str(error) or "libdevice" in str(error).lower():
                print(f"no CUDA compiler here: {type(error).__name__}: {error}")
                return 2
            failed += 1
            print(f"FAILED {name}: {type(error).__name__}: {str(error)[:2000]}")
            continue
        atomics = " (64-bit atomics)" if "atom.global.add.u64" in ptx else ""
        print(f"ok {name}: {len(ptx)} bytes of PTX in {time.perf_counter() - start:.1f} s{atomics}")
    print(f"compiled {len(cases) - failed} of {len(cases)} kernels")
    if not _positions_fused():
        print("FAILED: a parallel-beam kernel does not use the CUDA plane_position (its positions are not fused)")
        failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
