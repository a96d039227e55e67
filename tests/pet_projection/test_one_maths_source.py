"""The scalar ray maths runs unchanged as plain Python (as under NUMBA_ENABLE_CUDASIM=1) and equals the CPU kernels.

This is what lets the CUDA backend compile the same functions with ``numba.cuda.jit(device=True)``:
they use only scalar arithmetic, ``math`` and array indexing, and compose into a one-thread-per-ray kernel.
"""

from __future__ import annotations

import numpy as np

from pet_projection import (ImageGrid, ListmodeProjector, LORProjector, ParallelBeamGeometry, ParallelBeamProjector,
                            TOFParameters)
from pet_projection.kernels import joseph, segments


def test_lor_ray_in_plain_python_equals_compiled_kernel() -> None:
    rng = np.random.default_rng(5)
    grid = ImageGrid((3, 5, 4), (2.0, 1.0, 1.5), origin_mm=(0.5, -1.0, 0.3))
    op = LORProjector(grid, rng.uniform(-9, 9, (25, 3)), rng.uniform(-9, 9, (25, 3)))
    image = rng.random(grid.shape)
    values = [joseph.lor_ray(image.ravel(), 0, r, op._rays, 0.0, False) for r in range(25)]
    np.testing.assert_allclose(values, op(image), rtol=1e-13, atol=1e-13)
    y = rng.random(25)
    back = np.zeros(grid.n_voxels)
    for r in range(25):
        joseph.lor_ray(back, 0, r, op._rays, y[r], True)
    np.testing.assert_allclose(back.reshape(grid.shape), op.H(y), rtol=1e-13, atol=1e-13)


def test_parallel_beam_maths_as_a_one_thread_per_ray_kernel() -> None:
    """A ray-by-ray loop over the same scalar functions reproduces the plane-by-plane CPU kernel."""
    grid = ImageGrid((6, 7), (1.0, 0.8), origin_mm=(0.4, -0.2))
    geometry = ParallelBeamGeometry(grid, 9, 11, 0.9, radial_offset_mm=0.3)
    op = ParallelBeamProjector(geometry)
    image = np.random.default_rng(6).random(grid.shape)
    planes = {False: image, True: np.ascontiguousarray(image.T)}
    values = np.zeros(op.out_shape)
    for v in range(geometry.n_views):
        swap, a0, per_plane, per_bin, step_mm = joseph.parallel_beam_view(v, op._rays)
        rows = planes[swap]
        for b in range(geometry.n_bins):
            total = sum(joseph.interpolate_edge(rows[t], joseph.plane_position(a0, per_plane, per_bin, t, b),
                                                rows.shape[1]) for t in range(rows.shape[0]))
            values[v, b] = total * step_mm
    np.testing.assert_allclose(values, op(image), rtol=1e-13, atol=1e-13)


def test_tof_ray_in_plain_python_equals_compiled_kernel() -> None:
    """The TOF maths (kernels/tof.py) through the per-ray entry points, as plain Python, equals the CPU kernels."""
    rng = np.random.default_rng(7)
    grid = ImageGrid((3, 5, 4), (2.0, 1.0, 1.5), origin_mm=(0.5, -1.0, 0.3))
    n_events = 20
    start = rng.uniform(-9, 9, (n_events, 3))
    end = -start + rng.uniform(-1, 1, (n_events, 3))  # through the grid, midpoints near its centre
    # the central three of five 4 mm TOF bins lie within 6 mm of the midpoint: most events see the image
    op = ListmodeProjector(grid, start, end, tof_bin=rng.integers(1, 4, n_events),
                           tof=TOFParameters(n_bins=5, bin_width_mm=4.0, fwhm_mm=6.0))
    image = rng.random(grid.shape)
    values = np.zeros((1, n_events, 1))
    for r in range(n_events):
        segments.project_ray(image.ravel(), 0, r, op._rays, op._tof, values, 0)
    expected = op(image)
    assert np.count_nonzero(expected) > n_events // 2
    np.testing.assert_allclose(values.reshape(n_events), expected, rtol=1e-13, atol=1e-13)
    y = rng.random(n_events)
    back = np.zeros(grid.n_voxels)
    for r in range(n_events):
        segments.back_project_ray(back, 0, r, op._rays, op._tof, y.reshape(1, n_events, 1), 0)
    np.testing.assert_allclose(back.reshape(grid.shape), op.H(y), rtol=1e-13, atol=1e-13)
