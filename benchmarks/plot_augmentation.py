"""Figures for the README: Radon mask augmentation (DMM) and transparent medical attention on a phantom.

Usage::

    python -m benchmarks.plot_augmentation [--out benchmarks/results]

Writes ``rmas_example.png`` (DMM image mask, its sinogram mask, the full
sinogram and its positive/negative split) and ``tma_example.png`` (image and
sinogram attention of a hot and a cold lesion).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pet_projection import ImageGrid, ParallelBeamGeometry, ParallelBeamProjector
from pet_projection.attention import AttentionRegions, TransparentMedicalAttention, segment_metabolic
from pet_projection.masks import CellGrid, radon_mask, split_by_mask
from pet_projection.plotting import plot_attention  # noqa: E402


def phantom(grid: ImageGrid) -> tuple[np.ndarray, np.ndarray]:
    """A disc body (activity 1) with a hot (4x) and a cold (0.1x) lesion; returns (activity, body mask)."""
    x, y = grid.meshgrid_mm()
    body = x**2 + y**2 <= 80.0**2
    activity = body.astype(np.float32)
    activity[(x - 30) ** 2 + (y - 10) ** 2 <= 12.0**2] = 4.0
    activity[(x + 25) ** 2 + (y + 20) ** 2 <= 15.0**2] = 0.1
    return activity, body


def plot_rmas(projector: ParallelBeamProjector, activity: np.ndarray, out: Path) -> None:
    cells = CellGrid(projector.geometry.grid, cells_per_side=8)
    image_mask, _ = cells.sample(1, np.random.default_rng(4), layout="clustered", n_active=(5, 5))
    sino_mask = radon_mask(image_mask[0], projector)
    full = projector(activity)
    positive, negative = split_by_mask(full, sino_mask)
    panels = [("DMM image mask (8 x 8 cells)", image_mask[0], "gray"), ("sinogram mask", sino_mask, "gray"),
              ("full sinogram", full, "magma"), ("positive = mask * full", positive, "magma"),
              ("negative = (1 - mask) * full", negative, "magma")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8))
    for ax, (title, data, cmap) in zip(axes, panels):
        ax.imshow(np.asarray(data, dtype=float), cmap=cmap, origin="lower", aspect="auto")
        ax.set_title(title)
        ax.set_xlabel("x (pixels)" if data.shape == activity.shape else "radial bin")
        ax.set_ylabel("y (pixels)" if data.shape == activity.shape else "view")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    grid = ImageGrid((128, 128), 1.5)
    geometry = ParallelBeamGeometry(grid, 128, 185, 1.5)
    projector = ParallelBeamProjector(geometry)
    activity, body = phantom(grid)
    plot_rmas(projector, activity, args.out / "rmas_example.png")
    regions = AttentionRegions.from_table(segment_metabolic(activity, body, body, grid))
    maps = TransparentMedicalAttention(projector, margin_mm=4.0)(regions)
    figure = plot_attention(activity, maps.image, maps.sinogram, geometry, path=args.out / "tma_example.png",
                            title="TMA: hyper (hot) and hypo (cold) lesions, reference = body")
    del figure
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
