"""Image reconstruction: filtered back projection (FBP), MLEM / OSEM and Poisson MAP with total variation (PDHG).

Arrays may be NumPy arrays or torch CPU tensors (CuPy arrays and torch CUDA
tensors go through the operators' device paths); results have the input's
type, dtype and device.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

from .validation import positive_int
from .physics import PETSystemModel, array_namespace, check_counts, numpy_dtype
from .projectors import ParallelBeamProjector

FBP_FILTERS = ("ramp", "shepp-logan", "hann")

# callback(iteration, subset, x): see mlem / osem.
Callback = Callable[[int, Optional[int], Any], None]


# --- filtered back projection -----------------------------------------------------------------

def fbp_filter(n_bins: int, bin_width_mm: float, filter_name: str = "ramp", cutoff: float = 1.0) -> np.ndarray:
    """Frequency response of the FBP filter for sinograms of ``n_bins`` radial bins, in 1/mm.

    The ramp is the DFT of the band-limited ramp's impulse response sampled
    at the bin spacing ``tau`` (Kak & Slaney, Principles of Computerized
    Tomographic Imaging, 1988, ch. 3, eq. 61): ``h(0) = 1 / (4 tau^2)``,
    ``h(n tau) = 0`` for even ``n``, ``-1 / (n pi tau)^2`` for odd ``n``, times
    ``tau`` for the discrete convolution. Unlike a sampled ``|f|`` its DC term
    is not zero, which avoids the DC offset (cupping) of the naive ramp. It is
    applied to the sinogram zero-padded to ``n_padded``, the next power of two
    ``>= 2 n_bins``, so the circular convolution has no wrap-around.

    Parameters
    ----------
    n_bins : int
    bin_width_mm : float
        Radial bin spacing ``tau`` in mm.
    filter_name : {"ramp", "shepp-logan", "hann"}
        Window applied to the ramp: none, ``sinc(f / (2 f_c))`` or
        ``(1 + cos(pi f / f_c)) / 2``, with ``f`` in cycles per bin and
        ``f_c = cutoff / 2``.
    cutoff : float
        Cut-off frequency as a fraction of the Nyquist frequency, in ``(0, 1]``;
        frequencies above it are set to zero.

    Returns
    -------
    ndarray, shape ``(n_padded // 2 + 1,)``
        Real response at the ``numpy.fft.rfftfreq(n_padded)`` frequencies.
    """
    n_bins = positive_int("n_bins", n_bins)
    if filter_name not in FBP_FILTERS:
        raise ValueError(f"filter_name must be one of {FBP_FILTERS}, got {filter_name!r}")
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not 0.0 < cutoff <= 1.0:
        raise ValueError(f"cutoff must be a fraction of the Nyquist frequency in (0, 1], got {cutoff!r}")
    n_padded = max(64, 2 ** math.ceil(math.log2(2 * n_bins)))
    n = np.concatenate([np.arange(0, n_padded // 2 + 1), np.arange(n_padded // 2 - 1, 0, -1)])
    impulse = np.where(n % 2 == 1, -1.0 / (math.pi * np.maximum(n, 1)) ** 2, 0.0)  # h(n tau) tau^2
    impulse[0] = 0.25
    response = np.fft.rfft(impulse).real / bin_width_mm  # tau * DFT(h), with h in 1/tau^2
    f = np.fft.rfftfreq(n_padded)  # cycles per bin, 0 .. 1/2
    f_c = 0.5 * cutoff
    if filter_name == "shepp-logan":
        response *= np.sinc(f / (2.0 * f_c))
    elif filter_name == "hann":
        response *= 0.5 * (1.0 + np.cos(math.pi * f / f_c))
    response[f > f_c] = 0.0
    return response


def fbp(sinogram: Any, projector: ParallelBeamProjector, filter_name: str = "ramp", cutoff: float = 1.0) -> Any:
    """Filtered back projection of parallel-beam sinograms.

    Parameters
    ----------
    sinogram : array, shape ``(..., *projector.out_shape)``
        Line integrals (image units x mm), ``(..., n_views, n_bins)`` for a 2D
        grid or ``(..., nz, n_views, n_bins)`` for a stack of slices; float32 or
        float64 NumPy array or torch tensor (CuPy / torch CUDA also).
    projector : ParallelBeamProjector
        Its views must be uniformly spaced by ``pi / n_views`` (covering half
        a turn, as the default angles do).
    filter_name, cutoff
        See :func:`fbp_filter`.

    Returns
    -------
    array, shape ``(..., *projector.in_shape)``
        The image (same units as the phantom that gave the line integrals), of
        the sinogram's type and dtype.

    Notes
    -----
    ``f(x, y) = (pi / n_views) sum_v Q_v(x cos theta_v + y sin theta_v)`` with
    ``Q_v`` the filtered projection (Kak & Slaney ch. 3, eq. 64). The Joseph
    back projection ``P^T`` spreads each bin over the pixels with total weight
    ``pixel area / bin width`` per pixel and view, so the image is
    ``(pi / n_views) * bin_width / (dx dy) * P^T Q``. A uniform disc of value 1
    reconstructs to about 1 inside.
    """
    if not isinstance(projector, ParallelBeamProjector):
        raise TypeError(f"fbp needs a ParallelBeamProjector, got {type(projector).__name__}; for PET sinograms use "
                        "mlem / osem")
    geometry = projector.geometry
    step = math.pi / geometry.n_views
    if geometry.n_views > 1 and not np.allclose(np.diff(geometry.angles_rad), step, rtol=0.0, atol=1e-9):
        raise ValueError(f"fbp needs views uniformly spaced by pi / n_views = {step:.6g} rad (covering half a turn); "
                         f"the projector's angles_rad run from {geometry.angles_rad[0]:.6g} to "
                         f"{geometry.angles_rad[-1]:.6g} in {geometry.n_views} views")
    xp = array_namespace(sinogram)
    dtype = numpy_dtype(sinogram)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"sinogram must have dtype float32 or float64, got {sinogram.dtype}")
    shape = tuple(sinogram.shape)
    n = len(projector.out_shape)
    if len(shape) < n or shape[len(shape) - n:] != projector.out_shape:
        raise ValueError(f"sinogram has shape {shape}, expected (..., {', '.join(map(str, projector.out_shape))}) "
                         f"for this projector")
    response = fbp_filter(geometry.n_bins, geometry.bin_width_mm, filter_name, cutoff)
    n_padded = 2 * (response.size - 1)
    if xp.__name__ == "torch":
        spectrum = xp.fft.rfft(sinogram, n=n_padded, dim=-1)
        weights = xp.as_tensor(response, dtype=spectrum.real.dtype, device=sinogram.device)
        filtered = xp.fft.irfft(spectrum * weights, n=n_padded, dim=-1)[..., :geometry.n_bins].contiguous()
    else:
        spectrum = xp.fft.rfft(sinogram, n=n_padded, axis=-1)
        filtered = xp.fft.irfft(spectrum * xp.asarray(response), n=n_padded, axis=-1)[..., :geometry.n_bins]
        filtered = xp.ascontiguousarray(filtered.astype(dtype))
    dy, dx = geometry.grid.voxel_size_mm[-2:]
    return projector.adjoint(filtered) * (step * geometry.bin_width_mm / (dx * dy))


# --- MLEM / OSEM -----------------------------------------------------------------------------------

def _initial_image(data: Any, system: PETSystemModel, x0: Any) -> Any:
    """``x0`` validated against ``data`` (same library and dtype, batch + image shape, finite, >= 0), or ones."""
    batch = tuple(data.shape[:len(data.shape) - len(system.out_shape)])
    shape = batch + system.in_shape
    if x0 is None:
        xp = array_namespace(data)
        if xp.__name__ == "torch":
            return data.new_ones(shape)
        return xp.ones(shape, dtype=data.dtype)
    if array_namespace(x0) is not array_namespace(data) or numpy_dtype(x0) != numpy_dtype(data):
        raise TypeError(f"x0 ({type(x0).__name__}, {x0.dtype}) must be of the data's array type and dtype "
                        f"({type(data).__name__}, {data.dtype})")
    if tuple(x0.shape) != shape:
        raise ValueError(f"x0 has shape {tuple(x0.shape)}, expected {shape} (the data's batch axes {batch}, then the "
                         f"image shape {system.in_shape})")
    return check_counts(x0, "x0", system.in_shape)


def _em_update(x: Any, data: Any, system: PETSystemModel, sensitivity: Any) -> Any:
    """One MLEM step ``x / s * A^H(y / ybar)``; see :func:`mlem`."""
    xp = array_namespace(x)
    ybar = system.expected(x)
    ybar = xp.where(ybar == 0, float(np.finfo(numpy_dtype(ybar)).eps), ybar)
    back = system.linear.adjoint(data / ybar)
    positive = sensitivity > 0
    return xp.where(positive, x * back / xp.where(positive, sensitivity, 1.0), 0.0)


def _check_system(system: Any) -> PETSystemModel:
    if not isinstance(system, PETSystemModel):
        raise TypeError(f"system must be a PETSystemModel, got {type(system).__name__}")
    return system


def mlem(data: Any, system: PETSystemModel, n_iterations: int, *, x0: Any = None,
         callback: Optional[Callback] = None) -> Any:
    """Maximum-likelihood expectation maximisation (Shepp & Vardi, IEEE TMI 1:113, 1982).

    Each iteration is the multiplicative update
    ``x <- x / s * A^H(y / ybar)`` with ``ybar = A x + b`` and the sensitivity
    ``s = A^H 1`` (see :class:`~pet_projection.physics.PETSystemModel`). It
    never decreases the Poisson log-likelihood and keeps ``x >= 0``.

    Parameters
    ----------
    data : array, shape ``(..., *system.out_shape)``
        Measured counts ``y``, finite and non-negative (float32/float64; integer
        counts become float64). Leading batch axes reconstruct several data
        sets at once.
    system : PETSystemModel
    n_iterations : int
        At least 1.
    x0 : array, shape ``(..., *system.in_shape)``, optional
        Start image, finite and non-negative, of the data's array type and
        dtype (default ones). Voxels where ``x0 = 0`` stay 0.
    callback : callable, optional
        ``callback(iteration, None, x)`` after every iteration, with the
        0-based iteration number and the current image (do not modify it in
        place). Progress bars belong here (e.g. ``tqdm.update``).

    Returns
    -------
    array, shape ``(..., *system.in_shape)``
        Of the data's type, dtype and device.

    Notes
    -----
    Voxels with zero sensitivity (seen by no bin) are set to 0. Where
    ``ybar == 0`` exactly it is replaced by the dtype's machine epsilon, so
    ``y / ybar`` stays finite (not ``tiny``, whose reciprocal times the counts
    would overflow to inf). A bin with ``y > 0`` but ``ybar = 0`` (zero
    background and an image that is zero along the whole LOR) therefore gives
    a large ratio, but it is back projected only onto voxels that are
    already 0 along that LOR (or have zero weight), and the multiplicative
    update keeps them 0: such counts cannot be explained and are ignored.
    """
    system = _check_system(system)
    n_iterations = positive_int("n_iterations", n_iterations)
    data = check_counts(data, "data", system.out_shape)
    x = _initial_image(data, system, x0)
    sensitivity = system.sensitivity(like=data)
    for iteration in range(n_iterations):
        x = _em_update(x, data, system, sensitivity)
        if callback is not None:
            callback(iteration, None, x)
    return x


def interleaved_views(n_views: int, n_subsets: int) -> list[np.ndarray]:
    """OSEM view subsets: subset ``k`` holds views ``k, k + n_subsets, k + 2 n_subsets, ...``.

    The same order as :meth:`~pet_projection.SinogramLayout.view_subsets`, for any sinogram projector.
    """
    n_subsets = positive_int("n_subsets", n_subsets)
    if n_subsets > n_views:
        raise ValueError(f"n_subsets must be at most the number of views, {n_views}, got {n_subsets}")
    return [np.arange(k, n_views, n_subsets) for k in range(n_subsets)]


def osem(data: Any, system: PETSystemModel, n_subsets: int, n_iterations: int, *, x0: Any = None,
         callback: Optional[Callback] = None) -> Any:
    """Ordered-subsets EM (Hudson & Larkin, IEEE TMI 13:601, 1994).

    One iteration runs the MLEM update of :func:`mlem` on each view subset in
    turn (subset ``k`` = views ``k, k + n_subsets, ...``, see
    :func:`interleaved_views`), each with its own system model
    (``system.view_subset``), data (``system.select_views``) and sensitivity.
    ``n_iterations`` OSEM iterations cost about as much as ``n_iterations``
    MLEM iterations and, in early iterations, approximate MLEM with
    ``n_subsets * n_iterations`` iterations. OSEM does not converge to the
    maximum-likelihood image with noisy data (it cycles between subsets).

    Parameters
    ----------
    data, system, x0
        As for :func:`mlem`; the system's projector must have ``view_subset``
        and ``view_axis`` unless ``n_subsets == 1`` (plain MLEM).
    n_subsets : int
        1 .. number of views.
    n_iterations : int
        At least 1.
    callback : callable, optional
        ``callback(iteration, subset, x)`` after every subset update, with the
        0-based iteration and subset numbers (``n_iterations * n_subsets``
        calls); do not modify ``x`` in place.

    Returns
    -------
    array, shape ``(..., *system.in_shape)``
    """
    system = _check_system(system)
    n_subsets = positive_int("n_subsets", n_subsets)
    n_iterations = positive_int("n_iterations", n_iterations)
    data = check_counts(data, "data", system.out_shape)
    x = _initial_image(data, system, x0)
    if n_subsets == 1:
        subsets = [(system, data)]
    else:
        views = interleaved_views(system.out_shape[system.view_axis], n_subsets)
        subsets = [(system.view_subset(v), system.select_views(data, v)) for v in views]
    sensitivities = [subsystem.sensitivity(like=data) for subsystem, _ in subsets]
    for iteration in range(n_iterations):
        for k, ((subsystem, subdata), sensitivity) in enumerate(zip(subsets, sensitivities)):
            x = _em_update(x, subdata, subsystem, sensitivity)
            if callback is not None:
                callback(iteration, k, x)
    return x


# --- MAP with total variation (PDHG) ----------------------------------------------------------------

def _gradient(x: Any, ndim: int) -> Any:
    """Forward differences of ``x`` along its last ``ndim`` axes, shape ``(ndim, *x.shape)`` (0 at the far edge)."""
    xp = array_namespace(x)
    g = xp.zeros((ndim,) + tuple(x.shape), dtype=x.dtype)
    for k in range(ndim):
        low, high = _edge_slices(x.ndim, x.ndim - ndim + k)
        g[k][low] = x[high] - x[low]
    return g


def _divergence(q: Any, ndim: int) -> Any:
    """``-(gradient)^T q`` for ``q`` of shape ``(ndim, *image shape)``."""
    xp = array_namespace(q)
    d = xp.zeros(tuple(q.shape[1:]), dtype=q.dtype)
    for k in range(ndim):
        low, high = _edge_slices(d.ndim, d.ndim - ndim + k)
        d[low] += q[k][low]
        d[high] -= q[k][low]
    return d


def _edge_slices(n_axes: int, axis: int) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Index tuples selecting all but the last (``low``) and all but the first (``high``) entry along ``axis``."""
    low = [slice(None)] * n_axes
    high = [slice(None)] * n_axes
    low[axis], high[axis] = slice(None, -1), slice(1, None)
    return tuple(low), tuple(high)


def map_tv(data: Any, system: PETSystemModel, beta: float, n_iterations: int, *, x0: Any = None,
           gamma: Optional[float] = None, callback: Optional[Callback] = None) -> Any:
    """Poisson maximum a posteriori image with a total-variation prior, by preconditioned PDHG.

    Minimises ``sum(ybar - y log ybar) + beta * TV(x)`` over ``x >= 0``, with
    ``ybar = A x + b`` (see :class:`~pet_projection.physics.PETSystemModel`)
    and the isotropic total variation ``TV(x) = sum_j |grad x|_j`` of forward
    differences between neighbouring voxels along every image axis (no mm
    scaling; zero across the far edge). The solver is the primal-dual hybrid
    gradient method of Chambolle & Pock (J. Math. Imaging Vis. 40:120, 2011)
    with their diagonal preconditioning (Pock & Chambolle, ICCV 2011), as used
    for PET by Ehrhardt et al. (SIAM J. Imaging Sci. 12:1357, 2019): per-bin
    dual steps ``gamma / (A 1)``, per-voxel primal steps
    ``1 / (gamma (A^H 1 + 2 d))`` for ``d`` image axes. It converges for any
    ``gamma > 0``; ``gamma`` only sets the speed.

    Parameters
    ----------
    data : array, shape ``(..., *system.out_shape)``
        Measured counts ``y``, finite and non-negative (NumPy or CuPy; float32
        or float64, integer counts become float64). Leading batch axes
        reconstruct several data sets at once, each with its own TV.
    system : PETSystemModel
    beta : float
        Weight of the TV term, >= 0, in counts per image unit (``beta = 0``
        gives the maximum-likelihood image, slowly). It scales with the counts:
        tune it on data at the count level it will serve.
    n_iterations : int
        PDHG iterations, at least 1 (each one forward and one back projection).
    x0 : array, shape ``(..., *system.in_shape)``, optional
        Start image, finite and non-negative, of the data's array type and
        dtype (default: the uniform image whose expected counts match the data's).
    gamma : float, optional
        Primal-dual balance, > 0 (default ``1 / mean(x0)`` for each data set:
        the inverse image scale, which keeps the number of iterations needed
        roughly independent of the image units).
    callback : callable, optional
        ``callback(iteration, None, x)`` after every iteration, as for :func:`mlem`.

    Returns
    -------
    array, shape ``(..., *system.in_shape)``
        Of the data's type, dtype and device.

    Notes
    -----
    Bins that no voxel reaches (``A 1 = 0``) are left out. Voxels that no bin
    sees are set by the TV term alone. Torch tensors are refused; pass
    ``tensor.numpy()`` (CPU) or a CuPy view (``cupy.from_dlpack``).
    """
    system = _check_system(system)
    n_iterations = positive_int("n_iterations", n_iterations)
    beta = float(beta)
    if not math.isfinite(beta) or beta < 0.0:
        raise ValueError(f"beta must be finite and >= 0, got {beta}")
    data = check_counts(data, "data", system.out_shape)
    xp = array_namespace(data)
    if xp.__name__ == "torch":
        raise TypeError("map_tv takes NumPy or CuPy arrays, not torch tensors (pass tensor.numpy() or a CuPy view)")
    ndim = len(system.in_shape)
    dtype = data.dtype
    rows = system.linear.apply(xp.ones(system.in_shape, dtype=dtype))
    background = system.expected(xp.zeros(system.in_shape, dtype=dtype))
    if x0 is None:
        scale = xp.maximum(data.sum(axis=tuple(range(-len(system.out_shape), 0))) - float(background.sum()), 0.0)
        level = scale / max(float(rows.sum()), float(np.finfo(np.float64).tiny))
        x = xp.ones(tuple(data.shape[:data.ndim - len(system.out_shape)]) + system.in_shape, dtype=dtype)
        x = x * xp.reshape(level, level.shape + (1,) * ndim)
    else:
        x = _initial_image(data, system, x0).copy()
    batch = tuple(x.shape[:x.ndim - ndim])
    if gamma is None:  # per data set: 1 / mean(x0), or 1 where x0 is 0
        level = x.mean(axis=tuple(range(len(batch), x.ndim))) if batch else x.mean()
        gamma_items = xp.where(level > 0, 1.0 / xp.where(level > 0, level, 1.0), 1.0).astype(dtype)
    else:
        gamma = float(gamma)
        if not math.isfinite(gamma) or gamma <= 0.0:
            raise ValueError(f"gamma must be finite and > 0, got {gamma}")
        gamma_items = xp.full(batch, gamma, dtype=dtype)
    gamma_image = xp.reshape(gamma_items, batch + (1,) * ndim)
    gamma_data = xp.reshape(gamma_items, batch + (1,) * len(system.out_shape))
    sigma = xp.where(rows > 0, gamma_data / xp.where(rows > 0, rows, 1.0), 0.0).astype(dtype)
    tau = (1.0 / (gamma_image * (system.sensitivity(like=data) + 2.0 * ndim))).astype(dtype)
    p = xp.zeros(data.shape, dtype=dtype)
    q = xp.zeros((ndim,) + tuple(x.shape), dtype=dtype)
    x_bar = x
    for iteration in range(n_iterations):
        # data term: prox of the Poisson conjugate, sigma-scaled per bin, shifted by the background
        z = p + sigma * (system.linear.apply(x_bar) + background)
        p = xp.where(sigma > 0, 1.0 - 0.5 * ((1.0 - z) + xp.sqrt((1.0 - z) ** 2 + 4.0 * sigma * data)), 0.0)
        # TV term: projection onto the ball of radius beta, voxel by voxel
        q = q + (gamma_image / 2.0) * _gradient(x_bar, ndim)
        q = q / xp.maximum(1.0, xp.sqrt((q * q).sum(axis=0)) / beta) if beta > 0 else q * 0.0
        x_new = xp.maximum(x - tau * (system.linear.adjoint(p) - _divergence(q, ndim)), 0.0)
        x_bar = 2.0 * x_new - x
        x = x_new
        if callback is not None:
            callback(iteration, None, x)
    return x
