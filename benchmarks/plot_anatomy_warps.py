"""Figure for the README: anatomy warps, new low-dose patients from one simulated brain slice.

Usage::

    python -m benchmarks.plot_anatomy_warps [--out benchmarks/results]

Writes ``anatomy_warps_example.png``: the source slice's true activity and
three warped patients (:meth:`tasks.low_dose.LowDoseTask.warp_sample`, the
default :class:`~pet_projection.simulation.DeformationSettings`), each above
its low-dose prompts (dose reduction factor 20).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pet_projection.simulation import SimulationConfig, simulate_sample  # noqa: E402
from tasks.low_dose import TASK  # noqa: E402

N_WARPS = 3


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    config = SimulationConfig(size=64, n_views=64, anatomy="brain", dose_reduction_factors=(20.0,),
                              n_lesions=(2, 2), total_counts=2.5e5)
    source = simulate_sample("low_dose", config, seed=3)
    samples = [source] + [TASK.warp_sample(source, np.random.default_rng(k)) for k in range(N_WARPS)]
    fig, axes = plt.subplots(2, len(samples), figsize=(3.2 * len(samples), 6.4))
    vmax = max(float(s.target_image.max()) for s in samples)
    for column, sample in enumerate(samples):
        title = "source slice" if column == 0 else f"warped patient {column}"
        axes[0, column].imshow(sample.target_image, cmap="magma", origin="lower", vmin=0, vmax=vmax)
        axes[0, column].set_title(f"{title}: true activity")
        axes[1, column].imshow(sample.input, cmap="magma", origin="lower", aspect="auto")
        axes[1, column].set_title("low-dose prompts (1/20)")
        axes[1, column].set_xlabel("radial bin")
        for ax in axes[:, column]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "anatomy_warps_example.png", dpi=90)
    plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
