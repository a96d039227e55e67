"""Joseph's ray model, written once as scalar functions.

Every function here is plain Python registered with
:func:`numba.extending.register_jitable`, so the same text compiles inside the
CPU drivers (``numba.njit``), inside CUDA kernels (numba-cuda sees third-party
``register_jitable`` functions) and runs as-is under ``NUMBA_ENABLE_CUDASIM=1``.

Joseph's method (P. M. Joseph, IEEE TMI 1(3), 1982): a ray is sampled on the
planes of voxel centres perpendicular to its dominant axis (the axis along
which it advances most in voxel units); on each plane the image is
interpolated (bilinearly in 3D, linearly in 2D) between the nearest voxel
centres, with zero outside the grid. Each sample is weighted by the path
length per plane, ``|segment| / |segment along the dominant axis in voxels|``
(mm), so a projection value is a line integral in image units times mm.

The forward and the transposed (back) projection are the same function with
``transpose`` False or True: the same voxels with the same weights, so the back
projection is the exact adjoint of the forward by construction.

All coordinates passed to :func:`joseph_segment` are continuous voxel indices
``(k, i, j)`` (index ``j`` of voxel centre ``j`` equals ``j``), images are flat
C-ordered ``(nz, ny, nx)`` blocks starting at ``base``.
"""

from __future__ import annotations

import math
import threading
from collections import namedtuple

import numpy as np
from numba.core import types
from numba.extending import overload, register_jitable

ParallelBeamRays = namedtuple(
    "ParallelBeamRays", ["ny", "nx", "dy", "dx", "ci", "cj", "angles", "n_bins", "first_bin_mm", "bin_width_mm"])
ParallelBeamRays.__doc__ = """Rays of a parallel-beam sinogram of one 2D slice ``(ny, nx)``; ray ``r = v * n_bins + b``.

``(ci, cj)`` turn mm into voxel indices (``j = x / dx + cj``), ``angles`` has
shape ``(n_views,)`` in radians and ``first_bin_mm`` is ``s_0``.
"""

LORRays = namedtuple("LORRays", ["nz", "ny", "nx", "dz", "dy", "dx", "ck", "ci", "cj", "xstart", "xend"])
PETSinogramRays = namedtuple(
    "PETSinogramRays",
    ["nz", "ny", "nx", "dz", "dy", "dx", "ck", "ci", "cj", "lor_xy", "plane_z",
     "n_radial", "n_views", "n_planes", "stride_radial", "stride_view", "stride_plane"])
PETSinogramRays.__doc__ = """Rays of a ring-scanner sinogram; LOR endpoints looked up per ray from its bin.

``lor_xy`` ``(n_views, n_radial, 4)`` holds the transaxial endpoints
``(x0, y0, x1, y1)`` (mm) of every (view, radial) bin, the same in every plane,
``plane_z`` ``(n_planes, 2)`` the z of both endpoints of each plane (mm); the
strides say where the radial, view and plane index sit in the flat bin index
(any axis order). Both tables are small (views x radial, planes), never of the
sinogram's size. See :func:`pet_sinogram_ray`.
"""
LORRays.__doc__ = """Segments between endpoint pairs ``xstart[r]``, ``xend[r]``.

Both have shape ``(n_rays, 3)``: ``(x, y, z)`` in mm.
"""


_SIMULATOR_LOCK = threading.Lock()


def inlined_on_cpu(fn):
    """``register_jitable`` for every target, plus an inlined overload that the CPU prefers.

    Inlining these hot functions into the CPU drivers at the IR level makes
    them faster (measurements: docs/results/projectors.md). numba-cuda (0.30) mistypes the arguments of
    IR-inlined third-party functions, so the CUDA target gets the same function
    as an ordinary call (which NVVM inlines anyway). Numba tries the most
    specific target first, so the CPU takes the inlined version.
    """
    register_jitable(_nrt=False)(fn)
    overload(fn, target="cpu", jit_options={"_nrt": False}, inline="always", strict=False)(lambda *args: fn)
    return fn


def scatter_add(array, index, value):
    """``array[index] += value``: the one write of the transposed projection.

    Compiled for the CPU as a plain add (the overload below; CPU drivers give
    every chunk of rays its own buffer). CUDA kernels get an atomic add into an
    int64 fixed-point accumulator (:mod:`.cuda`), which is associative, so GPU
    back projections are bitwise reproducible. This Python body is what Numba's
    CUDA simulator runs: locked like an atomic, and rounding for integer
    accumulators like the device version.
    """
    with _SIMULATOR_LOCK:
        array[index] += round(value) if array.dtype.kind == "i" else value


@overload(scatter_add, target="cpu", jit_options={"_nrt": False})
def _scatter_add_cpu(array, index, value):
    def add(array, index, value):
        array[index] += value
    return add


@register_jitable(_nrt=False)
def _narrow_to_slab(lo, hi, c0, slope, t0, c_min, c_max):
    """Narrow ``[lo, hi]`` to the ``t`` where ``c0 + slope * (t - t0)`` lies in ``[c_min, c_max]``."""
    if slope == 0.0:
        if c0 < c_min or c0 > c_max:
            return 1.0, 0.0
        return lo, hi
    ta = t0 + (c_min - c0) / slope
    tb = t0 + (c_max - c0) / slope
    if slope < 0.0:  # orient by the slope only: an empty [c_min, c_max] must stay empty
        ta, tb = tb, ta
    return max(lo, ta), min(hi, tb)


# Inner samples are kept this far (in voxels) from the edge of the inner range,
# far more than the rounding error of a position, so they never index outside.
INNER_MARGIN = 1e-6


@register_jitable(_nrt=False)
def dominant_axis(dk, di, dj):
    """The axis a segment advances most along, in voxels: 0 for ``j`` (x), 1 for ``i`` (y), 2 for ``k`` (z).

    Ties go to ``j``, then ``i``. ``dk, di, dj`` are the segment's deltas in continuous voxel indices.
    """
    if abs(dj) >= abs(di) and abs(dj) >= abs(dk):
        return 0
    if abs(di) >= abs(dk):
        return 1
    return 2


@inlined_on_cpu
def joseph_frame(nz, ny, nx, dz, dy, dx, k0, i0, j0, k1, i1, j1):
    """Sampling frame of a segment for :func:`joseph_segment` and :func:`.tof.joseph_segment_tof`.

    Returns ``(t_first, t_last, inner_first, inner_last, d0, dd, sd, a0, slope_a, na, sa, b0, slope_b, nb,
    sb, step_mm, length_mm)``: the planes ``t`` of the dominant axis ``d`` that have an interpolation
    neighbour inside the grid, the inner planes whose neighbours are all inside, the start, delta and
    stride of ``d``, the start, slope, size and stride of the interpolated axes ``a`` and ``b``, the
    path length per plane and the segment length (mm). ``t_first > t_last`` when the segment misses.
    """
    dk = k1 - k0
    di = i1 - i0
    dj = j1 - j0
    # dominant axis d and the two interpolated axes a, b: start, delta, size, stride
    axis = dominant_axis(dk, di, dj)
    if axis == 0:
        d0, dd, nd, sd = j0, dj, nx, 1
        a0, da, na, sa = i0, di, ny, nx
        b0, db, nb, sb = k0, dk, nz, ny * nx
    elif axis == 1:
        d0, dd, nd, sd = i0, di, ny, nx
        a0, da, na, sa = j0, dj, nx, 1
        b0, db, nb, sb = k0, dk, nz, ny * nx
    else:
        d0, dd, nd, sd = k0, dk, nz, ny * nx
        a0, da, na, sa = j0, dj, nx, 1
        b0, db, nb, sb = i0, di, ny, nx
    length_mm = math.sqrt((dk * dz) ** 2 + (di * dy) ** 2 + (dj * dx) ** 2)
    if dd == 0.0:
        return 1, 0, 1, 0, d0, 1.0, sd, a0, 0.0, na, sa, b0, 0.0, nb, sb, 0.0, length_mm
    step_mm = length_mm / abs(dd)
    slope_a = da / dd
    slope_b = db / dd
    # planes with any neighbour inside the grid: a in (-1, na), b in (-1, nb)
    lo = max(min(d0, d0 + dd), 0.0)
    hi = min(max(d0, d0 + dd), nd - 1.0)
    lo, hi = _narrow_to_slab(lo, hi, a0, slope_a, d0, -1.0, na)
    lo, hi = _narrow_to_slab(lo, hi, b0, slope_b, d0, -1.0, nb)
    if lo > hi:
        return 1, 0, 1, 0, d0, dd, sd, a0, slope_a, na, sa, b0, slope_b, nb, sb, step_mm, length_mm
    # planes whose neighbours are all inside: a in [0, na - 1), b in [0, nb - 1]
    inner_lo, inner_hi = _narrow_to_slab(lo, hi, a0, slope_a, d0, INNER_MARGIN, na - 1.0 - INNER_MARGIN)
    inner_lo, inner_hi = _narrow_to_slab(inner_lo, inner_hi, b0, slope_b, d0, 0.0, nb - 1.0)
    return (int(math.ceil(lo)), int(math.floor(hi)), int(math.ceil(inner_lo)), int(math.floor(inner_hi)),
            d0, dd, sd, a0, slope_a, na, sa, b0, slope_b, nb, sb, step_mm, length_mm)


@register_jitable(_nrt=False)
def plane_crossing(c0, slope, t, d0):
    """Continuous index along an interpolated axis where a segment crosses plane ``t`` of its dominant axis.

    ``c0`` is the segment's start on that axis, ``slope`` its advance per plane and ``d0`` its start on the
    dominant axis (all in voxels, :func:`joseph_frame`); one expression for every kernel.
    """
    return c0 + slope * (t - d0)


@register_jitable(_nrt=False)
def floor_split(f):
    """``(i, w)``: the lower interpolation neighbour ``i = floor(f)`` of continuous index ``f``, and the weight
    ``w = f - i`` of the upper one."""
    i = int(math.floor(f))
    return i, f - i


@register_jitable(_nrt=False)
def lerp(lower, upper, w):
    """``lower * (1 - w) + upper * w``: linear interpolation between two neighbours."""
    return lower * (1.0 - w) + upper * w


@register_jitable(_nrt=False)
def axis_sample(image, at, ia, wa, na, sa, inner):
    """Linear interpolation along axis ``a`` between voxels ``at`` and ``at + sa`` (indices ``ia``, ``ia + 1`` of
    ``na``), a voxel outside the grid counting as zero; ``inner``: both are inside (no checks)."""
    acc = 0.0
    if inner or 0 <= ia < na:
        acc += image[at] * (1.0 - wa)
    if inner or -1 <= ia < na - 1:
        acc += image[at + sa] * wa
    return acc


@register_jitable(_nrt=False)
def axis_spread(image, at, ia, wa, na, sa, inner, value):
    """Transpose of :func:`axis_sample`: add ``value`` times the same weights to the voxels inside the grid."""
    if inner or 0 <= ia < na:
        scatter_add(image, at, value * (1.0 - wa))
    if inner or -1 <= ia < na - 1:
        scatter_add(image, at + sa, value * wa)


@inlined_on_cpu
def _joseph_sample(image, base, t, inner, d0, sd, a0, slope_a, na, sa, b0, slope_b, nb, sb, value, transpose):
    """Interpolate the image on plane ``t`` at the segment's crossing, or spread ``value`` there (transpose).

    Bilinear, as two linear interpolations: along ``a`` on the two rows ``ib``, ``ib + 1`` of axis ``b``
    (:func:`axis_sample`), then between the rows (:func:`lerp`). ``inner`` planes skip the bounds checks
    (all four neighbours are inside).
    """
    ia, wa = floor_split(plane_crossing(a0, slope_a, t, d0))
    ib, wb = floor_split(plane_crossing(b0, slope_b, t, d0))
    at = base + t * sd + ia * sa + ib * sb
    b_lo = inner or 0 <= ib < nb
    b_hi = ib < nb - 1 and (inner or ib >= -1)  # always False for a 2D image (nb = 1)
    if transpose:
        if b_lo:
            axis_spread(image, at, ia, wa, na, sa, inner, value * (1.0 - wb))
        if b_hi:
            axis_spread(image, at + sb, ia, wa, na, sa, inner, value * wb)
        return 0.0
    lower = axis_sample(image, at, ia, wa, na, sa, inner) if b_lo else 0.0
    upper = axis_sample(image, at + sb, ia, wa, na, sa, inner) if b_hi else 0.0
    return lerp(lower, upper, wb)


@register_jitable(_nrt=False)
def joseph_sample_call(image, base, t, inner, d0, sd, a0, slope_a, na, sa, b0, slope_b, nb, sb, value, transpose):
    """:func:`_joseph_sample` as a call (Numba's IR inlining of it into the TOF loop trips its IR checks)."""
    return _joseph_sample(image, base, t, inner, d0, sd, a0, slope_a, na, sa, b0, slope_b, nb, sb, value, transpose)


@inlined_on_cpu
def joseph_segment(image, base, nz, ny, nx, dz, dy, dx, k0, i0, j0, k1, i1, j1, value, transpose):
    """Line integral of a flat image block along a segment, or its transpose.

    Parameters
    ----------
    image : 1D float array
        Flat images; the block of this ray starts at ``base`` and has shape
        ``(nz, ny, nx)`` in C order.
    nz, ny, nx : int
        Block shape.
    dz, dy, dx : float
        Voxel size in mm.
    k0, i0, j0, k1, i1, j1 : float
        Segment endpoints in continuous voxel indices.
    value : float
        Ray value to spread over the voxels when ``transpose`` is True.
    transpose : bool
        False: return the line integral (image units times mm).
        True: add ``value * weight`` to every voxel the ray samples; return 0.

    Notes
    -----
    The planes ``t`` of the dominant axis are visited in increasing order; on
    the inner planes no interpolation neighbour can fall outside the grid, so
    their bounds checks are skipped.
    """
    (t_first, t_last, inner_first, inner_last, d0, dd, sd, a0, slope_a, na, sa, b0, slope_b, nb, sb, step_mm,
     length_mm) = joseph_frame(nz, ny, nx, dz, dy, dx, k0, i0, j0, k1, i1, j1)
    scaled_value = value * step_mm
    acc = 0.0
    for t in range(t_first, t_last + 1):
        acc += _joseph_sample(image, base, t, inner_first <= t <= inner_last, d0, sd, a0, slope_a, na, sa,
                              b0, slope_b, nb, sb, scaled_value, transpose)
    return acc * step_mm


@register_jitable(_nrt=False)
def parallel_beam_view(v, rays):
    """Joseph constants of view ``v`` of a :class:`ParallelBeamRays`.

    Returns ``(swap, a0, per_plane, per_bin, step_mm)``. ``swap`` is False when
    the rays advance more along y than along x in voxel units: the sample planes
    are the image rows ``t = i`` and the interpolation axis is x. It is True
    otherwise: planes are the columns ``t = j`` (rows of the transposed slice),
    interpolation along y. Ray ``b`` crosses plane ``t`` at the continuous index
    :func:`plane_position` ``(a0, per_plane, per_bin, t, b)`` along the
    interpolation axis, and every sample weighs ``step_mm`` (path length per
    plane, mm).
    """
    cos_t = math.cos(rays.angles[v])
    sin_t = math.sin(rays.angles[v])
    if abs(cos_t) * rays.dx >= abs(sin_t) * rays.dy:
        # row i: x = (s_b - y_i sin) / cos with y_i = (i - ci) dy, j = x / dx + cj
        scale = 1.0 / (cos_t * rays.dx)
        a0 = rays.cj + (rays.first_bin_mm + rays.ci * rays.dy * sin_t) * scale
        return False, a0, -rays.dy * sin_t * scale, rays.bin_width_mm * scale, rays.dy / abs(cos_t)
    # column j: y = (s_b - x_j cos) / sin with x_j = (j - cj) dx, i = y / dy + ci
    scale = 1.0 / (sin_t * rays.dy)
    a0 = rays.ci + (rays.first_bin_mm + rays.cj * rays.dx * cos_t) * scale
    return True, a0, -rays.dx * cos_t * scale, rays.bin_width_mm * scale, rays.dx / abs(sin_t)


@register_jitable(_nrt=False)
def plane_position(a0, per_plane, per_bin, t, b):
    """Continuous index where parallel ray ``b`` crosses plane ``t``; one expression for every path."""
    return (a0 + t * per_plane) + b * per_bin


@register_jitable(_nrt=False)
def bins_within(base, per_bin, low, high, n_bins):
    """Bins ``[first, last]`` whose position ``base + b * per_bin`` lies in ``[low, high]`` (empty: first > last)."""
    if per_bin == 0.0:  # every bin at base (a ray parallel to the planes' row axis)
        return (0, n_bins - 1) if low <= base <= high else (0, -1)
    lo = (low - base) / per_bin
    hi = (high - base) / per_bin
    if per_bin < 0.0:  # orient by the sign only: an empty [low, high] must stay empty
        lo, hi = hi, lo
    # clamp before converting: a tiny per_bin sends the quotients to +-inf
    lo = min(max(lo, -1.0), float(n_bins))
    hi = min(max(hi, -1.0), float(n_bins))
    return max(int(math.ceil(lo)), 0), min(int(math.floor(hi)), n_bins - 1)


@register_jitable(_nrt=False)
def edge_and_inner_range(base, step, n_along, n):
    """Split the indices ``k = 0 .. n-1`` of positions ``base + k * step`` along a row of ``n_along`` samples.

    Returns ``first <= inner_first <= inner_last + 1 <= last + 1``: ``[first,
    last]`` holds every position with an interpolation neighbour inside the row
    (``[-1, n_along]``, widened by ``INNER_MARGIN``, far more than the rounding
    of a position; these are sampled with bounds checks), ``[inner_first,
    inner_last]`` those with both neighbours inside (kept ``INNER_MARGIN``
    from the ends), sampled without checks. Used over the bins of a plane (CPU)
    and over the planes of a ray (CUDA).
    """
    first, last = bins_within(base, step, -1.0 - INNER_MARGIN, n_along + INNER_MARGIN, n)
    inner_first, inner_last = bins_within(base, step, INNER_MARGIN, n_along - 1.0 - INNER_MARGIN, n)
    if inner_first > inner_last:
        return first, last + 1, last, last
    return first, inner_first, inner_last, last


@register_jitable(_nrt=False)
def interpolate_inner(row, f):
    """Linear interpolation of ``row`` at ``f`` whose neighbours ``floor(f)``, ``floor(f) + 1`` are both inside.

    So ``f >= 0``: truncation is the floor, and the index is unsigned, which spares the negative-index checks.
    """
    i = np.uint64(f)
    w = f - i
    return row[i] * (1.0 - w) + row[i + np.uint64(1)] * w


@register_jitable(_nrt=False)
def interpolate_edge(row, f, n):
    """Linear interpolation of ``row`` (length ``n``, zero outside) at continuous index ``f``."""
    i = int(math.floor(f))
    w = f - i
    value = 0.0
    if 0 <= i < n:
        value += row[i] * (1.0 - w)
    if -1 <= i < n - 1:
        value += row[i + 1] * w
    return value


@register_jitable(_nrt=False)
def spread_edge(row, f, n, value):
    """Transpose of :func:`interpolate_edge`: add ``value`` at ``f`` to ``row`` with the same weights."""
    i = int(math.floor(f))
    w = f - i
    if 0 <= i < n:
        row[i] += value * (1.0 - w)
    if -1 <= i < n - 1:
        row[i + 1] += value * w


@inlined_on_cpu
def segment_mm(image, base, rays, x0, y0, z0, x1, y1, z1, value, transpose):
    """:func:`joseph_segment` between two points in mm, on the grid described by ``rays``' first nine fields."""
    return joseph_segment(image, base, rays.nz, rays.ny, rays.nx, rays.dz, rays.dy, rays.dx,
                          z0 / rays.dz + rays.ck, y0 / rays.dy + rays.ci, x0 / rays.dx + rays.cj,
                          z1 / rays.dz + rays.ck, y1 / rays.dy + rays.ci, x1 / rays.dx + rays.cj, value, transpose)


@inlined_on_cpu
def lor_segment_mm(r, rays):
    """Endpoints ``(x0, y0, z0, x1, y1, z1)`` (mm) of segment ``r`` of a :class:`LORRays`."""
    xs = rays.xstart
    xe = rays.xend
    return xs[r, 0], xs[r, 1], xs[r, 2], xe[r, 0], xe[r, 1], xe[r, 2]


@inlined_on_cpu
def lor_ray(image, base, r, rays, value, transpose):
    """Trace segment ``r`` of a :class:`LORRays` through one image block."""
    x0, y0, z0, x1, y1, z1 = lor_segment_mm(r, rays)
    return segment_mm(image, base, rays, x0, y0, z0, x1, y1, z1, value, transpose)


@inlined_on_cpu
def pet_sinogram_segment_mm(r, rays):
    """Endpoints ``(x0, y0, z0, x1, y1, z1)`` (mm) of bin ``r`` of a :class:`PETSinogramRays`.

    ``r`` is the flat bin index, in the layout's axis order.
    """
    radial = (r // rays.stride_radial) % rays.n_radial
    view = (r // rays.stride_view) % rays.n_views
    plane = (r // rays.stride_plane) % rays.n_planes
    xy = rays.lor_xy
    return (xy[view, radial, 0], xy[view, radial, 1], rays.plane_z[plane, 0],
            xy[view, radial, 2], xy[view, radial, 3], rays.plane_z[plane, 1])


@inlined_on_cpu
def pet_sinogram_ray(image, base, r, rays, value, transpose):
    """Trace bin ``r`` of a :class:`PETSinogramRays` through one image block."""
    x0, y0, z0, x1, y1, z1 = pet_sinogram_segment_mm(r, rays)
    return segment_mm(image, base, rays, x0, y0, z0, x1, y1, z1, value, transpose)


def trace_ray(image, base, r, rays, value, transpose):
    """Trace ray ``r`` of any segment ray set (:class:`LORRays`, :class:`PETSinogramRays`).

    Compiled callers pass ``transpose`` as a literal and get a function
    specialised for the ray set's type and the direction (the overload below);
    plain Python (the CUDA simulator) dispatches here.
    """
    if isinstance(rays, PETSinogramRays):
        return pet_sinogram_ray(image, base, r, rays, value, transpose)
    return lor_ray(image, base, r, rays, value, transpose)


@overload(trace_ray, jit_options={"_nrt": False}, prefer_literal=True)
def _trace_ray_compiled(image, base, r, rays, value, transpose):
    if not isinstance(transpose, types.BooleanLiteral) or not isinstance(rays, types.BaseNamedTuple):
        return None
    flag = transpose.literal_value
    ray = {LORRays: lor_ray, PETSinogramRays: pet_sinogram_ray}.get(rays.instance_class)
    if ray is None:
        return None

    def specialised(image, base, r, rays, value, transpose):
        return ray(image, base, r, rays, value, flag)
    return specialised


def ray_segment_mm(r, rays):
    """Endpoints ``(x0, y0, z0, x1, y1, z1)`` (mm) of ray ``r`` of any segment ray set (compiled: overload below)."""
    if isinstance(rays, PETSinogramRays):
        return pet_sinogram_segment_mm(r, rays)
    return lor_segment_mm(r, rays)


@overload(ray_segment_mm, jit_options={"_nrt": False})
def _ray_segment_mm_compiled(r, rays):
    if not isinstance(rays, types.BaseNamedTuple):
        return None
    endpoints = {LORRays: lor_segment_mm, PETSinogramRays: pet_sinogram_segment_mm}.get(rays.instance_class)
    if endpoints is None:
        return None

    def specialised(r, rays):
        return endpoints(r, rays)
    return specialised
