"""Figure for docs/foundation.md: task-paired data synthesized from a prompt, one pair per task.

Usage::

    python -m benchmarks.plot_synthesis_pairs [--prompt "FDG brain"] [--steps 50] [--out benchmarks/results]

Writes ``synthesis_pairs.png``: the shipped foundation model generates one
sinogram of the prompt on the simulator's geometry of its region
(:func:`tasks.synthesis.synthesize`), and each of the five tasks pairs it
(:func:`tasks.synthesis.synthetic_sample` for low dose and attenuation
correction, :func:`tasks.synthesis.kinetic_sample` for the kinetic and
two-tracer tasks, whose synthetic patient the simulator scans). Rows are the
tasks; columns the input and target sinograms (axes: radial bin across,
view down) and images (each panel on its own scale; the second tracer of
tracer separation in the "second target" columns). About a minute on a CPU.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ldm.prompts import parse_prompt  # noqa: E402
from ldm.weights import load_model  # noqa: E402
from pet_projection.simulation import sample_rng  # noqa: E402
from pet_projection.simulation.anatomy import FIELD_OF_VIEW_MM  # noqa: E402
from tasks.synthesis import (KINETIC_TASKS, PAIR_TASKS, kinetic_sample, pair_config, synthesis_window,  # noqa: E402
                             synthesize, synthetic_sample)

COLUMNS = ("input sinogram", "target sinogram", "second target", "input image", "target image", "second target")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", default="FDG brain", help="tracer and region")
    parser.add_argument("--steps", type=int, default=50, help="sampler steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    prompt = parse_prompt(args.prompt)
    model, config, _ = load_model(None, "cpu")
    half = 0.5 * FIELD_OF_VIEW_MM[prompt.region]
    window = synthesis_window(config, prompt, None, None, (0.0, math.pi), (-half, half))
    (sinogram,) = synthesize(model, prompt, window, 1, args.seed, args.steps, progress=False)
    figure, axes = plt.subplots(len(PAIR_TASKS), len(COLUMNS), figsize=(13, 2.3 * len(PAIR_TASKS)))
    for row, task in zip(axes, PAIR_TASKS):
        pair = kinetic_sample if task in KINETIC_TASKS else synthetic_sample
        sample = pair(task, sinogram, window, pair_config(prompt, window, task=task), sample_rng(args.seed, 0))
        tracers = " -> ".join(t.upper() for t in sample.metadata["tracers"])
        targets, images = ((sample.target, sample.target_image) if sample.target.ndim == 3
                           else ((sample.target, None), (sample.target_image, None)))
        panels = (sample.input, *targets, sample.input_image, *images)
        for column, (ax, panel) in enumerate(zip(row, panels)):
            ax.set_xticks([])
            ax.set_yticks([])
            if panel is None:
                ax.axis("off")
                continue
            ax.imshow(panel, cmap="gray_r" if column < 3 else "inferno")
        row[0].set_ylabel(f"{task.replace('_', ' ')}\n({tracers})", fontsize=9)
    for ax, title in zip(axes[0], COLUMNS):
        ax.set_title(title, fontsize=10)
    figure.suptitle(f"allpet synthesize --task: one generated {prompt.text()!r} sinogram, paired for each task",
                    fontsize=11)
    figure.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out / "synthesis_pairs.png", dpi=90)
    plt.close(figure)
    print(f"wrote {args.out / 'synthesis_pairs.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
