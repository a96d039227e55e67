"""CUDA kernels (numba-cuda) for the parallel-beam projector, compiled from the maths of :mod:`.joseph`.

Imported only when a GPU array is projected (never at ``import pet_projection``).
Under ``NUMBA_ENABLE_CUDASIM=1`` the same kernels run on the CPU in Numba's
CUDA simulator, which is how CI tests them on machines without a GPU.

- Forward: one thread per ray ``(slice, view, bin)``, walking the planes of its
  view that it meets (:func:`~.joseph.edge_and_inner_range`) in increasing
  order, interpolating at :func:`~.joseph.plane_position` (without bounds
  checks on the inner planes).
- Back: one thread per voxel ``(slice, i, j)`` *gathering* from the rays that
  sample it: for every view, the few bins whose crossing of the voxel's plane
  lies within one voxel of it (found by multiplying with the table's
  ``1 / per_bin``, no division), with exactly the forward's position
  expression and weights. Each voxel is written once by one thread, so there are no
  atomics, the result is the exact transpose of the forward, and it is
  bitwise reproducible; sums are accumulated in float64.

The view constants come from the CPU's table of
:func:`~.joseph.parallel_beam_view` (``n_views x 6`` numbers), so CPU and GPU
share every formula.

Segments (``LORProjector``, ``ListmodeProjector``, ``PETSinogramProjector``,
with or without TOF): one thread per ray through :func:`~.joseph.project_ray`
and :func:`~.joseph.back_project_ray`, the very functions the CPU drivers call,
given the projector's ray set and TOF bins (named tuples whose arrays are on
the device). The back projection scatters with atomic adds into an int64
*fixed-point* accumulator: integer addition is associative, so the result does
not depend on the order in which threads add, and the bits are the same on
every run. The ray values are first multiplied by a power of two (exact) chosen
per call so that no voxel sum can overflow (see :func:`fixed_point_scale`); the
quantisation error of each contribution is below ``2**-62 * n_rays * max|y| *
max step`` in absolute terms.
"""

from __future__ import annotations

import math

import numpy as np
from numba import config, cuda

from .joseph import (back_project_ray, edge_and_inner_range, interpolate_edge, interpolate_inner, plane_position,
                     project_ray, scatter_add)

if not config.ENABLE_CUDASIM:  # the simulator runs the locked Python scatter_add instead
    from numba.cuda.extending import overload

    @overload(scatter_add, target="cuda")
    def _scatter_add_cuda(array, index, value):
        def atomic_fixed_point_add(array, index, value):
            cuda.atomic.add(array, index, np.int64(round(value)))
        return atomic_fixed_point_add

# The simulator runs every thread of a block as a Python thread: small blocks keep its tiny test launches quick.
THREADS_PER_BLOCK = 32 if config.ENABLE_CUDASIM else 256


@cuda.jit
def _parallel_beam_forward(slices, transposed, table, out):
    n_slices, n_views, n_bins = out.shape
    w = cuda.grid(1)
    if w >= n_slices * n_views * n_bins:
        return
    n = w // (n_views * n_bins)
    v = (w // n_bins) % n_views
    b = w % n_bins
    a0, per_plane, per_bin, step_mm = table[v, 1], table[v, 2], table[v, 3], table[v, 4]
    planes = transposed[n] if table[v, 0] != 0.0 else slices[n]
    n_planes, n_along = planes.shape
    # the planes this ray meets, in increasing t (the order of the sum), the inner ones without bounds checks
    first, inner_first, inner_last, last = edge_and_inner_range(a0 + b * per_bin, per_plane, n_along, n_planes)
    acc = 0.0
    for t in range(first, inner_first):
        acc += interpolate_edge(planes[t], plane_position(a0, per_plane, per_bin, t, b), n_along)
    for t in range(inner_first, inner_last + 1):
        acc += interpolate_inner(planes[t], plane_position(a0, per_plane, per_bin, t, b))
    for t in range(inner_last + 1, last + 1):
        acc += interpolate_edge(planes[t], plane_position(a0, per_plane, per_bin, t, b), n_along)
    out[n, v, b] = acc * step_mm


# Bins are searched this far (in bins) beyond the interval where a ray's weight on a voxel is non-zero, far more
# than the rounding of the search itself; the exact forward expression then decides.
_BIN_SEARCH_MARGIN = 1e-6


@cuda.jit
def _parallel_beam_back(sinograms, table, slices):
    n_slices, ny, nx = slices.shape
    n_views, n_bins = sinograms.shape[1], sinograms.shape[2]
    w = cuda.grid(1)
    if w >= n_slices * ny * nx:
        return
    n = w // (ny * nx)
    i = (w // nx) % ny
    j = w % nx
    acc = 0.0
    for v in range(n_views):
        a0, per_plane, per_bin, step_mm, inverse = table[v, 1], table[v, 2], table[v, 3], table[v, 4], table[v, 5]
        t, along = (j, i) if table[v, 0] != 0.0 else (i, j)
        base = a0 + t * per_plane
        # bins whose crossing of plane t lies within one voxel of `along`: (along +- 1 - base) / per_bin
        low = (along - 1.0 - base) * inverse
        high = (along + 1.0 - base) * inverse
        if inverse < 0.0:
            low, high = high, low
        first = max(int(math.ceil(low - _BIN_SEARCH_MARGIN)), 0)
        last = min(int(math.floor(high + _BIN_SEARCH_MARGIN)), n_bins - 1)
        for b in range(first, last + 1):
            f = plane_position(a0, per_plane, per_bin, t, b)
            lower = int(math.floor(f))
            if lower == along:
                acc += sinograms[n, v, b] * step_mm * (1.0 - (f - lower))
            elif lower + 1 == along:
                acc += sinograms[n, v, b] * step_mm * (f - lower)
    slices[n, i, j] = acc


@cuda.jit
def _segment_forward(images, n_voxels, rays, out):
    n_images, n_rays = out.shape[0], out.shape[1]
    w = cuda.grid(1)
    if w < n_images * n_rays:
        n = w // n_rays
        project_ray(images, n * n_voxels, w - n * n_rays, rays, None, out, n)


@cuda.jit
def _segment_forward_tof(images, n_voxels, rays, tof, out):
    n_images, n_rays = out.shape[0], out.shape[1]
    w = cuda.grid(1)
    if w < n_images * n_rays:
        n = w // n_rays
        project_ray(images, n * n_voxels, w - n * n_rays, rays, tof, out, n)


@cuda.jit
def _segment_back(scaled, n_voxels, rays, accumulator):
    n_images, n_rays = scaled.shape[0], scaled.shape[1]
    w = cuda.grid(1)
    if w < n_images * n_rays:
        n = w // n_rays
        back_project_ray(accumulator, n * n_voxels, w - n * n_rays, rays, None, scaled, n)


@cuda.jit
def _segment_back_tof(scaled, n_voxels, rays, tof, accumulator):
    n_images, n_rays = scaled.shape[0], scaled.shape[1]
    w = cuda.grid(1)
    if w < n_images * n_rays:
        n = w // n_rays
        back_project_ray(accumulator, n * n_voxels, w - n * n_rays, rays, tof, scaled, n)


@cuda.jit
def _scaled_copy(source, scale, out):
    p = cuda.grid(1)
    if p < out.size:
        out[p] = source[p] * scale


@cuda.jit
def _fill_zero(array):
    p = cuda.grid(1)
    if p < array.size:
        array[p] = 0


@cuda.jit
def _from_fixed_point(accumulator, scale, out):
    p = cuda.grid(1)
    if p < out.size:
        out[p] = accumulator[p] / scale


def fixed_point_scale(max_abs_value: float, n_rays: int, max_step_mm: float) -> float:
    """Largest power of two ``scale`` with ``n_rays * max_abs_value * max_step_mm * scale <= 2**62``.

    A voxel takes at most one sample (weight <= 1, path <= ``max_step_mm``) from
    each ray, so no int64 voxel sum can overflow. A power of two keeps the
    scaling exact.
    """
    bound = n_rays * max_abs_value * max_step_mm
    if bound <= 0.0:
        return 1.0
    return 2.0 ** np.floor(62.0 - np.log2(bound))


def fill_zero(array, stream=0) -> None:
    """Zero a flat device array."""
    _fill_zero[_blocks(array.size), THREADS_PER_BLOCK, stream](array)


def _blocks(n_threads: int) -> int:
    return max(1, -(-n_threads // THREADS_PER_BLOCK))


def parallel_beam_forward(slices, transposed, table, out, stream=0) -> None:
    """Project device slices ``(n, ny, nx)`` (and their transpose ``(n, nx, ny)``) into ``out`` ``(n, n_views, n_bins)``.

    ``table`` is the ``(n_views, 6)`` view table on the device; ``stream`` a
    numba-cuda stream (default: the default stream).
    """
    _parallel_beam_forward[_blocks(out.size), THREADS_PER_BLOCK, stream](slices, transposed, table, out)


def parallel_beam_back(sinograms, table, slices, stream=0) -> None:
    """Back project device sinograms ``(n, n_views, n_bins)`` into ``slices`` ``(n, ny, nx)`` (overwritten)."""
    _parallel_beam_back[_blocks(slices.size), THREADS_PER_BLOCK, stream](sinograms, table, slices)


def segment_forward(images, n_voxels, rays, tof, out, stream=0) -> None:
    """Project flat device images ``(n_images * n_voxels,)`` into ``out``.

    ``rays`` is a segment ray set (:class:`~.joseph.LORRays`,
    :class:`~.joseph.PETSinogramRays`) and ``tof`` None or
    :class:`~.joseph.TOFBins`, their arrays on the device. ``out`` is
    ``(n_images, n_rays)``, or with TOF ``(n_images, n_rays, n_out)`` and zero.
    """
    if tof is None:
        _segment_forward[_blocks(out.shape[0] * out.shape[1]), THREADS_PER_BLOCK, stream](images, n_voxels, rays, out)
    else:
        _segment_forward_tof[_blocks(out.shape[0] * out.shape[1]), THREADS_PER_BLOCK, stream](
            images, n_voxels, rays, tof, out)


def segment_back(sinograms, max_abs_value: float, n_voxels, rays, tof, out, stream=0) -> None:
    """Back project device ``sinograms`` ``(n_images, n_rays[, n_out])`` into flat ``out`` ``(n_images * n_voxels,)``.

    ``max_abs_value`` is ``max |sinograms|`` (it sets the fixed-point scale);
    ``rays`` and ``tof`` as in :func:`segment_forward`.
    """
    max_step_mm = float(np.sqrt(rays.dz**2 + rays.dy**2 + rays.dx**2)) * 2.0
    scale = fixed_point_scale(max_abs_value, sinograms.shape[1], max_step_mm)
    scaled = cuda.device_array(sinograms.shape, dtype=sinograms.dtype, stream=stream)
    _scaled_copy[_blocks(scaled.size), THREADS_PER_BLOCK, stream](sinograms.reshape(-1), scale, scaled.reshape(-1))
    accumulator = cuda.device_array(out.size, dtype=np.int64, stream=stream)
    fill_zero(accumulator, stream)
    threads = _blocks(sinograms.shape[0] * sinograms.shape[1])
    if tof is None:
        _segment_back[threads, THREADS_PER_BLOCK, stream](scaled, n_voxels, rays, accumulator)
    else:
        _segment_back_tof[threads, THREADS_PER_BLOCK, stream](scaled, n_voxels, rays, tof, accumulator)
    _from_fixed_point[_blocks(out.size), THREADS_PER_BLOCK, stream](accumulator, scale, out)
