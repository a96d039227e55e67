"""Figure for docs/simulation.md: every tracer in every body region of the simulator.

Usage::

    python -m benchmarks.plot_simulation_montage [--out benchmarks/results]

Writes ``simulation_montage.png``: rows are the tracers (FDG, [11C]methionine,
[18F]FDOPA, [68Ga]PSMA-11), columns the body regions. Brain, chest and
abdomen show an axial slice, the trunk a coronal maximum-intensity
projection of a 3D phantom (neck to groin). Each panel is the true activity
of its tracer's reference frame (decay-corrected uptake, no noise), on one
patient per region for all tracers (with lesions and lymph nodes that are
hot with probability 0.15: hot for FDG and PSMA, normal for methionine and
FDOPA, whose ``hot_node_probability`` is 0). Takes a few seconds on a CPU.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pet_projection import ImageGrid  # noqa: E402
from pet_projection.simulation import TRACERS, anatomy_grid, get_tracer, make_phantom  # noqa: E402
from pet_projection.simulation.patient import frame_images, region_kinetics  # noqa: E402
from pet_projection.simulation.phantoms import smooth_texture  # noqa: E402

# (region, axial position of the slice in mm, title); the trunk is a 3D volume (its centre) shown as a coronal MIP
PANELS = (("brain", 6.0, "brain, axial (striatum level)"), ("chest", 60.0, "chest, axial (heart, lungs)"),
          ("abdomen", -85.0, "abdomen, axial (liver, kidneys)"), ("trunk", 0.0, "trunk, coronal MIP"))
SIZE = 128
TRUNK_GRID = ImageGrid((300, 96, 96), (3.29, 500.0 / 96, 500.0 / 96))  # 987 mm: neck to groin
HOT_NODE_PROBABILITY = 0.15
SEEDS = {"brain": 7, "chest": 5, "abdomen": 5, "trunk": 4}  # patients with hot and cold lesions in view


def activity(region: str, axial_mm: float, tracer: str) -> np.ndarray:
    """The reference-frame activity of one tracer in the region's patient: 2D ``(y, x)``, or the trunk's MIP."""
    rng = np.random.default_rng(SEEDS[region])
    grid = TRUNK_GRID if region == "trunk" else anatomy_grid(region, SIZE)
    phantom = make_phantom(region, grid, rng, n_lesions=(1, 2), axial_position_mm=axial_mm,
                           hot_node_probability=HOT_NODE_PROBABILITY)
    texture = smooth_texture(grid, rng, 0.1)
    kinetics = region_kinetics(phantom, get_tracer(tracer), np.random.default_rng(0), 0.0)
    frame = get_tracer(tracer).reference_frame_min
    image = frame_images(phantom, get_tracer(tracer), kinetics, [frame], texture)[0]
    return image.max(axis=1) if region == "trunk" else image  # (z, x): looking from the front


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    tracers = list(TRACERS)[:4]
    fig, axes = plt.subplots(len(tracers), len(PANELS), figsize=(3.0 * len(PANELS), 3.1 * len(tracers)))
    for row, tracer in enumerate(tracers):
        for column, (region, axial_mm, title) in enumerate(PANELS):
            image = activity(region, axial_mm, tracer)
            ax = axes[row, column]
            body = image[image > 0]
            vmax = float(np.percentile(body, 99.5)) if body.size else 1.0
            aspect = TRUNK_GRID.voxel_size_mm[0] / TRUNK_GRID.voxel_size_mm[2] if region == "trunk" else 1.0
            ax.imshow(image, cmap="gray_r", origin="lower", vmin=0.0, vmax=vmax, aspect=aspect,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=10)
            if column == 0:
                tracer_info = get_tracer(tracer)
                ax.set_ylabel(f"{tracer}\n({tracer_info.reference_frame_min[0]:.0f}-"
                              f"{tracer_info.reference_frame_min[1]:.0f} min)", fontsize=10)
    fig.suptitle("Simulated true activity: tracers (rows) x body regions (columns), each panel its own grey scale",
                 fontsize=11)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "simulation_montage.png", dpi=80)
    plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
