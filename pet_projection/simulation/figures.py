"""PNG montage of a simulated sample: phantom, labels, mu-map, reconstruction and sinograms (matplotlib, lazy)."""

from __future__ import annotations

import pathlib
from typing import Any, Union

import numpy as np

from ..recon import osem
from .dataset_folder import system_model
from .sample import TaskSample

PathLike = Union[str, pathlib.Path]


def _image_slice(image: np.ndarray) -> np.ndarray:
    """The central axial slice of a 3D image, or the 2D image itself."""
    return image[image.shape[0] // 2] if image.ndim == 3 else image


def _sinogram_view(sinogram: np.ndarray, axes: list) -> np.ndarray:
    """A ``(view, radial)`` picture of a sinogram: the central plane of a 3D one."""
    if len(axes) == 2:
        return sinogram
    order = [axes.index(name) for name in ("plane", "view", "radial")]
    planes = np.transpose(sinogram, order)
    return planes[planes.shape[0] // 2]


def reconstruct_input(sample: TaskSample, n_subsets: int = 8, n_iterations: int = 4) -> np.ndarray:
    """OSEM reconstruction of ``sample.input`` with its own system model (float32, image shape)."""
    system = system_model(sample, "input")
    n_views = system.out_shape[system.view_axis]
    return osem(sample.input.astype(np.float64), system, min(n_subsets, n_views), n_iterations).astype(np.float32)


def save_sample_montage(sample: TaskSample, path: PathLike, *, reconstruct: bool = True, n_subsets: int = 8,
                        n_iterations: int = 4) -> pathlib.Path:
    """Write a PNG montage of ``sample`` to ``path``; returns the path.

    Top row: target activity (ground truth), region labels, mu-map and (if
    ``reconstruct``) the OSEM reconstruction of the input
    (:func:`reconstruct_input`). Bottom row: the input sinogram, the target
    sinogram(s) and the attenuation factors. 3D samples show the central
    slice and the central sinogram plane.
    """
    from matplotlib.figure import Figure

    axes_names = sample.metadata["projector"]["sinogram_axes"]
    targets = sample.target if sample.target.shape != sample.input.shape else sample.target[None]
    stacked = sample.target_image.shape != sample.mu_map.shape
    target_images = sample.target_image if stacked else sample.target_image[None]
    images: list[tuple[str, Any, str]] = [
        ("target activity" + (" (tracer 1)" if len(target_images) > 1 else ""), _image_slice(target_images[0]), "hot"),
        ("labels", _image_slice(sample.labels), "tab20"),
        ("mu-map (1/mm)", _image_slice(sample.mu_map), "gray"),
    ]
    if reconstruct:
        images.append((f"OSEM of input ({n_iterations} it x {n_subsets} subsets)",
                       _image_slice(reconstruct_input(sample, n_subsets, n_iterations)), "hot"))
    sinograms = [("input sinogram", _sinogram_view(sample.input, axes_names))]
    sinograms += [(f"target sinogram {k + 1}" if len(targets) > 1 else "target sinogram",
                   _sinogram_view(target, axes_names)) for k, target in enumerate(targets)]
    sinograms.append(("attenuation factors", _sinogram_view(sample.attenuation, axes_names)))
    n_columns = max(len(images), len(sinograms))
    figure = Figure(figsize=(3.2 * n_columns, 6.6))
    grid = figure.subplots(2, n_columns, squeeze=False)
    for ax in grid.ravel():
        ax.axis("off")
    for ax, (title, image, cmap) in zip(grid[0], images):
        shown = ax.imshow(image, cmap=cmap, origin="lower", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    for ax, (title, sinogram) in zip(grid[1], sinograms):
        shown = ax.imshow(sinogram, cmap="gray", aspect="auto", interpolation="nearest")
        ax.set_title(title + " (view x radial)", fontsize=9)
        figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    meta = sample.metadata
    figure.suptitle(f"{meta['task']}: {meta['anatomy']}, tracers {', '.join(meta['tracers'])}, "
                    f"{len(meta['lesions'])} lesions", fontsize=11)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    return path
