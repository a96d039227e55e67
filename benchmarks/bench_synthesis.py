"""ALL-PET synthesis against VAE, GAN and score-based baselines: physics, distribution, memorisation, usefulness.

Methods (every one generates ``--n`` sinograms per prompt of ``--prompts``,
64 views over ``[0, pi)`` x 64 bins on the region's field of view):

- ``ALL-PET``: the shipped foundation model (:func:`tasks.synthesis.synthesize`, ``--steps`` DDIM steps);
- ``VAE``, ``GAN``, ``SGM`` (pixel-space DDPM, ``--steps`` DDIM steps) and
  ``image VAE`` (the VAE on the 64 x 64 activity images, forward-projected):
  :mod:`tasks.synthesis_baselines`, trained here on the foundation model's
  own 500 training slices (``runs/synthesis/``: cached and reused when the
  settings match, so a rerun skips the training).

Reference data: ``--n`` held-out simulated slices per prompt (same simulator,
other seeds) and, as unseen anatomy, ``--n-unseen`` slices of the STIR-exercises
FDG thorax (:func:`tasks.sources.unseen_test_sets`, chest grid), which no
generator saw, against each method's ``FDG chest`` samples.

Scores (:mod:`tasks.synthesis_metrics`):

1. physics, per sample: relative residual of the non-negative MLEM fit with
   the prompt's projector (``--iterations``;
   :func:`benchmarks.bench_windows.residual`), Helgason-Ludwig moment
   inconsistency (orders ``0..--max-order``), negative mass fraction, total
   counts over the held-out mean; mean and 95% CI (Student's t);
2. distribution: Frechet distance, sliced Wasserstein distance and k-NN
   precision / recall against the held-out set in two feature spaces (the
   hand-made PET features and the code of an autoencoder trained on other
   held-out slices, both standardised by the reference's statistics), with
   bootstrap 95% intervals; the prompt's training slices give the floor;
3. memorisation: relative L2 distance of each sample to its nearest training
   slice (sinograms) and nearest training code (encoder space), beside the
   held-out slices' own;
4. usefulness: the low-dose model (:class:`tasks.synthesis_baselines.LowDoseCNN`)
   trained on the 500 real pairs, on each method's synthetic pairs only, and
   on both; tested on real held-out pairs; sinogram PSNR / SSIM against the
   full dose and OSEM image PSNR against the full dose's OSEM image, paired
   differences to "real only" with 95% CIs. A pair is a sinogram rounded to
   counts and its binomial thinning by ``--dose-reduction-factor``
   (:func:`tasks.synthesis_metrics.low_dose_pairs`); the model sees the
   low dose times the factor.

Writes ``--out`` ``.json``, ``.md`` and ``.png`` (every method's first sample
of two prompts: sinogram and OSEM image with an enlarged inset). Run:
``python -m benchmarks.bench_synthesis`` (about 40 minutes from scratch on a 2-core CPU, 15 with the baselines cached;
one torch thread).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from benchmarks.bench_windows import residual
from benchmarks.reports import shown_path, write_results
from ldm.foundation_data import BaseSlices, load_base_slices
from ldm.prompts import Prompt, parse_prompt
from ldm.weights import load_model
from ldm.windows import SinogramWindow
from pet_projection import ParallelBeamProjector
from pet_projection.simulation import TRACERS
from pet_projection.simulation.anatomy import ANATOMIES
from tasks.metrics import psnr, ssim, summarise
from tasks.synthesis import image_grid, reconstruct, synthesis_window, synthesize
from tasks.synthesis_baselines import (ConditionalVAE, ImageDomainGenerator, LowDoseCNN, count_scale, make_baseline)
from tasks.synthesis_metrics import (SinogramEncoder, bootstrap, frechet_distance, helgason_ludwig, low_dose_pairs,
                                     nearest_distances, negative_mass_fraction, pet_features, precision_recall,
                                     sliced_wasserstein, standardise, total_counts)

REGIONS = ("brain", "chest", "abdomen", "trunk")
TRACER_NAMES = ("fdg", "met", "fdopa", "psma")
METHODS = ("ALL-PET", "VAE", "GAN", "SGM", "image VAE")
TARGET_METHODS = ("ALL-PET", "VAE", "GAN", "SGM")  # "the four methods" of the targets
HELD_OUT = "held-out real"
TRAINING_FLOOR = "training slices (floor)"
HELD_OUT_SEED, ENCODER_SEED, UNSEEN_SEED = 10_000, 20_000, 0
PAIR_SEED = 30_000


@dataclass
class PromptData:
    """A prompt, its window and projector, its held-out slices and its training slices."""

    text: str
    prompt: Prompt
    window: SinogramWindow
    projector: ParallelBeamProjector
    held_out: BaseSlices
    training: np.ndarray

    @property
    def labels(self) -> tuple[int, int]:
        """``(tracer id, region id)`` of the prompt."""
        return list(TRACERS).index(self.prompt.tracer), ANATOMIES.index(self.prompt.region)


def _settings(**values: Any) -> str:
    return json.dumps(values, sort_keys=True)


def _cached(path: Path, settings: str, make: Callable[[], dict]) -> dict:
    """The dict saved in ``path`` (torch) when made with ``settings``, else ``make()`` saved there (resumable runs).

    The returned dict's ``"reused"`` says which (it is not saved).
    """
    if path.is_file():
        stored = torch.load(path, weights_only=False)
        if stored.get("settings") == settings:
            return {**stored, "reused": True}
    record = {"settings": settings, **make()}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(record, partial)
    partial.replace(path)
    return {**record, "reused": False}


def train_baseline(name: str, data: np.ndarray, tracer: np.ndarray, region: np.ndarray, steps: int, batch_size: int,
                   cache: Path, seed: int, progress: bool) -> tuple[Any, dict]:
    """A trained baseline (``"VAE"``, ``"GAN"``, ``"SGM"``, ``"image VAE"`` on images) and its training record."""
    lr = {"GAN": 2e-4, "SGM": 5e-4}.get(name, 1e-3)
    model = ConditionalVAE(positive=False, seed=seed) if name == "image VAE" else make_baseline(name, seed)
    extra = {"prediction": model.schedule.prediction_type} if hasattr(model, "schedule") else {}
    if name == "image VAE":
        extra["positive"] = False
    settings = _settings(name=name, n=len(data), steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                         data=float(np.asarray(data, dtype=np.float64).sum()), **extra)

    def make() -> dict:
        started = time.perf_counter()
        model.fit(data, tracer, region, steps, batch_size, lr, seed, progress)
        return {"state": model.state_dict(), "losses": model.losses, "seconds": time.perf_counter() - started}

    record = _cached(cache / f"baseline_{name.replace(' ', '_')}.pt", settings, make)
    model.load_state_dict(record["state"])
    model.eval()
    info = {"parameters": model.n_parameters, "steps": steps, "batch_size": batch_size, "lr": lr,
            "train_seconds": record["seconds"], "reused": record["reused"],
            "first_loss": record["losses"][0] if record["losses"] else None,
            "last_loss": float(np.mean(record["losses"][-20:])) if record["losses"] else None}
    if hasattr(model, "n_generator_parameters"):
        info["generator_parameters"] = model.n_generator_parameters
    return model, info


def region_window(config: Any, region: str) -> SinogramWindow:
    """The synthesis window (64 views over ``[0, pi)``, 64 bins) of a region's training geometry."""
    return synthesis_window(config, Prompt("synthesis", "fdg", region))


def _cell(values: Sequence[float]) -> dict:
    summary = summarise(values)
    return {"mean": summary.mean, "low": summary.low, "high": summary.high, "n": summary.n}


def physics(sinograms: np.ndarray, projector: ParallelBeamProjector, reference_counts: float, iterations: int,
            max_order: int) -> dict:
    """Per-sample physics scores (module docstring, 1.) and their summaries."""
    values = {"residual": [residual(x, projector, iterations) for x in sinograms],
              "helgason_ludwig": helgason_ludwig(sinograms, max_order).tolist(),
              "negative_mass": negative_mass_fraction(sinograms).tolist(),
              "count_ratio": (total_counts(sinograms) / reference_counts).tolist()}
    return {key: {**_cell(v), "values": v} for key, v in values.items()}


def distribution(samples: dict[str, np.ndarray], reference: np.ndarray, n_boot: int, k: int, seed: int) -> dict:
    """FD, SWD, precision and recall of each set of features against ``reference`` (standardised by it)."""
    ref = standardise(reference, reference)
    out = {}
    for name, features in samples.items():
        x = standardise(features, reference)
        out[name] = {"fd": bootstrap(frechet_distance, x, ref, n_boot, seed),
                     "swd": bootstrap(lambda a, b: sliced_wasserstein(a, b, seed=seed), x, ref, n_boot, seed),
                     "precision": bootstrap(lambda a, b: precision_recall(b, a, k)[0], x, ref, n_boot, seed),
                     "recall": bootstrap(lambda a, b: precision_recall(b, a, k)[1], x, ref, n_boot, seed)}
    return out


def usefulness(generated: dict[str, np.ndarray], real: np.ndarray, test: list[tuple[np.ndarray, SinogramWindow]],
               factor: float, steps: int, osem_iterations: int, seed: int, progress: bool) -> dict:
    """Low-dose CNN trained on real, synthetic and real + synthetic pairs, scored on real test pairs (docstring, 4.)."""
    rng = np.random.default_rng(PAIR_SEED + seed)
    real_in, real_out = low_dose_pairs(real, factor, rng)
    test_sino = np.stack([s for s, _ in test])
    test_in, test_full = low_dose_pairs(test_sino, factor, rng)
    full_images = [reconstruct(s, w, osem_iterations) for s, (_, w) in zip(test_full, test)]
    runs = {"real only": (real_in, real_out)}
    for method, sinograms in generated.items():
        synth_in, synth_out = low_dose_pairs(sinograms, factor, rng)
        runs[f"{method}: synthetic only"] = (synth_in, synth_out)
        runs[f"{method}: real + synthetic"] = (np.concatenate([real_in, synth_in]),
                                               np.concatenate([real_out, synth_out]))
    scores = {}
    for name, (inputs, targets) in runs.items():
        model = LowDoseCNN(seed=seed).fit(inputs * factor, targets, steps, seed=seed, progress=progress)
        estimate = model.predict(test_in * factor)
        images = [reconstruct(e, w, osem_iterations) for e, (_, w) in zip(estimate, test)]
        scores[name] = {"n_pairs": len(inputs),
                        "sino_psnr": [psnr(t, e) for t, e in zip(test_full, estimate)],
                        "sino_ssim": [ssim(t, e) for t, e in zip(test_full, estimate)],
                        "image_psnr": [psnr(t, e) for t, e in zip(full_images, images)]}
    out = {}
    for name, score in scores.items():
        row = {"n_pairs": score["n_pairs"]}
        for metric in ("sino_psnr", "sino_ssim", "image_psnr"):
            row[metric] = {**_cell(score[metric]), "values": score[metric]}
            if name != "real only":
                row[f"{metric}_minus_real"] = _cell(np.subtract(score[metric], scores["real only"][metric]))
        out[name] = row
    return out


def unseen_thorax(n: int, seed: int, progress: bool) -> tuple[Optional[np.ndarray], str]:
    """Full-dose sinograms ``(n, 64, 64)`` of the STIR thorax on the chest grid, or None, and the description."""
    from tasks.pipeline_config import PipelineConfig
    from tasks.sources import unseen_test_sets

    config = PipelineConfig(task="low_dose", size=64, n_views=64, anatomy="chest", unseen_test=("stir_thorax",),
                            n_unseen_test=n, seed=seed)
    sets, skipped = unseen_test_sets(config, progress)
    if not sets:
        return None, skipped.get("stir_thorax", "not available")
    return np.stack([s.target for s in sets[0].samples]).astype(np.float32), sets[0].description


def _best(cells: dict[str, dict], lower: bool = True) -> tuple[bool, bool, str]:
    """Whether ALL-PET is the best of :data:`TARGET_METHODS`, whether its CI clears the runner-up's, the runner-up."""
    sign = 1.0 if lower else -1.0

    def centre(cell: dict) -> float:
        return sign * (cell["value"] if "value" in cell else cell["mean"])

    ranked = sorted(TARGET_METHODS, key=lambda name: centre(cells[name]))
    ours, other = cells["ALL-PET"], cells[ranked[1] if ranked[0] == "ALL-PET" else ranked[0]]
    clear = ours["high"] < other["low"] if lower else ours["low"] > other["high"]
    return ranked[0] == "ALL-PET", ranked[0] == "ALL-PET" and clear, ranked[1] if ranked[0] == "ALL-PET" else ranked[0]


def targets(report: dict) -> dict[str, dict]:
    """The issue's targets, each ``{"met": bool, "detail": str}`` (see docs/synthesis.md)."""
    physics = report["all_prompts"]["physics"]
    checks = {key: _best(physics_cells, True) for key, physics_cells in
              (("MLEM residual", {m: physics[m]["residual"] for m in TARGET_METHODS}),
               ("HL inconsistency", {m: physics[m]["helgason_ludwig"] for m in TARGET_METHODS}))}
    distribution = report["all_prompts"]["distribution"]
    spread = {f"FD ({space})": _best({m: distribution[space][m]["fd"] for m in TARGET_METHODS}, True)
              for space in distribution}

    def verdict(results: dict[str, tuple[bool, bool, str]]) -> dict:
        best = all(b for b, _, _ in results.values())
        clear = any(c for _, c, _ in results.values())
        detail = "; ".join(f"{name}: {'best' if b else 'not best (best: ' + other + ')'}"
                           f"{', CI clear of the runner-up ' + other if c else ''}"
                           for name, (b, c, other) in results.items())
        return {"met": best and clear, "detail": detail}

    below, total = 0, 0
    for row in report["per_prompt"]:
        threshold = min(row["memorisation"][HELD_OUT]["sinogram"]["values"])
        values = row["memorisation"]["ALL-PET"]["sinogram"]["values"]
        below += sum(v < threshold for v in values)
        total += len(values)
    useful = report["usefulness"]["ALL-PET: real + synthetic"]
    return {"physics": verdict(checks), "distribution": verdict(spread),
            "memorisation": {"met": below <= 0.05 * total,
                             "detail": f"{below} of {total} ALL-PET samples lie closer to a training slice than the "
                                       "closest held-out slice of their prompt does (about 2% expected without "
                                       "memorisation; target: at most 5%)"},
            "usefulness": {"met": useful["image_psnr_minus_real"]["low"] > 0.0,
                           "detail": f"real + ALL-PET synthetic minus real only: image PSNR "
                                     f"{_fmt(useful['image_psnr_minus_real'])} dB, sinogram PSNR "
                                     f"{_fmt(useful['sino_psnr_minus_real'])} dB (paired; met when the image "
                                     "PSNR interval lies above 0)"}}


def _fmt(cell: dict, digits: int = 3) -> str:
    centre = cell["value"] if "value" in cell else cell["mean"]
    if not np.isfinite(centre):
        return "n/a"
    return f"{centre:.{digits}g} [{cell['low']:.{digits}g}, {cell['high']:.{digits}g}]"


def _figure(path: Path, examples: list[tuple[str, SinogramWindow, dict[str, np.ndarray]]],
            osem_iterations: int) -> None:
    """Fig. 4 style: rows methods + held-out, per prompt a sinogram and an OSEM image with an enlarged inset."""
    from matplotlib.figure import Figure

    rows = list(METHODS) + [HELD_OUT]
    figure = Figure(figsize=(3.0 * 2 * len(examples), 2.6 * len(rows)), layout="constrained")
    axes = figure.subplots(len(rows), 2 * len(examples), squeeze=False)
    for c, (text, window, sinograms) in enumerate(examples):
        images = {name: reconstruct(sinograms[name], window, osem_iterations) for name in rows}
        vmax_s = float(np.percentile(sinograms[HELD_OUT], 99.5))
        vmax_i = float(np.percentile(images[HELD_OUT], 99.5))
        half = 0.5 * window.n_bins * window.bin_width_mm
        for r, name in enumerate(rows):
            sino_ax, image_ax = axes[r, 2 * c], axes[r, 2 * c + 1]
            sino_ax.imshow(sinograms[name], cmap="gray_r", aspect="auto", vmin=0, vmax=vmax_s)
            image_ax.imshow(images[name], cmap="gray_r", origin="lower", vmin=0, vmax=vmax_i,
                            extent=(-half, half, -half, half))
            zoom = 0.2 * half
            inset = image_ax.inset_axes((0.62, 0.62, 0.36, 0.36), xlim=(-zoom, zoom), ylim=(-zoom, zoom))
            inset.imshow(images[name], cmap="gray_r", origin="lower", vmin=0, vmax=vmax_i,
                         extent=(-half, half, -half, half))
            inset.set(xticks=[], yticks=[])
            image_ax.indicate_inset_zoom(inset, edgecolor="tab:red")
            for ax in (sino_ax, image_ax):
                ax.set(xticks=[], yticks=[])
            sino_ax.set_ylabel(name)
            if r == 0:
                sino_ax.set_title(f"{text}: sinogram")
                image_ax.set_title(f"{text}: OSEM image")
    figure.savefig(path, dpi=70)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", nargs="+", default=["FDG brain", "FDG chest", "PSMA abdomen", "FDOPA trunk"])
    parser.add_argument("--model", default=None, help="ALL-PET weights or run folder (default: the shipped foundation)")
    parser.add_argument("--n", type=int, default=48, help="samples per prompt and method, and held-out slices")
    parser.add_argument("--n-train", type=int, default=500, help="training slices (the foundation model's: 500)")
    parser.add_argument("--n-encoder", type=int, default=256, help="held-out slices of the feature encoder")
    parser.add_argument("--n-unseen", type=int, default=32, help="STIR thorax slices (unseen anatomy)")
    parser.add_argument("--train-steps", type=int, nargs=4, default=[400, 400, 2000, 400],
                        metavar=("VAE", "GAN", "SGM", "IMAGE_VAE"), help="training steps of each baseline")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--encoder-steps", type=int, default=600)
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps of ALL-PET and the SGM")
    parser.add_argument("--iterations", type=int, default=100, help="MLEM iterations of the physics residual")
    parser.add_argument("--max-order", type=int, default=3, help="highest Helgason-Ludwig moment order")
    parser.add_argument("--k", type=int, default=3, help="neighbours of the precision / recall manifolds")
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--unet-steps", type=int, default=400, help="training steps of each low-dose CNN")
    parser.add_argument("--n-useful-test", type=int, default=48, help="real held-out test pairs of the usefulness")
    parser.add_argument("--dose-reduction-factor", type=float, default=20.0)
    parser.add_argument("--osem-iterations", type=int, default=4, help="OSEM iterations (8 subsets) of the images")
    parser.add_argument("--cache", default="runs/synthesis")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/synthesis")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    cache, progress = Path(args.cache), args.progress
    model, config, folder = load_model(args.model)
    size = config.data.image_size
    training = load_base_slices(cache / "base_slices.npz", args.n_train, size, config.data.n_views, REGIONS,
                                TRACER_NAMES, seed=0, progress=progress)

    prompts = []
    for i, text in enumerate(args.prompts):
        prompt = parse_prompt(text)
        window = synthesis_window(config, prompt)
        held = load_base_slices(cache / f"held_out_{i}.npz", args.n, size, config.data.n_views, (prompt.region,),
                                (prompt.tracer,), seed=HELD_OUT_SEED + i, progress=progress)
        tracer_id, region_id = list(TRACERS).index(prompt.tracer), ANATOMIES.index(prompt.region)
        same = (training.tracer == tracer_id) & (training.region == region_id)
        prompts.append(PromptData(text, prompt, window, ParallelBeamProjector(window.geometry(image_grid(window))),
                                  held, training.sinograms[same]))

    # ---- the generators
    timings: dict[str, dict] = {"ALL-PET": {"parameters": sum(p.numel() for p in model.parameters()),
                                            "model": shown_path(folder)}}
    generators: dict[str, Any] = {}
    for name, steps in zip(("VAE", "GAN", "SGM"), args.train_steps[:3]):
        generators[name], timings[name] = train_baseline(name, training.sinograms, training.tracer, training.region,
                                                         steps, args.batch_size, cache, args.seed, progress)
    if "SGM" in generators:
        generators["SGM"].sampling_steps = args.steps
    image_vae, timings["image VAE"] = train_baseline("image VAE", training.images, training.tracer, training.region,
                                                     args.train_steps[3], args.batch_size, cache, args.seed, progress)
    projectors, scales = {}, {}
    for region in np.unique(training.region):
        window = region_window(config, ANATOMIES[region])
        projectors[int(region)] = ParallelBeamProjector(window.geometry(image_grid(window)))
        chosen = training.region == region
        scales[int(region)] = count_scale(training.images[chosen], training.sinograms[chosen], projectors[int(region)])
    generators["image VAE"] = ImageDomainGenerator(image_vae, projectors, scales)
    timings["image VAE"]["count_scales"] = {ANATOMIES[r]: s for r, s in scales.items()}

    generated: dict[str, list[np.ndarray]] = {name: [] for name in METHODS}
    for i, p in enumerate(prompts):
        tracer_id, region_id = p.labels
        t0 = time.perf_counter()
        generated["ALL-PET"].append(synthesize(model, p.prompt, p.window, args.n, seed=args.seed + i, steps=args.steps,
                                               batch_size=16, progress=progress))
        timings["ALL-PET"].setdefault("generate_seconds", 0.0)
        timings["ALL-PET"]["generate_seconds"] += time.perf_counter() - t0
        for name in METHODS[1:]:
            t0 = time.perf_counter()
            generated[name].append(generators[name].generate(tracer_id, region_id, args.n, seed=args.seed + i))
            timings[name].setdefault("generate_seconds", 0.0)
            timings[name]["generate_seconds"] += time.perf_counter() - t0

    # ---- the feature encoder (other held-out slices only)
    encoder_set = load_base_slices(cache / "encoder_slices.npz", args.n_encoder, size, config.data.n_views, REGIONS,
                                   TRACER_NAMES, seed=ENCODER_SEED, progress=progress)
    encoder = SinogramEncoder(seed=args.seed)
    record = _cached(cache / "encoder.pt", _settings(n=args.n_encoder, steps=args.encoder_steps, seed=args.seed),
                     lambda: {"state": encoder.fit(encoder_set.sinograms, args.encoder_steps, seed=args.seed,
                                                   progress=progress).state_dict()})
    encoder.load_state_dict(record["state"])
    encoder.eval()
    training_codes = encoder.encode(training.sinograms)

    # ---- scores per prompt
    per_prompt = []
    pooled: dict[str, dict[str, list]] = {space: {} for space in ("PET features", "encoder")}
    for i, p in enumerate(prompts):
        reference_counts = float(total_counts(p.held_out.sinograms).mean())
        sets = {name: generated[name][i] for name in METHODS}
        sets[HELD_OUT] = p.held_out.sinograms
        row: dict[str, Any] = {"prompt": p.text, "n": args.n, "n_training_slices": len(p.training),
                               "physics": {name: physics(x, p.projector, reference_counts, args.iterations,
                                                         args.max_order)
                                           for name, x in sets.items()}}
        features = {"PET features": pet_features, "encoder": encoder.encode}
        row["distribution"] = {}
        for space, featurise in features.items():
            reference = featurise(p.held_out.sinograms)
            candidates = {name: featurise(generated[name][i]) for name in METHODS}
            if len(p.training) > 1:
                candidates[TRAINING_FLOOR] = featurise(p.training)
            row["distribution"][space] = distribution(candidates, reference, args.n_boot, args.k, args.seed)
            for name, f in candidates.items():
                pooled[space].setdefault(name, []).append(standardise(f, reference))
            pooled[space].setdefault(HELD_OUT, []).append(standardise(reference, reference))
        row["memorisation"] = {}
        for name, x in sets.items():
            sino = nearest_distances(x, training.sinograms)
            code = nearest_distances(encoder.encode(x), training_codes, relative=False)
            row["memorisation"][name] = {"sinogram": {**_cell(sino), "min": float(sino.min()), "values": sino.tolist()},
                                         "encoder": {**_cell(code), "min": float(code.min())}}
        per_prompt.append(row)
    all_prompts = {}
    for space, sets in pooled.items():
        reference = np.concatenate(sets.pop(HELD_OUT))
        stacked = {name: np.concatenate(parts) for name, parts in sets.items()}
        all_prompts[space] = {name: {"fd": bootstrap(frechet_distance, f, reference, args.n_boot, args.seed),
                                     "swd": bootstrap(lambda a, b: sliced_wasserstein(a, b, seed=args.seed), f,
                                                      reference, args.n_boot, args.seed),
                                     "precision": bootstrap(lambda a, b: precision_recall(b, a, args.k)[0], f,
                                                            reference, args.n_boot, args.seed),
                                     "recall": bootstrap(lambda a, b: precision_recall(b, a, args.k)[1], f,
                                                         reference, args.n_boot, args.seed)}
                              for name, f in stacked.items()}
    pooled_physics = {name: {key: _cell([v for row in per_prompt for v in row["physics"][name][key]["values"]])
                             for key in ("residual", "helgason_ludwig", "negative_mass", "count_ratio")}
                      for name in (*METHODS, HELD_OUT)}

    # ---- unseen anatomy: the STIR thorax against the FDG chest samples
    thorax, thorax_description = unseen_thorax(args.n_unseen, UNSEEN_SEED + args.seed, progress)
    chest = [i for i, p in enumerate(prompts) if p.prompt.region == "chest"]
    unseen: dict[str, Any] = {"description": thorax_description}
    if thorax is not None and chest:
        i = chest[0]
        unseen["prompt"] = prompts[i].text
        unseen["physics"] = physics(thorax, prompts[i].projector, float(total_counts(thorax).mean()),
                                    args.iterations, args.max_order)
        unseen["distribution"] = {space: distribution({name: featurise(generated[name][i]) for name in METHODS},
                                                      featurise(thorax), args.n_boot, args.k, args.seed)
                                  for space, featurise in (("PET features", pet_features), ("encoder", encoder.encode))}
    elif thorax is not None:
        unseen["description"] += "; skipped: no chest prompt"

    # ---- usefulness
    test = [(s, p.window) for p in prompts for s in p.held_out.sinograms[:max(1, args.n_useful_test // len(prompts))]]
    useful = usefulness({name: np.concatenate(generated[name]) for name in METHODS}, training.sinograms, test,
                        args.dose_reduction_factor, args.unet_steps, args.osem_iterations, args.seed, progress)

    # ---- figure
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shown = [prompts[0]] + [p for p in prompts[1:] if p.prompt.region != prompts[0].prompt.region][:1]
    examples = [(p.text, p.window, {**{name: generated[name][prompts.index(p)][0] for name in METHODS},
                                    HELD_OUT: p.held_out.sinograms[0]}) for p in shown]
    _figure(out.with_suffix(".png"), examples, args.osem_iterations)

    wall = time.perf_counter() - started
    arguments = sys.argv[1:] if argv is None else list(argv)
    report = {"command": "python -m benchmarks.bench_synthesis " + " ".join(arguments),
              "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU",
              "torch_threads": args.threads, "wall_seconds": wall, "settings": vars(args), "methods": timings,
              "per_prompt": per_prompt,
              "all_prompts": {"physics": pooled_physics, "distribution": all_prompts}, "unseen": unseen,
              "usefulness": useful}
    report["targets"] = targets(report)
    write_results(out, report, "\n".join(_markdown(report, args)) + "\n")
    return 0


def _markdown(report: dict, args: argparse.Namespace) -> list[str]:
    """The report's tables (mean or value [95% CI])."""
    cached = [name for name in METHODS[1:] if report["methods"][name]["reused"]]
    reused = ""
    if cached:
        scratch = report["wall_seconds"] + sum(report["methods"][name]["train_seconds"] for name in cached)
        reused = (f" ({', '.join(cached)} reused from the cache, trained by an earlier run: about {scratch / 60:.0f} "
                  "min from scratch)")
    lines = [f"# Synthesis: ALL-PET against VAE, GAN and score-based baselines ({report['date']})", "",
             f"Command: `{report['command']}`; {report['machine']}; torch threads {report['torch_threads']}; wall "
             f"time {report['wall_seconds'] / 60:.1f} min{reused}. Prompts: {', '.join(args.prompts)}; {args.n} "
             f"samples per prompt and method, {args.n} held-out simulated slices per prompt; {args.steps} DDIM steps "
             "for ALL-PET and the SGM. Mean or value [95% CI] (Student's t over samples; bootstrap over both sets for "
             "the distribution metrics). Design and caveats: docs/synthesis.md.", "",
             "## Methods", "", "| method | parameters | training steps x batch | training time (s) | "
             "generation time (s, all prompts) |", "|---|---|---|---|---|"]
    for name in METHODS:
        m = report["methods"][name]
        params = f"{m['parameters']:,}" + (f" (generator {m['generator_parameters']:,})"
                                           if "generator_parameters" in m else "")
        steps = "shipped (3,000 + continued, batch 16)" if name == "ALL-PET" else f"{m['steps']} x {m['batch_size']}"
        train = "-" if name == "ALL-PET" else f"{m['train_seconds']:.0f}"
        lines.append(f"| {name} | {params} | {steps} | {train} | {m.get('generate_seconds', 0.0):.0f} |")
    lines += ["", "## Targets (issue 36; ALL-PET against VAE, GAN and SGM)", ""]
    for name, target in report["targets"].items():
        lines.append(f"- {name}: {'met' if target['met'] else 'missed'}; {target['detail']}.")
    physics_keys = (("residual", "MLEM residual"), ("helgason_ludwig", "HL inconsistency"),
                    ("negative_mass", "negative mass"), ("count_ratio", "counts / held-out"))
    lines += ["", "## Physics (all prompts pooled)", "",
              f"MLEM residual: relative residual of the non-negative fit ({args.iterations} iterations) with the "
              f"prompt's projector. HL inconsistency: energy outside the Helgason-Ludwig harmonics, mean over orders "
              f"0..{args.max_order}. Negative mass: sum of negative values over sum of absolute values.", "",
              "| method | " + " | ".join(label for _, label in physics_keys) + " |", "|---" * 5 + "|"]
    for name, cells in report["all_prompts"]["physics"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(cells[key]) for key, _ in physics_keys) + " |")
    for space, rows in report["all_prompts"]["distribution"].items():
        lines += ["", f"## Distribution, all prompts pooled ({space}; reference: held-out real)", "",
                  "| method | Frechet distance | sliced Wasserstein | precision | recall |", "|---|---|---|---|---|"]
        for name, cells in rows.items():
            lines.append(f"| {name} | " + " | ".join(_fmt(cells[key]) for key in ("fd", "swd", "precision", "recall"))
                         + " |")
    lines += ["", "## Per prompt", "", "| prompt | method | MLEM residual | HL inconsistency | FD (PET features) | "
              "FD (encoder) | precision / recall (encoder) | nearest training slice |", "|---" * 8 + "|"]
    for row in report["per_prompt"]:
        for name in (*METHODS, HELD_OUT):
            ph, mem = row["physics"][name], row["memorisation"][name]
            if name == HELD_OUT:
                fd_f = fd_e = pr = "-"
            else:
                d_f, d_e = row["distribution"]["PET features"][name], row["distribution"]["encoder"][name]
                fd_f, fd_e = _fmt(d_f["fd"]), _fmt(d_e["fd"])
                pr = f"{d_e['precision']['value']:.2f} / {d_e['recall']['value']:.2f}"
            lines.append(f"| {row['prompt']} | {name} | {_fmt(ph['residual'])} | {_fmt(ph['helgason_ludwig'])} | "
                         f"{fd_f} | {fd_e} | {pr} | {_fmt(mem['sinogram'])} |")
        floor = row["distribution"]
        if TRAINING_FLOOR not in floor["encoder"]:
            continue
        lines.append(f"| {row['prompt']} | {TRAINING_FLOOR} ({row['n_training_slices']}) | - | - | "
                     f"{_fmt(floor['PET features'][TRAINING_FLOOR]['fd'])} | "
                     f"{_fmt(floor['encoder'][TRAINING_FLOOR]['fd'])} | - | 0 |")
    lines += ["", "## Memorisation (per prompt)", "",
              "Relative L2 distance of each sample to its nearest training slice (sinograms) and the Euclidean "
              "distance of its code to the nearest training code (encoder), beside the held-out slices' own "
              "(mean [95% CI]; min).", "", "| prompt | method | sinogram | min | encoder | min |", "|---" * 6 + "|"]
    for row in report["per_prompt"]:
        for name, mem in row["memorisation"].items():
            lines.append(f"| {row['prompt']} | {name} | {_fmt(mem['sinogram'])} | {mem['sinogram']['min']:.3g} | "
                         f"{_fmt(mem['encoder'])} | {mem['encoder']['min']:.3g} |")
    unseen = report["unseen"]
    lines += ["", "## Unseen anatomy", "", f"Reference: {unseen['description']}."]
    if "distribution" in unseen:
        ph = unseen["physics"]
        lines += [f"Samples: each method's \"{unseen['prompt']}\" samples. STIR thorax physics: MLEM residual "
                  f"{_fmt(ph['residual'])}, HL inconsistency {_fmt(ph['helgason_ludwig'])}.", "",
                  "| method | FD (PET features) | FD (encoder) | SWD (encoder) | precision / recall (encoder) |",
                  "|---|---|---|---|---|"]
        for name in METHODS:
            f, e = unseen["distribution"]["PET features"][name], unseen["distribution"]["encoder"][name]
            lines.append(f"| {name} | {_fmt(f['fd'])} | {_fmt(e['fd'])} | {_fmt(e['swd'])} | "
                         f"{e['precision']['value']:.2f} / {e['recall']['value']:.2f} |")
    lines += ["", "## Usefulness: low-dose model trained on synthetic pairs, tested on real held-out pairs", "",
              f"Low-dose CNN ({args.unet_steps} steps of 16), dose reduction factor {args.dose_reduction_factor:g}; "
              f"{len(report['usefulness']['real only']['sino_psnr']['values'])} real test pairs; differences are "
              "paired, to \"real only\".", "",
              "| training pairs | n | sinogram PSNR (dB) | minus real only | sinogram SSIM | image PSNR (dB) | "
              "minus real only |", "|---" * 7 + "|"]
    for name, row in report["usefulness"].items():
        diff_s = _fmt(row["sino_psnr_minus_real"]) if "sino_psnr_minus_real" in row else "-"
        diff_i = _fmt(row["image_psnr_minus_real"]) if "image_psnr_minus_real" in row else "-"
        lines.append(f"| {name} | {row['n_pairs']} | {_fmt(row['sino_psnr'])} | {diff_s} | {_fmt(row['sino_ssim'])} "
                     f"| {_fmt(row['image_psnr'])} | {diff_i} |")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
