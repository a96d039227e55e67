"""Low-dose model inputs: the physics prior against the measured sinogram, and the LDM's residual decode.

Usage::

    python -m benchmarks.bench_physics_prior     # about 12 min on the 2-core CPU; writes
                                                  # benchmarks/results/physics_prior_low_dose.{json,md}

One simulated low-dose data set (dose reduction factor 20, the demo's grid and
counts: ``PipelineConfig()`` with ``n_train`` training and 16 test slices).
Every row's sinograms are reconstructed with the demo's OSEM (4 subsets x 4
iterations) and scored against the true image (image PSNR) and the
noise-free target ``A x + b`` (sinogram PSNR), mean over the test slices:

- ceilings: OSEM of the noise-free target and of the full-dose data;
- the post-filtered OSEM baseline (FWHM tuned on 16 training slices);
- the physics prior alone (:meth:`tasks.task.PETTask.physics_prior`), with
  and without the lesions' TMA attention;
- the supervised residual UNet on the measured input and on the prior;
- the LDM with the demo's model and schedule (trained once on the same
  slices, conditioned on the prior), sampled with the residual decode on and off
  (:class:`ldm.model.LDMConfig` ``residual_decode``).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.reports import write_results
from tasks.baselines import SinogramUNet, osem_image, post_filter, tune_post_filter
from tasks.examples import build_examples
from tasks.metrics import image_metrics, psnr
from tasks.ldm_runs import sample_ldm, train_ldm
from tasks.pipeline_config import PipelineConfig
from tasks.sources import make_samples
from tasks.registry import get_task
from tasks.task import sample_projector

RESULTS = Path(__file__).resolve().parent / "results"


def _scores(task, test, sinograms) -> dict:
    images = [osem_image(y, task.target_system(s), 4, 4) for y, s in zip(sinograms, test)]
    return _image_scores(task, test, images, sinograms)


def _image_scores(task, test, images, sinograms) -> dict:
    lesions = [image_metrics(task.reference_image(s), x, s.labels, s.names,
                             {lesion["name"]: lesion["host"] for lesion in s.metadata.get("lesions", [])})
               for x, s in zip(images, test)]
    sinogram_psnr = float(np.mean([psnr(task.reference_sinogram(s), y) for y, s in zip(sinograms, test)]))
    return {"image_psnr_db": float(np.mean([psnr(task.reference_image(s), x) for x, s in zip(images, test)])),
            "sinogram_psnr_db": sinogram_psnr if np.isfinite(sinogram_psnr) else None,  # None: the truth itself
            "lesion_abs_bias": float(np.nanmean([m["lesion_abs_bias"] for m in lesions]))}


def run(n_train: int, unet_steps: int) -> dict:
    import torch

    torch.set_num_threads(1)
    config = PipelineConfig(n_train=n_train, n_test=16)
    task = get_task("low_dose")
    train, test = make_samples(config, progress=True)
    voxel_mm = float(sample_projector(train[0]).geometry.grid.voxel_size_mm[-1])
    rows: dict[str, dict] = {}
    rows["OSEM of the noise-free target (ceiling)"] = _scores(task, test, [task.reference_sinogram(s) for s in test])
    rows["OSEM of the full-dose data"] = _scores(task, test, [task.target(s) for s in test])

    def input_image(s):
        return osem_image(s.input, task.input_system(s), 4, 4) * task.input_image_scale(s)

    tune = train[:16]
    fwhm = tune_post_filter([input_image(s) for s in tune], [task.reference_image(s) for s in tune],
                            [task.target_system(s) for s in tune], [f * voxel_mm for f in (0, 0.5, 1, 1.5, 2, 3)])
    filtered = [post_filter(input_image(s), task.target_system(s), fwhm) for s in test]
    forward = [np.asarray(task.target_system(s).expected(np.ascontiguousarray(x, dtype=np.float64)))
               for x, s in zip(filtered, test)]
    rows[f"post-filtered OSEM of the input (FWHM {fwhm:g} mm)"] = _image_scores(task, test, filtered, forward)

    train_ex, test_ex = (build_examples(task, samples, config.model_input(task))
                         for samples in (train, test))
    plain = build_examples(task, test, dataclasses.replace(config, use_tma=False).model_input(task)).input
    rows["physics prior alone, without TMA attention"] = _scores(task, test, plain)
    rows["physics prior alone (TMA attention: lesions unfiltered)"] = _scores(task, test, test_ex.input)
    for label, inputs, test_inputs in (("measured input", train_ex.measured, test_ex.measured),
                                       ("physics prior", train_ex.input, test_ex.input)):
        clock = time.perf_counter()
        unet = SinogramUNet(seed=config.seed).fit(inputs, train_ex.target, steps=unet_steps, seed=config.seed)
        rows[f"residual UNet on the {label} ({unet_steps} steps)"] = {
            **_scores(task, test, unet.predict(test_inputs)), "train_s": time.perf_counter() - clock}
    with tempfile.TemporaryDirectory(prefix="allpet-bench-prior-") as work:
        clock = time.perf_counter()
        model = train_ldm(task, train_ex, config, Path(work), sample_projector(train[0]), progress=True)
        seconds = time.perf_counter() - clock
    for residual in (False, True):
        model.config = dataclasses.replace(model.config, residual_decode=residual)
        rows[f"LDM on the physics prior, residual decode {'on' if residual else 'off'}"] = {
            **_scores(task, test, sample_ldm(model, task, test_ex, config, progress=False)), "train_s": seconds}
    return {"config": {"n_train": n_train, "n_test": 16, "unet_steps": unet_steps, "size": config.size,
                       "n_views": config.n_views, "dose_reduction_factor": config.dose_reduction_factor,
                       "total_counts": config.counts, "ldm_steps": [config.autoencoder_steps, config.diffusion_steps]},
            "rows": rows}


def markdown(report: dict) -> str:
    c = report["config"]
    lines = [f"# Low-dose model inputs ({c['n_train']} training, {c['n_test']} test slices, {c['size']} x "
             f"{c['size']}, dose reduction {c['dose_reduction_factor']:g})", "",
             "Mean over the test slices; every sinogram reconstructed with OSEM 4 x 4.", "",
             "| row | image PSNR (dB) | sinogram PSNR (dB) | lesion \\|bias\\| |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['image_psnr_db']:.2f} | "
              f"{'—' if r['sinogram_psnr_db'] is None else format(r['sinogram_psnr_db'], '.2f')} | "
              f"{r['lesion_abs_bias']:.3f} |"
              for name, r in report["rows"].items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=500)
    parser.add_argument("--unet-steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS / "physics_prior_low_dose")
    args = parser.parse_args(argv)
    report = run(args.n_train, args.unet_steps)
    write_results(args.out, report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
