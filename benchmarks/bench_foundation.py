"""Few-shot adaptation of the foundation model against training from scratch and the supervised UNet.

For each task and each number ``K`` of paired training examples, one
pipeline run (:func:`tasks.pipeline.run_task`) trains and scores, on the same samples:

- ``pretrained + fine-tuned``: the shipped foundation model
  (``PipelineConfig.ldm_init="foundation"``), ``--steps`` diffusion steps on
  the K examples (the pretrained autoencoder is kept, or fine-tuned first
  where the task's inputs are another kind of sinogram,
  ``PipelineConfig.finetune_autoencoder_steps``);
- ``from scratch``: the same LDM architecture (the foundation's) with fresh
  weights, its autoencoder and diffusion stages trained on the same K examples
  (``--scratch-steps`` each; ``PipelineConfig.scratch_steps``);
- the supervised UNet on the same K examples and the classical baselines;
- low dose only, ``unsupervised``: the shipped model with no paired example,
  a posterior sample of each test input's Poisson counts under the prompt's
  prior (``PipelineConfig.unsupervised``; it uses no K, so it runs with the
  first K only).

All see the foundation's geometry (``--size`` pixels and views, 4 mm
pixels for the brain), score on the same in-distribution test samples and
on the unseen test sets (:data:`tasks.pipeline_config.UNSEEN_TEST_SETS`),
with the fair attention (a segmentation of each input). The table gives
image PSNR, SSIM and lesion contrast recovery with 95% CIs, and the paired
differences (pretrained + fine-tuned minus each other method) with their
95% CIs; ``--out`` gets ``.json``, ``.md`` and ``.png`` (paired PSNR gain over
the post-filtered classical baseline, OSEM or for tracer separation linear unmixing + OSEM, against K, a panel
per task and test set; ``--replot`` redraws both from the ``.json``).

Run: ``python -m benchmarks.bench_foundation`` (defaults: low dose,
K = 16 and 64; about 30 minutes on a 2-core CPU). ``--model DIR`` fine-tunes
other pretrained weights (for example a pretraining that left a region family
out); ``--no-unsupervised`` skips the unsupervised rows. ``--reference N``
runs, instead, the same architecture from scratch on N examples
(``--reference-steps`` per stage, default 2,000) beside the UNet on them, and
pairs it with the fine-tuned models of the K-run reports given by
``--against`` (same seed, size and ``--n-test``: the same test samples).
Without ``--reference``, ``--against`` adds the fine-tuned rows of the
reports given (for example the shipped model's, beside ``--model DIR``'s) to
the same K, paired sample by sample. ``--baselines-from JSON`` takes the
from-scratch and UNet rows of the same task and K from earlier K-run reports
(same seed, size and ``--n-test``; checked through the classical baseline's
scores) and trains only the fine-tuned model: for new pretrained weights.
``--summary JSON...`` runs nothing: it tabulates K-run reports over tasks
(:func:`markdown_summary`) and draws every task's curves against K from all
of them (:func:`merge_reports`, :func:`plot`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from benchmarks.reports import write_results
from tasks.metrics import summarise
from tasks.pipeline import run_task
from tasks.pipeline_config import PipelineConfig
from tasks.results import (METHOD_INPUT_FILTERED, METHOD_LDM, METHOD_SCRATCH, METHOD_UNET, METHOD_UNMIXING_FILTERED,
                           METHOD_UNSUPERVISED)
from tasks.sources import make_samples

METHOD_FINETUNED = "ALL-PET pretrained + fine-tuned"
METRICS = ("psnr", "ssim", "contrast_recovery")


def _rows(records: list, method: str, rename: str) -> list[dict]:
    return [{**record, "method": rename} for record in records if record["method"] == method]


def run(task: str, examples: Sequence[int], n_test: int, steps: int, scratch_steps: int, size: int, seed: int,
        progress: bool, model: str = "foundation", unsupervised: bool = True,
        baselines_from: Sequence[dict] = ()) -> dict:
    """Records and summaries of one task for every K (module docstring).

    ``model`` is the pretrained weights (``"foundation"``: the shipped model,
    or a weights, run or checkpoint folder); ``unsupervised`` adds the
    unsupervised low-dose rows at the first K. ``baselines_from``: K-run
    reports of the same seed, size and test sets whose from-scratch and UNet
    records are taken instead of training them again (:func:`borrowed_row`).
    """
    base = PipelineConfig(task=task, size=size, n_views=size, n_train=max(examples), n_test=n_test, seed=seed,
                          n_unseen_test=n_test, diffusion_steps=steps, autoencoder_steps=scratch_steps)
    train, test = make_samples(base, progress=progress)
    out: dict = {"task": task, "rows": []}
    for k in examples:
        earlier = borrowed_row(baselines_from, task, k)
        own = dataclasses.replace(base, n_train=k, ldm_init=model, scratch_steps=0 if earlier else scratch_steps,
                                  unet_steps=0 if earlier else base.unet_steps,
                                  unsupervised=unsupervised and task == "low_dose" and k == examples[0])
        with tempfile.TemporaryDirectory() as work:
            started = time.perf_counter()
            result = run_task(own, Path(work), progress, samples=(train[:k], test))
            total_s = time.perf_counter() - started
        records = _rows(result.records, METHOD_LDM, METHOD_FINETUNED)
        out["classical"] = result.info["filtered_baseline"]  # post-filtered OSEM, or unmixing for separation
        records += [record for method in (METHOD_SCRATCH, METHOD_UNET, out["classical"], METHOD_UNSUPERVISED)
                    for record in _rows(result.records, method, method)]
        row = {"examples": k, "test_sets": list(result.test_sets), "records": records}
        if earlier:
            _check_same_samples(records, earlier["records"], out["classical"], task, k)
            row["records"] += [r for r in earlier["records"] if r["method"] in (METHOD_SCRATCH, METHOD_UNET)]
            row["seconds"] = {METHOD_FINETUNED: total_s, METHOD_SCRATCH: earlier["seconds"][METHOD_SCRATCH]}
            row["baselines_from"] = earlier["command"]
        else:
            scratch_s = result.timings_s["LDM from scratch"]
            row["seconds"] = {METHOD_FINETUNED: total_s - scratch_s, METHOD_SCRATCH: scratch_s}
        out["rows"].append(row)
    return out


def borrowed_row(reports: Sequence[dict], task: str, k: int) -> Optional[dict]:
    """The row of ``task`` and ``k`` in the K-run ``reports`` (the first that has it, with its report's
    ``command``), or None."""
    for report in reports:
        for entry in report["tasks"]:
            for row in entry["rows"]:
                if entry["task"] == task and row["examples"] == k:
                    return {**row, "command": report["command"]}
    return None


def _check_same_samples(records: list, earlier: list, classical: str, task: str, k: int) -> None:
    """Raise unless the classical baseline scores the same on the same samples in both runs (the same test set)."""
    def key(rows: list) -> dict:
        return {(r["test_set"], r["sample"], r["channel"]): r["psnr"] for r in rows if r["method"] == classical}

    mine, theirs = key(records), key(earlier)
    if mine.keys() != theirs.keys() or any(abs(mine[s] - theirs[s]) > 1e-3 for s in mine):
        raise ValueError(f"--baselines-from: the report's {task} K = {k} run has other test samples or baselines "
                         "(give the same --seed, --size and --n-test)")


def reference(task: str, n: int, n_test: int, steps: int, size: int, seed: int, progress: bool) -> dict:
    """The foundation's architecture from scratch on ``n`` examples (``steps`` per stage), beside the UNet on them.

    The same training samples (the first K of them are the K runs') and test
    sets as :func:`run` with the same ``seed``, ``n_test`` and ``size``, so
    its records pair with theirs sample by sample.
    """
    config = PipelineConfig(task=task, size=size, n_views=size, n_train=n, n_test=n_test, seed=seed,
                            n_unseen_test=n_test, ldm_preset="foundation", autoencoder_steps=steps,
                            diffusion_steps=steps)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        result = run_task(config, Path(work), progress)
    classical = result.info["filtered_baseline"]
    records = (_rows(result.records, METHOD_LDM, reference_method(n))
               + _rows(result.records, METHOD_UNET, f"{METHOD_UNET}, {n} examples")
               + _rows(result.records, classical, classical))
    return {"task": task, "examples": n, "steps": steps, "classical": classical, "test_sets": list(result.test_sets),
            "records": records, "seconds": time.perf_counter() - started}


def reference_method(n: int) -> str:
    """The name of the from-scratch reference on ``n`` examples in the records."""
    return f"{METHOD_SCRATCH}, {n} examples"


def add_other_models(report: dict, others: Sequence[dict]) -> None:
    """Add to each row of ``report`` the fine-tuned records of the same task and K in ``others`` (K-run reports of
    the same seed, size and test sets: other pretrained weights), named by their ``model``, so the paired column
    compares the two pretrainings sample by sample."""
    for other in others:
        name = f"{METHOD_FINETUNED}, weights {other.get('model', 'foundation')}"
        rows = {(task["task"], row["examples"]): row for task in other["tasks"] for row in task["rows"]}
        for task in report["tasks"]:
            for row in task["rows"]:
                match = rows.get((task["task"], row["examples"]))
                if match is not None:
                    row["records"] += _rows(match["records"], METHOD_FINETUNED, name)


def _summary(records: list, test_set: str, method: str, metric: str):
    return summarise([r[metric] for r in records if r["test_set"] == test_set and r["method"] == method])


def _paired(records: list, test_set: str, method: str, other: str, metric: str):
    of_set = [r for r in records if r["test_set"] == test_set]
    key = {(r["sample"], r["channel"]): r[metric] for r in of_set if r["method"] == other}
    return summarise([r[metric] - key[(r["sample"], r["channel"])] for r in of_set
                      if r["method"] == method and (r["sample"], r["channel"]) in key])


def markdown(report: dict) -> str:
    lines = [f"# Foundation model: few-shot adaptation ({report['machine']}, {report['date']})", "",
             f"Command: `{report['command']}`", ""]
    methods = (METHOD_FINETUNED, METHOD_SCRATCH, METHOD_UNET, METHOD_INPUT_FILTERED, METHOD_UNMIXING_FILTERED,
               METHOD_UNSUPERVISED)
    for task in report["tasks"]:
        for row in task["rows"]:
            records = row["records"]
            lines += [f"## {task['task']}, K = {row['examples']} paired examples", "",
                      "| test set | method | PSNR (dB) | SSIM | lesion contrast recovery | "
                      "PSNR gain of fine-tuned (dB, paired) |", "|---|---|---|---|---|---|"]
            present = [m for m in methods if any(r["method"] == m for r in records)]
            present += [m for m in dict.fromkeys(r["method"] for r in records) if m not in methods]  # --against
            for test_set in row["test_sets"]:
                for method in present:
                    cells = [_summary(records, test_set, method, m).format(3) for m in METRICS]
                    gain = ("" if method == METHOD_FINETUNED
                            else _paired(records, test_set, METHOD_FINETUNED, method, "psnr").format(2))
                    lines.append(f"| {test_set} | {method} | " + " | ".join(cells) + f" | {gain} |")
            lines += ["", f"Wall time: fine-tuned run (with baselines) {row['seconds'][METHOD_FINETUNED]:.0f} s, "
                      f"scratch run {row['seconds'][METHOD_SCRATCH]:.0f} s."]
            if "baselines_from" in row:
                lines.append(f"The from-scratch and UNet rows (same samples) are those of `{row['baselines_from']}`.")
            lines.append("")
    return "\n".join(lines)


def markdown_reference(report: dict, runs: Sequence[dict]) -> str:
    """Table of a reference report (:func:`reference`) and the paired gains of each K run's fine-tuned model over it.

    ``runs`` are :func:`run` reports (their ``.json``) of the same task, seed and test sets.
    """
    ref = report["reference"]
    name = reference_method(ref["examples"])
    lines = [f"# Foundation model: the from-scratch reference on {ref['examples']:,} examples ({report['machine']}, "
             f"{report['date']})", "", f"Command: `{report['command']}`", "",
             f"{ref['task']}: the foundation's architecture from scratch, {ref['steps']} autoencoder and "
             f"{ref['steps']} diffusion steps of 8 on {ref['examples']:,} paired examples, the UNet on the same "
             f"examples; wall time {ref['seconds'] / 60:.1f} min. The last columns pair each K run's fine-tuned model "
             "with the reference, sample by sample (same test samples).", ""]
    ks = [(run_report["command"], row) for run_report in runs for task in run_report["tasks"]
          if task["task"] == ref["task"] for row in task["rows"]]
    header = " | ".join(f"fine-tuned K = {row['examples']} minus reference (dB, paired)" for _, row in ks)
    lines += [f"| test set | method | PSNR (dB) | SSIM | lesion contrast recovery | {header} |",
              "|---|---|---|---|---|" + "---|" * len(ks)]
    for test_set in ref["test_sets"]:
        for method in dict.fromkeys(r["method"] for r in ref["records"]):
            cells = [_summary(ref["records"], test_set, method, m).format(3) for m in METRICS]
            gains = []
            for _, row in ks:
                if method != name:
                    gains.append("")
                    continue
                merged = ref["records"] + [r for r in row["records"] if r["method"] == METHOD_FINETUNED]
                gains.append(_paired(merged, test_set, METHOD_FINETUNED, name, "psnr").format(2))
            lines.append(f"| {test_set} | {method} | " + " | ".join(cells + gains) + " |")
    lines += ["", "K runs: " + "; ".join(f"`{command}`" for command in dict.fromkeys(c for c, _ in ks)), ""]
    return "\n".join(lines)


def _bold_if_apart(summary) -> str:
    """``summary`` to two decimals, bold when its 95% CI excludes 0."""
    text = f"{summary.mean:+.2f} ± {(summary.high - summary.low) / 2:.2f}" if summary.n else "n/a"
    return f"**{text}**" if summary.n > 1 and (summary.low > 0 or summary.high < 0) else text


def markdown_summary(reports: Sequence[dict]) -> str:
    """One table per K over the tasks of the K-run ``reports``: the fine-tuned model's paired PSNR differences
    (dB, 95% CI; bold where the CI excludes 0) from scratch, the UNet and any other weights' fine-tune
    (``--against`` rows), per test set, and the in-distribution PSNRs."""
    by_k: dict[int, list] = {}
    for report in reports:
        for task in report["tasks"]:
            for row in task["rows"]:
                by_k.setdefault(row["examples"], []).append((task, row))
    lines = ["# Foundation model: few-shot adaptation, every task", "",
             "Pretrained + fine-tuned minus each other method, image PSNR (dB), paired by test slice and output "
             "channel, mean ± 95% CI half-width; bold where the CI excludes 0. Reports: "
             + "; ".join(f"`{report['command']}`" for report in reports), ""]
    for k, entries in sorted(by_k.items()):
        sets = list(dict.fromkeys(test_set for _, row in entries for test_set in row["test_sets"]))
        others = [METHOD_SCRATCH, METHOD_UNET]
        others += [m for m in dict.fromkeys(r["method"] for _, row in entries for r in row["records"])
                   if m.startswith(f"{METHOD_FINETUNED}, weights ")]
        names = {METHOD_SCRATCH: "scratch", METHOD_UNET: "UNet"}
        header = [f"minus {names.get(m, m[len(METHOD_FINETUNED) + 2:])}: {test_set}"
                  for m in others for test_set in sets]
        lines += [f"## K = {k} paired examples", "",
                  "| task | " + " | ".join(header) + " | in-distribution PSNR: fine-tuned / scratch / UNet / "
                  "post-filtered classical |", "|---|" + "---|" * (len(header) + 1)]
        for task, row in entries:
            records = row["records"]
            cells = [_bold_if_apart(_paired(records, test_set, METHOD_FINETUNED, other, "psnr"))
                     for other in others for test_set in sets]
            classical = task.get("classical", METHOD_INPUT_FILTERED)
            absolute = " / ".join(f"{_summary(records, sets[0], m, 'psnr').mean:.2f}"
                                  for m in (METHOD_FINETUNED, METHOD_SCRATCH, METHOD_UNET, classical))
            lines.append(f"| {task['task']} | " + " | ".join(cells) + f" | {absolute} |")
        lines.append("")
    return "\n".join(lines)


def merge_reports(reports: Sequence[dict]) -> dict:
    """One report whose tasks hold the rows of every K-run report given (for example a task's K = 16, 64 run and
    its K = 256 run), rows sorted by K, tasks in order of first appearance."""
    tasks: dict[str, dict] = {}
    for report in reports:
        for task in report["tasks"]:
            entry = tasks.setdefault(task["task"], {"task": task["task"], "rows": []})
            entry["classical"] = task.get("classical", entry.get("classical", METHOD_INPUT_FILTERED))
            entry["rows"] += task["rows"]
    for entry in tasks.values():
        entry["rows"].sort(key=lambda row: row["examples"])
    return {"tasks": list(tasks.values())}


def plot(report: dict, path: Path) -> None:
    """Paired PSNR gain over the post-filtered classical baseline (mean, 95% CI) against K: panels per task and set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = report["tasks"]
    sets = tasks[0]["rows"][0]["test_sets"]
    figure, axes = plt.subplots(len(tasks), len(sets), figsize=(4.2 * len(sets), 3.4 * len(tasks)), squeeze=False)
    for task, row_axes in zip(tasks, axes):
        ks = [row["examples"] for row in task["rows"]]
        classical = task.get("classical", METHOD_INPUT_FILTERED)
        for test_set, ax in zip(sets, row_axes):
            for shift, method in zip((-0.04, 0.0, 0.04), (METHOD_FINETUNED, METHOD_SCRATCH, METHOD_UNET)):
                gains = [_paired(row["records"], test_set, method, classical, "psnr")
                         for row in task["rows"]]
                ax.errorbar([k * 2 ** shift for k in ks], [g.mean for g in gains],
                            yerr=[[g.mean - g.low for g in gains], [g.high - g.mean for g in gains]],
                            marker="o", capsize=3, label=method)
            for row in task["rows"]:
                gain = _paired(row["records"], test_set, METHOD_UNSUPERVISED, classical, "psnr")
                if gain.n:
                    ax.axhspan(gain.low, gain.high, color="grey", alpha=0.2)
                    ax.axhline(gain.mean, color="grey", linestyle="--", label=METHOD_UNSUPERVISED)
                    break
            ax.axhline(0.0, color="black", linewidth=0.8)
            ax.set_xscale("log", base=2)
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.set_title(f"{task['task']}: {test_set}", fontsize=10)
            ax.set_xlabel("paired training examples K")
            ax.set_ylabel(f"PSNR gain over {classical} (dB)", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["low_dose"])
    parser.add_argument("--examples", nargs="+", type=int, default=[16, 64])
    parser.add_argument("--n-test", type=int, default=16)
    parser.add_argument("--steps", type=int, default=400, help="fine-tuning diffusion steps")
    parser.add_argument("--scratch-steps", type=int, default=900, help="from scratch: steps of each stage")
    parser.add_argument("--size", type=int, default=64, help="pixels and views (the foundation's 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="foundation",
                        help="pretrained weights: 'foundation' (shipped) or a weights, run or checkpoint folder")
    parser.add_argument("--unsupervised", action=argparse.BooleanOptionalAction, default=True,
                        help="low dose: add the unsupervised rows at the first K")
    parser.add_argument("--reference", type=int, default=None, metavar="N",
                        help="instead of the K runs: the architecture from scratch on N examples (and the UNet)")
    parser.add_argument("--reference-steps", type=int, default=2000, help="--reference: steps of each stage")
    parser.add_argument("--against", nargs="*", default=(), metavar="JSON",
                        help="K-run reports whose fine-tuned models are paired with this run's (other pretrained "
                             "weights) or, with --reference, with the reference")
    parser.add_argument("--baselines-from", nargs="*", default=(), metavar="JSON",
                        help="K-run reports (same seed, size, --n-test) whose from-scratch and UNet rows are taken "
                             "instead of training them again")
    parser.add_argument("--summary", nargs="*", default=None, metavar="JSON",
                        help="no runs: write --out's .md, one table per K over the tasks of these K-run reports, "
                             "and .png, the curves against K of every task")
    parser.add_argument("--out", default="benchmarks/results/foundation")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--replot", action="store_true", help="redraw .md and .png from the existing .json, no runs")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.summary is not None:
        reports = [json.loads(Path(path).read_text(encoding="utf-8")) for path in args.summary]
        write_results(out, None, markdown_summary(reports))
        plot(merge_reports(reports), out.with_suffix(".png"))
        return 0
    if args.replot and args.reference is None:
        report = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
        write_results(out, None, markdown(report))
        plot(report, out.with_suffix(".png"))
        return 0
    command = "python -m benchmarks.bench_foundation " + " ".join(sys.argv[1:] if argv is None else argv)
    machine = f"{platform.machine()}, CPU only"
    if args.reference is not None:
        if len(args.tasks) != 1:
            parser.error("--reference runs one task: give exactly one --tasks")
        runs = [json.loads(Path(path).read_text(encoding="utf-8")) for path in args.against]  # read before the run
        if args.replot:
            report = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
        else:
            report = {"command": command, "machine": machine, "date": time.strftime("%Y-%m-%d"),
                      "reference": reference(args.tasks[0], args.reference, args.n_test, args.reference_steps,
                                             args.size, args.seed, not args.no_progress)}
        write_results(out, None if args.replot else report, markdown_reference(report, runs))
        return 0
    others = [json.loads(Path(path).read_text(encoding="utf-8")) for path in args.against]  # read before the runs
    earlier = [json.loads(Path(path).read_text(encoding="utf-8")) for path in args.baselines_from]
    missing = [f"{task} K = {k}" for task in args.tasks for k in args.examples if earlier
               and borrowed_row(earlier, task, k) is None]
    if missing:
        parser.error(f"--baselines-from: no row for {', '.join(missing)} in {' '.join(args.baselines_from)}")
    report = {"command": command, "machine": machine, "date": time.strftime("%Y-%m-%d"), "model": args.model,
              "tasks": [run(task, args.examples, args.n_test, args.steps, args.scratch_steps, args.size, args.seed,
                            not args.no_progress, args.model, args.unsupervised, earlier) for task in args.tasks]}
    add_other_models(report, others)
    write_results(out, report, markdown(report))
    plot(report, out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

