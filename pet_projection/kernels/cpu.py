"""CPU drivers: Numba ``prange`` loops around the scalar ray maths of :mod:`.joseph`, :mod:`.tof` and :mod:`.columns`.

Every driver is deterministic: each output element is summed by one thread in
a fixed order, so there are no races and the same input gives the same bits
whatever the number of threads.

- Segments (``forward`` / ``back``) are traced ray by ray; the back projection
  scatters each chunk of rays into its own buffer and adds the buffers in chunk
  order.
- Ring-scanner sinograms (``sinogram_forward`` / ``sinogram_back``) are traced column by column, a column being
  the LORs of one (view, radial) bin in every plane (:mod:`.columns`): each thread fills a column's table from
  the image and projects all its LORs from it. The back projection spreads the LORs of a block of columns into
  their tables (one thread per column), then empties the tables into the image slice by slice (one thread per z
  slice, the columns in order), so it needs no image-sized buffers.
- Parallel-beam slices (``parallel_beam_forward`` / ``parallel_beam_back``)
  are traced plane by plane: all rays of a view cross an image row (or a
  column, read as a row of the transposed slice) at equally spaced positions,
  so the forward loops over bins with contiguous memory access, and the back
  projection gives each thread whole rows, so it needs no buffers.

The drivers are cached on disk (``cache=True``). Numba keys that cache on this
file only, not on the maths it calls: after editing :mod:`.joseph`, :mod:`.tof`,
:mod:`.columns` or :mod:`.segments`, clear ``__pycache__`` (the test suite keys its own cache folder on every file of
this package).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .columns import (column_frame, column_ray, column_shape, empty_column, fill_column, lor_frame,
                      project_column_lor, spread_column_lor)
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


@njit(parallel=True, cache=True)
def sinogram_forward(images, n_voxels, rays, tof, out):
    """Project flat images ``(n_images * n_voxels,)`` into sinograms ``out`` ``(n_images, n_rays)``, zeroed.

    ``rays`` is a :class:`~.joseph.PETSinogramRays`; ``tof`` None, or :class:`~.tof.TOFBins` with ``out``
    ``(n_images, n_rays, n_tof)``. LORs along z are traced alone (:func:`~.segments.project_ray`).
    """
    n_columns = rays.n_views * rays.n_radial
    rows, n_t = column_shape(rays)
    for w in prange(out.shape[0] * n_columns):
        n = w // n_columns
        view = (w - n * n_columns) // rays.n_radial
        radial = w - n * n_columns - view * rays.n_radial
        base = n * n_voxels
        column = np.zeros((rows, n_t))
        bins = np.zeros((1, 1, 1 if tof is None else tof.n_tof))  # one LOR's TOF bins, float64
        filled = False
        first_ray = column_ray(view, radial, rays)
        for plane in range(rays.n_planes):
            r = first_ray + plane * rays.stride_plane
            frame, along_column = lor_frame(r, rays)
            if not along_column:
                project_ray(images, base, r, rays, tof, out, n)
                continue
            if frame[0] > frame[1]:  # misses the grid
                continue
            if not filled:
                fill_column(images, base, column_frame(view, radial, rays), rays.nz, column)
                filled = True
            project_column_lor(column, frame, tof, bins, out, n, r)


@njit(parallel=True, cache=True)
def sinogram_back(sinograms, n_voxels, rays, tof, store, images):
    """Back project ``sinograms`` ``(n_images, n_rays)`` (TOF: ``(.., n_tof)``) into zeroed flat ``images``.

    ``store`` ``(n_store, rows, n_t)`` (float64, :func:`~.columns.column_shape`) is scratch for the column tables
    of ``n_store`` radial bins at a time; ``rays`` and ``tof`` as in :func:`sinogram_forward`. Every voxel sums
    its contributions in the same order whatever the number of threads: view by view, a block of ``n_store``
    columns in radial order, then that block's LORs along z (:func:`~.segments.back_project_ray`).
    """
    n_store = store.shape[0]
    along_z = np.zeros(n_store, dtype=np.bool_)
    for n in range(sinograms.shape[0]):
        base = n * n_voxels
        for view in range(rays.n_views):
            for first in range(0, rays.n_radial, n_store):
                count = min(n_store, rays.n_radial - first)
                for s in prange(count):
                    column = store[s]
                    planes = column_frame(view, first + s, rays)
                    column[:, planes[0]:planes[1] + 1] = 0.0  # the planes its LORs and empty_column use
                    along_z[s] = False
                    first_ray = column_ray(view, first + s, rays)
                    for plane in range(rays.n_planes):
                        r = first_ray + plane * rays.stride_plane
                        frame, along_column = lor_frame(r, rays)
                        if not along_column:
                            along_z[s] = True
                        elif frame[0] <= frame[1]:
                            spread_column_lor(column, frame, tof, sinograms, n, r)
                for k in prange(rays.nz):
                    for s in range(count):
                        empty_column(images, base, column_frame(view, first + s, rays), k, store[s])
                for s in range(count):
                    if along_z[s]:
                        first_ray = column_ray(view, first + s, rays)
                        for plane in range(rays.n_planes):
                            r = first_ray + plane * rays.stride_plane
                            if not lor_frame(r, rays)[1]:
                                back_project_ray(images, base, r, rays, tof, sinograms, n)


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
