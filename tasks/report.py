"""Report of a task run: Markdown + HTML page, PNG figures, metrics tables (Markdown and CSV), raw results JSON.

Files written into the report folder::

    index.html, report.md      the page (figures, tables, settings, timings)
    metrics.csv                 per test set, method and metric: mean, 95% CI low/high, n
    metrics_per_sample.csv      every (test set, method, test sample, channel) row
    results.json                config, summary tables, info, timings
    figures/*.png               example (input, outputs, target), error maps (sinogram and image),
                                attention maps, training curves; input, output and target of
                                each unseen test set

The page's tables: every metric of every method per test set side by side
(the in-distribution test set and each unseen one,
:attr:`~tasks.results.TaskResult.test_sets`), the paired differences of the
LDM and the classical baseline per test set, and the in-distribution table
(methods x metrics).

matplotlib is imported inside the plotting functions only (the ``bench`` extra).
"""

from __future__ import annotations

import csv
import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .ldm_runs import autoencoder_steps
from .metrics import IMAGE_METRICS, SINOGRAM_METRICS
from .pipeline_config import PipelineConfig
from .registry import get_task
from .results import IN_DISTRIBUTION, METHOD_LDM, METHOD_SCRATCH, METHOD_UNET, TaskResult

__all__ = ["TEST_SET_LABELS", "comparison_table", "markdown_table", "metrics_table", "side_by_side_table",
           "write_report"]

METRIC_LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "nrmse": "NRMSE", "lesion_bias": "lesion bias",
                 "lesion_abs_bias": "lesion |bias|", "contrast_recovery": "contrast recovery",
                 "sino_psnr": "sino PSNR (dB)", "sino_ssim": "sino SSIM", "sino_nrmse": "sino NRMSE"}
TABLE_METRICS = IMAGE_METRICS + SINOGRAM_METRICS
TEST_SET_LABELS = {IN_DISTRIBUTION: "in-distribution", "stir_thorax": "STIR thorax (unseen)",
                   "left_out_region": "left-out region (unseen)"}
# the paired comparisons of the LDM with the classical baseline
COMPARISON_METRICS = ("psnr", "ssim", "lesion_abs_bias")


def metrics_table(result: TaskResult, metrics: tuple = TABLE_METRICS,
                  test_set: str = IN_DISTRIBUTION) -> tuple[list[str], list[list[str]]]:
    """Header and rows (method, then ``mean ± 95% CI half-width`` per metric) of one test set of the result."""
    header = ["method"] + [METRIC_LABELS[m] for m in metrics]
    rows = [[method] + [result.summary(m, method, test_set).format() for m in metrics] for method in result.methods]
    return header, rows


def side_by_side_table(result: TaskResult, metrics: tuple = TABLE_METRICS) -> tuple[list[str], list[list[str]]]:
    """Header and rows (metric, method, then ``mean ± 95% CI half-width`` per test set) of every test set."""
    header = ["metric", "method"] + [TEST_SET_LABELS[name] for name in result.test_sets]
    rows = [[METRIC_LABELS[m], method] + [result.summary(m, method, name).format() for name in result.test_sets]
            for m in metrics for method in result.methods]
    return header, rows


def comparison_table(result: TaskResult) -> tuple[list[str], list[list[str]]]:
    """Paired differences of the LDM minus the other methods, per test set (no rows without baselines).

    Rows: :data:`COMPARISON_METRICS` against the filtered classical
    baseline, then image PSNR against the learnt baselines of the run (the
    supervised UNet, the same LDM from scratch). Each cell is ``mean ± 95% CI
    half-width (n = pairs)`` over the set's (sample, channel) pairs
    (:meth:`~tasks.results.TaskResult.paired_difference`).
    """
    filtered = result.info.get("filtered_baseline")
    header = ["LDM minus"] + [TEST_SET_LABELS[name] for name in result.test_sets]
    if not filtered:
        return header, []
    pairs = [(filtered, metric) for metric in COMPARISON_METRICS]
    pairs += [(method, "psnr") for method in (METHOD_UNET, METHOD_SCRATCH) if method in result.methods]
    rows = []
    for other, metric in pairs:
        cells = [result.paired_difference(metric, METHOD_LDM, other, name) for name in result.test_sets]
        rows.append([f"{other}: {METRIC_LABELS[metric]}"] + [f"{d.format()} (n = {d.n})" for d in cells])
    return header, rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; ``|`` inside a cell is escaped (``lesion \\|bias\\|``)."""
    cells = [[cell.replace("|", "\\|") for cell in row] for row in [header, *rows]]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines)


def _write_csvs(result: TaskResult, folder: Path) -> None:
    with open(folder / "metrics.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["test_set", "method", "metric", "mean", "ci95_low", "ci95_high", "n"])
        for name in result.test_sets:
            for method in result.methods:
                for metric in TABLE_METRICS:
                    s = result.summary(metric, method, name)
                    writer.writerow([name, method, metric, s.mean, s.low, s.high, s.n])
    keys = list(result.records[0]) if result.records else ["method"]
    with open(folder / "metrics_per_sample.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=keys)
        writer.writeheader()
        writer.writerows(result.records)


# ----------------------------------------------------------------------------------------------- figures

def _figure_example(result: TaskResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ex = result.example
    methods = result.methods
    ref_sino, ref_image = ex["reference_sinogram"], ex["reference_image"]
    image_max = float(ref_image.max()) or 1.0
    sino_max = float(ref_sino.max()) or 1.0
    columns = ["sinogram", "sinogram error", "image (OSEM)", "image error"]
    figure, axes = plt.subplots(len(methods) + 1, 4, figsize=(10, 2.4 * (len(methods) + 1)), squeeze=False)
    rows = [("ground truth", ref_sino, ref_image)] + [(m, ex["sinograms"][m], ex["images"][m]) for m in methods]
    for r, (name, sino, image) in enumerate(rows):
        panels = [(sino, "viridis", 0.0, sino_max), (sino - ref_sino, "RdBu_r", -0.3 * sino_max, 0.3 * sino_max),
                  (image, "gray_r", 0.0, image_max), (image - ref_image, "RdBu_r", -0.5 * image_max, 0.5 * image_max)]
        for c, (values, cmap, low, high) in enumerate(panels):
            ax = axes[r, c]
            if r == 0 and c in (1, 3):
                ax.axis("off")
                continue
            ax.imshow(values, cmap=cmap, vmin=low, vmax=high, aspect="auto" if c < 2 else "equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 or (r == 1 and c in (1, 3)):
                ax.set_title(columns[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    figure.suptitle(f"{result.config.task}: test sample 0 (sinogram: views x bins; error = estimate - truth)",
                    fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _figure_input_output(result: TaskResult, path: Path, test_set: str = IN_DISTRIBUTION) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ex = result.example if test_set == IN_DISTRIBUTION else result.unseen_examples[test_set]
    image_max = float(ex["reference_image"].max()) or 1.0
    first = result.methods[0]
    panels = [("input (OSEM)" if first != METHOD_LDM else "input sinogram",
               ex["images"][first] if first != METHOD_LDM else ex["input"]),
              ("LDM output (OSEM)", ex["images"][METHOD_LDM]), ("target (ground truth)", ex["reference_image"])]
    figure, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    for ax, (title, values) in zip(axes, panels):
        ax.imshow(values, cmap="gray_r", vmin=0.0, vmax=image_max)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    if test_set != IN_DISTRIBUTION:
        figure.suptitle(f"{TEST_SET_LABELS[test_set]}: test sample 0", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _figure_attention(result: TaskResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ex = result.example
    figure, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    panels = [("label map (truth)", ex["labels"], "tab20"), ("TMA image attention", ex["attention_image"], "magma"),
              ("TMA sinogram attention", ex["attention_sinogram"], "magma")]
    for ax, (title, values, cmap) in zip(axes, panels):
        ax.imshow(values, cmap=cmap, aspect="auto" if "sinogram" in title else "equal")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    figure.suptitle(f"attention: {result.config.attention_label}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _figure_training(result: TaskResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {name: log for name, log in result.logs.items() if log and log.get("step")}
    figure, axes = plt.subplots(1, max(1, len(curves)), figsize=(4 * max(1, len(curves)), 3), squeeze=False)
    for ax, (name, log) in zip(axes[0], curves.items()):
        ax.plot(log["step"], log["loss"])
        ax.set_yscale("log")
        ax.set_title(f"{name} loss", fontsize=10)
        ax.set_xlabel("step")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ----------------------------------------------------------------------------------------------- page

def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _plain(value.item())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    return ("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>" + "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows) + "</table>")



def _model_name(config: PipelineConfig) -> str:
    """What the run's LDM is: the tiny preset, the foundation architecture from scratch, or pretrained weights."""
    if config.ldm_init is not None:
        return f"pretrained sinogram LDM ({config.ldm_init}) fine-tuned"
    return "foundation-architecture sinogram LDM" if config.ldm_preset == "foundation" else "tiny sinogram LDM"


def write_report(result: TaskResult, folder: Any, extra: Any = None) -> Path:
    """Write the report of ``result`` into ``folder`` (created; files listed in the module docstring).

    ``extra`` (optional dict) adds entries to ``results.json`` and a
    "Notes" list to the page (e.g. the demo's total runtime).
    """
    folder = Path(folder)
    figures = folder / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    _write_csvs(result, folder)
    files = {"example.png": _figure_example, "input_output_target.png": _figure_input_output,
             "attention.png": _figure_attention, "training.png": _figure_training}
    for name, draw in files.items():
        draw(result, figures / name)
    unseen_figures = {f"input_output_target_{name}.png": name for name in result.unseen_examples}
    for name, test_set in unseen_figures.items():
        _figure_input_output(result, figures / name, test_set)
    config = result.config
    tables = [("Metrics by test set (mean ± 95% CI)",
               "Images: OSEM of each method's sinogram vs the true target image; sinograms vs the noise-free target "
               "A x + b. Lesion |bias| and contrast recovery over the lesion ROIs of the simulator's label maps "
               "(n/a: no lesions in the set). Every model, baseline and post-filter is fitted on the training data "
               "only; the unseen sets hold anatomy never trained on.", *side_by_side_table(result)),
              ("Paired differences per test set (mean ± 95% CI over the set's test samples)", "",
               *comparison_table(result)),
              ("In-distribution test set (mean ± 95% CI)", "", *metrics_table(result))]
    tables = [table for table in tables if table[3]]
    notes = [f"{key}: {value}" for key, value in (extra or {}).items()]
    notes += [f"unseen test set {name} skipped: {reason}"
              for name, reason in result.info.get("skipped_test_sets", {}).items()]
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings_s.items())
    summary = {
        "task": config.task, "summary": result.info.get("task_summary"),
        "data": f"{config.n_train} training / {config.n_test} test samples, {config.size} x {config.size} pixels "
                f"({config.anatomy}), {config.n_views} views" + (
                    f", dose reduction factor {config.dose_reduction_factor:g}" if config.task == "low_dose" else ""),
        "test sets": "; ".join(f"{TEST_SET_LABELS[name]}: {text}" for name, text in result.test_sets.items()),
        "attention": f"{config.attention_label} (training and testing)" if config.use_tma else "off (no TMA)",
        "model": f"{_model_name(config)}, {result.info.get('ldm_parameters', 0):,} parameters, autoencoder "
                 f"downsampling {result.info.get('latent_factor', '?')}, denoiser width "
                 f"{result.info.get('denoiser_channels', '?')}; "
                 f"{autoencoder_steps(get_task(config.task), config)} autoencoder + {config.diffusion_steps} "
                 "diffusion steps; "
                 f"TMA {'on' if config.use_tma else 'off'}, constraints {'on' if config.use_constraints else 'off'}, "
                 f"RMAS/DMM {'on' if config.use_rmas else 'off'}; {config.sampler} {config.sampling_steps} steps"
                 + (f"; beside it the same architecture from scratch on the same examples ({config.scratch_steps} "
                    f"autoencoder + {config.scratch_steps} diffusion steps)" if config.scratch_steps else ""),
        "reconstruction": f"OSEM {config.osem_subsets} subsets x {config.osem_iterations} iterations; post-filter "
                          f"FWHM {result.info.get('post_filter_fwhm_mm', 0):g} mm "
                          f"({result.info.get('post_filter_fwhm_voxels', 0):g} voxels, tuned on training samples; "
                          "the same voxels on each test set's grid)",
        "device": result.info.get("device"), "timings": timings,
    }
    figure_names = list(files) + list(unseen_figures)
    md = [f"# ALL-PET {config.task} report", "", *(f"- **{k}**: {v}" for k, v in summary.items()), ""]
    for title, intro, header, rows in tables:
        md += [f"## {title}", "", *([intro, ""] if intro else []), markdown_table(header, rows), ""]
    md += ["## Figures", "", *(line for name in figure_names for line in (f"![{name}](figures/{name})", ""))]
    if notes:
        md += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    (folder / "report.md").write_text("\n".join(md), encoding="utf-8")
    page = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
            f"<title>ALL-PET {html.escape(config.task)} report</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #bbb;padding:3px 6px;font-size:13px}img{max-width:100%}</style></head><body>",
            f"<h1>ALL-PET {html.escape(config.task)} report</h1><ul>",
            *(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in summary.items()), "</ul>",
            *(part for title, intro, header, rows in tables
              for part in (f"<h2>{html.escape(title)}</h2>", f"<p>{html.escape(intro)}</p>" if intro else "",
                           _html_table(header, rows))),
            "<h2>Figures</h2>", *(f"<p><img src='figures/{name}' alt='{name}'></p>" for name in figure_names),
            *(["<h2>Notes</h2><ul>"] + [f"<li>{html.escape(n)}</li>" for n in notes] + ["</ul>"] if notes else []),
            "</body></html>"]
    (folder / "index.html").write_text("\n".join(page), encoding="utf-8")
    summary_json = {name: {m: {metric: _plain(vars(result.summary(metric, m, name))) for metric in TABLE_METRICS}
                           for m in result.methods} for name in result.test_sets}
    filtered = result.info.get("filtered_baseline")
    comparisons = {name: {metric: vars(result.paired_difference(metric, METHOD_LDM, filtered, name))
                          for metric in COMPARISON_METRICS} for name in result.test_sets} if filtered else {}
    (folder / "results.json").write_text(json.dumps(_plain({
        "config": config.to_dict(), "test_sets": result.test_sets, "summary": summary_json, "info": result.info,
        "timings_s": result.timings_s, "comparisons": {"LDM minus": filtered, "by_test_set": comparisons},
        **(extra or {})}), indent=1), encoding="utf-8")
    return folder
