"""All five tasks at the demo scale: the LDM against every baseline on each task's own test set.

Usage::

    python -m benchmarks.bench_tasks          # about 22 min on the 2-core CPU (two workers); writes
                                              # benchmarks/results/tasks_demo.{json,md}
    python -m benchmarks.bench_tasks --tasks delayed_frame tracer_conversion --jobs 1

Each task runs exactly what ``allpet demo --model tiny --task TASK`` runs
(:class:`~tasks.pipeline_config.PipelineConfig` defaults: 128 training and 16 test
brain slices of 32 x 32 pixels, 32 views, clinical counts per pixel, the
tiny LDM with RMAS/DMM, TMA, constraints and the task's prior, each task's
autoencoder factor (:attr:`~tasks.task.PETTask.latent_factor`), 900 + 1,400
training steps), one thread per task. Every method's sinograms are
reconstructed with the same OSEM 4 x 4 and scored against the true image:
mean and 95% confidence interval over the test images (slices times output
channels), and the LDM's paired PSNR difference to the task's filtered
baseline (post-filtered OSEM of the input; for tracer separation, linear
unmixing then post-filtered OSEM) and to the supervised sinogram UNet.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchmarks.bench_physics_prior import RESULTS
from benchmarks.reports import write_results
from pet_projection.simulation import TASKS

METRICS = ("psnr", "ssim", "nrmse", "lesion_abs_bias", "sino_psnr")


def _interval(summary) -> dict:
    return {"mean": summary.mean, "low": summary.low, "high": summary.high, "n": summary.n}


def run_one(task: str, n_train: int, n_test: int, quick: bool = False) -> dict:
    """Summaries per method and metric, and the LDM's paired PSNR differences, for one task (``quick``: CI size)."""
    import torch

    from tasks.pipeline import run_task
    from tasks.pipeline_config import PipelineConfig
    from tasks.results import METHOD_LDM, METHOD_UNET
    from tasks.registry import get_task

    torch.set_num_threads(1)
    config = (PipelineConfig.quick if quick else PipelineConfig)(task=task, n_train=n_train, n_test=n_test, threads=1)
    clock = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="allpet-bench-tasks-") as work:
        result = run_task(config, work, progress=False)
    runtime = time.perf_counter() - clock
    baselines = [m for m in (result.info.get("filtered_baseline"), METHOD_UNET) if m in result.methods]
    return {"task": task, "summary": get_task(task).summary, "runtime_s": runtime,
            "methods": result.methods, "filtered_baseline": result.info.get("filtered_baseline"),
            "metrics": {method: {metric: _interval(result.summary(metric, method)) for metric in METRICS}
                        for method in result.methods},
            "ldm_minus": {method: _interval(result.paired_difference("psnr", METHOD_LDM, method))
                          for method in baselines},
            "timings_s": result.timings_s}


def _cell(interval: dict, digits: int = 2) -> str:
    from tasks.metrics import Summary

    return Summary(**interval).format(digits)


def markdown(report: dict) -> str:
    c = report["config"]
    lines = [f"# The five tasks at the demo scale ({c['n_train']} training, {c['n_test']} test slices per task)", "",
             "`allpet demo --model tiny --task TASK` for each task, one thread each. Every method's sinograms are "
             "reconstructed with OSEM 4 x 4 and scored against the true image; mean ± 95% CI half-width over the test "
             "images.",
             ""]
    for row in report["rows"]:
        lines += [f"## {row['task']}: {row['summary']} ({row['runtime_s'] / 60:.1f} min)", "",
                  "| method | image PSNR (dB) | SSIM | NRMSE | lesion \\|bias\\| | sinogram PSNR (dB) |",
                  "|---|---|---|---|---|---|"]
        for method in row["methods"]:
            m = row["metrics"][method]
            lines.append(f"| {method} | {_cell(m['psnr'])} | {_cell(m['ssim'], 3)} | {_cell(m['nrmse'], 3)} | "
                         f"{_cell(m['lesion_abs_bias'])} | {_cell(m['sino_psnr'])} |")
        lines.append("")
        for method, d in row["ldm_minus"].items():
            lines.append(f"- LDM minus {method} (image PSNR, paired): {d['mean']:+.2f} dB "
                         f"({d['low']:+.2f} to {d['high']:+.2f})")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--n-train", type=int, default=128)
    parser.add_argument("--n-test", type=int, default=16)
    parser.add_argument("--quick", action="store_true",
                        help="the CI-sized model and grid (allpet demo --model tiny --quick)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (1: in this process)")
    parser.add_argument("--out", type=Path, default=RESULTS / "tasks_demo")
    args = parser.parse_args(argv)
    jobs = [(task, args.n_train, args.n_test, args.quick) for task in args.tasks]
    if args.jobs == 1:
        rows = [run_one(*job) for job in jobs]
    else:  # spawned workers: forking a process whose torch/Numba thread pools have started can crash the child
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            rows = list(pool.map(run_one, *zip(*jobs)))
    report = {"config": {"n_train": args.n_train, "n_test": args.n_test, "quick": args.quick, "jobs": args.jobs},
              "rows": rows}
    write_results(args.out, report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
