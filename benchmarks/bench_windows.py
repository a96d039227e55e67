"""Does the foundation model generate the sinogram window it is asked for?

Three measurements per window (views over an angle range, bins over a
radial range, cut from the 64 x 64 training grid), each beside held-out
simulated sinograms of the same prompt cut to the same window:

1. **Physics consistency**: each generated sinogram is fitted by MLEM
   (``--iterations``) with the window's own parallel-beam projector; the
   relative residual ``||A x - y|| / ||y||``, beside the held-out data's (real
   data are not exactly in the projector's range either: attenuation,
   normalisation, scatter and randoms, Poisson noise). A shifted projector fits
   as well (a rotated image explains the same data), so this says the windows are
   sinograms, not that they are the asked-for ones; the next two do.
2. **Radial control**: distance between the mean radial profile (counts per
   bin, normalised to sum 1) of the generated and of the held-out windows,
   for the requested radial range and for a wrong one (the same bins claimed
   over a range ``--wrong-scale`` times wider).
3. **Completion in the window**: held-out windows with every other block of
   eight views known; the model completes the others (task ``inpainting``)
   given the true window row, and given a wrong one (angles shifted by 90
   degrees); relative L2 error on the unknown rays, beside a physics
   baseline (MLEM image of the known views, projected onto the unknown ones).

Writes ``--out`` ``.json`` and ``.md``. Run: ``python -m benchmarks.bench_windows``
(about 10 minutes on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from benchmarks.reports import shown_path, write_results
from ldm.foundation_data import _window_rows, simulate_base_slices
from ldm.prompts import PROMPT_TASKS, parse_prompt
from ldm.weights import load_model
from ldm.windows import SinogramWindow
from pet_projection import ParallelBeamProjector, PETSystemModel
from pet_projection.recon import mlem
from tasks.metrics import summarise
from tasks.synthesis import image_grid, synthesize

# (first base view, views, first base bin, bins) in eighths of the training grid's views and bins (views past the
# last are mirrored): on 64 x 64, the whole sinogram; 32 views over 0-90 deg; 48 views over 45-180 deg and 48 bins;
# 64 views over 90-270 deg and the central 32 bins
WINDOWS = ((0, 8, 0, 8), (0, 4, 0, 8), (2, 6, 1, 6), (4, 8, 2, 4))


def residual(sinogram: np.ndarray, projector: ParallelBeamProjector, n_iterations: int) -> float:
    """Relative residual of the non-negative MLEM fit of ``sinogram`` (negatives set to 0) with ``projector``."""
    data = np.clip(np.asarray(sinogram, dtype=np.float64), 0.0, None)
    system = PETSystemModel(projector)
    image = np.asarray(mlem(data, system, n_iterations))
    return float(np.linalg.norm(np.asarray(system.linear.apply(image)) - data) / max(np.linalg.norm(data), 1e-12))


def profile_distance(generated: np.ndarray, reference: np.ndarray) -> float:
    """Total-variation distance (0..1) between the mean radial profiles (normalised) of two sets ``(N, V, B)``."""
    def profile(x: np.ndarray) -> np.ndarray:
        mean = np.clip(x, 0.0, None).mean(axis=(0, 1))
        return mean / max(mean.sum(), 1e-12)

    return float(0.5 * np.abs(profile(generated) - profile(reference)).sum())


def completion_errors(model, prompt, window: SinogramWindow, row: np.ndarray, truth: np.ndarray, known: np.ndarray,
                      steps: int, seed: int) -> list[float]:
    """Relative L2 error on the unknown rays of the model's completions of ``truth`` ``(N, V, B)`` given ``row``."""
    import torch

    from ldm.sampling import sample

    labels = prompt.label_ids() | {"task": PROMPT_TASKS.index("inpainting")}
    n = len(truth)
    mask = torch.from_numpy(np.repeat(known[None, None].astype(np.float32), n, axis=0))
    data = torch.from_numpy(truth[:, None].astype(np.float32)) * mask
    batch = {"input": data, "known": data, "mask": mask, "window": torch.from_numpy(np.repeat(row[None], n, axis=0)),
             **{key: torch.full((n,), value, dtype=torch.long) for key, value in labels.items()}}
    out = sample(model, batch, n_steps=steps, generator=torch.Generator().manual_seed(seed))[:, 0].numpy()
    unknown = ~known
    return [float(np.linalg.norm((o - t)[unknown]) / np.linalg.norm(t[unknown])) for o, t in zip(out, truth)]


def physics_completion_errors(window: SinogramWindow, truth: np.ndarray, known: np.ndarray,
                              n_iterations: int) -> list[float]:
    """The same error for the MLEM image of the known views, projected onto the unknown ones."""
    views = known.all(axis=1)
    grid = image_grid(window)
    angles = window.angles_rad()
    geometry = window.geometry(grid)
    partial = ParallelBeamProjector(type(geometry)(grid, int(views.sum()), window.n_bins, window.bin_width_mm,
                                                   angles_rad=angles[views],
                                                   radial_offset_mm=geometry.radial_offset_mm))
    full = ParallelBeamProjector(geometry)
    errors = []
    for t in truth:
        image = np.asarray(mlem(np.clip(t[views], 0.0, None).astype(np.float64), PETSystemModel(partial), n_iterations))
        estimate = np.asarray(full(image))
        errors.append(float(np.linalg.norm((estimate - t)[~views]) / np.linalg.norm(t[~views])))
    return errors


def _cell(values: list[float]) -> dict:
    summary = summarise(values)
    return {"mean": summary.mean, "low": summary.low, "high": summary.high, "values": values}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompt", default="FDG brain")
    parser.add_argument("--model", default=None, help="weights or run folder (default: the shipped foundation)")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--wrong-scale", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/windows")
    args = parser.parse_args(argv)
    prompt = parse_prompt(args.prompt)
    model, config, folder = load_model(args.model)
    size = config.data.image_size
    region, tracer = prompt.region or "brain", prompt.tracer or "fdg"
    held_out = simulate_base_slices(args.n, size, config.data.n_views, (region,), (tracer,), seed=10_000 + args.seed)
    width = float(held_out.bin_width_mm[0])
    step = math.pi / config.data.n_views
    rows = []
    for first_view, n_views, first_bin, n_bins in (tuple(size * value // 8 for value in w) for w in WINDOWS):
        low = (first_bin - size / 2) * width
        window = SinogramWindow(n_views, n_bins, (first_view * step, (first_view + n_views) * step),
                                (low, low + n_bins * width))
        centre, half = sum(window.radial_range_mm) / 2, args.wrong_scale * (window.radial_range_mm[1] - low) / 2
        wider = SinogramWindow(n_views, n_bins, window.angle_range_rad, (centre - half, centre + half))
        rotated = SinogramWindow(n_views, n_bins, tuple(a + math.pi / 2 for a in window.angle_range_rad),
                                 window.radial_range_mm)
        right = ParallelBeamProjector(window.geometry(image_grid(window)))
        real = _window_rows(held_out.sinograms, first_view, n_views)[..., first_bin:first_bin + n_bins]
        generated = synthesize(model, prompt, window, args.n, seed=args.seed, steps=args.steps)
        widened = synthesize(model, prompt, wider, args.n, seed=args.seed, steps=args.steps)
        known = np.repeat((np.arange(n_views) // 8) % 2 == 0, n_bins).reshape(n_views, n_bins)
        rows.append({
            "window": {"views": n_views, "angle_range_deg": [math.degrees(a) for a in window.angle_range_rad],
                       "bins": n_bins, "radial_range_mm": list(window.radial_range_mm)},
            "residual generated": _cell([residual(x, right, args.iterations) for x in generated]),
            "residual held-out": _cell([residual(x, right, args.iterations) for x in real]),
            "profile distance, requested range": profile_distance(generated, real),
            "profile distance, wrong range": profile_distance(widened, real),
            "completion, true window": _cell(completion_errors(model, prompt, window, window.row(), real, known,
                                                               args.steps, args.seed)),
            "completion, wrong window": _cell(completion_errors(model, prompt, window, rotated.row(), real, known,
                                                                args.steps, args.seed)),
            "completion, MLEM of known views": _cell(physics_completion_errors(window, real, known,
                                                                               args.iterations))})
    arguments = sys.argv[1:] if argv is None else argv
    report = {"command": "python -m benchmarks.bench_windows " + " ".join(arguments), "model": shown_path(folder),
              "prompt": args.prompt, "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, CPU",
              "rows": rows}
    columns = ("residual generated", "residual held-out", "profile distance, requested range",
               "profile distance, wrong range", "completion, true window", "completion, wrong window",
               "completion, MLEM of known views")
    lines = [f"# Sinogram windows of the foundation model ({report['date']}, {report['machine']})", "",
             f"Command: `{report['command']}`; model `{report['model']}`; prompt \"{args.prompt}\"; "
             f"{args.n} sinograms per window, {args.steps} DDIM steps; MLEM {args.iterations} iterations; mean "
             "[95% CI]. Residual: relative "
             "residual of the MLEM fit with the window's projector. Profile distance: total variation between mean "
             "radial profiles of generated and held-out windows (0: equal, 1: disjoint). Completion: relative L2 "
             "error on the unknown views (every other block of 8 views known).", "",
             "| window | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        w = row["window"]
        label = (f"{w['views']} views {w['angle_range_deg'][0]:.0f}-{w['angle_range_deg'][1]:.0f} deg, "
                 f"{w['bins']} bins {w['radial_range_mm'][0]:.0f}..{w['radial_range_mm'][1]:.0f} mm")
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float)
                 else f"{row[c]['mean']:.3f} [{row[c]['low']:.3f}, {row[c]['high']:.3f}]" for c in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    write_results(Path(args.out), report, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
