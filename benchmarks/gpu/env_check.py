"""What the GPU machine has: library versions, a numba-cuda kernel, ASTRA with CUDA, diffusers. Prints one line each."""

from __future__ import annotations

import importlib

import numpy as np


def check(name: str, function) -> None:
    try:
        print(f"{name}: {function()}", flush=True)
    except Exception as error:  # report and go on: this is an inventory
        print(f"{name}: FAILED {type(error).__name__}: {error}", flush=True)


def version(module: str) -> str:
    return importlib.import_module(module).__version__


def numba_cuda_kernel() -> str:
    from numba import cuda

    @cuda.jit
    def twice(x):
        i = cuda.grid(1)
        if i < x.size:
            x[i] *= 2

    x = cuda.to_device(np.arange(8.0))
    twice[1, 8](x)
    return f"{x.copy_to_host().tolist()} on {cuda.get_current_device().name}"


def astra_cuda() -> str:
    import astra

    return f"{astra.__version__}, use_cuda={astra.use_cuda()}"


if __name__ == "__main__":
    for module in ("numpy", "scipy", "numba", "numba_cuda", "cupy", "torch", "diffusers", "nibabel", "skimage",
                   "matplotlib", "safetensors", "yaml", "hypothesis"):
        check(module, lambda module=module: version(module))
    check("torch.cuda", lambda: __import__("torch").cuda.get_device_name())
    check("numba-cuda kernel", numba_cuda_kernel)
    check("astra", astra_cuda)
