"""Figures for the README: benchmark bars from the JSON results and an example projection.

Usage::

    python -m benchmarks.plot_projectors [--results benchmarks/results/projectors_cpu.json]

Writes ``projectors_cpu.png`` (median forward/back time per library and case,
log scale) and ``example_projection.png`` (phantom, sinogram, back projection
and the difference to ASTRA's Joseph projector) next to the results file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pet_projection import ImageGrid, ParallelBeamGeometry, ParallelBeamProjector  # noqa: E402


def plot_timings(results: dict, out: Path) -> None:
    """Grouped bars of median forward and back times (ms, log scale), one panel per case."""
    cases = results["cases"]
    fig, axes = plt.subplots(1, len(cases), figsize=(5 * len(cases), 4), squeeze=False)
    for ax, (name, case) in zip(axes[0], cases.items()):
        libraries = list(case["results"])
        positions = np.arange(len(libraries))
        lowest = np.inf
        for offset, (key, label) in zip((-0.2, 0.2), (("forward_ms", "forward"), ("back_ms", "back"))):
            medians = [case["results"][lib][key]["median"] for lib in libraries]
            ax.bar(positions + offset, medians, 0.4, label=label)
            lowest = min(lowest, *medians)
        ax.set_xticks(positions, libraries, rotation=30, ha="right")
        ax.set_yscale("log")
        ax.set_ylim(bottom=lowest / 3)
        ax.set_ylabel("median time (ms)")
        ax.set_title(f"{case['n_slices']} x {case['size']}^2, {case['n_views']} views x {case['n_bins']} bins")
        ax.legend()
    machine = results["machine"]
    fig.suptitle(f"CPU projectors on {machine['cpu_model']}, {machine['cores']} cores ({results['date'][:10]})")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_example(out: Path) -> None:
    """Shepp-Logan-like phantom, its sinogram, the back projection, and allpet minus ASTRA 'linear' if installed."""
    grid = ImageGrid((256, 256), 1.0)
    x, y = grid.meshgrid_mm()
    image = (((x / 100) ** 2 + (y / 120) ** 2) <= 1).astype(np.float32)
    image -= 0.6 * (((x / 90) ** 2 + (y / 110) ** 2) <= 1)
    image += 0.8 * ((((x - 30) / 20) ** 2 + ((y - 20) / 35) ** 2) <= 1) + 0.5 * ((x + 35) ** 2 + (y + 40) ** 2 <= 15**2)
    geometry = ParallelBeamGeometry(grid, 180, 367, 1.0)
    projector = ParallelBeamProjector(geometry)
    sinogram = projector(image)
    panels = [("phantom (y up)", image, "gray"), ("sinogram: views x bins (mm)", sinogram, "magma"),
              ("back projection", projector.adjoint(sinogram), "gray")]
    try:
        import astra

        projection_geometry = astra.create_proj_geom("parallel", 1.0, 367, geometry.angles_rad)
        projector_id = astra.create_projector("linear", projection_geometry, astra.create_vol_geom(256, 256))
        sinogram_id, theirs = astra.create_sino(np.ascontiguousarray(image[::-1]), projector_id)
        astra.data2d.delete(sinogram_id)
        astra.projector.delete(projector_id)
        panels.append(("allpet - ASTRA linear", sinogram - theirs, "coolwarm"))
    except ImportError:
        pass
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4))
    for ax, (title, data, cmap) in zip(axes, panels):
        shown = ax.imshow(data, cmap=cmap, origin="lower", aspect="auto")
        ax.set_title(title)
        fig.colorbar(shown, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "projectors_cpu.json")
    args = parser.parse_args(argv)
    plot_timings(json.loads(args.results.read_text()), args.results.with_suffix(".png"))
    plot_example(args.results.parent / "example_projection.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
