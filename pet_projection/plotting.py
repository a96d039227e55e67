"""Figure helpers. matplotlib is imported inside each function, never when the package is imported."""

from __future__ import annotations

import os
from typing import Any, Optional, Union

import numpy as np

from .arrays import as_host_array
from .geometry import ParallelBeamGeometry

# Opacity of the attention overlay where the attention is 1 (it scales with the attention).
OVERLAY_ALPHA = 0.7


def _plane(name: str, values: Any, shape: tuple[int, ...]) -> np.ndarray:
    array = as_host_array(values, name)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape}, expected {shape}")
    return array.astype(np.float64)


def plot_attention(image: Any, image_attention: Any, sinogram_attention: Any, geometry: ParallelBeamGeometry, *,
                   path: Optional[Union[str, os.PathLike]] = None, title: Optional[str] = None,
                   cmap: str = "inferno") -> Any:
    """Image with its attention overlaid, beside the sinogram attention.

    Parameters
    ----------
    image : array_like, shape ``(ny, nx)``
        A 2D image (e.g. the activity), drawn in grey.
    image_attention : array_like, shape ``(ny, nx)``
        Image attention in ``[0, 1]``, overlaid in ``cmap`` with opacity
        proportional to the attention.
    sinogram_attention : array_like, shape ``(n_views, n_bins)``
        Sinogram attention in ``[0, 1]``, drawn as views (angle in degrees,
        vertical) by bins (radial position in mm, horizontal).
    geometry : ParallelBeamGeometry
        Geometry of a 2D grid: gives the image extent (mm), angles and radial positions.
    path : str or path-like, optional
        Where to save the figure (format from the suffix, e.g. PNG).
    title : str, optional
        Figure title.
    cmap : str, optional
        matplotlib colour map of the attention (default ``"inferno"``).

    Returns
    -------
    matplotlib.figure.Figure
        Not attached to pyplot, so it needs no display and is not kept alive by pyplot.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    if not isinstance(geometry, ParallelBeamGeometry):
        raise TypeError(f"geometry must be a ParallelBeamGeometry, got {type(geometry).__name__}")
    grid = geometry.grid
    if grid.ndim != 2:
        raise ValueError(f"plot_attention draws one 2D slice; the geometry's grid has shape {grid.shape}")
    image = _plane("image", image, grid.shape)
    image_attention = np.clip(_plane("image_attention", image_attention, grid.shape), 0.0, 1.0)
    sinogram_attention = _plane("sinogram_attention", sinogram_attention, (geometry.n_views, geometry.n_bins))
    x, y = grid.centers_mm(1), grid.centers_mm(0)
    dy, dx = grid.voxel_size_mm
    extent = (x[0] - dx / 2.0, x[-1] + dx / 2.0, y[0] - dy / 2.0, y[-1] + dy / 2.0)

    figure = Figure(figsize=(11.0, 4.6), layout="constrained")
    left, right = figure.subplots(1, 2)
    left.imshow(image, cmap="gray", origin="lower", extent=extent)
    overlay = colormaps[cmap](image_attention)
    overlay[..., 3] = OVERLAY_ALPHA * image_attention
    left.imshow(overlay, origin="lower", extent=extent)
    left.set(xlabel="x (mm)", ylabel="y (mm)", title="image with attention overlay")
    left.set_aspect("equal")
    figure.colorbar(left.images[0], ax=left, shrink=0.85).set_label("image")

    mesh = right.pcolormesh(geometry.radial_positions_mm(), np.degrees(geometry.angles_rad), sinogram_attention,
                            cmap=cmap, vmin=0.0, vmax=1.0, shading="nearest")
    right.set(xlabel="radial position s (mm)", ylabel="view angle θ (degrees)", title="sinogram attention")
    figure.colorbar(mesh, ax=right, shrink=0.85).set_label("attention")
    if title is not None:
        figure.suptitle(title)
    if path is not None:
        figure.savefig(os.fspath(path), dpi=110)
    return figure


__all__ = ["plot_attention"]
