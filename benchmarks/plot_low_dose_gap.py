"""Figure for the README: where the low-dose methods stand against the +3 dB target, from the recorded results.

Usage::

    python -m benchmarks.plot_low_dose_gap [--results benchmarks/results] [--out PNG]

Reads the JSON files that the low-dose benchmarks wrote (``tasks_demo``,
``physics_prior_low_dose``, ``ldm_latent_low_dose``, ``ldm_latent_low_dose_warps15``,
``ldm_latent_low_dose_warps15_wide``, ``training_phantoms_low_dose``, ``low_dose_limits``) and writes
``low_dose_gap.png`` there (or ``--out``): each method's image PSNR gain (dB) over the best
post-filtered OSEM of the low-dose data, the baseline each benchmark measured
on the same 16 test slices (dose reduction factor 20, OSEM 4 x 4), with the
paired 95% confidence interval where the benchmark recorded one. Nothing is
rerun: the figure shows the numbers of the tables in the README.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.bench_physics_prior import RESULTS  # noqa: E402

TARGET_DB = 3.0  # issue 9: the LDM at least 3 dB image PSNR above post-filtered OSEM of the low-dose data

# (label, gain dB, (low, high) or None, group); group picks the colour
Row = tuple[str, float, Optional[tuple[float, float]], str]


def _load(results: Path, name: str) -> dict:
    path = results / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the benchmark that writes it (see its name in the README)")
    return json.loads(path.read_text(encoding="utf-8"))


def gap_rows(results: Path) -> list[Row]:
    """The figure's rows, from the result files in ``results``."""
    demo_file = _load(results, "tasks_demo")
    demo = next(row for row in demo_file["rows"] if row["task"] == "low_dose")
    n_demo = demo_file["config"]["n_train"]
    metrics, filtered = demo["metrics"], demo["filtered_baseline"]
    base = metrics[filtered]["psnr"]["mean"]
    ldm = demo["ldm_minus"][filtered]
    prior = _load(results, "physics_prior_low_dose")["rows"]
    prior_base = next(v for k, v in prior.items() if k.startswith("post-filtered OSEM"))["image_psnr_db"]
    latent_file = _load(results, "ldm_latent_low_dose")
    latent = next(row for row in latent_file["rows"] if row["latent_factor"] == 4)
    warped_files = [_load(results, f"ldm_latent_low_dose_warps15{wide}") for wide in ("", "_wide")]
    phantoms = _load(results, "training_phantoms_low_dose")["rows"]
    limits = _load(results, "low_dose_limits")
    limits_base = limits["osem_iterations"]["4"]["best_post_filtered_low_dose_db"]

    def cnn(n_train: int, warps: int) -> float:
        row = next(r for r in phantoms if r["n_train"] == n_train and r["warps"] == warps)
        return max(point["test_psnr_db"] for point in row["curve"]) - row["best_post_filtered_db"]  # best step

    return [
        ("physics prior alone (TMA)", next(v for k, v in prior.items() if k.startswith("physics prior alone (TMA"))
         ["image_psnr_db"] - prior_base, None, "classical"),
        ("TV-MAP, best prior weight", max(limits["tv_map_db"].values()) - limits_base, None, "classical"),
        (f"sinogram UNet, demo ({n_demo} slices)",
         metrics["UNet regression (supervised)"]["psnr"]["mean"] - base, None, "sinogram"),
        (f"LDM, demo ({n_demo} slices)", ldm["mean"], (ldm["low"], ldm["high"]), "sinogram"),
        (f"LDM, {latent_file['config']['n_train']} slices, 5x longer training", latent["gain_db"]["mean"],
         (latent["gain_db"]["low"], latent["gain_db"]["high"]), "sinogram"),
        *(_warped_row(file, row) for file in warped_files
          for row in sorted(file["rows"], key=lambda row: -row["latent_factor"])),
        ("image CNN, 500 slices, K = 3 (best step)", cnn(500, 0), None, "image"),
        ("image CNN, 500 slices + 15 warps each (best step)", cnn(500, 15), None, "image"),
        ("image CNN, 5,000 slices (best step)", cnn(5000, 0), None, "image"),
        ("OSEM of the full-dose data", prior["OSEM of the full-dose data"]["image_psnr_db"] - prior_base, None,
         "reference"),
        ("region fit to the low-dose data, true labels",
         limits["oracles"]["oracle segmentation, ML region activities from the low-dose data"] - limits_base, None,
         "reference"),
    ]


def _warped_row(file: dict, row: dict) -> Row:
    """The row of an LDM trained long on warped anatomies (``bench_ldm_latent --warps``)."""
    width = row.get("denoiser_channels", 32)  # files written before the width was recorded used the preset's 32
    gain = row["gain_db"]
    return (f"LDM, {file['config']['n_train']} + {file['config']['warps']} warps each, long training, "
            f"factor {row['latent_factor']}" + (f", width {width}" if width != 32 else ""),
            gain["mean"], (gain["low"], gain["high"]), "sinogram")


COLOURS = {"classical": "0.55", "sinogram": "tab:blue", "image": "tab:orange", "reference": "tab:green"}


def plot(rows: Sequence[Row], out: Path, title: str = "") -> Path:
    """Horizontal bars of ``rows`` with the target line and ``title``; returns the PNG's path."""
    fig, ax = plt.subplots(figsize=(9.0, 0.42 * len(rows) + 1.3), constrained_layout=True)
    labels = [row[0] for row in rows][::-1]
    for y, (_, gain, interval, group) in enumerate(rows[::-1]):
        error = None if interval is None else [[gain - interval[0]], [interval[1] - gain]]
        ax.barh(y, gain, color=COLOURS[group], xerr=error, capsize=3)
        ax.text(max(gain, 0.0 if interval is None else interval[1]) + 0.1, y, f"{gain:+.2f}", va="center", fontsize=8)
    target = ax.axvline(TARGET_DB, color="crimson", linestyle="--")
    ax.set_xlim(min(0.0, min(row[1] for row in rows)) - 0.2, max(row[1] for row in rows) + 1.0)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("image PSNR gain over the best post-filtered OSEM (dB)")
    ax.set_title(title, fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour) for colour in COLOURS.values()]
    ax.legend(handles + [target], ["classical", "sinogram-domain networks", "image-domain CNN",
                                   "references (not methods)", f"target +{TARGET_DB:g} dB"], fontsize=7,
              loc="upper right")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=None, help="PNG path (default: RESULTS/low_dose_gap.png)")
    args = parser.parse_args(argv)
    data = _load(args.results, "low_dose_limits")["config"]
    title = (f"Low dose, dose reduction factor {data['dose_reduction_factor']:g}: {data['size']} x {data['size']} "
             f"slices, {data['n_views']} views, {data['n_test']} test slices")
    print(plot(gap_rows(args.results), args.out or args.results / "low_dose_gap.png", title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
