"""The projectors' properties on a real GPU: analytic references, linearity, float32 adjointness, CPU agreement,
bitwise determinism at full size, every segment projector (LOR, listmode TOF, sinogram, sinogram TOF), autograd.

Skipped without a CUDA device (CI runs the kernels in the CUDA simulator instead:
``tests/pet_projection/test_cuda.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import ellipse_projection, ray_coordinates, supersample
from pet_projection import (ImageGrid, ListmodeProjector, LORProjector, ParallelBeamGeometry, ParallelBeamProjector,
                            PETSinogramProjector, RingScannerGeometry, SinogramLayout, TOFParameters)

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cuda_device")]


def test_ellipse_matches_its_analytic_projection_on_the_gpu() -> None:
    grid = ImageGrid((200, 160), (0.8, 1.1), origin_mm=(2.0, -3.0))
    center, axes, phi = (-5.0, 8.0), (55.0, 30.0), 0.4
    image = supersample(grid, lambda x, y: (((x - center[0]) * np.cos(phi) + (y - center[1]) * np.sin(phi)) / axes[0])
                        ** 2 + ((-(x - center[0]) * np.sin(phi) + (y - center[1]) * np.cos(phi)) / axes[1]) ** 2 <= 1.0)
    geometry = ParallelBeamGeometry(grid, 90, 240, 0.9, radial_offset_mm=0.3)
    exact = ellipse_projection(*ray_coordinates(geometry), center, axes, phi)
    projected = ParallelBeamProjector(geometry)(torch.tensor(image, device="cuda")).cpu().numpy()
    assert np.linalg.norm(projected - exact) / np.linalg.norm(exact) < 0.01


def test_float32_batch_is_linear_adjoint_equal_to_cpu_and_deterministic() -> None:
    """The GPU benchmark problem (docs/gpu.md): 256 slices of 128 x 128, 128 views x 185 bins, float32."""
    op = ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((256, 128, 128), 1.0), 128, 185, 1.0))
    generator = torch.Generator(device="cuda").manual_seed(0)
    x, z = (torch.rand(op.in_shape, device="cuda", generator=generator) for _ in range(2))
    y = torch.rand(op.out_shape, device="cuda", generator=generator)
    forward, back = op(x), op.adjoint(y)
    assert torch.equal(op(x), forward) and torch.equal(op.adjoint(y), back)  # identical bits on every run
    combined = op(2.0 * x - 3.0 * z)
    assert float((combined - (2.0 * forward - 3.0 * op(z))).norm() / combined.norm()) < 1e-5
    lhs, rhs = float((forward.double() * y.double()).sum()), float((x.double() * back.double()).sum())
    assert abs(lhs - rhs) <= 1e-5 * float(forward.double().norm() * y.double().norm())
    one_slice = ParallelBeamProjector(ParallelBeamGeometry(ImageGrid((128, 128), 1.0), 128, 185, 1.0))
    x_host, y_host = x[:8].cpu().numpy(), y[:8].cpu().numpy()  # 8 slices on the CPU, as a batch of 2D slices
    for gpu, cpu in ((forward[:8], one_slice(x_host)), (back[:8], one_slice.adjoint(y_host))):
        assert np.linalg.norm(gpu.cpu().numpy() - cpu) <= 1e-5 * np.linalg.norm(cpu)


def _scanner() -> RingScannerGeometry:
    return RingScannerGeometry(radius_mm=120.0, n_sides=24, crystals_per_side=4, crystal_spacing_mm=4.0,
                               ring_positions_mm=(np.arange(6) - 2.5) * 4.0)


def _segment_projector(kind: str, rng: np.random.Generator):
    grid = ImageGrid((8, 48, 48), (4.0, 4.0, 4.0))
    tof = TOFParameters(n_bins=7, bin_width_mm=30.0, fwhm_mm=60.0)
    if kind in ("lor", "listmode-tof"):
        angles = rng.uniform(0.0, np.pi, 4000)
        starts = np.stack([120 * np.cos(angles), 120 * np.sin(angles), rng.uniform(-12, 12, 4000)], axis=1)
        ends = np.stack([-starts[:, 0], -starts[:, 1], rng.uniform(-12, 12, 4000)], axis=1)
        if kind == "lor":
            return LORProjector(grid, starts, ends)
        return ListmodeProjector(grid, starts, ends, tof_bin=rng.integers(0, 7, 4000), tof=tof)
    return PETSinogramProjector(SinogramLayout(_scanner(), span=3), grid, tof=tof if kind == "sinogram-tof" else None)


@pytest.mark.parametrize("kind", ["lor", "listmode-tof", "sinogram", "sinogram-tof"])
def test_segment_projectors_on_the_gpu_equal_the_cpu_and_are_exact_adjoints(kind: str) -> None:
    rng = np.random.default_rng(7)
    op = _segment_projector(kind, rng)
    x = rng.random((2,) + op.in_shape)
    y = rng.random((2,) + op.out_shape)
    forward, back = op(torch.tensor(x, device="cuda")), op.adjoint(torch.tensor(y, device="cuda"))
    assert forward.device.type == "cuda" and forward.shape == y.shape and back.shape == x.shape
    np.testing.assert_allclose(forward.cpu().numpy(), op(x), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(back.cpu().numpy(), op.adjoint(y), rtol=1e-10, atol=1e-10)
    assert torch.equal(op.adjoint(torch.tensor(y, device="cuda")), back)  # fixed-point atomics: the same bits
    float32 = op.adjoint(torch.tensor(y, dtype=torch.float32, device="cuda")).cpu().numpy()
    assert np.linalg.norm(float32 - op.adjoint(y)) <= 1e-5 * np.linalg.norm(op.adjoint(y))


def test_pet_sinogram_on_cupy_and_autograd_on_cuda() -> None:
    from pet_projection.autograd import project

    op = PETSinogramProjector(SinogramLayout(_scanner(), span=3), ImageGrid((4, 12, 12), (8.0, 16.0, 16.0)),
                              views=[0, 9, 31])
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
    x = cupy.random.random(op.in_shape)
    y = op(x)
    assert isinstance(y, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(y), op(cupy.asnumpy(x)), rtol=1e-10, atol=1e-10)
    image = torch.rand(op.in_shape, dtype=torch.float64, device="cuda", requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: project(t, op), (image,))
