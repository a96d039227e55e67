"""Where the host time of a synchronised parallel-beam call goes, on torch CUDA tensors.

A synchronised forward of the issue's batch (256 x 128^2, 128 views x 185 bins)
took 1.50 ms on an H100, of which its kernel took 0.98 ms: the rest is host
time. This script times, in microseconds per call, each step that
:meth:`ParallelBeamProjector._apply_device` takes, issued back to back without
synchronisation, on a single 128 x 128 slice so that GPU work stays negligible:
reading ``__cuda_array_interface__``, the operand check, a zero-copy numba
view, the stream, the transposed copy, the output allocation, the kernel launch
on prepared views, and the whole call. Then a cProfile of whole calls (own
time per function, top ``--top``). Without a CUDA device it says so and exits 0.

Usage::

    python -m benchmarks.gpu.profile_host [--repeat 2000] [--top 20]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from typing import Any, Callable, Optional

import numpy as np


def _microseconds(torch: Any, function: Callable[[], Any], repeat: int) -> float:
    """Host time per call (µs) of ``repeat`` calls issued back to back, after a warm-up."""
    function()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    elapsed = time.perf_counter() - start
    torch.cuda.synchronize()
    return elapsed / repeat * 1e6


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    from benchmarks.bench_projectors_gpu import torch_with_cuda

    torch = torch_with_cuda()
    if torch is None:
        return 0
    import pet_projection as pp
    from pet_projection import device
    from pet_projection.kernels import cuda as kernels

    projector = pp.ParallelBeamProjector(pp.ParallelBeamGeometry(pp.ImageGrid((128, 128), 1.0), 128, 185, 1.0))
    image = torch.rand((1, 128, 128), device="cuda")
    library = device.DeviceLibrary(image)
    out = library.empty((1, 128, 185), np.dtype(np.float32))
    views = (device.view(image), device.view(library.transposed_slices(image, 128, 128)),
             device.cached_on_device(projector, library, lambda lib: lib.kernel_copy(projector._table)),
             device.view(out))
    stream = library.stream()
    steps = {
        "__cuda_array_interface__": lambda: image.__cuda_array_interface__,
        "check_device_operand": lambda: device.check_device_operand(image, "input", projector.in_shape),
        "device.view (numba as_cuda_array)": lambda: device.view(image),
        "DeviceLibrary.stream": library.stream,
        "transposed copy (torch)": lambda: library.transposed_slices(image, 128, 128),
        "output allocation (torch)": lambda: library.empty((1, 128, 185), np.dtype(np.float32)),
        "kernel launch on prepared views": lambda: kernels.parallel_beam_forward(*views, stream),
        "whole forward call": lambda: projector(image),
        "whole back call": lambda: projector.adjoint(out),
    }
    print(f"host time per call, {torch.cuda.get_device_name()}, {args.repeat} calls each, no synchronisation:")
    for name, step in steps.items():
        print(f"  {name:<36} {_microseconds(torch, step, args.repeat):8.1f} µs", flush=True)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.repeat):
        projector(image)
    profiler.disable()
    torch.cuda.synchronize()
    print(f"cProfile of {args.repeat} whole forward calls (own time, top {args.top}):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
