"""GPU arrays: CuPy arrays and torch CUDA tensors, zero-copy, on the caller's current stream.

Nothing here runs at ``import pet_projection``: numba-cuda, CuPy and torch are
imported only when a GPU array reaches an operator, so the package still
imports on machines without CUDA.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np

from .arrays import FLOAT_DTYPES


def is_device_array(x: Any) -> bool:
    """True for objects exposing ``__cuda_array_interface__`` (CuPy, torch CUDA, numba device arrays)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x.device.type == "cuda"
    return hasattr(x, "__cuda_array_interface__")


class DeviceLibrary:
    """The array library of a GPU operand: allocation, copies and the current stream, in that library's terms."""

    def __init__(self, like: Any) -> None:
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(like, torch.Tensor):
            self.kind = "torch"
        elif type(like).__module__.split(".")[0] == "cupy":
            self.kind = "cupy"
        else:
            self.kind = "numba"
        self.like = like

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        if self.kind == "torch":
            torch = sys.modules["torch"]
            return torch.empty(shape, dtype=getattr(torch, np.dtype(dtype).name), device=self.like.device)
        if self.kind == "cupy":
            import cupy

            with self.like.device:
                return cupy.empty(shape, dtype=dtype)
        from numba import cuda

        return cuda.device_array(shape, dtype=dtype)

    def asarray(self, host: np.ndarray) -> Any:
        """Copy a host array to this library's device (weights, tables)."""
        if self.kind == "torch":
            return sys.modules["torch"].tensor(host, device=self.like.device)  # a copy: host may be read-only
        if self.kind == "cupy":
            import cupy

            with self.like.device:
                return cupy.asarray(host)
        from numba import cuda

        return cuda.to_device(host)

    def astype(self, x: Any, dtype: np.dtype) -> Any:
        """``x`` converted to the NumPy ``dtype`` (float32 / float64 / bool), on its device."""
        if self.kind == "torch":
            return x.to(getattr(sys.modules["torch"], np.dtype(dtype).name))
        if self.kind == "cupy":
            return x.astype(dtype)
        raise TypeError("numba device arrays have no dtype conversion; pass a CuPy array or a torch CUDA tensor")

    def kernel_copy(self, host: np.ndarray) -> Any:
        """A numba-cuda view of a device copy of ``host`` owned by this library (tables passed to kernels)."""
        if self.kind == "numba":
            from numba import cuda

            return cuda.to_device(host)
        return view(self.asarray(host))

    def max_abs(self, x: Any) -> float:
        """``max |x|`` as a Python float (synchronises with the device)."""
        if self.kind == "torch":
            return float(x.abs().max()) if x.numel() else 0.0
        if self.kind == "cupy":
            import cupy

            return float(cupy.abs(x).max()) if x.size else 0.0
        host = x.copy_to_host()
        return float(np.abs(host).max()) if host.size else 0.0

    def transposed_slices(self, x: Any, ny: int, nx: int) -> Any:
        """``x`` viewed as ``(n, ny, nx)`` slices, transposed to a C-contiguous ``(n, nx, ny)`` copy."""
        if self.kind == "torch":
            return x.reshape(-1, ny, nx).transpose(1, 2).contiguous()
        if self.kind == "cupy":
            import cupy

            return cupy.ascontiguousarray(x.reshape(-1, ny, nx).transpose(0, 2, 1))
        from numba import cuda

        host = x.copy_to_host().reshape(-1, ny, nx)
        return cuda.to_device(np.ascontiguousarray(host.transpose(0, 2, 1)))

    def stream(self) -> Any:
        """The caller's current stream as a numba-cuda stream (kernels are queued on it, asynchronously)."""
        from numba import cuda

        if self.kind == "torch":
            torch = sys.modules["torch"]
            return cuda.external_stream(torch.cuda.current_stream(self.like.device).cuda_stream)
        if self.kind == "cupy":
            import cupy

            return cuda.external_stream(cupy.cuda.get_current_stream().ptr)
        return cuda.default_stream()


def cached_on_device(owner: Any, library: DeviceLibrary, make: Callable[[DeviceLibrary], Any]) -> Any:
    """``make(library)``, made once per array library and device and kept on ``owner`` (tables, bases)."""
    key = (library.kind, str(getattr(library.like, "device", "")))
    cache = owner.__dict__.setdefault("_device_cache", {})
    if key not in cache:
        cache[key] = make(library)
    return cache[key]


def view(x: Any) -> Any:
    """Zero-copy numba-cuda view of a GPU array.

    Not synchronised with the stream the array names: every kernel is queued
    on the caller's current stream (:meth:`DeviceLibrary.stream`), after the
    work that produced its operands there, so a host-side wait would only cost
    time.
    """
    from numba import cuda

    return cuda.as_cuda_array(x, sync=False)


def check_device_operand(x: Any, name: str, core_shape: tuple[int, ...]) -> Any:
    """Validate a GPU operand like :func:`~pet_projection.arrays.check_operand` does a NumPy one.

    Reads only ``__cuda_array_interface__`` (no copy, no synchronisation).
    """
    if getattr(x, "requires_grad", False):
        raise TypeError(f"{name} requires grad; use pet_projection.autograd (project / back_project / Projector) "
                        "so that gradients flow, or pass x.detach()")
    interface = x.__cuda_array_interface__
    shape = tuple(interface["shape"])
    dtype = np.dtype(interface["typestr"])
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {dtype}")
    n = len(core_shape)
    if len(shape) < n or shape[len(shape) - n:] != tuple(core_shape):
        raise ValueError(f"{name} has shape {shape}, expected (..., {', '.join(map(str, core_shape))}) "
                         f"(any leading batch axes, then {tuple(core_shape)})")
    strides = interface.get("strides")
    if strides is not None and tuple(strides) != _c_strides(shape, dtype.itemsize):
        raise ValueError(f"{name} is not C-contiguous (strides {tuple(strides)}); pass a contiguous copy "
                         "(cupy.ascontiguousarray(x) or x.contiguous())")
    return x


def _c_strides(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    strides = []
    step = itemsize
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))
