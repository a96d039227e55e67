"""Linear operators on images and sinograms, with adjoints, composition and norms."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from .arrays import as_host_array, check_operand, to_numpy
from .device import DeviceLibrary, check_device_operand, is_device_array


class LinearOperator(ABC):
    """A linear map from arrays of shape ``(..., *in_shape)`` to ``(..., *out_shape)``.

    Leading axes are batch axes and pass through unchanged. Inputs may be
    NumPy arrays or torch CPU tensors of dtype float32 or float64, C-contiguous;
    the output has the input's type and dtype. Bad input raises ``TypeError``
    (type, dtype, device) or ``ValueError`` (shape, layout) naming the problem.

    Subclasses set ``in_shape`` and ``out_shape`` and implement ``_apply`` and
    ``_adjoint`` on validated NumPy arrays.
    """

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    @abstractmethod
    def _apply(self, x: np.ndarray) -> np.ndarray:
        """Apply to a validated array ``(..., *in_shape)``; return ``(..., *out_shape)``, same dtype."""

    @abstractmethod
    def _adjoint(self, y: np.ndarray) -> np.ndarray:
        """Apply the adjoint to a validated array ``(..., *out_shape)``; return ``(..., *in_shape)``."""

    def _apply_device(self, x: Any) -> Any:
        """Apply to a validated GPU array (CuPy / torch CUDA); return one of the same library and device."""
        raise TypeError(f"{type(self).__name__} has no CUDA implementation yet; pass a host array")

    def _adjoint_device(self, y: Any) -> Any:
        """Adjoint of a validated GPU array; see :meth:`_apply_device`."""
        raise TypeError(f"{type(self).__name__} has no CUDA implementation yet; pass a host array")

    def apply(self, x: Any) -> Any:
        """Forward map of ``x`` with shape ``(..., *in_shape)``."""
        if is_device_array(x):
            return self._apply_device(check_device_operand(x, "input", self.in_shape))
        array, wrap = to_numpy(x, "input")
        return wrap(self._apply(check_operand(array, "input", self.in_shape)))

    def adjoint(self, y: Any) -> Any:
        """Adjoint (transposed) map of ``y`` with shape ``(..., *out_shape)``."""
        if is_device_array(y):
            return self._adjoint_device(check_device_operand(y, "adjoint input", self.out_shape))
        array, wrap = to_numpy(y, "adjoint input")
        return wrap(self._adjoint(check_operand(array, "adjoint input", self.out_shape)))

    def __call__(self, x: Any) -> Any:
        return self.apply(x)

    @property
    def H(self) -> "LinearOperator":
        """The adjoint operator."""
        return AdjointOperator(self)

    def __matmul__(self, other: Any) -> Any:
        """``A @ B`` composes operators (B first); ``A @ x`` applies ``A`` to an array."""
        if isinstance(other, LinearOperator):
            return ComposedOperator(self, other)
        return self.apply(other)

    def norm(self, n_iter: int = 50, rtol: float = 1e-6, seed: int = 0) -> float:
        """Operator 2-norm (largest singular value) by power iteration on ``A^H A`` in float64.

        Stops after ``n_iter`` iterations or when the estimate changes by less
        than ``rtol`` (relative). Deterministic for a given ``seed``.
        """
        x = np.random.default_rng(seed).standard_normal(self.in_shape)
        x /= np.linalg.norm(x)
        estimate = 0.0
        for _ in range(n_iter):
            y = self._adjoint(self._apply(x))
            length = float(np.linalg.norm(y))
            if length == 0.0:
                return 0.0
            x = y / length
            converged = abs(length - estimate) <= rtol * length
            estimate = length
            if converged:
                break
        return math.sqrt(estimate)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(in_shape={self.in_shape}, out_shape={self.out_shape})"


class AdjointOperator(LinearOperator):
    """The adjoint ``A^H`` of an operator ``A`` (``A.H``); its adjoint is ``A`` again."""

    def __init__(self, op: LinearOperator) -> None:
        self.op = op
        self.in_shape = op.out_shape
        self.out_shape = op.in_shape

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return self.op._adjoint(x)

    def _adjoint(self, y: np.ndarray) -> np.ndarray:
        return self.op._apply(y)

    def _apply_device(self, x: Any) -> Any:
        return self.op._adjoint_device(x)

    def _adjoint_device(self, y: Any) -> Any:
        return self.op._apply_device(y)

    @property
    def H(self) -> LinearOperator:
        return self.op


class ComposedOperator(LinearOperator):
    """``outer @ inner``: apply ``inner`` first, then ``outer``."""

    def __init__(self, outer: LinearOperator, inner: LinearOperator) -> None:
        if outer.in_shape != inner.out_shape:
            raise ValueError(f"cannot compose: the left operator takes shape {outer.in_shape} but the right "
                             f"operator gives {inner.out_shape}")
        self.outer = outer
        self.inner = inner
        self.in_shape = inner.in_shape
        self.out_shape = outer.out_shape

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return self.outer._apply(self.inner._apply(x))

    def _adjoint(self, y: np.ndarray) -> np.ndarray:
        return self.inner._adjoint(self.outer._adjoint(y))

    def _apply_device(self, x: Any) -> Any:
        return self.outer._apply_device(self.inner._apply_device(x))

    def _adjoint_device(self, y: Any) -> Any:
        return self.inner._adjoint_device(self.outer._adjoint_device(y))

    def __repr__(self) -> str:
        return f"({self.outer!r} @ {self.inner!r})"


class DiagonalOperator(LinearOperator):
    """Element-wise multiplication by fixed real weights (attenuation, normalisation factors).

    Parameters
    ----------
    weights : array_like
        Finite real weights; ``in_shape = out_shape = weights.shape``. Inputs
        with leading batch axes are multiplied element-wise per batch item. The
        weights are cast to the input's dtype.

    Examples
    --------
    ``DiagonalOperator(attenuation_factors) @ projector`` is the attenuated projector.
    """

    def __init__(self, weights: Any) -> None:
        array = as_host_array(weights, "weights")
        if array.dtype.kind not in "biuf":
            raise TypeError(f"weights must be real numbers, got dtype {array.dtype}")
        if not np.all(np.isfinite(array)):
            raise ValueError("weights must be finite")
        self._weights = {np.dtype(np.float64): np.array(array, dtype=np.float64)}
        self._weights[np.dtype(np.float64)].setflags(write=False)
        self.in_shape = self.out_shape = tuple(array.shape)

    @property
    def weights(self) -> np.ndarray:
        """The weights in float64 (read-only)."""
        return self._weights[np.dtype(np.float64)]

    def _weights_as(self, dtype: np.dtype) -> np.ndarray:
        if dtype not in self._weights:
            self._weights[dtype] = self.weights.astype(dtype)
        return self._weights[dtype]

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return x * self._weights_as(x.dtype)

    _adjoint = _apply

    def _apply_device(self, x: Any) -> Any:
        dtype = np.dtype(x.__cuda_array_interface__["typestr"])
        return x * DeviceLibrary(x).asarray(self._weights_as(dtype))

    _adjoint_device = _apply_device
