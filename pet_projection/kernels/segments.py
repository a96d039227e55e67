"""One ray of a segment ray set, with or without TOF: the per-ray functions of the CPU and CUDA segment drivers.

:func:`project_ray` and :func:`back_project_ray` are what :mod:`.cpu` calls in
its ``prange`` loops and :mod:`.cuda` in its one-thread-per-ray kernels, so both
targets trace every ray with the same maths (:mod:`.joseph`, :mod:`.tof`).
"""

from __future__ import annotations

from numba.core import types
from numba.extending import overload

from .joseph import trace_ray
from .tof import trace_tof_ray


def project_ray(image, base, r, rays, tof, out, n):
    """Forward projection of ray ``r`` of image block ``base`` into ``out[n, r]``.

    ``tof`` is None (one value per ray) or :class:`~.tof.TOFBins` (``out[n, r, :]``, zeroed beforehand).
    Compiled callers get the branch for their ``tof`` type only (overload below).
    """
    if tof is None:
        out[n, r] = trace_ray(image, base, r, rays, 0.0, False)
    else:
        trace_tof_ray(image, base, r, rays, tof, out, n, False)


def back_project_ray(image, base, r, rays, tof, sinograms, n):
    """Transposed projection of ``sinograms[n, r]`` (TOF: ``[n, r, :]``) added to image block ``base``."""
    if tof is None:
        value = sinograms[n, r]
        if value != 0.0:
            trace_ray(image, base, r, rays, value, True)
    else:
        trace_tof_ray(image, base, r, rays, tof, sinograms, n, True)


@overload(project_ray, jit_options={"_nrt": False})
def _project_ray_compiled(image, base, r, rays, tof, out, n):
    if isinstance(tof, types.NoneType):
        def ray(image, base, r, rays, tof, out, n):
            out[n, r] = trace_ray(image, base, r, rays, 0.0, False)
        return ray

    def tof_ray(image, base, r, rays, tof, out, n):
        trace_tof_ray(image, base, r, rays, tof, out, n, False)
    return tof_ray


@overload(back_project_ray, jit_options={"_nrt": False})
def _back_project_ray_compiled(image, base, r, rays, tof, sinograms, n):
    if isinstance(tof, types.NoneType):
        def ray(image, base, r, rays, tof, sinograms, n):
            value = sinograms[n, r]
            if value != 0.0:
                trace_ray(image, base, r, rays, value, True)
        return ray

    def tof_ray(image, base, r, rays, tof, sinograms, n):
        trace_tof_ray(image, base, r, rays, tof, sinograms, n, True)
    return tof_ray
