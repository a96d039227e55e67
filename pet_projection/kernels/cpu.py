"""CPU drivers: Numba ``prange`` loops around the scalar ray maths of :mod:`.joseph` and :mod:`.tof`.

Every driver is deterministic: each output element is summed by one thread in
a fixed order, so there are no races and the same input gives the same bits
whatever the number of threads.

- Segments (``forward`` / ``back``) are traced ray by ray; the back projection
  scatters each chunk of rays into its own buffer and adds the buffers in chunk
  order.
- Parallel-beam slices (``parallel_beam_forward`` / ``parallel_beam_back``)
  are traced plane by plane: all rays of a view cross an image row (or a
  column, read as a row of the transposed slice) at equally spaced positions,
  so the forward loops over bins with contiguous memory access, and the back
  projection gives each thread whole rows, so it needs no buffers.

The drivers are cached on disk (``cache=True``). Numba keys that cache on this
file only, not on the maths it calls: after editing :mod:`.joseph`, :mod:`.tof` or
:mod:`.segments`, clear ``__pycache__`` (the test suite keys its own cache folder on every file of
this package).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .joseph import (edge_and_inner_range, interpolate_edge, interpolate_inner, parallel_beam_view, plane_position,
                     spread_edge)
from .segments import back_project_ray, project_ray


@njit(parallel=True, cache=True)
def forward(images, n_voxels, rays, tof, out):
    """Project flat images ``(n_images * n_voxels,)`` into ``out`` ``(n_images, n_rays)``.

    ``tof``: None, or :class:`~.tof.TOFBins` with ``out`` ``(n_images, n_rays, n_out)`` zeroed.
    """
    n_images, n_rays = out.shape[0], out.shape[1]
    for w in prange(n_images * n_rays):
        n = w // n_rays
        r = w - n * n_rays
        project_ray(images, n * n_voxels, r, rays, tof, out, n)


@njit(parallel=True, cache=True)
def back(sinograms, n_voxels, rays, tof, buffers, images):
    """Back project ``sinograms`` ``(n_images, n_rays)`` (TOF: ``(.., n_out)``) into flat ``images``.

    ``images`` is ``(n_images * n_voxels,)``.

    ``buffers`` ``(n_chunks, images.size)`` must be zero. With one chunk it may be
    ``images`` itself (viewed as ``(1, images.size)``); with more, the rays of
    each image are split into ``n_chunks`` contiguous chunks, each scattered into
    its own buffer, and the buffers are summed in chunk order into ``images``.
    """
    n_images, n_rays = sinograms.shape[0], sinograms.shape[1]
    n_chunks = buffers.shape[0]
    for w in prange(n_images * n_chunks):
        n = w // n_chunks
        c = w - n * n_chunks
        buffer = buffers[c]
        for r in range(c * n_rays // n_chunks, (c + 1) * n_rays // n_chunks):
            back_project_ray(buffer, n * n_voxels, r, rays, tof, sinograms, n)
    if n_chunks > 1:
        for p in prange(images.size):
            acc = buffers[0, p]
            for c in range(1, n_chunks):
                acc += buffers[c, p]
            images[p] = acc


@njit(cache=True)
def view_table(rays):
    """``(n_views, 6)`` table of :func:`~.joseph.parallel_beam_view`: swap (0/1), a0, per_plane, per_bin, step_mm,
    and ``1 / per_bin`` (the CUDA back projection's bin search multiplies instead of dividing)."""
    n_views = rays.angles.size
    table = np.empty((n_views, 6))
    for v in range(n_views):
        swap, a0, per_plane, per_bin, step_mm = parallel_beam_view(v, rays)
        table[v, 0] = 1.0 if swap else 0.0
        table[v, 1] = a0
        table[v, 2] = per_plane
        table[v, 3] = per_bin
        table[v, 4] = step_mm
        table[v, 5] = 1.0 / per_bin
    return table


@njit(parallel=True, cache=True)
def parallel_beam_forward(slices, transposed, table, out):
    """Project slices ``(n, ny, nx)`` into sinograms ``out`` ``(n, n_views, n_bins)``.

    ``transposed`` ``(n, nx, ny)`` holds the same slices transposed (read for the
    views whose planes are columns); ``table`` is :func:`view_table` of the rays.
    """
    n_slices, n_views, n_bins = out.shape
    for w in prange(n_slices * n_views):
        n = w // n_views
        v = w - n * n_views
        planes = transposed[n] if table[v, 0] != 0.0 else slices[n]
        a0, per_plane, per_bin = table[v, 1], table[v, 2], table[v, 3]
        n_along = planes.shape[1]
        acc = np.zeros(n_bins)
        for t in range(planes.shape[0]):
            row = planes[t]
            base = a0 + t * per_plane
            first, inner_first, inner_last, last = edge_and_inner_range(base, per_bin, n_along, n_bins)
            for b in range(first, inner_first):
                acc[b] += interpolate_edge(row, plane_position(a0, per_plane, per_bin, t, b), n_along)
            for b in range(inner_first, inner_last + 1):
                acc[b] += interpolate_inner(row, plane_position(a0, per_plane, per_bin, t, b))
            for b in range(inner_last + 1, last + 1):
                acc[b] += interpolate_edge(row, plane_position(a0, per_plane, per_bin, t, b), n_along)
        for b in range(n_bins):
            out[n, v, b] = acc[b] * table[v, 4]


@njit(parallel=True, cache=True)
def parallel_beam_back(sinograms, table, slices, transposed):
    """Back project sinograms ``(n, n_views, n_bins)`` into zeroed ``slices`` ``(n, ny, nx)``.

    ``transposed`` ``(n, nx, ny)`` is zeroed scratch: the column-plane views are
    accumulated there, row by row, and added to ``slices`` at the end;
    ``table`` is :func:`view_table` of the rays.
    """
    n_slices, n_views, n_bins = sinograms.shape
    ny, nx = slices.shape[1], slices.shape[2]
    for w in prange(n_slices * (ny + nx)):
        n = w // (ny + nx)
        t = w - n * (ny + nx)
        swap = t >= ny
        if swap:
            t -= ny
            row = transposed[n, t]
        else:
            row = slices[n, t]
        n_along = row.size
        acc = np.zeros(n_along)
        for v in range(n_views):
            if (table[v, 0] != 0.0) != swap:
                continue
            a0, per_plane, per_bin, step_mm = table[v, 1], table[v, 2], table[v, 3], table[v, 4]
            base = a0 + t * per_plane
            first, inner_first, inner_last, last = edge_and_inner_range(base, per_bin, n_along, n_bins)
            for b in range(first, inner_first):
                spread_edge(acc, plane_position(a0, per_plane, per_bin, t, b), n_along, sinograms[n, v, b] * step_mm)
            for b in range(inner_first, inner_last + 1):
                f = plane_position(a0, per_plane, per_bin, t, b)
                i = int(f)
                value = sinograms[n, v, b] * step_mm
                acc[i] += value * (1.0 - (f - i))
                acc[i + 1] += value * (f - i)
            for b in range(inner_last + 1, last + 1):
                spread_edge(acc, plane_position(a0, per_plane, per_bin, t, b), n_along, sinograms[n, v, b] * step_mm)
        for i in range(n_along):
            row[i] = acc[i]
    for p in prange(n_slices * ny):
        n = p // ny
        i = p - n * ny
        for j in range(nx):
            slices[n, i, j] += transposed[n, j, i]
