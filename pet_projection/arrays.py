"""Array dispatch and validation: NumPy arrays and torch CPU tensors in, the same type out.

torch is never imported here: a tensor can only exist if the caller imported
torch already, so ``sys.modules`` tells whether to look for one.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _torch_tensor_type() -> type | None:
    torch = sys.modules.get("torch")
    return getattr(torch, "Tensor", None)


def to_numpy(x: Any, name: str) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Return a NumPy view of ``x`` and a function that turns a NumPy result into ``x``'s type.

    Raises
    ------
    TypeError
        For anything but a NumPy array or a torch CPU tensor that does not
        require grad (GPU arrays, lists, tensors that need autograd).
    """
    if isinstance(x, np.ndarray):
        return x, _identity
    tensor_type = _torch_tensor_type()
    if tensor_type is not None and isinstance(x, tensor_type):
        if x.device.type != "cpu":
            raise TypeError(f"{name} is a torch tensor on device '{x.device}'; this operator runs on the CPU "
                            "only, so pass a CPU tensor")
        if x.requires_grad:
            raise TypeError(f"{name} requires grad; use pet_projection.autograd (project / back_project / "
                            "Projector) so that gradients flow, or pass x.detach()")
        torch = sys.modules["torch"]
        return x.numpy(), torch.from_numpy
    if hasattr(x, "__cuda_array_interface__"):
        raise TypeError(f"{name} is a GPU array ({type(x).__name__}); this operator runs on the CPU only, "
                        "so copy it to host memory first")
    raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {type(x).__name__}")


def as_host_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a NumPy array for geometry or weights: array_like or a torch CPU tensor (detached)."""
    if isinstance(x, (np.ndarray, list, tuple)) or np.isscalar(x):
        try:
            return np.asarray(x)
        except ValueError:
            raise ValueError(f"{name} is a ragged nested sequence; it must form a rectangular array") from None
    tensor_type = _torch_tensor_type()
    if tensor_type is not None and isinstance(x, tensor_type):
        return to_numpy(x.detach(), name)[0]
    return to_numpy(x, name)[0]


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def check_operand(x: np.ndarray, name: str, core_shape: tuple[int, ...]) -> np.ndarray:
    """Check that ``x`` is a C-contiguous float32/float64 array of shape ``(..., *core_shape)``.

    Raises ``TypeError`` for a wrong dtype and ``ValueError`` for a wrong shape
    or memory layout, naming ``name`` and the expected value.
    """
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype}")
    n = len(core_shape)
    if x.ndim < n or tuple(x.shape[x.ndim - n:]) != tuple(core_shape):
        raise ValueError(f"{name} has shape {tuple(x.shape)}, expected (..., {', '.join(map(str, core_shape))}) "
                         f"(any leading batch axes, then {tuple(core_shape)})")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} is not C-contiguous (strides {x.strides}); pass np.ascontiguousarray(x) "
                         "or x.contiguous()")
    return x
