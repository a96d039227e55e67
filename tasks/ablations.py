"""Ablations as one command: RMAS/DMM, TMA, positive/negative constraints, and training-set size.

Variants (:func:`ablation_variants`), each the base :class:`~tasks.pipeline_config.PipelineConfig`
with one change, trained and tested on the same simulated samples:

- ``full``: RMAS/DMM, TMA and constraints on, ``n_small`` training samples;
- ``no RMAS/DMM``, ``no TMA`` (no attention channel, loss weights, guidance
  or attention in the physics prior), ``no constraints``, ``no physics
  prior`` (the model conditioned on the measured input itself): one switch off;
- ``large, no augmentation``: ``n_large`` training samples, RMAS/DMM off
  (the 5,000-sample reference for the 500-sample model with RMAS/DMM).

The results table has one row per variant and the mean with its 95%
confidence interval over the test samples (Markdown and CSV), plus two
comparisons: PSNR of ``full`` minus ``large, no augmentation``, and the
relative change of the lesion-ROI |bias| with TMA against without.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any, Optional

from pet_projection.io.files import atomic_directory

from .metrics import summarise
from .pipeline import run_task
from .pipeline_config import PipelineConfig
from .results import METHOD_LDM, TaskResult
from .sources import make_samples

__all__ = ["ABLATION_METRICS", "ablation_variants", "run_ablations", "write_ablation_table"]

ABLATION_METRICS = ("psnr", "ssim", "nrmse", "lesion_abs_bias", "contrast_recovery", "sino_psnr")


def ablation_variants(base: PipelineConfig, n_small: int, n_large: int) -> dict[str, PipelineConfig]:
    """The variants of the module docstring (LDM only: baselines off; the in-distribution test set only)."""
    if not 1 <= n_small <= n_large:
        raise ValueError(f"need 1 <= n_small <= n_large, got {n_small}, {n_large}")
    full = dataclasses.replace(base, n_train=n_small, use_rmas=True, use_tma=True, use_constraints=True,
                               physics_prior=True, baselines=False, unseen_test=())
    return {"full": full,
            "no RMAS/DMM": dataclasses.replace(full, use_rmas=False),
            "no TMA": dataclasses.replace(full, use_tma=False, guidance_scale=0.0),  # no attention, no guidance
            "no constraints": dataclasses.replace(full, use_constraints=False),
            "no physics prior": dataclasses.replace(full, physics_prior=False),
            # no augmentation of any kind: neither RMAS/DMM nor count resampling (if the base config turns it on)
            "large, no augmentation": dataclasses.replace(full, n_train=n_large, use_rmas=False, count_resampling=0)}


def _comparisons(results: dict[str, TaskResult]) -> dict[str, str]:
    out = {}
    if "full" in results and "large, no augmentation" in results:
        full, large = results["full"], results["large, no augmentation"]
        values = {(r["sample"], r["channel"]): r["psnr"] for r in large.records if r["method"] == METHOD_LDM}
        diff = summarise([r["psnr"] - values[(r["sample"], r["channel"])] for r in full.records
                          if r["method"] == METHOD_LDM])
        out["PSNR full minus large-no-augmentation (dB)"] = diff.format()
    if "full" in results and "no TMA" in results:
        on = results["full"].summary("lesion_abs_bias", METHOD_LDM).mean
        off = results["no TMA"].summary("lesion_abs_bias", METHOD_LDM).mean
        out["lesion |bias| change with TMA vs without"] = f"{100.0 * (on - off) / off:+.1f}%" if off > 0 else "n/a"
    return out


def write_ablation_table(results: dict[str, TaskResult], folder: Path) -> str:
    """``ablations.md`` and ``ablations.csv`` in ``folder``; returns the Markdown text."""
    from .report import METRIC_LABELS, markdown_table

    header = (["variant", "n_train", "RMAS/DMM", "TMA", "constraints", "physics prior"]
              + [METRIC_LABELS[m] for m in ABLATION_METRICS])
    rows = []
    with open(folder / "ablations.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["variant", "metric", "mean", "ci95_low", "ci95_high", "n"])
        for name, result in results.items():
            c = result.config
            rows.append([name, str(c.n_train), *("on" if flag else "off" for flag in
                                                 (c.use_rmas, c.use_tma, c.use_constraints, c.physics_prior))]
                        + [result.summary(m, METHOD_LDM).format() for m in ABLATION_METRICS])
            for metric in ABLATION_METRICS:
                s = result.summary(metric, METHOD_LDM)
                writer.writerow([name, metric, s.mean, s.low, s.high, s.n])
    comparisons = _comparisons(results)
    text = "\n".join([f"# ALL-PET ablations ({next(iter(results.values())).config.task})", "",
                      "LDM metrics on one test set, mean ± 95% CI.", "", markdown_table(header, rows), "",
                      *(f"- {k}: {v}" for k, v in comparisons.items()), ""])
    (folder / "ablations.md").write_text(text, encoding="utf-8")
    (folder / "ablations.json").write_text(json.dumps({"comparisons": comparisons, "configs": {
        name: r.config.to_dict() for name, r in results.items()}}, indent=1), encoding="utf-8")
    return text


def run_ablations(base: PipelineConfig, out: Any = "ablations", *, n_small: int = 500, n_large: int = 5000,
                  variants: Optional[list[str]] = None, progress: bool = True) -> dict[str, TaskResult]:
    """Run the ablation variants (all, or the names in ``variants``) and write the table into ``out`` atomically."""
    configs = ablation_variants(base, n_small, n_large)
    if variants is not None:
        unknown = sorted(set(variants) - set(configs))
        if unknown:
            raise ValueError(f"unknown variants {unknown}; variants: {list(configs)}")
        configs = {name: configs[name] for name in variants}
    largest = max(c.n_train for c in configs.values())
    train, test = make_samples(dataclasses.replace(base, n_train=largest), progress)
    results = {}
    with atomic_directory(out) as folder:
        for name, config in configs.items():
            with tempfile.TemporaryDirectory(prefix="allpet-ablation-") as work:
                results[name] = run_task(config, work, progress, samples=(train[:config.n_train], test))
        write_ablation_table(results, folder)
    return results
