"""How many training phantoms low dose needs: one image-domain CNN on 500 slices, on them warped, and on 5,000.

Usage::

    python -m benchmarks.bench_training_phantoms     # about 55 min on the 2-core CPU; writes
                                                     # benchmarks/results/training_phantoms_low_dose.{json,md}

The demo's low-dose data (``PipelineConfig()`` grid and counts, dose
reduction factor 20) and its 16 test slices. For each training set (``W``
anatomy warps per slice, :func:`tasks.examples.with_warped_anatomies`: new
patients from random deformations of the slice's anatomy, scanned again;
then ``K`` count-resampled extra inputs per slice,
:func:`tasks.examples.with_resampled_inputs`), a small residual CNN
(:class:`ImageDenoiser`) learns the true image from the low-dose OSEM image
(4 x 4) and its post-filtered copy (1 voxel FWHM), with left-right flips,
batch 32 and a one-cycle AdamW schedule. The test image PSNR (dB, mean over
the slices, scored on the CNN's image directly) is recorded every
``--every`` steps, with the mean training loss of the preceding steps, next
to the best post-filtered OSEM (4 x 4) of the same slices, scored the same
way. The question is whether the learnt models are limited by the counts
(then more training slices would not help) or by the anatomies seen.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from benchmarks.bench_physics_prior import RESULTS
from benchmarks.reports import write_results
from pet_projection.simulation import TaskSample
from tasks.baselines import osem_image, post_filter, tune_post_filter
from tasks.examples import with_resampled_inputs, with_warped_anatomies
from tasks.metrics import psnr
from tasks.pipeline_config import PipelineConfig
from tasks.registry import get_task
from tasks.sources import make_samples
from tasks.task import sample_projector

FEATURE_FWHM_VOXELS = 1.0
POST_FILTER_FWHM_VOXELS = (1.0, 1.5, 2.0, 2.5, 3.0)
BATCH_SIZE = 32
LEARNING_RATE = 1e-3


def _block(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.GroupNorm(8, channels_out), nn.SiLU(),
                         nn.Conv2d(channels_out, channels_out, 3, padding=1), nn.GroupNorm(8, channels_out), nn.SiLU())


class ImageDenoiser(nn.Module):
    """Three-level UNet on ``(B, 2, ny, nx)`` (OSEM image, its post-filtered copy); adds its output to channel 1.

    ``ny`` and ``nx`` must be multiples of 4. ``width`` 32 gives 0.47 M parameters.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.encode = nn.ModuleList([_block(2, width), _block(width, 2 * width), _block(2 * width, 4 * width)])
        self.decode = nn.ModuleList([_block(6 * width, 2 * width), _block(3 * width, width)])
        self.out = nn.Conv2d(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fine = self.encode[0](x)
        middle = self.encode[1](F.avg_pool2d(fine, 2))
        coarse = self.encode[2](F.avg_pool2d(middle, 2))
        middle = self.decode[0](torch.cat([middle, F.interpolate(coarse, scale_factor=2)], 1))
        fine = self.decode[1](torch.cat([fine, F.interpolate(middle, scale_factor=2)], 1))
        return x[:, 1:2] + self.out(fine)


def _osem_images(task, samples: list[TaskSample], voxel_mm: float) -> np.ndarray:
    """``(N, 2, ny, nx)``: each input's OSEM 4 x 4 image at the target's scale and its post-filtered copy."""
    images = [osem_image(s.input, task.input_system(s), 4, 4) * task.input_image_scale(s) for s in samples]
    return np.stack([np.stack([x, post_filter(x, task.target_system(s), FEATURE_FWHM_VOXELS * voxel_mm)])
                     for x, s in zip(images, samples)]).astype(np.float32)


def run_one(n_train: int, resamples: int, steps: int, every: int, seed: int = 0, warps: int = 0) -> dict:
    """Test PSNR (dB) every ``every`` steps of the CNN trained on ``n_train`` slices and their augmentations.

    ``warps`` new patients per slice (:func:`tasks.examples.with_warped_anatomies`),
    then ``resamples`` extra inputs for each of those.
    """
    config = PipelineConfig(n_train=n_train, n_test=16, seed=seed)
    task = get_task("low_dose")
    train, test = make_samples(config, progress=False)
    voxel_mm = float(sample_projector(test[0]).geometry.grid.voxel_size_mm[-1])
    augmented = with_resampled_inputs(task, with_warped_anatomies(task, train, warps, seed), resamples, seed)
    x = torch.as_tensor(_osem_images(task, augmented, voxel_mm))
    y = torch.as_tensor(np.stack([task.reference_image(s) for s in augmented]).astype(np.float32))[:, None]
    x_test = torch.as_tensor(_osem_images(task, test, voxel_mm))
    references = [task.reference_image(s) for s in test]
    scale = float(y.square().mean().sqrt())
    x, y, x_test = x / scale, y / scale, x_test / scale

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    network = ImageDenoiser()
    optimizer = torch.optim.AdamW(network.parameters(), LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, LEARNING_RATE, total_steps=steps)
    curve, losses = [], []
    clock = time.perf_counter()
    for step in range(1, steps + 1):
        index = torch.randint(0, len(x), (min(BATCH_SIZE, len(x)),), generator=generator)
        inputs, targets = x[index], y[index]
        if bool(torch.rand((), generator=generator) < 0.5):
            inputs, targets = inputs.flip(-1), targets.flip(-1)
        loss = F.mse_loss(network(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if step % every == 0 or step == steps:
            network.eval()
            with torch.no_grad():
                predicted = network(x_test).numpy()[:, 0] * scale
            network.train()
            curve.append({"step": step, "test_psnr_db": float(np.mean([psnr(r, p) for r, p in zip(references,
                                                                                                 predicted)])),
                          "training_loss": float(np.mean(losses[-every:]))})
    osem_images = [img[0] * scale for img in x_test.numpy()]
    systems = [task.target_system(s) for s in test]
    best = tune_post_filter(osem_images, references, systems, [f * voxel_mm for f in POST_FILTER_FWHM_VOXELS])
    filtered = float(np.mean([psnr(r, post_filter(x, sys, best)) for r, x, sys in zip(references, osem_images,
                                                                                       systems)]))
    return {"n_train": n_train, "resamples": resamples, "warps": warps,
            "n_parameters": sum(p.numel() for p in network.parameters()),
            "curve": curve, "best_post_filtered_db": filtered, "best_post_filter_fwhm_voxels": best / voxel_mm,
            "train_s": time.perf_counter() - clock}


def markdown(report: dict) -> str:
    rows = report["rows"]
    lines = [f"# Training phantoms on low dose (16 test slices, image-domain CNN of {rows[0]['n_parameters']:,} "
             f"parameters, {report['config']['steps']} steps of batch {BATCH_SIZE})", "",
             "Image PSNR (dB) of the CNN's image against the true image, mean over the test slices; in brackets the "
             "mean training loss of the preceding steps.", "",
             "| training slices | anatomy warps W | count resamples K | "
             + " | ".join(f"step {c['step']}" for c in rows[0]["curve"]) + " |",
             "|---|---|---|" + "---|" * len(rows[0]["curve"])]
    lines += [f"| {r['n_train']} | {r.get('warps', 0)} | {r['resamples']} | " + " | ".join(
        f"{c['test_psnr_db']:.2f} ({c['training_loss']:.3f})" for c in r["curve"]) + " |" for r in rows]
    r = rows[0]
    lines += ["", f"Best post-filtered OSEM 4 x 4 of the same test slices: {r['best_post_filtered_db']:.2f} dB "
              f"(FWHM {r['best_post_filter_fwhm_voxels']:g} voxels)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, nargs="+", default=[500, 500, 500, 5000])
    parser.add_argument("--resamples", type=int, nargs="+", default=[3, 0, 0, 0],
                        help="count-resampled extra inputs per slice, one per --n-train")
    parser.add_argument("--warps", type=int, nargs="+", default=[0, 7, 15, 0],
                        help="anatomy warps (new patients) per slice, one per --n-train")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "training_phantoms_low_dose")
    args = parser.parse_args(argv)
    for name in ("resamples", "warps"):
        if len(getattr(args, name)) != len(args.n_train):
            parser.error(f"--{name} needs one value per --n-train ({len(args.n_train)}), got "
                         f"{len(getattr(args, name))}")
    torch.set_num_threads(args.threads)
    rows = [run_one(n, k, args.steps, args.every, warps=w) for n, k, w in zip(args.n_train, args.resamples,
                                                                               args.warps)]
    report = {"config": {"steps": args.steps, "every": args.every, "batch_size": BATCH_SIZE,
                         "learning_rate": LEARNING_RATE, "feature_fwhm_voxels": FEATURE_FWHM_VOXELS}, "rows": rows}
    write_results(args.out, report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
