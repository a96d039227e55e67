"""CUDA kernels (numba-cuda) for the parallel-beam projector, compiled from the maths of :mod:`.joseph` and :mod:`.tof`.

Imported only when a GPU array is projected (never at ``import pet_projection``).
Under ``NUMBA_ENABLE_CUDASIM=1`` the same kernels run on the CPU in Numba's
CUDA simulator, which is how CI tests them on machines without a GPU.

- Forward: one thread per ray ``(slices, view, bin)``, walking the planes of its
  view that it meets (:func:`~.joseph.edge_and_inner_range`) in increasing
  order, interpolating at :func:`~.joseph.plane_position` (without bounds
  checks on the inner planes).
- Back: one thread per voxel ``(slices, i, j)`` *gathering* from the rays that
  sample it: for every view, the few bins whose crossing of the voxel's plane
  lies within one voxel of it (found by multiplying with the table's
  ``1 / per_bin``, no division), with the forward's position expression and
  weights. Each voxel is written once by one thread, so there are no atomics
  and the bits are the same on every run; sums are accumulated in float64.
  Positions are computed with two explicit fused multiply-adds on the device
  (the CUDA overload of :func:`~.joseph.plane_position`), so both kernels use
  the same weight for every (ray, voxel) pair, bit for bit: the back
  projection is the exact transpose of the forward.

A thread serves ``k`` slices of the batch (:data:`SLICES_PER_THREAD`, by direction): the
positions, bin ranges and weights, which do not depend on the slice, are
computed once for all ``k``, and each slice's sum is formed in the same order
as with ``k = 1``, so ``k`` changes no bit of the result.

The view constants come from the CPU's table of
:func:`~.joseph.parallel_beam_view` (``n_views x 6`` numbers), so CPU and GPU
share every formula.

Segments (``LORProjector``, ``ListmodeProjector``, ``PETSinogramProjector``,
with or without TOF): one thread per ray through :func:`~.segments.project_ray`
and :func:`~.segments.back_project_ray`, the very functions the CPU drivers call,
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

import functools
import math
from typing import Optional

import numpy as np
from numba import config, cuda

from .joseph import edge_and_inner_range, interpolate_edge, interpolate_inner, plane_position, scatter_add
from .segments import back_project_ray, project_ray

if not config.ENABLE_CUDASIM:  # the simulator runs the Python bodies (locked scatter_add, unfused positions) instead
    from numba.cuda.extending import overload

    @overload(scatter_add, target="cuda")
    def _scatter_add_cuda(array, index, value):
        def atomic_fixed_point_add(array, index, value):
            cuda.atomic.add(array, index, np.int64(round(value)))
        return atomic_fixed_point_add

    @overload(plane_position, target="cuda")
    def _plane_position_cuda(a0, per_plane, per_bin, t, b):
        # the same expression with both multiply-adds fused explicitly: left to itself the compiler contracts
        # ``b * per_bin`` where it is computed per bin (back) but not where it is hoisted (forward), so the two
        # kernels' weights could differ in their last bit; with explicit fma every kernel rounds a position alike
        def fused(a0, per_plane, per_bin, t, b):
            return cuda.fma(float(b), per_bin, cuda.fma(float(t), per_plane, a0))
        return fused

# The simulator runs every thread of a block as a Python thread: small blocks keep its tiny test launches quick. On a
# GPU, 128 came out fastest of 128, 256 and 512 (measurements: docs/results/projectors.md).
THREADS_PER_BLOCK = 32 if config.ENABLE_CUDASIM else 128


def _parallel_beam_forward_kernel(k: int):
    """The forward kernel for ``k`` slices per thread (``k`` is a compile-time constant: accumulators in registers).

    The loops are written for a kernel whose speed is set by integer instructions (docs/results/projectors.md): the
    plane index also runs as a float (exact, so the positions keep their bits), slice and plane indices are unsigned
    (no negative-index checks), and a partial last group of slices re-reads the batch's last slice instead of
    testing every sample; only its writes are skipped.
    """
    @cuda.jit(device=True, inline="always")
    def add_planes(images, n0, last_slice, a0, per_plane, per_bin, b, t, stop, n_along, inner, acc):
        # planes t .. stop - 1 of ray b into the k accumulators; `inner`: no bounds checks (a constant once inlined)
        position = float(t)
        while t < stop:
            f = plane_position(a0, per_plane, per_bin, position, b)
            for s in range(k):
                row = images[np.uint64(min(n0 + s, last_slice)), np.uint64(t)]
                acc[s] += interpolate_inner(row, f) if inner else interpolate_edge(row, f, n_along)
            t += 1
            position += 1.0

    @cuda.jit(device=True)
    def ray_sums(images, table, n0, v, b, out):
        # the planes this ray meets, in increasing t (the order of the sum), the inner ones without bounds checks;
        # the position and weights of a sample are computed once for the k slices
        last_slice = out.shape[0] - 1
        n_planes, n_along = images.shape[1], images.shape[2]
        a0, per_plane, per_bin, step_mm = table[v, 1], table[v, 2], table[v, 3], table[v, 4]
        acc = cuda.local.array(k, np.float64)
        for s in range(k):
            acc[s] = 0.0
        first, inner_first, inner_last, last = edge_and_inner_range(a0 + b * per_bin, per_plane, n_along, n_planes)
        add_planes(images, n0, last_slice, a0, per_plane, per_bin, b, first, inner_first, n_along, False, acc)
        add_planes(images, n0, last_slice, a0, per_plane, per_bin, b, inner_first, inner_last + 1, n_along, True, acc)
        add_planes(images, n0, last_slice, a0, per_plane, per_bin, b, inner_last + 1, last + 1, n_along, False, acc)
        for s in range(k):
            if n0 + s <= last_slice:
                out[n0 + s, v, b] = acc[s] * step_mm

    @cuda.jit
    def forward(slices, transposed, table, out):
        n_slices, n_views, n_bins = out.shape
        w = cuda.grid(1)
        if w >= (n_slices + k - 1) // k * n_views * n_bins:
            return
        v = (w // n_bins) % n_views
        # two calls, not one on a chosen array, so that the loads stay global (``ld.global``) in the PTX
        if table[v, 0] != 0.0:
            ray_sums(transposed, table, w // (n_views * n_bins) * k, v, w % n_bins, out)
        else:
            ray_sums(slices, table, w // (n_views * n_bins) * k, v, w % n_bins, out)
    return forward


# Bins are searched this far (in bins) beyond the interval where a ray's weight on a voxel is non-zero, far more
# than the rounding of the search itself; the exact forward expression then decides.
_BIN_SEARCH_MARGIN = 1e-6


def _parallel_beam_back_kernel(k: int):
    """The back projection kernel for ``k`` slices per thread.

    Written for speed as :func:`_parallel_beam_forward_kernel`: voxel and bin indices also run as floats, which are
    exact, so positions and weights keep their bits.
    """
    @cuda.jit
    def back(sinograms, table, slices):
        n_slices, ny, nx = slices.shape
        n_views, n_bins = sinograms.shape[1], sinograms.shape[2]
        w = cuda.grid(1)
        if w >= (n_slices + k - 1) // k * ny * nx:
            return
        n0 = w // (ny * nx) * k
        last_slice = n_slices - 1
        row, column = float((w // nx) % ny), float(w % nx)
        acc = cuda.local.array(k, np.float64)
        for s in range(k):
            acc[s] = 0.0
        for v in range(n_views):
            a0, per_plane, per_bin, step_mm, inverse = table[v, 1], table[v, 2], table[v, 3], table[v, 4], table[v, 5]
            t, along = (column, row) if table[v, 0] != 0.0 else (row, column)
            base = a0 + t * per_plane
            # bins whose crossing of plane t lies within one voxel of `along`: (along +- 1 - base) / per_bin
            low = (along - 1.0 - base) * inverse
            high = (along + 1.0 - base) * inverse
            if inverse < 0.0:
                low, high = high, low
            b = max(int(math.ceil(low - _BIN_SEARCH_MARGIN)), 0)
            last = min(int(math.floor(high + _BIN_SEARCH_MARGIN)), n_bins - 1)
            bin_position = float(b)
            while b <= last:
                f = plane_position(a0, per_plane, per_bin, t, bin_position)
                lower = math.floor(f)
                if lower == along or lower + 1.0 == along:
                    weight = 1.0 - (f - lower) if lower == along else f - lower
                    for s in range(k):
                        acc[s] += sinograms[np.uint64(min(n0 + s, last_slice)), np.uint64(v), np.uint64(b)] * \
                            step_mm * weight
                b += 1
                bin_position += 1.0
        i, j = int(row), int(column)
        for s in range(k):
            if n0 + s <= last_slice:
                slices[n0 + s, i, j] = acc[s]
    return back


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


# Slices per thread of the parallel-beam kernels, by direction: a ray's (voxel's) positions and weights are computed
# once for this many slices of a batch. The forward's registers grow with k and its occupancy falls; the back shares a
# bin search per view among the k slices (measurements: docs/results/projectors.md).
SLICES_PER_THREAD = {"forward": 1, "back": 8}


@functools.lru_cache(maxsize=None)
def _parallel_beam_kernels(k: int) -> tuple:
    return _parallel_beam_forward_kernel(k), _parallel_beam_back_kernel(k)


def _slices_per_thread(n_slices: int, most: Optional[int], direction: str = "forward") -> int:
    """The largest power of two ``<= min(n_slices, most)``; ``most`` None: ``SLICES_PER_THREAD[direction]``."""
    most = SLICES_PER_THREAD[direction] if most is None else most
    if most < 1:
        raise ValueError(f"slices_per_thread must be >= 1, got {most}")
    return 1 << (max(min(n_slices, most), 1).bit_length() - 1)


def parallel_beam_forward(slices, transposed, table, out, stream=0, slices_per_thread: Optional[int] = None) -> None:
    """Project device slices ``(n, ny, nx)`` (and their transpose ``(n, nx, ny)``) into ``out``.

    ``out`` is ``(n, n_views, n_bins)``, ``table`` is the ``(n_views, 6)`` view table on the device; ``stream`` a
    numba-cuda stream (default: the default stream); ``slices_per_thread``
    at most this many slices per thread (default :data:`SLICES_PER_THREAD`'s ``"forward"``;
    the result does not depend on it, bit for bit).
    """
    k = _slices_per_thread(out.shape[0], slices_per_thread)
    threads = -(-out.shape[0] // k) * out.shape[1] * out.shape[2]
    _parallel_beam_kernels(k)[0][_blocks(threads), THREADS_PER_BLOCK, stream](slices, transposed, table, out)


def parallel_beam_back(sinograms, table, slices, stream=0, slices_per_thread: Optional[int] = None) -> None:
    """Back project device sinograms ``(n, n_views, n_bins)`` into ``slices`` ``(n, ny, nx)`` (overwritten).

    ``slices_per_thread`` as in :func:`parallel_beam_forward` (default :data:`SLICES_PER_THREAD`'s ``"back"``).
    """
    k = _slices_per_thread(slices.shape[0], slices_per_thread, "back")
    threads = -(-slices.shape[0] // k) * slices.shape[1] * slices.shape[2]
    _parallel_beam_kernels(k)[1][_blocks(threads), THREADS_PER_BLOCK, stream](sinograms, table, slices)


def segment_forward(images, n_voxels, rays, tof, out, stream=0) -> None:
    """Project flat device images ``(n_images * n_voxels,)`` into ``out``.

    ``rays`` is a segment ray set (:class:`~.joseph.LORRays`,
    :class:`~.joseph.PETSinogramRays`) and ``tof`` None or
    :class:`~.tof.TOFBins`, their arrays on the device. ``out`` is
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
