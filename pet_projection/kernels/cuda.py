"""CUDA kernels (numba-cuda) for the parallel-beam projector, compiled from the maths of :mod:`.joseph`.

Imported only when a GPU array is projected (never at ``import pet_projection``).
Under ``NUMBA_ENABLE_CUDASIM=1`` the same kernels run on the CPU in Numba's
CUDA simulator, which is how CI tests them on machines without a GPU.

- Forward: one thread per ray ``(slice, view, bin)``, walking the planes of its
  view with :func:`~.joseph.interpolate_edge` at :func:`~.joseph.plane_position`.
- Back: one thread per voxel ``(slice, i, j)`` *gathering* from the rays that
  sample it: for every view, the few bins whose crossing of the voxel's plane
  lies within one voxel of it, with exactly the forward's position expression
  and weights. Each voxel is written once by one thread, so there are no
  atomics, the result is the exact transpose of the forward, and it is
  bitwise reproducible; sums are accumulated in float64.

The view constants come from the CPU's table of
:func:`~.joseph.parallel_beam_view` (``n_views x 5`` numbers), so CPU and GPU
share every formula.

Segments (``LORProjector``): one thread per ray through :func:`~.joseph.trace_ray`,
the same function as the CPU. The back projection scatters with atomic adds
into an int64 *fixed-point* accumulator: integer addition is associative, so
the result does not depend on the order in which threads add, and the bits are
the same on every run. The scale is chosen per call so that no voxel sum can
overflow (see :func:`fixed_point_scale`); the quantisation error of each
contribution is below ``2**-62 * n_rays * max|y| * max step`` in absolute terms.
"""

from __future__ import annotations

import math

import numpy as np
from numba import config, cuda
from numba.extending import register_jitable

from .joseph import LORRays, bins_within, interpolate_edge, plane_position, scatter_add, trace_ray

if not config.ENABLE_CUDASIM:  # the simulator runs the locked Python scatter_add instead
    from numba.cuda.extending import overload

    @overload(scatter_add, target="cuda")
    def _scatter_add_cuda(array, index, value):
        def atomic_fixed_point_add(array, index, value):
            cuda.atomic.add(array, index, np.int64(round(value)))
        return atomic_fixed_point_add

THREADS_PER_BLOCK = 256


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
    n_along = planes.shape[1]
    acc = 0.0
    for t in range(planes.shape[0]):
        acc += interpolate_edge(planes[t], plane_position(a0, per_plane, per_bin, t, b), n_along)
    out[n, v, b] = acc * step_mm


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
        a0, per_plane, per_bin, step_mm = table[v, 1], table[v, 2], table[v, 3], table[v, 4]
        t, along = (j, i) if table[v, 0] != 0.0 else (i, j)
        base = a0 + t * per_plane
        # bins crossing the plane within one voxel of `along`, widened by one bin against rounding
        first, last = bins_within(base, per_bin, along - 1.0, along + 1.0, n_bins)
        for b in range(max(first - 1, 0), min(last + 1, n_bins - 1) + 1):
            f = plane_position(a0, per_plane, per_bin, t, b)
            lower = int(math.floor(f))
            value = sinograms[n, v, b] * step_mm
            if lower == along:
                acc += value * (1.0 - (f - lower))
            elif lower + 1 == along:
                acc += value * (f - lower)
    slices[n, i, j] = acc


@register_jitable
def _lor_rays(shape, spacing, offsets, xstart, xend):
    """A :class:`~.joseph.LORRays` built on the device (kernels take its parts as arguments)."""
    return LORRays(shape[0], shape[1], shape[2], spacing[0], spacing[1], spacing[2],
                   offsets[0], offsets[1], offsets[2], xstart, xend)


@cuda.jit
def _lor_forward(images, n_voxels, shape, spacing, offsets, xstart, xend, out):
    n_images, n_rays = out.shape
    w = cuda.grid(1)
    if w >= n_images * n_rays:
        return
    n = w // n_rays
    out[n, w % n_rays] = trace_ray(images, n * n_voxels, w % n_rays, _lor_rays(shape, spacing, offsets, xstart, xend),
                                   0.0, False)


@cuda.jit
def _lor_back_fixed_point(sinograms, scale, n_voxels, shape, spacing, offsets, xstart, xend, accumulator):
    n_images, n_rays = sinograms.shape
    w = cuda.grid(1)
    if w >= n_images * n_rays:
        return
    n = w // n_rays
    value = sinograms[n, w % n_rays] * scale
    if value != 0.0:
        trace_ray(accumulator, n * n_voxels, w % n_rays, _lor_rays(shape, spacing, offsets, xstart, xend), value, True)


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


def _blocks(n_threads: int) -> int:
    return max(1, -(-n_threads // THREADS_PER_BLOCK))


def parallel_beam_forward(slices, transposed, table, out, stream=0) -> None:
    """Project device slices ``(n, ny, nx)`` (and their transpose ``(n, nx, ny)``) into ``out`` ``(n, n_views, n_bins)``.

    ``table`` is the ``(n_views, 5)`` view table on the device; ``stream`` a
    numba-cuda stream (default: the default stream).
    """
    _parallel_beam_forward[_blocks(out.size), THREADS_PER_BLOCK, stream](slices, transposed, table, out)


def parallel_beam_back(sinograms, table, slices, stream=0) -> None:
    """Back project device sinograms ``(n, n_views, n_bins)`` into ``slices`` ``(n, ny, nx)`` (overwritten)."""
    _parallel_beam_back[_blocks(slices.size), THREADS_PER_BLOCK, stream](sinograms, table, slices)


def lor_forward(images, n_voxels, rays: LORRays, out, stream=0) -> None:
    """Project flat device images ``(n_images * n_voxels,)`` into ``out`` ``(n_images, n_rays)``.

    ``rays`` holds the grid numbers and device endpoint arrays ``(n_rays, 3)``.
    """
    _lor_forward[_blocks(out.size), THREADS_PER_BLOCK, stream](
        images, n_voxels, rays[0:3], rays[3:6], rays[6:9], rays.xstart, rays.xend, out)


def lor_back(sinograms, max_abs_value: float, n_voxels, rays: LORRays, out, stream=0) -> None:
    """Back project device ``sinograms`` ``(n_images, n_rays)`` into flat ``out`` ``(n_images * n_voxels,)``.

    ``max_abs_value`` is ``max |sinograms|`` (it sets the fixed-point scale).
    """
    max_step_mm = float(np.sqrt(rays.dz**2 + rays.dy**2 + rays.dx**2)) * 2.0
    scale = fixed_point_scale(max_abs_value, sinograms.shape[1], max_step_mm)
    accumulator = cuda.device_array(out.size, dtype=np.int64, stream=stream)
    _fill_zero[_blocks(accumulator.size), THREADS_PER_BLOCK, stream](accumulator)
    _lor_back_fixed_point[_blocks(sinograms.size), THREADS_PER_BLOCK, stream](
        sinograms, scale, n_voxels, rays[0:3], rays[3:6], rays[6:9], rays.xstart, rays.xend, accumulator)
    _from_fixed_point[_blocks(out.size), THREADS_PER_BLOCK, stream](accumulator, scale, out)
