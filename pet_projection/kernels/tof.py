"""Time of flight in Joseph's ray model, written once as scalar functions (compiled for the CPU and for CUDA).

Every Joseph sample of a segment (:func:`.joseph.joseph_segment`) is split
over the TOF bins by the mass of a truncated Gaussian about the sample's
distance from the segment midpoint (:func:`tof_weights`); ``erf`` comes from a
table (:func:`tabulated_erf`). Like :mod:`.joseph`, every function is plain
Python registered with :func:`numba.extending.register_jitable`, so the same
text runs in the CPU drivers, in CUDA kernels and under
``NUMBA_ENABLE_CUDASIM=1``.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba.extending import register_jitable

from .joseph import inlined_on_cpu, joseph_frame, joseph_sample_call, ray_segment_mm

TOFBins = namedtuple("TOFBins", ["n_tof", "bin_width_mm", "sigma_mm", "limit_mm", "erf_table", "event_bins",
                                 "edges_mm", "inv_width", "inv_sqrt2_sigma", "erf_scale", "erf_norm"])
TOFBins.__doc__ = """Time-of-flight bins of a segment ray set: each ray's value is split into TOF bins.

TOF bin ``b`` of ``n_tof`` covers the distances ``[(b - c - 1/2) w, (b - c + 1/2) w]`` (mm, ``c = (n_tof -
1) / 2``, ``w = bin_width_mm``) from the segment's midpoint, positive towards its end point. A sample at
distance ``d`` contributes to bin ``b`` the mass of a Gaussian of ``sigma_mm`` centred at ``d``, truncated
to ``[d - limit_mm, d + limit_mm]`` and renormalised to 1, that falls inside the bin (:func:`tof_weights`).
``erf_table`` holds :func:`erf_table` of ``limit_mm / (sqrt(2) sigma_mm)``. ``event_bins`` is empty for
TOF sinograms (every ray has all ``n_tof`` bins) or holds one bin per ray
(listmode: the value of ray ``r`` is its bin ``event_bins[r]`` only). The other fields are constants of
:func:`tof_weights`, made by :func:`tof_bins`.
"""


def tof_bins(n_tof, bin_width_mm, sigma_mm, n_sigmas, event_bins):
    """:class:`TOFBins` of a Gaussian of ``sigma_mm`` truncated at ``n_sigmas``, with its erf table and the
    constants of :func:`tof_weights`: the ``n_tof + 1`` bin edges (mm), ``1 / bin_width_mm``, 1 / (sqrt(2) sigma)
    in 1/mm, table points per unit of erf's argument, and 1 / (2 erf(n_sigmas / sqrt(2))), half the
    renormalisation."""
    limit_mm = n_sigmas * sigma_mm
    table = erf_table(n_sigmas / math.sqrt(2.0))
    inv = 1.0 / (math.sqrt(2.0) * sigma_mm)
    edges = (np.arange(n_tof + 1) - (n_tof - 1) / 2.0 - 0.5) * bin_width_mm
    return TOFBins(n_tof, bin_width_mm, sigma_mm, limit_mm, table, event_bins, edges, 1.0 / bin_width_mm, inv,
                   (table.size - 1) / (limit_mm * inv), 0.5 / table[table.size - 1])


# Points of the tabulated erf: linear interpolation on 8193 points of [0, n_sigmas / sqrt(2)] (n_sigmas <= 10)
# is within 2e-8 of erf (error <= h**2 / 8 * max|erf''|, h <= 8.7e-4), and cheaper than a libm call.
ERF_TABLE_POINTS = 8193


def erf_table(x_max):
    """``erf`` at ``ERF_TABLE_POINTS`` equally spaced points of ``[0, x_max]`` (float64), for :func:`tabulated_erf`."""
    table = np.empty(ERF_TABLE_POINTS)
    for i in range(ERF_TABLE_POINTS):
        table[i] = math.erf(x_max * i / (ERF_TABLE_POINTS - 1))
    return table


@inlined_on_cpu
def tabulated_erf(table, scale, x):
    """``erf(x)`` by linear interpolation in ``table`` (``table[i] = erf(i / scale)``) for ``|x| <= (table.size - 1)
    / scale``, the table's range; odd in ``x``."""
    position = abs(x) * scale
    i = min(int(position), table.size - 2)
    return math.copysign(table[i] + (position - i) * (table[i + 1] - table[i]), x)


@register_jitable(_nrt=False)
def tof_weights(data, n, r, d, first, n_out, tof, value, spread):
    """TOF-weighted sum of ``data[n, r, b - first]`` over bins ``b``, or (``spread``) add ``weight * value`` there.

    The bins ``first .. first + n_out - 1`` are those of ray ``r``; only bins
    within ``tof.limit_mm`` of distance ``d`` (mm) carry weight. Successive bins
    share an edge, so one erf per edge (:func:`tabulated_erf`); the Gaussian's
    two truncation points have erf ``-+erf(n_sigmas / sqrt(2))``, the table's
    last value, exactly.
    """
    lower = d - tof.limit_mm
    upper = d + tof.limit_mm
    offset = (tof.n_tof - 1) / 2.0 + 0.5
    # the bins that hold the truncation points; bin b covers [edges[b], edges[b + 1]]
    lo_bin = max(int(math.floor(lower * tof.inv_width + offset)), first)
    hi_bin = min(int(math.floor(upper * tof.inv_width + offset)), first + n_out - 1)
    if lo_bin > hi_bin:
        return 0.0
    table = tof.erf_table
    end = table[table.size - 1]
    edges = tof.edges_mm
    edge = edges[lo_bin]
    previous = -end if edge <= lower else tabulated_erf(table, tof.erf_scale, (edge - d) * tof.inv_sqrt2_sigma)
    acc = 0.0
    for b in range(lo_bin, hi_bin + 1):
        edge = edges[b + 1]
        current = end if edge >= upper else tabulated_erf(table, tof.erf_scale, (edge - d) * tof.inv_sqrt2_sigma)
        weight = (current - previous) * tof.erf_norm
        previous = current
        if spread:
            data[n, r, b - first] += weight * value
        else:
            acc += weight * data[n, r, b - first]
    return acc


@register_jitable(_nrt=False)
def joseph_segment_tof(image, base, nz, ny, nx, dz, dy, dx, k0, i0, j0, k1, i1, j1, tof, data, n, r, first,
                       n_out, transpose):
    """TOF Joseph projection of one segment into ``data[n, r, :]``, or its transpose from there.

    Every Joseph sample of :func:`.joseph.joseph_segment` is split over the TOF bins
    by :func:`tof_weights` at its distance from the segment midpoint. Forward
    (``transpose`` False): adds to ``data[n, r, b - first]`` (zero it first).
    Transpose: reads them and adds to ``image``. Summed over all bins, the
    weights of a sample are 1 when its truncated Gaussian lies inside the TOF
    bins, so the TOF sinogram sums to the non-TOF one.
    """
    (t_first, t_last, inner_first, inner_last, d0, dd, sd, a0, slope_a, na, sa, b0, slope_b, nb, sb, step_mm,
     length_mm) = joseph_frame(nz, ny, nx, dz, dy, dx, k0, i0, j0, k1, i1, j1)
    for t in range(t_first, t_last + 1):
        distance = ((t - d0) / dd - 0.5) * length_mm
        inner = inner_first <= t <= inner_last
        if transpose:
            value = tof_weights(data, n, r, distance, first, n_out, tof, 0.0, False) * step_mm
            if value != 0.0:
                joseph_sample_call(image, base, t, inner, d0, sd, a0, slope_a, na, sa, b0, slope_b, nb, sb,
                                    value, True)
        else:
            sample = joseph_sample_call(image, base, t, inner, d0, sd, a0, slope_a, na, sa, b0, slope_b, nb, sb,
                                    0.0, False)
            if sample != 0.0:
                tof_weights(data, n, r, distance, first, n_out, tof, sample * step_mm, True)
    return 0.0



@register_jitable(_nrt=False)
def trace_tof_ray(image, base, r, rays, tof, data, n, transpose):
    """TOF projection of ray ``r`` of a segment ray set with :class:`TOFBins` into ``data[n, r, :]``, or its transpose.

    ``data`` has shape ``(n_images, n_rays, n_tof)`` for TOF sinograms and
    ``(n_images, n_rays, 1)`` for listmode (bin ``tof.event_bins[r]``).
    """
    x0, y0, z0, x1, y1, z1 = ray_segment_mm(r, rays)
    if tof.event_bins.size > 0:
        first, n_out = tof.event_bins[r], 1
    else:
        first, n_out = 0, tof.n_tof
    joseph_segment_tof(image, base, rays.nz, rays.ny, rays.nx, rays.dz, rays.dy, rays.dx,
                       z0 / rays.dz + rays.ck, y0 / rays.dy + rays.ci, x0 / rays.dx + rays.cj,
                       z1 / rays.dz + rays.ck, y1 / rays.dy + rays.ci, x1 / rays.dx + rays.cj,
                       tof, data, n, r, first, n_out, transpose)
