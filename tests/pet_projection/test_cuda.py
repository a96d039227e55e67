"""CUDA kernels: equal to the CPU kernels, exact adjoint, bitwise deterministic.

Without a GPU these run in Numba's CUDA simulator (the root ``conftest.py`` sets
``NUMBA_ENABLE_CUDASIM=1`` when the machine has no NVIDIA device), at tiny sizes,
so a broken kernel fails CI on a CPU-only machine. On a GPU machine the same
tests run on the device.
"""

from __future__ import annotations

from typing import Optional

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

cuda = pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")

from pet_projection import (ImageGrid, ListmodeProjector, LORProjector, ParallelBeamGeometry,  # noqa: E402
                            ParallelBeamProjector, PETSinogramProjector, RingScannerGeometry, SinogramLayout,
                            TOFParameters)
from pet_projection.device import DeviceLibrary  # noqa: E402
from pet_projection.projectors import _on_device  # noqa: E402
from pet_projection.kernels import cuda as cuda_kernels  # noqa: E402

SIMULATED = bool(numba.config.ENABLE_CUDASIM)


@st.composite
def small_projectors(draw: st.DrawFn) -> ParallelBeamProjector:
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    grid = ImageGrid(shape, (1.0, draw(st.floats(0.4, 2.0)), draw(st.floats(0.4, 2.0))),
                     (0.0, draw(st.floats(-2.0, 2.0)), draw(st.floats(-2.0, 2.0))))
    n_views = draw(st.integers(1, 5))
    angles = draw(st.lists(st.floats(-4.0, 4.0), min_size=n_views, max_size=n_views))
    return ParallelBeamProjector(ParallelBeamGeometry(grid, n_views, draw(st.integers(1, 9)),
                                                      draw(st.floats(0.3, 2.0)), angles_rad=angles,
                                                      radial_offset_mm=draw(st.floats(-2.0, 2.0))))


def cuda_forward(op: ParallelBeamProjector, x: np.ndarray, slices_per_thread: Optional[int] = 1) -> np.ndarray:
    slices = x.reshape(-1, *op.in_shape[-2:])
    out = cuda.device_array((slices.shape[0], op.geometry.n_views, op.geometry.n_bins), dtype=x.dtype)
    cuda_kernels.parallel_beam_forward(cuda.to_device(slices), cuda.to_device(slices.transpose(0, 2, 1).copy()),
                                       cuda.to_device(op._table), out, slices_per_thread=slices_per_thread)
    return out.copy_to_host().reshape(x.shape[:-2] + out.shape[1:])


def cuda_back(op: ParallelBeamProjector, y: np.ndarray, slices_per_thread: Optional[int] = 1) -> np.ndarray:
    sinograms = y.reshape(-1, op.geometry.n_views, op.geometry.n_bins)
    out = cuda.device_array((sinograms.shape[0],) + op.in_shape[-2:], dtype=y.dtype)
    cuda_kernels.parallel_beam_back(cuda.to_device(sinograms), cuda.to_device(op._table), out,
                                    slices_per_thread=slices_per_thread)
    return out.copy_to_host().reshape(y.shape[:-2] + out.shape[1:])


@settings(max_examples=12)
@given(small_projectors(), st.integers(0, 2**32 - 1), st.sampled_from([1, 2, 4]))
def test_cuda_equals_cpu_and_is_the_exact_adjoint(op: ParallelBeamProjector, seed: int,
                                                  slices_per_thread: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(op.in_shape)
    y = rng.standard_normal(op.out_shape)
    forward, back = cuda_forward(op, x, slices_per_thread), cuda_back(op, y, slices_per_thread)
    np.testing.assert_allclose(forward, op(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(back, op.H(y), rtol=1e-12, atol=1e-12)
    lhs, rhs = np.vdot(forward, y), np.vdot(x, back)
    assert abs(lhs - rhs) <= 1e-12 * max(np.linalg.norm(forward) * np.linalg.norm(y), 1e-300)


def test_cuda_float32_determinism_and_slices_per_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """float32 bits repeat; grouping 2, 4 or 8 slices per thread (5 slices: a partial last group) and other block
    sizes (the benchmark's launch sweep) keep them."""
    op = ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((5, 6, 5), 1.0), 4, 8, 1.0))
    rng = np.random.default_rng(2)
    x = rng.random(op.in_shape).astype(np.float32)
    y = rng.random(op.out_shape).astype(np.float32)
    first_forward, first_back = cuda_forward(op, x), cuda_back(op, y)
    assert first_forward.dtype == np.float32 and first_back.dtype == np.float32
    np.testing.assert_allclose(first_forward, op(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(first_back, op.H(y), rtol=1e-5, atol=1e-5)
    for k in (1, 2, 4, 8):
        assert np.array_equal(cuda_forward(op, x, k), first_forward), k
        assert np.array_equal(cuda_back(op, y, k), first_back), k
    for threads in (16, 64):
        monkeypatch.setattr(cuda_kernels, "THREADS_PER_BLOCK", threads)
        assert np.array_equal(cuda_forward(op, x, 2), first_forward), threads
        assert np.array_equal(cuda_back(op, y, 2), first_back), threads
    assert [cuda_kernels._slices_per_thread(n, 4) for n in (1, 2, 3, 4, 5, 300)] == [1, 2, 2, 4, 4, 4]
    assert [cuda_kernels._slices_per_thread(300, None, direction) for direction in ("forward", "back")] == \
        [cuda_kernels.SLICES_PER_THREAD["forward"], cuda_kernels.SLICES_PER_THREAD["back"]]
    with pytest.raises(ValueError, match="slices_per_thread must be >= 1"):
        cuda_forward(op, x, 0)


def test_cuda_back_projection_is_the_bitwise_transpose_of_the_forward() -> None:
    """The forward of each voxel and the back projection of each ray give the same matrix entries, bit for bit.

    With one non-zero input every output is a single weight times the step, so the two matrices are equal exactly
    when both kernels compute every (ray, voxel) weight alike. On a GPU this needs the same rounding of the positions
    in both kernels (the explicit fused multiply-adds of the CUDA ``plane_position``).
    """
    grid = ImageGrid((5, 4), (1.0, 0.7), (0.0, 0.3))
    op = ParallelBeamProjector(ParallelBeamGeometry(grid, 5, 7, 0.9, angles_rad=[0.1, 0.9, 1.6, 2.3, 3.0],
                                                    radial_offset_mm=0.2))  # views on both plane axes
    n_voxels, n_rays = 20, 35
    forward = cuda_forward(op, np.eye(n_voxels).reshape(n_voxels, 5, 4), None).reshape(n_voxels, n_rays)
    back = cuda_back(op, np.eye(n_rays).reshape(n_rays, 5, 7), None).reshape(n_rays, n_voxels)
    assert np.count_nonzero(forward) > 2 * n_rays  # the rays cross several voxels each
    np.testing.assert_array_equal(forward, back.T)


@pytest.mark.gpu
@pytest.mark.skipif(SIMULATED, reason="needs a CUDA GPU (running in the CUDA simulator)")
def test_large_problem_on_the_gpu_matches_cpu() -> None:
    op = ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((8, 256, 256), 1.0), 180, 367, 1.0))
    rng = np.random.default_rng(3)
    x = rng.random(op.in_shape).astype(np.float32)
    y = rng.random(op.out_shape).astype(np.float32)
    np.testing.assert_allclose(cuda_forward(op, x), op(x), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(cuda_back(op, y), op.H(y), rtol=1e-4, atol=1e-3)
    assert np.array_equal(cuda_back(op, y), cuda_back(op, y))
    assert np.array_equal(cuda_forward(op, x, 4), cuda_forward(op, x))
    assert np.array_equal(cuda_back(op, y, 4), cuda_back(op, y))


def small_scanner(n_rings: int = 2) -> RingScannerGeometry:
    """12 sides x 3 crystals (36 per ring) of 4 mm at 60 mm radius."""
    return RingScannerGeometry(radius_mm=60.0, n_sides=12, crystals_per_side=3, crystal_spacing_mm=4.0,
                               ring_positions_mm=(np.arange(n_rings) - (n_rings - 1) / 2) * 4.0)


def segment_projectors(kind: str, rng: np.random.Generator, shape: tuple):
    """Tiny segment projectors of every kind (the simulator runs each ray as a Python thread)."""
    grid = ImageGrid(shape, (1.5, 1.0, 0.8), origin_mm=(0.2, -0.3, 0.1))
    tof = TOFParameters(n_bins=5, bin_width_mm=3.0, fwhm_mm=4.0)
    starts, ends = rng.uniform(-6, 6, (20, 3)), rng.uniform(-6, 6, (20, 3))
    if kind == "lor":
        return LORProjector(grid, starts, ends)
    if kind == "listmode-tof":
        return ListmodeProjector(grid, starts, ends, tof_bin=rng.integers(0, 5, 20), tof=tof)
    pet_grid = ImageGrid((2, 8, 8), (4.0, 6.0, 6.0))
    layout = SinogramLayout(small_scanner(), span=1, n_radial=9)
    if kind == "sinogram":
        return PETSinogramProjector(layout, pet_grid, views=[0, 7])
    return PETSinogramProjector(layout, pet_grid, views=[3], tof=TOFParameters(n_bins=3, bin_width_mm=40.0,
                                                                              fwhm_mm=30.0))


def cuda_segment_projections(op, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward of ``x`` and back projection of ``y`` (batches of 2) by the segment kernels, on numba arrays."""
    library = DeviceLibrary(cuda.to_device(np.zeros(1)))
    rays, tof = _on_device(op._rays, library), (None if op._tof is None else _on_device(op._tof, library))
    out = cuda.to_device(np.zeros(op._ray_shape(2)))
    cuda_kernels.segment_forward(cuda.to_device(x.reshape(-1)), op.grid.n_voxels, rays, tof, out)
    back = cuda.device_array(2 * op.grid.n_voxels)
    cuda_kernels.segment_back(cuda.to_device(y.reshape(op._ray_shape(2))), float(np.abs(y).max()), op.grid.n_voxels,
                              rays, tof, back)
    return out.copy_to_host().reshape(y.shape), back.copy_to_host().reshape(x.shape)


@settings(max_examples=4)
@given(st.integers(0, 2**32 - 1), st.sampled_from([(1, 5, 6), (3, 4, 5)]),
       st.sampled_from(["lor", "listmode-tof", "sinogram", "sinogram-tof"]))
def test_cuda_segments_equal_cpu_and_fixed_point_back_projection_is_the_adjoint(seed: int, shape: tuple,
                                                                                kind: str) -> None:
    rng = np.random.default_rng(seed)
    op = segment_projectors(kind, rng, shape)
    x = rng.standard_normal((2,) + op.in_shape)
    y = rng.standard_normal((2,) + op.out_shape)
    forward, back = cuda_segment_projections(op, x, y)
    reference = op(x)
    assert np.any(reference != 0.0)
    np.testing.assert_allclose(forward, reference, rtol=1e-12, atol=1e-12)
    # fixed point: each contribution is exact to 2**-62 * n_rays * max|y| * max step, far below float64 needs here
    np.testing.assert_allclose(back, op.H(y), rtol=1e-12, atol=1e-12)
    assert abs(np.vdot(forward, y) - np.vdot(x, back)) <= 1e-12 * np.linalg.norm(forward) * np.linalg.norm(y)


def test_fixed_point_scale_bounds_every_voxel_sum() -> None:
    scale = cuda_kernels.fixed_point_scale(3.0, 1000, 2.0)
    assert 1000 * 3.0 * 2.0 * scale <= 2.0**62 < 2 * 1000 * 3.0 * 2.0 * scale
    assert np.log2(scale) == np.round(np.log2(scale))  # a power of two: scaling is exact
    assert cuda_kernels.fixed_point_scale(0.0, 10, 1.0) == 1.0
