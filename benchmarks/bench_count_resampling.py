"""Count-level augmentation on low dose: fresh binomial thinnings of the full-dose prompts against one fixed input.

Usage::

    python -m benchmarks.bench_count_resampling     # about 20 min on the 2-core CPU (two workers); writes
                                                    # benchmarks/results/count_resampling_low_dose.{json,md}

The demo's low-dose data (dose reduction factor 20, ``PipelineConfig()``
grid and counts) with ``n_train`` training and 16 test slices. The
supervised residual UNet (:class:`tasks.baselines.SinogramUNet`) on the
physics prior (with TMA attention) is trained for ``steps`` steps once per
``K`` in ``--resamples``: ``K`` extra inputs per training sample
(:func:`tasks.examples.with_resampled_inputs`), each with its own physics prior,
so the network sees ``(K + 1) n_train`` different inputs of ``n_train``
targets. The test slices are scored as in the demo (OSEM 4 x 4 against the
true image; sinograms against the noise-free target ``A x + b``); the final
training loss is the mean of the last 50 steps' losses (the UNet's scaled
mean squared error), to compare fit against test scores.
The UNet stands in for the LDM because it trains faster; long training is
where the inputs' noise can be learnt by heart.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.bench_physics_prior import RESULTS
from benchmarks.reports import write_results

LAST_STEPS = 50  # steps averaged for the final training loss (module docstring)


def run_one(n_train: int, steps: int, resamples: int) -> dict:
    """Image and sinogram PSNR (dB, mean over the test slices) of the UNet trained with ``resamples``."""
    import torch

    from tasks.baselines import SinogramUNet, osem_image
    from tasks.examples import build_examples, with_resampled_inputs
    from tasks.metrics import psnr
    from tasks.pipeline_config import PipelineConfig
    from tasks.sources import make_samples
    from tasks.registry import get_task

    torch.set_num_threads(1)
    config = PipelineConfig(n_train=n_train, n_test=16, count_resampling=resamples)
    task = get_task("low_dose")
    train, test = make_samples(config, progress=False)
    prior = config.model_input(task)
    clock = time.perf_counter()
    train_ex = build_examples(task, with_resampled_inputs(task, train, resamples, config.seed), prior)
    test_ex = build_examples(task, test, prior)
    data_s = time.perf_counter() - clock
    clock = time.perf_counter()
    unet = SinogramUNet(seed=config.seed).fit(train_ex.input, train_ex.target, steps=steps, seed=config.seed,
                                              progress=False)
    train_s = time.perf_counter() - clock
    predicted = unet.predict(test_ex.input)
    images = [osem_image(y, task.target_system(s), 4, 4) for y, s in zip(predicted, test)]
    return {"resamples": resamples, "n_train_examples": len(train_ex),
            "image_psnr_db": float(np.mean([psnr(task.reference_image(s), x) for x, s in zip(images, test)])),
            "sinogram_psnr_db": float(np.mean([psnr(task.reference_sinogram(s), y) for y, s in zip(predicted, test)])),
            "final_training_loss": float(np.mean(unet.losses[-LAST_STEPS:])), "data_s": data_s, "train_s": train_s}


def markdown(report: dict) -> str:
    c = report["config"]
    lines = [f"# Count resampling on low dose ({c['n_train']} training, 16 test slices, residual UNet on the physics "
             f"prior, {c['steps']} steps)", "",
             "| extra inputs per sample K | training inputs | image PSNR (dB) | sinogram PSNR (dB) | "
             "final training loss | data + training time |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['resamples']} | {r['n_train_examples']} | {r['image_psnr_db']:.2f} | "
              f"{r['sinogram_psnr_db']:.2f} | {r['final_training_loss']:.4f} | "
              f"{(r['data_s'] + r['train_s']) / 60:.1f} min |" for r in report["rows"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=500)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--resamples", type=int, nargs="+", default=[0, 7])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (one per K at a time; 1: in this "
                                                               "process)")
    parser.add_argument("--out", type=Path, default=RESULTS / "count_resampling_low_dose")
    args = parser.parse_args(argv)
    jobs = [(args.n_train, args.steps, k) for k in args.resamples]
    if args.jobs == 1:
        rows = [run_one(*job) for job in jobs]
    else:  # spawned workers: forking a process whose torch/Numba thread pools have started can crash the child
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            rows = list(pool.map(run_one, *zip(*jobs)))
    report = {"config": {"n_train": args.n_train, "steps": args.steps}, "rows": rows}
    write_results(args.out, report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
