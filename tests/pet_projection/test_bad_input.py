"""Bad input raises TypeError/ValueError whose message names the problem; constructors are fuzzed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pet_projection import DiagonalOperator, ImageGrid, LORProjector, ParallelBeamGeometry, ParallelBeamProjector


@pytest.fixture
def projector() -> ParallelBeamProjector:
    return ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((8, 10), 1.0), 6, 15, 1.0))


def test_wrong_image_shape_names_expected_shape(projector: ParallelBeamProjector) -> None:
    with pytest.raises(ValueError, match=r"shape \(10, 8\), expected \(\.\.\., 8, 10\)"):
        projector(np.zeros((10, 8)))
    with pytest.raises(ValueError, match=r"adjoint input has shape \(8, 10\), expected \(\.\.\., 6, 15\)"):
        projector.adjoint(np.zeros((8, 10)))


def test_image_of_another_grid_is_a_mismatch(projector: ParallelBeamProjector) -> None:
    other = ImageGrid((3, 8, 12), 1.0)
    with pytest.raises(ValueError, match="expected"):
        projector(np.zeros(other.shape))


@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.complex128, bool])
def test_wrong_dtype(projector: ParallelBeamProjector, dtype: type) -> None:
    with pytest.raises(TypeError, match="dtype float32 or float64"):
        projector(np.zeros((8, 10), dtype=dtype))


def test_non_contiguous(projector: ParallelBeamProjector) -> None:
    with pytest.raises(ValueError, match="C-contiguous"):
        projector(np.zeros((10, 8)).T)
    with pytest.raises(ValueError, match="C-contiguous"):
        projector.adjoint(np.zeros((6, 30))[:, ::2])


def test_not_an_array(projector: ParallelBeamProjector) -> None:
    with pytest.raises(TypeError, match="NumPy array or a torch tensor, got list"):
        projector([[0.0] * 10] * 8)


class FakeDeviceArray:
    """Exposes only ``__cuda_array_interface__``: enough for validation, which reads nothing else."""

    def __init__(self, shape: tuple, typestr: str = "<f4", strides: tuple | None = None) -> None:
        self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "data": (0, False),
                                         "strides": strides, "version": 3}


def test_gpu_arrays_are_validated_before_any_kernel(projector: ParallelBeamProjector) -> None:
    with pytest.raises(TypeError, match="dtype float32 or float64, got int32"):
        projector(FakeDeviceArray((8, 10), "<i4"))
    with pytest.raises(ValueError, match=r"shape \(8, 11\), expected \(\.\.\., 8, 10\)"):
        projector(FakeDeviceArray((8, 11)))
    with pytest.raises(ValueError, match="not C-contiguous"):
        projector.adjoint(FakeDeviceArray((6, 15), "<f8", strides=(8, 48)))


def test_gpu_array_on_an_operator_without_cuda_kernels() -> None:
    from pet_projection import LinearOperator

    class HostOnly(LinearOperator):
        in_shape = out_shape = (8, 10)

        def _apply(self, x: np.ndarray) -> np.ndarray:
            return x

        _adjoint = _apply

    with pytest.raises(TypeError, match="HostOnly has no CUDA implementation yet"):
        HostOnly()(FakeDeviceArray((8, 10)))


def test_torch_tensor_on_another_device_or_needing_grad(projector: ParallelBeamProjector) -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="device 'meta'"):
        projector(torch.zeros((8, 10), device="meta"))
    with pytest.raises(TypeError, match="requires grad"):
        projector(torch.zeros((8, 10), requires_grad=True))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(shape=(0, 4)), ValueError, "positive sizes"),
    (dict(shape=(4,)), ValueError, r"\(ny, nx\) or \(nz, ny, nx\)"),
    (dict(shape=(2, 2, 2, 2)), ValueError, r"\(ny, nx\) or \(nz, ny, nx\)"),
    (dict(shape=(4.0, 4)), TypeError, "integers"),
    (dict(shape=(4, 4), voxel_size_mm=-1.0), ValueError, "voxel_size_mm must be positive"),
    (dict(shape=(4, 4), voxel_size_mm=(1.0, 2.0, 3.0)), ValueError, "voxel_size_mm must have 2 entries"),
    (dict(shape=(4, 4), origin_mm=(0.0, math.nan)), ValueError, "origin_mm must be finite"),
    (dict(shape=(4, 4), voxel_size_mm="1"), TypeError, "voxel_size_mm"),
])
def test_image_grid_errors(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ImageGrid(**kwargs)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(n_views=0), ValueError, "n_views must be at least 1"),
    (dict(n_bins=2.5), TypeError, "n_bins must be an integer"),
    (dict(bin_width_mm=math.nan), ValueError, "bin_width_mm must be finite"),
    (dict(bin_width_mm=0.0), ValueError, "bin_width_mm must be positive"),
    (dict(angles_rad=[0.0, 1.0]), ValueError, "angles_rad must have n_views=4 entries"),
    (dict(angles_rad=[0.0, 1.0, math.inf, 2.0]), ValueError, "angles_rad must be finite"),
    (dict(radial_offset_mm=math.inf), ValueError, "radial_offset_mm must be finite"),
    (dict(grid=(8, 8)), TypeError, "grid must be an ImageGrid"),
])
def test_parallel_beam_geometry_errors(kwargs: dict, error: type, message: str) -> None:
    arguments = dict(grid=ImageGrid((8, 8), 1.0), n_views=4, n_bins=9, bin_width_mm=1.0) | kwargs
    with pytest.raises(error, match=message):
        ParallelBeamGeometry(**arguments)


def test_projector_needs_a_geometry() -> None:
    with pytest.raises(TypeError, match="ParallelBeamGeometry"):
        ParallelBeamProjector(ImageGrid((8, 8), 1.0))


@pytest.mark.parametrize("grid_shape, xstart, xend, message", [
    ((4, 4, 4), np.zeros((5, 2)), np.zeros((5, 2)), r"\(\.\.\., 3\)"),
    ((4, 4), np.zeros((5, 4)), np.zeros((5, 4)), r"\(\.\.\., 2\) or \(\.\.\., 3\)"),
    ((4, 4, 4), np.zeros((5, 3)), np.zeros((6, 3)), "same LORs"),
    ((4, 4, 4), np.full((5, 3), np.nan), np.zeros((5, 3)), "xstart_mm must be finite"),
    ((4, 4), np.ones((5, 3)), np.zeros((5, 3)), "z != 0"),
])
def test_lor_projector_errors(grid_shape: tuple, xstart: np.ndarray, xend: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LORProjector(ImageGrid(grid_shape, 1.0), xstart, xend)


def test_lor_projector_rejects_non_numbers() -> None:
    with pytest.raises(TypeError, match="real coordinates"):
        LORProjector(ImageGrid((4, 4), 1.0), np.array([["a", "b"]]), np.zeros((1, 2)))


def test_diagonal_operator_errors() -> None:
    with pytest.raises(ValueError, match="weights must be finite"):
        DiagonalOperator(np.array([1.0, np.inf]))
    with pytest.raises(TypeError, match="weights must be real"):
        DiagonalOperator(np.array([1j]))


anything = st.one_of(st.none(), st.booleans(), st.integers(-5, 50), st.floats(), st.text(max_size=3),
                     st.lists(st.one_of(st.integers(-3, 30), st.floats()), max_size=4))


@given(anything, anything, anything)
def test_fuzz_image_grid_raises_only_clear_errors(shape, voxel, origin) -> None:
    try:
        grid = ImageGrid(shape, voxel, origin)
    except (TypeError, ValueError) as error:
        assert str(error)
    else:
        assert all(d > 0 and math.isfinite(d) for d in grid.voxel_size_mm)


@given(anything, anything, anything, anything, anything)
def test_fuzz_parallel_beam_geometry_raises_only_clear_errors(n_views, n_bins, width, angles, offset) -> None:
    try:
        geometry = ParallelBeamGeometry(ImageGrid((4, 5), 1.0), n_views, n_bins, width, angles, offset)
    except (TypeError, ValueError) as error:
        assert str(error)
    else:
        op = ParallelBeamProjector(geometry)
        assert np.all(np.isfinite(op(np.ones((4, 5)))))


@given(st.lists(st.floats(), min_size=6, max_size=6), st.sampled_from([(4, 4), (3, 4, 4)]))
def test_fuzz_lor_endpoints(coordinates, grid_shape) -> None:
    xs = np.array(coordinates[:3]) if len(grid_shape) == 3 else np.array(coordinates[:2])
    xe = np.array(coordinates[3:]) if len(grid_shape) == 3 else np.array(coordinates[3:5])
    try:
        op = LORProjector(ImageGrid(grid_shape, 1.0), xs, xe)
    except (TypeError, ValueError) as error:
        assert str(error)
    else:
        assert np.isfinite(op(np.ones(grid_shape))) and op(np.ones(grid_shape)) >= 0.0
