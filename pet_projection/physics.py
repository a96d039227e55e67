"""PET system-model physics: attenuation, normalisation, background (randoms + scatter) and resolution.

The mean of the measured counts is modelled as (see e.g. Qi & Leahy, Phys Med
Biol 51:R541, 2006, eq. 1)::

    ybar = A x + b,    A = diag(a * n) P R

with ``P`` a sinogram projector (line integrals, image units x mm), ``R`` an
image-domain resolution model (:class:`GaussianResolution`), ``a`` attenuation
factors ``exp(-integral of mu)`` (:func:`attenuation_factors`), ``n``
normalisation (detector efficiency) factors and ``b`` additive expected counts
(randoms + scatter). :class:`PETSystemModel` holds all of them; the maths is
written with array operators and element-wise arithmetic, so NumPy arrays,
torch tensors (CPU, and CUDA through the operators' device paths) and CuPy
arrays all work, and results have the input's type, dtype and device.
"""

from __future__ import annotations

import math
import sys
from types import ModuleType
from typing import Any, Optional, Sequence

import numpy as np
from scipy import ndimage

from .arrays import as_host_array
from .device import DeviceLibrary
from .grid import ImageGrid, as_float_tuple
from .operators import DiagonalOperator, LinearOperator
from .projectors import check_views

# Gaussian kernels are cut at this many standard deviations (scipy.ndimage.gaussian_filter's
# default truncate=4.0); the weight left outside is erfc(4 / sqrt(2)) = 6.3e-5 of the total.
TRUNCATE_SIGMAS = 4.0
# FWHM = 2 sqrt(2 ln 2) sigma for a Gaussian.
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


# --- arrays of any library --------------------------------------------------------------------

def array_namespace(x: Any) -> ModuleType:
    """The array library of ``x``: ``numpy``, ``torch`` or ``cupy`` (``TypeError`` for anything else).

    Their element-wise functions used here (``exp``, ``log``, ``where``,
    ``isfinite``) share names and meaning, so code written against the
    returned module works for all three.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return torch
    if isinstance(x, np.ndarray):
        return np
    if type(x).__module__.split(".")[0] == "cupy":
        return sys.modules["cupy"]
    raise TypeError(f"expected a NumPy array, torch tensor or CuPy array, got {type(x).__name__}")


def numpy_dtype(x: Any) -> np.dtype:
    """``x.dtype`` as a NumPy dtype (torch dtypes map by name, ``torch.float32`` -> ``float32``)."""
    return np.dtype(str(x.dtype).replace("torch.", ""))


def _host_float64(values: Any, name: str) -> np.ndarray:
    """``values`` (array_like, torch tensor on any device, CuPy array) as a float64 NumPy array."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(values, torch.Tensor):
        values = values.detach().cpu()
    elif type(values).__module__.split(".")[0] == "cupy":
        values = values.get()
    array = as_host_array(values, name)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return np.array(array, dtype=np.float64)


class _Constant:
    """A fixed float64 host array, handed out in the library, device and dtype of another array (cached)."""

    def __init__(self, host: np.ndarray) -> None:
        self.host = host
        self._copies: dict[tuple[str, str, np.dtype], Any] = {}

    def like(self, x: Any) -> Any:
        xp = array_namespace(x)
        dtype = numpy_dtype(x)
        key = (xp.__name__, str(getattr(x, "device", "cpu")), dtype)
        if key not in self._copies:
            values = self.host.astype(dtype)
            self._copies[key] = values if xp is np else DeviceLibrary(x).asarray(values)
        return self._copies[key]


def _ones_like(like: Any, shape: tuple[int, ...]) -> Any:
    """Ones of ``shape`` in ``like``'s library, device and dtype."""
    xp = array_namespace(like)
    if xp is np:
        return np.ones(shape, dtype=like.dtype)
    if xp.__name__ == "torch":
        return like.new_ones(shape)
    with like.device:
        return xp.ones(shape, dtype=like.dtype)


def _sum_trailing(values: Any, n_axes: int) -> Any:
    """Sum over the last ``n_axes`` axes in float64: a Python float without batch axes, else an array."""
    xp = array_namespace(values)
    axes = tuple(range(-n_axes, 0))
    if xp.__name__ == "torch":
        total = values.sum(dim=axes, dtype=xp.float64)
        return float(total) if total.ndim == 0 else total
    total = values.sum(axis=axes, dtype=np.float64)
    return float(total) if total.ndim == 0 else total


def check_counts(data: Any, name: str, core_shape: tuple[int, ...]) -> Any:
    """Validate measured counts: a float32/float64 array of shape ``(..., *core_shape)``, finite and >= 0.

    Integer counts are converted to float64 (in the same library). Returns the
    validated (possibly converted) array; raises ``TypeError``/``ValueError``
    naming ``name`` otherwise.
    """
    xp = array_namespace(data)
    if numpy_dtype(data).kind in "iub":
        data = data.to(xp.float64) if xp.__name__ == "torch" else data.astype(np.float64)
    if numpy_dtype(data) not in (np.float32, np.float64):
        raise TypeError(f"{name} must have dtype float32 or float64 (or integer counts), got {data.dtype}")
    shape = tuple(data.shape)
    n = len(core_shape)
    if len(shape) < n or shape[len(shape) - n:] != tuple(core_shape):
        raise ValueError(f"{name} has shape {shape}, expected (..., {', '.join(map(str, core_shape))}) "
                         f"(any leading batch axes, then {tuple(core_shape)})")
    if not bool(xp.isfinite(data).all()):
        raise ValueError(f"{name} must be finite")
    if bool((data < 0).any()):
        raise ValueError(f"{name} must be non-negative, got a minimum of {float(data.min())}")
    return data


# --- attenuation ---------------------------------------------------------------------------

def attenuation_factors(projector: LinearOperator, mu_map_per_mm: Any) -> Any:
    """Attenuation factors ``exp(-P mu)`` of every projector bin, values in ``(0, 1]``.

    Parameters
    ----------
    projector : LinearOperator
        A projector whose values are line integrals in image units x mm
        (:class:`~pet_projection.ParallelBeamProjector`,
        :class:`~pet_projection.PETSinogramProjector`, :class:`~pet_projection.LORProjector`).
        For a TOF system, pass the non-TOF projector and use ``factors[..., None]``.
    mu_map_per_mm : array, shape ``(..., *projector.in_shape)``
        Linear attenuation coefficients in 1/mm (water at 511 keV: 0.0096 /mm,
        Hubbell & Seltzer, NIST XCOM), finite and non-negative; NumPy array or
        torch tensor (CuPy / torch CUDA through the projector's device path).

    Returns
    -------
    array, shape ``(..., *projector.out_shape)``
        ``exp(-integral of mu along each LOR)``, of the input's type and dtype.
    """
    if not isinstance(projector, LinearOperator):
        raise TypeError(f"projector must be a LinearOperator, got {type(projector).__name__}")
    xp = array_namespace(mu_map_per_mm)
    if not bool(xp.isfinite(mu_map_per_mm).all()):
        raise ValueError("mu_map_per_mm must be finite")
    if bool((mu_map_per_mm < 0).any()):
        raise ValueError(f"mu_map_per_mm must be non-negative (1/mm), got a minimum of {float(mu_map_per_mm.min())}")
    return xp.exp(-projector(mu_map_per_mm))


# --- resolution --------------------------------------------------------------------------------

def gaussian_kernel(sigma_voxels: float) -> np.ndarray:
    """Symmetric Gaussian samples ``exp(-k^2 / (2 sigma^2))``, ``|k| <= round(TRUNCATE_SIGMAS sigma)``, summing to 1.

    ``sigma_voxels = 0`` gives ``[1.0]`` (the identity).
    """
    radius = int(TRUNCATE_SIGMAS * sigma_voxels + 0.5)
    if radius == 0:
        return np.ones(1)
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (k / sigma_voxels) ** 2)
    return kernel / kernel.sum()


class GaussianResolution(LinearOperator):
    """Separable Gaussian blur of images: a shift-invariant model of the scanner's resolution.

    Parameters
    ----------
    grid : ImageGrid
        2D or 3D grid; the operator maps images ``(..., *grid.shape)`` to the same shape.
    fwhm_mm : float or sequence of float
        Full width at half maximum in mm, one per image axis in the order of
        ``grid.shape`` (``(fy, fx)`` or ``(fz, fy, fx)``); a scalar is isotropic.
        0 on an axis leaves that axis untouched. (For scale: about 4-5 mm in
        the centre of clinical whole-body scanners, NEMA NU 2 measurements,
        e.g. van Sluis et al., J Nucl Med 60:1031, 2019.)

    Notes
    -----
    Along each axis the image is correlated with :func:`gaussian_kernel` of
    ``sigma = fwhm / (2 sqrt(2 ln 2)) / voxel_size`` voxels: the Gaussian sampled
    at the voxel centres, truncated at ``TRUNCATE_SIGMAS`` = 4 sigma and
    normalised to sum 1 (so mass is preserved away from the edges). Outside the
    grid the image is taken as zero (``mode="constant"``), so mass near the edges
    leaves the grid and the matrix is symmetric: the adjoint equals the forward
    map exactly. Sampling the Gaussian at voxel centres represents the FWHM well
    for ``sigma`` of about a voxel or more; narrower kernels are sharper than
    a continuous Gaussian blurred by the voxel.

    NumPy arrays and torch CPU tensors use ``scipy.ndimage.correlate1d``; torch
    CUDA tensors use ``torch.nn.functional.conv1d`` and CuPy arrays
    ``cupyx.scipy.ndimage.correlate1d``.
    """

    def __init__(self, grid: ImageGrid, fwhm_mm: float | Sequence[float]) -> None:
        if not isinstance(grid, ImageGrid):
            raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
        fwhm = as_float_tuple("fwhm_mm", fwhm_mm, grid.ndim)
        if min(fwhm) < 0:
            raise ValueError(f"fwhm_mm must be non-negative (0 = no blur on that axis), got {fwhm}")
        self.grid = grid
        self.fwhm_mm = fwhm
        self.in_shape = self.out_shape = grid.shape
        self.sigma_voxels = tuple(f / FWHM_PER_SIGMA / d for f, d in zip(fwhm, grid.voxel_size_mm))
        # (axis counted from the end, kernel) for every axis that is blurred
        kernels = [(axis - grid.ndim, gaussian_kernel(s)) for axis, s in enumerate(self.sigma_voxels)]
        self.kernels = tuple((axis, kernel) for axis, kernel in kernels if kernel.size > 1)

    def _apply(self, x: np.ndarray) -> np.ndarray:
        out = x.copy()  # a new array also when no axis is blurred
        for axis, kernel in self.kernels:
            out = ndimage.correlate1d(out, kernel.astype(x.dtype), axis=axis, mode="constant", cval=0.0)
        return out

    _adjoint = _apply

    def _apply_device(self, x: Any) -> Any:
        xp = array_namespace(x)
        if xp.__name__ == "torch":
            out = x.clone()
            for axis, kernel in self.kernels:
                out = _correlate_torch(out, kernel, axis)
            return out.contiguous()
        if xp.__name__ == "cupy":
            from cupyx.scipy import ndimage as cupy_ndimage

            out = x.copy()
            for axis, kernel in self.kernels:
                out = cupy_ndimage.correlate1d(out, xp.asarray(kernel, dtype=x.dtype), axis=axis, mode="constant",
                                               cval=0.0)
            return xp.ascontiguousarray(out)
        raise TypeError(f"GaussianResolution runs on CuPy arrays and torch CUDA tensors, got {type(x).__name__}")

    _adjoint_device = _apply_device

    def __repr__(self) -> str:
        return f"GaussianResolution(grid={self.grid!r}, fwhm_mm={self.fwhm_mm})"


def _correlate_torch(x: Any, kernel: np.ndarray, axis: int) -> Any:
    """``correlate1d(x, kernel, axis, mode="constant")`` for a torch tensor (odd, centred kernel)."""
    torch = sys.modules["torch"]
    moved = x.movedim(axis, -1)
    shape = moved.shape
    weights = torch.as_tensor(kernel, dtype=x.dtype, device=x.device).reshape(1, 1, -1)
    out = torch.nn.functional.conv1d(moved.reshape(-1, 1, shape[-1]), weights, padding=(kernel.size - 1) // 2)
    return out.reshape(shape).movedim(-1, axis)


# --- the system model ----------------------------------------------------------------------------

class BroadcastDiagonalOperator(DiagonalOperator):
    """:class:`~pet_projection.DiagonalOperator` on arrays of ``shape``, with weights that broadcast to it.

    Parameters
    ----------
    weights : array_like
        Finite real weights whose shape broadcasts to ``shape`` (NumPy rules,
        at most ``len(shape)`` axes): e.g. non-TOF factors ``(..., 1)`` for a
        TOF sinogram ``(..., n_tof)``. Only the weights are stored, never an
        array of ``shape``.
    shape : tuple of int
        ``in_shape = out_shape``.
    """

    def __init__(self, weights: Any, shape: Sequence[int]) -> None:
        super().__init__(weights)
        shape = tuple(int(n) for n in shape)
        if not _broadcasts_to(self.weights.shape, shape):
            raise ValueError(f"weights of shape {self.weights.shape} do not broadcast to shape {shape}")
        self.in_shape = self.out_shape = shape
        self._device_weights = _Constant(self.weights)

    def _apply_device(self, x: Any) -> Any:
        return x * self._device_weights.like(x)

    _adjoint_device = _apply_device


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    if len(shape) > len(target):
        return False
    return all(n in (1, m) for n, m in zip(reversed(shape), reversed(target)))


def _factor(name: str, values: Any, out_shape: tuple[int, ...]) -> Optional[np.ndarray]:
    """Validated read-only float64 factor array (finite, >= 0, broadcasting to ``out_shape``), or None."""
    if values is None:
        return None
    array = _host_float64(values, name)
    if not _broadcasts_to(array.shape, out_shape):
        raise ValueError(f"{name} has shape {array.shape}, which does not broadcast to the projector's out_shape "
                         f"{out_shape} (for a TOF projector pass non-TOF factors as factors[..., None])")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    if array.size and array.min() < 0:
        raise ValueError(f"{name} must be non-negative, got a minimum of {array.min()}")
    array.setflags(write=False)
    return array


class PETSystemModel:
    """Expected PET counts ``ybar = diag(a * n) P R x + b`` of an activity image ``x``.

    Parameters
    ----------
    projector : LinearOperator
        Sinogram or LOR projector ``P`` (line integrals, image units x mm):
        :class:`~pet_projection.ParallelBeamProjector`,
        :class:`~pet_projection.PETSinogramProjector`,
        :class:`~pet_projection.LORProjector`, or a TOF projector whose
        ``out_shape`` is the non-TOF shape + ``(n_tof,)``.
    attenuation : array_like, optional
        Attenuation factors ``a = exp(-P mu)`` in ``[0, 1]`` (see
        :func:`attenuation_factors`; not their inverse, the correction factors),
        finite, non-negative, broadcasting to ``projector.out_shape``
        (non-TOF factors ``[..., None]`` serve a TOF projector).
    normalisation : array_like, optional
        Multiplicative detector-efficiency / geometric factors ``n`` (counts per
        unit of attenuated line integral), finite, non-negative, broadcasting
        to ``projector.out_shape``.
    background : array_like, optional
        Additive expected counts ``b`` (randoms + scatter), finite,
        non-negative, broadcasting to ``projector.out_shape``.
    resolution : LinearOperator, optional
        Image-domain resolution model ``R`` applied before projecting
        (:class:`GaussianResolution`), mapping ``projector.in_shape`` to itself.

    Notes
    -----
    ``linear`` is the matched operator ``A = diag(a * n) P R`` (its adjoint is
    exact). Factors are stored once in float64 in their own (broadcastable)
    shape and converted to an operand's library, device and dtype on first use
    (cached). Operands may carry leading batch axes. Array arguments may be
    NumPy arrays or torch tensors (also CuPy); results have the operand's type.
    """

    def __init__(self, projector: LinearOperator, *, attenuation: Any = None, normalisation: Any = None,
                 background: Any = None, resolution: Optional[LinearOperator] = None) -> None:
        if not isinstance(projector, LinearOperator):
            raise TypeError(f"projector must be a LinearOperator, got {type(projector).__name__}")
        out_shape = tuple(projector.out_shape)
        self.projector = projector
        self.attenuation = _factor("attenuation", attenuation, out_shape)
        self.normalisation = _factor("normalisation", normalisation, out_shape)
        self.background = _factor("background", background, out_shape)
        if resolution is not None:
            if not isinstance(resolution, LinearOperator):
                raise TypeError(f"resolution must be a LinearOperator, got {type(resolution).__name__}")
            if resolution.in_shape != projector.in_shape or resolution.out_shape != projector.in_shape:
                raise ValueError(f"resolution must map the projector's image shape {projector.in_shape} to itself, "
                                 f"got in_shape {resolution.in_shape}, out_shape {resolution.out_shape}")
        self.resolution = resolution
        linear = projector if resolution is None else projector @ resolution
        factors = [f for f in (self.attenuation, self.normalisation) if f is not None]
        if factors:
            linear = BroadcastDiagonalOperator(math.prod(factors), out_shape) @ linear
        self.linear: LinearOperator = linear
        self._background = None if self.background is None else _Constant(self.background)

    @property
    def in_shape(self) -> tuple[int, ...]:
        """Image shape ``(*grid.shape)``."""
        return tuple(self.projector.in_shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Data (sinogram / LOR) shape."""
        return tuple(self.projector.out_shape)

    @property
    def view_axis(self) -> int:
        """Index of the view axis in ``out_shape`` (``TypeError`` if the projector has none)."""
        axis = getattr(self.projector, "view_axis", None)
        if axis is None:
            raise TypeError(f"{type(self.projector).__name__} has no view axis (view_axis), so it has no view "
                            "subsets; use a sinogram projector such as ParallelBeamProjector or PETSinogramProjector")
        return int(axis)

    def expected(self, x: Any) -> Any:
        """Mean counts ``A x + b``, shape ``(..., *out_shape)``, of ``x`` with shape ``(..., *in_shape)``."""
        ybar = self.linear.apply(x)
        if self._background is not None:
            ybar = ybar + self._background.like(ybar)
        return ybar

    def sensitivity(self, dtype: Any = np.float64, *, like: Any = None) -> Any:
        """Sensitivity image ``A^H 1``, shape ``in_shape``.

        Parameters
        ----------
        dtype : numpy dtype, optional
            float32 or float64 (default) for a NumPy result.
        like : array, optional
            If given, the result takes ``like``'s library, device and dtype
            (``dtype`` is then not used).
        """
        if like is None:
            like = np.empty(0, dtype=np.dtype(dtype))
        return self.linear.adjoint(_ones_like(like, self.out_shape))

    def log_likelihood(self, data: Any, x: Any) -> Any:
        """Poisson log-likelihood ``sum(y log(ybar) - ybar)`` of ``data`` (``y``) given the image ``x``.

        The ``-log(y!)`` term, which does not depend on ``x``, is dropped.
        Bins with ``y = 0`` contribute ``-ybar``; a bin with ``y > 0`` and
        ``ybar = 0`` makes the result ``-inf`` (data impossible under the model).
        Summed in float64 over the data axes: a Python float, or an array of
        the batch shape when ``data`` has leading batch axes.
        """
        y = check_counts(data, "data", self.out_shape)
        ybar = self.expected(x)
        xp = array_namespace(ybar)
        if xp is not array_namespace(y):
            raise TypeError(f"data ({type(data).__name__}) and x ({type(x).__name__}) must be arrays of one library")
        with np.errstate(divide="ignore"):
            terms = y * xp.log(xp.where(y > 0, ybar, 1.0)) - ybar
        return _sum_trailing(terms, len(self.out_shape))

    def select_views(self, data: Any, views: Any) -> Any:
        """``data`` (shape ``(..., *out_shape)``) restricted to the views ``views``, in that order.

        NumPy (``np.take``), torch (``torch.index_select``) and CuPy arrays;
        the result is C-contiguous and fits ``self.view_subset(views)``.
        """
        views = check_views(views, self.out_shape[self.view_axis])
        shape = tuple(data.shape)
        n = len(self.out_shape)
        if len(shape) < n or shape[len(shape) - n:] != self.out_shape:
            raise ValueError(f"data has shape {shape}, expected (..., {', '.join(map(str, self.out_shape))})")
        axis = len(shape) - n + self.view_axis
        xp = array_namespace(data)
        if xp.__name__ == "torch":
            return xp.index_select(data, axis, xp.as_tensor(views, device=data.device))
        return xp.ascontiguousarray(xp.take(data, xp.asarray(views), axis=axis))

    def view_subset(self, views: Any) -> "PETSystemModel":
        """The system model of the views ``views`` only (an OSEM subset), in that order.

        Uses ``projector.view_subset(views)``; factor and background arrays are
        taken along the view axis (arrays with a size-1 or missing view axis
        are kept, as they broadcast). Data for it is :meth:`select_views`.
        """
        view_subset = getattr(self.projector, "view_subset", None)
        if view_subset is None:
            raise TypeError(f"{type(self.projector).__name__} has no view_subset(views); OSEM subsets need a "
                            "sinogram projector such as ParallelBeamProjector or PETSinogramProjector")
        views = check_views(views, self.out_shape[self.view_axis])
        axis = self.view_axis - len(self.out_shape)  # counted from the end, as factors broadcast from the right

        def subset(values: Optional[np.ndarray]) -> Optional[np.ndarray]:
            if values is None or values.ndim < -axis or values.shape[axis] == 1:
                return values
            return np.take(values, views, axis=axis)

        return PETSystemModel(view_subset(views), attenuation=subset(self.attenuation),
                              normalisation=subset(self.normalisation), background=subset(self.background),
                              resolution=self.resolution)

    def __repr__(self) -> str:
        parts = [f"projector={self.projector!r}"]
        for name in ("attenuation", "normalisation", "background"):
            values = getattr(self, name)
            if values is not None:
                parts.append(f"{name}=<{values.shape}>")
        if self.resolution is not None:
            parts.append(f"resolution={self.resolution!r}")
        return f"PETSystemModel({', '.join(parts)})"
