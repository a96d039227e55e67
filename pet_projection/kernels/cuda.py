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
"""

from __future__ import annotations

import math

from numba import cuda

from .joseph import bins_within, interpolate_edge, plane_position

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
