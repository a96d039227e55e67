"""The CUDA parallel-beam kernels as first measured (2026-11-26, H200), kept for an A/B against the current ones.

Benchmark-only copy (``bench_projectors_gpu`` times it as ``allpet-cuda-previous``); the package's kernels are
in :mod:`pet_projection.kernels.cuda`.
"""

from __future__ import annotations

import math

from numba import cuda

from pet_projection.kernels.cuda import THREADS_PER_BLOCK, _blocks
from pet_projection.kernels.joseph import bins_within, interpolate_edge, plane_position


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


def forward(slices, transposed, table, out, stream=0) -> None:
    _parallel_beam_forward[_blocks(out.size), THREADS_PER_BLOCK, stream](slices, transposed, table, out)


def back(sinograms, table, slices, stream=0) -> None:
    _parallel_beam_back[_blocks(slices.size), THREADS_PER_BLOCK, stream](sinograms, table, slices)
