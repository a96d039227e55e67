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

Two cheaper launch paths are timed beside numba-cuda's launch on zero-copy
views, so that one device call can choose between them:

- numba-cuda's launch on the torch tensors themselves (numba-cuda 0.30 reads
  them through DLPack, without a ``DeviceNDArray`` per operand);
- ``cuda.core.launch`` of the kernel numba compiled, with the arguments numba
  would pass (per C-contiguous array: meminfo 0, parent 0, size, item size,
  pointer, shape, strides in bytes) built from the tensors. Before it is timed,
  the script checks these arguments against numba's own (``_Kernel._prepare_args``)
  and the outputs of both launches bit for bit, and prints both verdicts.

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


def _tensor_arguments(tensors: tuple) -> list[int]:
    """numba-cuda's kernel arguments for C-contiguous torch CUDA tensors, as ``_Kernel._prepare_args`` builds them."""
    arguments: list[int] = []
    for t in tensors:
        itemsize = t.element_size()
        arguments += [0, 0, t.numel(), itemsize, t.data_ptr(), *t.shape, *(s * itemsize for s in t.stride())]
    return arguments


def _forward_launched_by(torch: Any, projector: Any, path: str) -> Callable[[Any], Any]:
    """The parallel-beam forward of float32 torch CUDA slices, its kernel launched another way.

    ``path``: ``"numba on tensors"`` (numba-cuda's launch, the torch tensors passed as they are) or
    ``"cuda.core"`` (``cuda.core.launch`` of the kernel numba compiled, with :func:`_tensor_arguments`; the first
    call launches through numba and checks those arguments against numba's own). Slices per thread 1, the
    forward's default.
    """
    from cuda.core import LaunchConfig, launch

    from pet_projection import device
    from pet_projection.kernels import cuda as kernels

    n_views, n_bins = projector.out_shape[-2:]
    ny, nx = projector.in_shape[-2:]
    dispatcher = kernels._parallel_beam_kernels(1)[0]
    table = torch.tensor(projector._table, device="cuda")
    functions: dict = {}

    def forward(image: Any) -> Any:
        slices = image.reshape(-1, ny, nx)
        out = torch.empty((slices.shape[0], n_views, n_bins), device=image.device)
        tensors = (slices, slices.transpose(1, 2).contiguous(), table, out)
        blocks = kernels._blocks(out.numel())
        if path == "numba on tensors":
            stream = device.DeviceLibrary(image).stream()
            dispatcher[blocks, kernels.THREADS_PER_BLOCK, stream](*tensors)
        elif not functions:  # numba compiles and launches once; later calls reuse its compiled function
            views = tuple(device.view(t) for t in tensors)
            kernels.parallel_beam_forward(*views, device.DeviceLibrary(image).stream())
            compiled = dispatcher.overloads[tuple(dispatcher.typeof_pyval(v) for v in views)]
            theirs: list = []
            for argument_type, value in zip(compiled.argument_types, views):
                compiled._prepare_args(argument_type, value, 0, [], theirs)
            if [int(a) for a in theirs] != _tensor_arguments(tensors):
                raise RuntimeError("our kernel arguments differ from numba-cuda's")
            functions["kernel"] = compiled._codelibrary.get_cufunc().kernel
        else:
            config = LaunchConfig(grid=blocks, block=kernels.THREADS_PER_BLOCK, shmem_size=0)
            launch(torch.cuda.current_stream(), config, functions["kernel"], *_tensor_arguments(tensors))
        return out
    return forward


def _alternative_launches(torch: Any, projector: Any, image: Any) -> dict:
    """Timed steps of the two cheaper launch paths (module docstring), after checking that they give the same bits.

    Prints the synchronised forward of the issue's batch (256 x 128^2) by each path. A path whose check fails,
    or whose numba-cuda internals differ from 0.30's, is reported and left out.
    """
    steps: dict[str, Callable[[], Any]] = {}
    batch = torch.rand((256, 128, 128), device="cuda")
    reference, batch_reference = projector(image), projector(batch)
    timed = {"numba on views (the projector today)": projector}
    for path in ("numba on tensors", "cuda.core"):
        try:
            forward = _forward_launched_by(torch, projector, path)
            forward(image)  # compiles; for cuda.core, the check of its arguments against numba's
            if not (torch.equal(forward(image), reference) and torch.equal(forward(batch), batch_reference)):
                raise RuntimeError("its output differs from the projector's bits")
        except Exception as error:  # noqa: BLE001 - a probe: report and go on
            print(f"launch path {path!r} left out: {error!r}")
            continue
        print(f"launch path {path!r}: the same bits as the projector")
        steps[f"whole forward, kernel launched by {path}"] = lambda forward=forward: forward(image)
        timed[path] = forward
    from benchmarks.bench_projectors_gpu import _clocks_up, _time_ms

    _clocks_up(torch)
    for name, call in timed.items():
        print(f"synchronised forward of 256 x 128^2, {name}: median "
              f"{np.median(_time_ms(torch, lambda call=call: call(batch), 30)):.3f} ms", flush=True)
    return steps


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
    steps.update(_alternative_launches(torch, projector, image))
    print(f"host time per call, {torch.cuda.get_device_name()}, {args.repeat} calls each, no synchronisation:")
    for name, step in steps.items():
        print(f"  {name:<52} {_microseconds(torch, step, args.repeat):8.1f} µs", flush=True)
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
