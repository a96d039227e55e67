"""Sinogram windows: the geometry a generated sinogram covers, and its coordinate channels.

A :class:`SinogramWindow` is ``n_views`` equally spaced views over the
half-open angle range ``[a0, a1)`` (radians) and ``n_bins`` radial bins of
equal width tiling ``[s0, s1]`` (mm, bin centres at ``s0 + (b + 1/2) ds``).
The full parallel-beam sinogram of :class:`~pet_projection.ParallelBeamGeometry`
is the window ``[0, pi)`` by ``[-n_bins w / 2, n_bins w / 2]``.
In a batch (:mod:`ldm.batches`) a window travels as the float64 row
``(theta_0, d_theta, s_0, d_s)`` under key ``"window"``: first view angle and
view step (rad), first bin centre and bin width (mm).

:func:`coordinate_channels` turns rows into four channels on a latent grid,
``(s cos theta, s sin theta) / COORDINATE_RADIUS_MM`` (the foot of the ray in
the image plane) and ``(cos 2 theta, sin 2 theta)``: each is unchanged by
``(theta, s) -> (theta + pi, -s)``, the symmetry of parallel-beam data
(``p(theta + pi, s) = p(theta, -s)``), so a fully convolutional denoiser given
them generates the same ray alike in any window that contains it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pet_projection import ImageGrid, ParallelBeamGeometry
from pet_projection.validation import check_finite_real, positive_int

__all__ = ["COORDINATE_CHANNELS", "COORDINATE_RADIUS_MM", "SinogramWindow", "coordinate_channels", "window_row"]

COORDINATE_CHANNELS = 4
COORDINATE_RADIUS_MM = 256.0  # scale of the ray-foot channels: an adult trunk's half field of view is 250 mm


@dataclass(frozen=True)
class SinogramWindow:
    """Views and radial bins of a sinogram (see the module docstring).

    Parameters
    ----------
    n_views, n_bins : int
    angle_range_rad : (float, float)
        ``[a0, a1)``, ``a0 < a1``; views at ``a0 + v (a1 - a0) / n_views``.
    radial_range_mm : (float, float)
        ``[s0, s1]``, ``s0 < s1``, tiled by the bins.
    """

    n_views: int
    n_bins: int
    angle_range_rad: tuple[float, float]
    radial_range_mm: tuple[float, float]

    def __post_init__(self) -> None:
        positive_int("n_views", self.n_views)
        positive_int("n_bins", self.n_bins)
        for name in ("angle_range_rad", "radial_range_mm"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise TypeError(f"{name} must be a pair (start, stop), got {value!r}")
            low, high = (check_finite_real(name, v) for v in value)
            if not low < high:
                raise ValueError(f"{name} must have start < stop, got {value!r}")
            object.__setattr__(self, name, (low, high))

    @classmethod
    def full(cls, n_views: int, n_bins: int, bin_width_mm: float) -> "SinogramWindow":
        """The full sinogram of ``n_views`` views over ``[0, pi)`` and ``n_bins`` bins centred on the axis."""
        half = 0.5 * n_bins * check_finite_real("bin_width_mm", bin_width_mm, 0.0, math.inf, low_open=True)
        return cls(n_views, n_bins, (0.0, math.pi), (-half, half))

    @classmethod
    def from_row(cls, row: np.ndarray, n_views: int, n_bins: int) -> "SinogramWindow":
        """The window of a batch row ``(theta_0, d_theta, s_0, d_s)`` and its sizes."""
        theta0, d_theta, s0, d_s = (float(v) for v in row)
        return cls(n_views, n_bins, (theta0, theta0 + n_views * d_theta),
                   (s0 - 0.5 * d_s, s0 + (n_bins - 0.5) * d_s))

    @property
    def view_step_rad(self) -> float:
        return (self.angle_range_rad[1] - self.angle_range_rad[0]) / self.n_views

    @property
    def bin_width_mm(self) -> float:
        return (self.radial_range_mm[1] - self.radial_range_mm[0]) / self.n_bins

    def row(self) -> np.ndarray:
        """The batch row ``(theta_0, d_theta, s_0, d_s)`` float64 ``(4,)``."""
        return np.array([self.angle_range_rad[0], self.view_step_rad,
                         self.radial_range_mm[0] + 0.5 * self.bin_width_mm, self.bin_width_mm])

    def angles_rad(self) -> np.ndarray:
        """View angles ``(n_views,)`` in radians."""
        return self.angle_range_rad[0] + self.view_step_rad * np.arange(self.n_views)

    def geometry(self, grid: ImageGrid) -> ParallelBeamGeometry:
        """The parallel-beam geometry of this window on ``grid`` (its matching projector's)."""
        centre = 0.5 * (self.radial_range_mm[0] + self.radial_range_mm[1])
        return ParallelBeamGeometry(grid, self.n_views, self.n_bins, self.bin_width_mm,
                                    angles_rad=self.angles_rad(), radial_offset_mm=centre)


def window_row(geometry: ParallelBeamGeometry) -> np.ndarray:
    """The window row ``(theta_0, d_theta, s_0, d_s)`` float64 ``(4,)`` of a parallel-beam geometry.

    ``ValueError`` unless its views are equally spaced (one view: a step of ``pi``).
    """
    angles = np.asarray(geometry.angles_rad, dtype=np.float64)
    step = float(angles[1] - angles[0]) if angles.size > 1 else math.pi
    if angles.size > 2 and not np.allclose(np.diff(angles), step, rtol=1e-9, atol=1e-12):
        raise ValueError("the geometry's views are not equally spaced: it is no sinogram window")
    first_bin = -0.5 * (geometry.n_bins - 1) * geometry.bin_width_mm + geometry.radial_offset_mm
    return np.array([angles[0], step, first_bin, geometry.bin_width_mm])


def coordinate_channels(window: Tensor, size: tuple[int, int], padded: tuple[int, int], factor: int) -> Tensor:
    """Coordinate channels ``(B, 4, padded_V / factor, padded_R / factor)`` of window rows ``(B, 4)``.

    ``size`` is the sinogram's ``(n_views, n_bins)``, ``padded`` its size
    after :func:`ldm.autoencoder.pad_sinogram` (views appended at the end,
    radial bins split evenly), ``factor`` the latent grid's downsampling; a
    latent pixel gets the coordinates of the centre of its footprint.
    """
    if window.ndim != 2 or window.shape[1] != 4:
        raise ValueError(f"window rows must have shape (B, 4), got {tuple(window.shape)}")
    window = window.to(torch.float64)
    left = (padded[1] - size[1]) // 2
    views = (torch.arange(padded[0] // factor, dtype=torch.float64, device=window.device) + 0.5) * factor - 0.5
    bins = (torch.arange(padded[1] // factor, dtype=torch.float64, device=window.device) + 0.5) * factor - 0.5 - left
    theta = window[:, 0, None, None] + window[:, 1, None, None] * views.view(1, -1, 1)
    s = window[:, 2, None, None] + window[:, 3, None, None] * bins.view(1, 1, -1)
    theta, s = torch.broadcast_tensors(theta, s)
    foot = s / COORDINATE_RADIUS_MM
    return torch.stack([foot * torch.cos(theta), foot * torch.sin(theta), torch.cos(2 * theta),
                        torch.sin(2 * theta)], dim=1)
