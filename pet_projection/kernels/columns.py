"""Sinogram columns: the LORs of one (view, radial) bin of a ring-scanner sinogram share their transaxial path.

The LORs of a column (one per plane) differ only in the ``z`` of their two ends. Where the transaxial path is
a LOR's dominant axis (it advances more in ``x`` or ``y`` than in ``z``, in voxels; :func:`.joseph.dominant_axis`),
its Joseph samples lie on the planes ``t`` of that axis at the same transaxial crossing in every plane of the
column, so the interpolation across the transaxial axis ``a`` is the same for all of them. It is done once per
column (:func:`fill_column`) into a table ``column[k + PAD, t]`` of the image along the path, with zero rows
around it that stand for the samples outside the grid, and each LOR then interpolates along ``z`` only
(:func:`column_sum`, :func:`column_sum_tof`), in a table that stays in the core's cache. The transpose spreads
each LOR along ``z`` into such a table (:func:`column_spread`, :func:`column_spread_tof`), and the table is
spread across ``a`` into the image once per column (:func:`empty_column`).

The samples, their weights (:func:`.joseph.axis_sample`, :func:`.joseph.lerp`) and the order of every sum are
those of :func:`.joseph.joseph_segment` and :func:`.tof.joseph_segment_tof`, so a column's LOR projects to the same
value as the same segment traced alone, bit for bit (float64); the back projection adds the same weights grouped
by column (equal to rounding). LORs whose dominant axis is ``z`` are traced alone
(:func:`lor_frame` says which). Every function is scalar code registered with
:func:`numba.extending.register_jitable`, like :mod:`.joseph`; the drivers are in :mod:`.cpu`.
"""

from __future__ import annotations

from numba import njit
from numba.core import types
from numba.extending import overload, register_jitable

from .joseph import (axis_sample, axis_spread, dominant_axis, floor_split, joseph_frame, lerp, pet_sinogram_segment_mm,
                     plane_crossing)
from .tof import tof_weights

# tof_weights inlined where a column LOR calls it for every sample (a call would pass the TOF tables by value)
_tof_weights = njit(inline="always", _nrt=False)(tof_weights)

# Zero rows below and above the image's z rows in a column table: row k + PAD holds slice k. A sample's lower
# neighbour is clamped to [-PAD, nz + PAD - 1], so both of its rows exist, and any clamped sample reads zeros.
PAD = 2


@register_jitable(_nrt=False)
def column_shape(rays):
    """``(rows, columns)`` of a column table of :class:`~.joseph.PETSinogramRays` ``rays``: ``nz + 2 PAD + 1`` rows
    (z, padded), ``max(ny, nx)`` planes ``t``."""
    return rays.nz + 2 * PAD + 1, max(rays.ny, rays.nx)


@register_jitable(_nrt=False)
def column_ray(view, radial, rays):
    """Flat sinogram index of plane 0 of column ``(view, radial)``; plane ``p`` adds ``p * rays.stride_plane``."""
    return radial * rays.stride_radial + view * rays.stride_view


@register_jitable(_nrt=False)
def lor_voxel_ends(r, rays):
    """End points of bin ``r`` in continuous voxel indices ``(k0, i0, j0, k1, i1, j1)``, as in
    :func:`.joseph.segment_mm`."""
    x0, y0, z0, x1, y1, z1 = pet_sinogram_segment_mm(r, rays)
    return (z0 / rays.dz + rays.ck, y0 / rays.dy + rays.ci, x0 / rays.dx + rays.cj,
            z1 / rays.dz + rays.ck, y1 / rays.dy + rays.ci, x1 / rays.dx + rays.cj)


@register_jitable(_nrt=False)
def lor_frame(r, rays):
    """:func:`.joseph.joseph_frame` of bin ``r`` and whether its dominant axis is transaxial (a column LOR)."""
    k0, i0, j0, k1, i1, j1 = lor_voxel_ends(r, rays)
    frame = joseph_frame(rays.nz, rays.ny, rays.nx, rays.dz, rays.dy, rays.dx, k0, i0, j0, k1, i1, j1)
    return frame, dominant_axis(k1 - k0, i1 - i0, j1 - j0) != 2


@register_jitable(_nrt=False)
def column_frame(view, radial, rays):
    """:func:`.joseph.joseph_frame` of the column's transaxial path (both ends at ``z`` index 0).

    Its dominant axis, start, delta and stride, its ``a`` crossing and its planes with a neighbour inside the grid
    (across ``a``) are those of every column LOR of the column: each of their planes is one of these.
    """
    k0, i0, j0, k1, i1, j1 = lor_voxel_ends(column_ray(view, radial, rays), rays)
    return joseph_frame(rays.nz, rays.ny, rays.nx, rays.dz, rays.dy, rays.dx, 0.0, i0, j0, 0.0, i1, j1)


@register_jitable(_nrt=False)
def fill_column(image, base, frame, nz, column):
    """``column[k + PAD, t]`` = the image along the path on plane ``t``, interpolated across ``a``, in z slice ``k``.

    ``frame`` is :func:`column_frame`; planes outside its range are left as they are, and the rows of the padding
    must be zero.
    """
    (t_first, t_last, inner_first, inner_last, d0, dd, sd, a0, slope_a, na, sa, b0, slope_b, nb, sb, step_mm,
     length_mm) = frame
    for t in range(t_first, t_last + 1):
        ia, wa = floor_split(plane_crossing(a0, slope_a, t, d0))
        inner = inner_first <= t <= inner_last
        at = base + t * sd + ia * sa
        for k in range(nz):
            column[k + PAD, t] = axis_sample(image, at + k * sb, ia, wa, na, sa, inner)


@register_jitable(_nrt=False)
def empty_column(image, base, frame, k, column):
    """Transpose of :func:`fill_column` for z slice ``k``: spread ``column[k + PAD, t]`` across ``a`` into the image."""
    (t_first, t_last, inner_first, inner_last, d0, dd, sd, a0, slope_a, na, sa, b0, slope_b, nb, sb, step_mm,
     length_mm) = frame
    for t in range(t_first, t_last + 1):
        value = column[k + PAD, t]
        if value != 0.0:
            ia, wa = floor_split(plane_crossing(a0, slope_a, t, d0))
            axis_spread(image, base + t * sd + ia * sa + k * sb, ia, wa, na, sa, inner_first <= t <= inner_last, value)


@register_jitable(_nrt=False)
def _z_neighbours(b0, slope_b, t, d0, nb):
    """Row of the lower z neighbour in a column table (clamped, see :data:`PAD`) and the upper one's weight."""
    ib, wb = floor_split(plane_crossing(b0, slope_b, t, d0))
    return min(max(ib, -PAD), nb + PAD - 1) + PAD, wb


@register_jitable(_nrt=False)
def column_sum(column, frame):
    """Line integral of a column LOR with :func:`.joseph.joseph_frame` ``frame`` from a filled column table."""
    (t_first, t_last, inner_first, inner_last, d0, dd, sd, a0, slope_a, na, sa, b0, slope_b, nb, sb, step_mm,
     length_mm) = frame
    acc = 0.0
    for t in range(t_first, t_last + 1):
        row, wb = _z_neighbours(b0, slope_b, t, d0, nb)
        acc += lerp(column[row, t], column[row + 1, t], wb)
    return acc * step_mm


@register_jitable(_nrt=False)
def column_spread(column, frame, value):
    """Transpose of :func:`column_sum`: add ``value`` times its weights along z into a column table."""
    (t_first, t_last, inner_first, inner_last, d0, dd, sd, a0, slope_a, na, sa, b0, slope_b, nb, sb, step_mm,
     length_mm) = frame
    scaled_value = value * step_mm
    for t in range(t_first, t_last + 1):
        row, wb = _z_neighbours(b0, slope_b, t, d0, nb)
        column[row, t] += scaled_value * (1.0 - wb)
        column[row + 1, t] += scaled_value * wb


@register_jitable(_nrt=False)
def column_sum_tof(column, frame, tof, bins):
    """TOF projection of a column LOR from a filled column table into ``bins[0, 0, :]`` (zero it first).

    The samples of :func:`column_sum`, split over the TOF bins as in :func:`.tof.joseph_segment_tof`.
    """
    (t_first, t_last, inner_first, inner_last, d0, dd, sd, a0, slope_a, na, sa, b0, slope_b, nb, sb, step_mm,
     length_mm) = frame
    for t in range(t_first, t_last + 1):
        row, wb = _z_neighbours(b0, slope_b, t, d0, nb)
        sample = lerp(column[row, t], column[row + 1, t], wb)
        if sample != 0.0:
            distance = ((t - d0) / dd - 0.5) * length_mm
            _tof_weights(bins, 0, 0, distance, 0, tof.n_tof, tof, sample * step_mm, True)


@register_jitable(_nrt=False)
def column_spread_tof(column, frame, tof, data, n, r):
    """Transpose of :func:`column_sum_tof` for the TOF bins ``data[n, r, :]`` of sinogram bin ``r``."""
    (t_first, t_last, inner_first, inner_last, d0, dd, sd, a0, slope_a, na, sa, b0, slope_b, nb, sb, step_mm,
     length_mm) = frame
    for t in range(t_first, t_last + 1):
        distance = ((t - d0) / dd - 0.5) * length_mm
        value = _tof_weights(data, n, r, distance, 0, tof.n_tof, tof, 0.0, False) * step_mm
        if value != 0.0:
            row, wb = _z_neighbours(b0, slope_b, t, d0, nb)
            column[row, t] += value * (1.0 - wb)
            column[row + 1, t] += value * wb


def project_column_lor(column, frame, tof, bins, out, n, r):
    """Project a column LOR into ``out[n, r]`` (``tof`` None) or its TOF bins ``out[n, r, :]`` (by way of the
    float64 ``bins`` ``(1, 1, n_tof)``). Compiled callers get the branch of their ``tof`` type (overload below)."""
    if tof is None:
        out[n, r] = column_sum(column, frame)
    else:
        _project_column_lor_tof(column, frame, tof, bins, out, n, r)


def spread_column_lor(column, frame, tof, sinograms, n, r):
    """Transpose of :func:`project_column_lor`: spread ``sinograms[n, r]`` (TOF: ``[n, r, :]``) into a column table."""
    if tof is None:
        _spread_column_lor(column, frame, sinograms, n, r)
    else:
        column_spread_tof(column, frame, tof, sinograms, n, r)


@register_jitable(_nrt=False)
def _project_column_lor_tof(column, frame, tof, bins, out, n, r):
    bins[0, 0, :] = 0.0
    column_sum_tof(column, frame, tof, bins)
    for b in range(tof.n_tof):
        out[n, r, b] = bins[0, 0, b]


@register_jitable(_nrt=False)
def _spread_column_lor(column, frame, sinograms, n, r):
    value = sinograms[n, r]
    if value != 0.0:
        column_spread(column, frame, value)


@overload(project_column_lor, jit_options={"_nrt": False})
def _project_column_lor_compiled(column, frame, tof, bins, out, n, r):
    if isinstance(tof, types.NoneType):
        def lor(column, frame, tof, bins, out, n, r):
            out[n, r] = column_sum(column, frame)
        return lor

    def tof_lor(column, frame, tof, bins, out, n, r):
        _project_column_lor_tof(column, frame, tof, bins, out, n, r)
    return tof_lor


@overload(spread_column_lor, jit_options={"_nrt": False})
def _spread_column_lor_compiled(column, frame, tof, sinograms, n, r):
    if isinstance(tof, types.NoneType):
        def lor(column, frame, tof, sinograms, n, r):
            _spread_column_lor(column, frame, sinograms, n, r)
        return lor

    def tof_lor(column, frame, tof, sinograms, n, r):
        column_spread_tof(column, frame, tof, sinograms, n, r)
    return tof_lor
