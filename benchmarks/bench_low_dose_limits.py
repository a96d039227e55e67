"""What bounds the low-dose task: OSEM's iterations, the post-filter, and an oracle that knows the anatomy.

Usage::

    python -m benchmarks.bench_low_dose_limits     # about 15 s on the 2-core CPU; writes
                                                   # benchmarks/results/low_dose_limits.{json,md}

The demo's low-dose test slices (``PipelineConfig()``: 16 slices, dose
reduction factor 20, about 2 counts per ray), image PSNR in dB against the
true image, mean over the slices:

- OSEM (4 subsets) of the noise-free target ``A x + b`` and the best
  post-filtered OSEM of the low-dose data, for 2 to 32 iterations;
- the Poisson MAP image with a total-variation prior
  (:func:`pet_projection.map_tv`, 300 PDHG iterations) of the low-dose data,
  for several prior weights ``beta``: the classical edge-preserving
  reconstruction, whose ideal object is piecewise constant like these phantoms;
- the true image with every labelled region (anatomy and lesions) replaced
  by its true mean: what is lost by ignoring the texture inside regions;
- the oracle segmentation: the labels are known and only one activity per
  region is fitted to the data, by maximum likelihood (MLEM on the region
  basis, 500 iterations), from the low-dose and from the full-dose data.
  The gap between this and post-filtered OSEM is what a model that could
  find the anatomy would have to gain from; it is not reachable by a method
  that does not know the labels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.bench_physics_prior import RESULTS
from benchmarks.reports import write_results
from pet_projection import map_tv
from tasks.baselines import osem_image, post_filter, tune_post_filter
from tasks.metrics import psnr
from tasks.pipeline_config import PipelineConfig
from tasks.registry import get_task
from tasks.sources import make_samples
from tasks.task import sample_projector

ITERATIONS = (2, 4, 8, 16, 32)
FWHM_VOXELS = (0.0, 1.0, 1.5, 2.0, 2.5, 3.0)
TV_BETAS = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0)  # counts per image unit, at the low-dose count level
TV_ITERATIONS = 300  # at beta 3 the objective is within 1e-4 (relative) of its 1,000-iteration value


def region_fit(data: np.ndarray, system, labels: np.ndarray, n_iterations: int = 500) -> np.ndarray:
    """Maximum-likelihood image with one activity per label of ``labels`` (MLEM on the region basis)."""
    masks = np.stack([(labels == value).astype(np.float64) for value in np.unique(labels)])
    basis = np.asarray(system.linear.apply(masks)).reshape(len(masks), -1).T  # rays x regions
    background = 0.0 if system.background is None else np.asarray(system.background, dtype=np.float64).ravel()
    counts = np.asarray(data, dtype=np.float64).ravel()
    sensitivity = np.maximum(basis.sum(axis=0), 1e-12)
    activity = np.full(len(masks), counts.sum() / max(basis.sum(), 1e-12))
    for _ in range(n_iterations):
        activity *= basis.T @ (counts / np.maximum(basis @ activity + background, 1e-12)) / sensitivity
    return np.tensordot(activity, masks, axes=1)


def run(n_test: int) -> dict:
    config = PipelineConfig(n_train=1, n_test=n_test)
    task = get_task("low_dose")
    _, test = make_samples(config, progress=False)
    voxel_mm = float(sample_projector(test[0]).geometry.grid.voxel_size_mm[-1])
    references = [task.reference_image(s) for s in test]
    systems = [task.target_system(s) for s in test]

    def mean_psnr(images) -> float:
        return float(np.mean([psnr(r, x) for r, x in zip(references, images)]))

    by_iterations = {}
    for n in ITERATIONS:
        low = [osem_image(s.input, task.input_system(s), 4, n) * task.input_image_scale(s) for s in test]
        best = tune_post_filter(low, references, systems, [f * voxel_mm for f in FWHM_VOXELS]) / voxel_mm
        by_iterations[n] = {
            "noise_free_osem_db": mean_psnr([osem_image(task.reference_sinogram(s), task.target_system(s), 4, n)
                                             for s in test]),
            "best_post_filtered_low_dose_db": mean_psnr([post_filter(x, sys, best * voxel_mm)
                                                         for x, sys in zip(low, systems)]),
            "best_fwhm_voxels": best}
    tv_map = {beta: mean_psnr([map_tv(s.input, task.input_system(s), beta, TV_ITERATIONS) * task.input_image_scale(s)
                               for s in test]) for beta in TV_BETAS}
    piecewise = [sum(r[s.labels == v].mean() * (s.labels == v) for v in np.unique(s.labels))
                 for r, s in zip(references, test)]
    oracle = {
        "true region means (texture ignored)": mean_psnr(piecewise),
        "oracle segmentation, ML region activities from the full-dose data": mean_psnr(
            [region_fit(s.target, task.target_system(s), s.labels) for s in test]),
        "oracle segmentation, ML region activities from the low-dose data": mean_psnr(
            [region_fit(s.input, task.input_system(s), s.labels) * task.input_image_scale(s) for s in test])}
    return {"config": {"n_test": n_test, "size": config.size, "n_views": config.n_views,
                       "dose_reduction_factor": config.dose_reduction_factor, "total_counts": config.counts},
            "osem_iterations": by_iterations, "tv_map_db": tv_map, "tv_map_iterations": TV_ITERATIONS,
            "oracles": oracle}


def markdown(report: dict) -> str:
    c = report["config"]
    lines = [f"# What bounds low dose ({c['n_test']} test slices, {c['size']} x {c['size']}, dose reduction "
             f"{c['dose_reduction_factor']:g}, {c['total_counts']:g} full-dose counts per slice)", "",
             "Image PSNR (dB) against the true image, mean over the test slices.", "",
             "| OSEM iterations (4 subsets) | OSEM of noise-free data | best post-filtered OSEM of the low-dose data "
             "(FWHM, voxels) |", "|---|---|---|"]
    lines += [f"| {n} | {r['noise_free_osem_db']:.2f} | {r['best_post_filtered_low_dose_db']:.2f} "
              f"({r['best_fwhm_voxels']:g}) |" for n, r in report["osem_iterations"].items()]
    lines += ["", f"TV-MAP of the low-dose data ({report['tv_map_iterations']} PDHG iterations):", "",
              "| beta (counts per image unit) | image PSNR (dB) |", "|---|---|"]
    lines += [f"| {beta:g} | {value:.2f} |" for beta, value in report["tv_map_db"].items()]
    lines += ["", "| oracle | image PSNR (dB) |", "|---|---|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in report["oracles"].items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS / "low_dose_limits")
    args = parser.parse_args(argv)
    report = run(args.n_test)
    write_results(args.out, report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
