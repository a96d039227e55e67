"""Test helpers: analytic line integrals and supersampled phantoms."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from pet_projection import ImageGrid, ParallelBeamGeometry


def supersample(grid: ImageGrid, inside: Callable[[np.ndarray, np.ndarray], np.ndarray], factor: int = 8) -> np.ndarray:
    """Fraction of each pixel of a 2D grid covered by the region ``inside(x, y)`` (mm), by ``factor``^2 subsamples."""
    dy, dx = grid.voxel_size_mm
    offsets = (np.arange(factor) + 0.5) / factor - 0.5
    x, y = grid.meshgrid_mm()
    image = np.zeros(grid.shape)
    for oy in offsets:
        for ox in offsets:
            image += inside(x + ox * dx, y + oy * dy)
    return image / factor**2


def ray_coordinates(geometry: ParallelBeamGeometry) -> tuple[np.ndarray, np.ndarray]:
    """``(theta, s)`` of every ray, each of shape ``(n_views, n_bins)``."""
    return np.meshgrid(geometry.angles_rad, geometry.radial_positions_mm(), indexing="ij")


def ellipse_projection(theta: np.ndarray, s: np.ndarray, center: tuple[float, float], semi_axes: tuple[float, float],
                       phi: float = 0.0) -> np.ndarray:
    """Exact line integrals of a unit ellipse (centre (x, y) mm, semi-axes (a, b) mm, rotated by phi rad).

    Standard result (Kak & Slaney, Principles of Computerized Tomographic Imaging, eq. 3.6):
    ``p = 2ab sqrt(r^2 - s'^2) / r^2`` with ``r^2 = a^2 cos^2(theta - phi) + b^2 sin^2(theta - phi)``
    and ``s'`` the ray's distance from the centre.
    """
    a, b = semi_axes
    r2 = (a * np.cos(theta - phi)) ** 2 + (b * np.sin(theta - phi)) ** 2
    s_c = s - (center[0] * np.cos(theta) + center[1] * np.sin(theta))
    return 2.0 * a * b * np.sqrt(np.clip(r2 - s_c**2, 0.0, None)) / r2


def box_projection(theta: np.ndarray, s: np.ndarray, center: tuple[float, float],
                   half_widths: tuple[float, float]) -> np.ndarray:
    """Exact chord lengths of the lines ``x cos + y sin = s`` through an axis-aligned box (slab clipping)."""
    px, py = s * np.cos(theta), s * np.sin(theta)
    dxr, dyr = -np.sin(theta), np.cos(theta)
    lo = np.full(np.shape(s), -np.inf)
    hi = np.full(np.shape(s), np.inf)
    for p, d, c, h in ((px, dxr, center[0], half_widths[0]), (py, dyr, center[1], half_widths[1])):
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (c - h - p) / d
            t2 = (c + h - p) / d
        parallel = np.abs(d) < 1e-15
        inside = np.abs(p - c) <= h
        t_lo = np.where(parallel, np.where(inside, -np.inf, np.inf), np.minimum(t1, t2))
        t_hi = np.where(parallel, np.where(inside, np.inf, -np.inf), np.maximum(t1, t2))
        lo = np.maximum(lo, t_lo)
        hi = np.minimum(hi, t_hi)
    return np.clip(hi - lo, 0.0, None)


def dot_test_error(op, x: np.ndarray, y: np.ndarray) -> float:
    """``|<A x, y> - <x, A^H y>| / (|A x| |y|)``, inner products in float64."""
    ax = np.asarray(op.apply(x), dtype=np.float64)
    aty = np.asarray(op.adjoint(y), dtype=np.float64)
    lhs = np.vdot(ax, y.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), aty)
    scale = max(np.linalg.norm(ax) * np.linalg.norm(y), np.linalg.norm(x) * np.linalg.norm(aty), 1e-300)
    return abs(lhs - rhs) / scale


# overrides of the tiny LDM preset that make `allpet train` runs of a few seconds in the tests
TINY_OVERRIDES = ["data.image_size=16", "data.n_views=16", "data.n_bins=16", "data.n_bases=4",
                  "train.batch_size=2", "train.stages.autoencoder.steps=2", "train.stages.diffusion.steps=2",
                  "train.checkpoint_every=2", "train.log_every=1", "train.cpu_threads=1"]


def load_safetensors(path: Any) -> dict:
    """The tensors of a ``.safetensors`` file (a checkpoint's weights)."""
    from safetensors.torch import load_file

    return load_file(str(path))


def assert_same_tensors(first: dict, second: dict) -> None:
    """Two dicts of tensors hold the same names and bit-identical values."""
    import torch

    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def one_error_line(capsys, *words: str) -> str:
    """The one line a command printed on stderr (no traceback), which holds every word of ``words``."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]
