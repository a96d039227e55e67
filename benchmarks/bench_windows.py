"""Does the foundation model generate the sinogram window it is asked for? Data consistency with the window's projector.

For each window (views over an angle range, bins over a radial range) the
shipped model synthesizes ``--n`` sinograms for a prompt; each is fitted by
MLEM (``--iterations``) with the window's own parallel-beam projector and with
a projector of the wrong window (the same sizes, angles shifted by
``--shift-deg``), and the relative residual ``||A x - y|| / ||y||`` of the fit
is reported. Held-out simulated sinograms of the same prompt, cut to the same
window, are the reference: real data are not exactly in the projector's range
either (attenuation, normalisation, scatter and randoms, Poisson noise). A
model that honours the requested geometry gives residuals near the
reference's with the matching projector and clearly larger ones with the
wrong one. Writes ``--out`` ``.json`` and ``.md``.

Run: ``python -m benchmarks.bench_windows`` (a few minutes on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ldm.foundation_data import _window_rows, simulate_base_slices
from ldm.prompts import parse_prompt
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompt", default="FDG brain")
    parser.add_argument("--model", default=None, help="weights or run folder (default: the shipped foundation)")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--shift-deg", type=float, default=30.0)
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
        shift = math.radians(args.shift_deg)
        shifted = SinogramWindow(n_views, n_bins, tuple(a + shift for a in window.angle_range_rad),
                                 window.radial_range_mm)
        grid = image_grid(window)
        right = ParallelBeamProjector(window.geometry(grid))
        wrong = ParallelBeamProjector(shifted.geometry(grid))
        generated = synthesize(model, prompt, window, args.n, seed=args.seed, steps=args.steps, progress=False)
        real = _window_rows(held_out.sinograms, first_view, n_views)[..., first_bin:first_bin + n_bins]
        row = {"window": {"views": n_views, "angle_range_deg": [math.degrees(a) for a in window.angle_range_rad],
                          "bins": n_bins, "radial_range_mm": list(window.radial_range_mm)}}
        for name, data, projector in (("generated, matching projector", generated, right),
                                      ("generated, wrong window", generated, wrong),
                                      ("held-out simulated, matching projector", real, right)):
            values = [residual(s, projector, args.iterations) for s in data]
            summary = summarise(values)
            row[name] = {"mean": summary.mean, "low": summary.low, "high": summary.high, "values": values}
        rows.append(row)
    arguments = sys.argv[1:] if argv is None else argv
    report = {"command": "python -m benchmarks.bench_windows " + " ".join(arguments), "model": str(folder),
              "prompt": args.prompt, "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, CPU",
              "rows": rows}
    names = ("generated, matching projector", "generated, wrong window", "held-out simulated, matching projector")
    lines = [f"# Sinogram windows: data consistency ({report['date']}, {report['machine']})", "",
             f"Command: `{report['command']}`; model `{folder}`; prompt \"{args.prompt}\"; relative residual of a "
             f"{args.iterations}-iteration MLEM fit, mean [95% CI] over {args.n} sinograms.", "",
             "| window | " + " | ".join(names) + " |", "|---|---|---|---|"]
    for row in rows:
        w = row["window"]
        label = (f"{w['views']} views {w['angle_range_deg'][0]:.0f}-{w['angle_range_deg'][1]:.0f} deg, "
                 f"{w['bins']} bins {w['radial_range_mm'][0]:.0f}..{w['radial_range_mm'][1]:.0f} mm")
        lines.append(f"| {label} | " + " | ".join(
            f"{row[n]['mean']:.3f} [{row[n]['low']:.3f}, {row[n]['high']:.3f}]" for n in names) + " |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
