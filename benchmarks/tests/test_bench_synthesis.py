"""The synthesis benchmark runs end to end at tiny sizes and writes its tables, JSON and figure."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("skimage")


def test_synthesis_benchmark_runs_small(tmp_path, restore_threads):
    from benchmarks.bench_synthesis import HELD_OUT, METHODS, main

    args = ["--prompts", "FDG brain", "FDG chest", "--n", "3", "--n-train", "16", "--n-encoder", "4", "--n-unseen",
            "2", "--train-steps", "1", "1", "1", "1", "--batch-size", "2", "--encoder-steps", "1", "--steps", "1",
            "--iterations", "1", "--n-boot", "2", "--unet-steps", "1", "--n-useful-test", "2", "--osem-iterations",
            "1", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "s")]
    assert main(args) == 0
    report = json.loads((tmp_path / "s.json").read_text())
    assert [row["prompt"] for row in report["per_prompt"]] == ["FDG brain", "FDG chest"]
    assert set(report["per_prompt"][0]["physics"]) == {*METHODS, HELD_OUT}
    physics = report["all_prompts"]["physics"]
    assert physics["VAE"]["negative_mass"]["mean"] == 0.0 and physics["GAN"]["negative_mass"]["mean"] == 0.0
    assert all(np.isfinite(physics[name]["helgason_ludwig"]["mean"]) for name in physics)
    assert set(report["usefulness"]) == {"real only"} | {f"{m}: {k}" for m in METHODS
                                                         for k in ("synthetic only", "real + synthetic")}
    assert report["usefulness"]["ALL-PET: real + synthetic"]["n_pairs"] == 16 + 2 * 3
    text = (tmp_path / "s.md").read_text()
    for heading in ("## Physics", "## Distribution", "## Memorisation", "## Unseen anatomy", "## Usefulness"):
        assert heading in text
    assert (tmp_path / "s.png").stat().st_size > 0
    assert {path.name for path in (tmp_path / "cache").glob("baseline_*.pt")} == {
        "baseline_VAE.pt", "baseline_GAN.pt", "baseline_SGM.pt", "baseline_image_VAE.pt"}


def test_cache_reuses_records_made_with_the_same_settings(tmp_path):
    from benchmarks.bench_synthesis import _cached

    calls = []

    def make() -> dict:
        calls.append(1)
        return {"value": len(calls)}

    path = tmp_path / "c.pt"
    assert _cached(path, "a", make) == {"settings": "a", "value": 1, "reused": False}
    assert _cached(path, "a", make) == {"settings": "a", "value": 1, "reused": True}  # a rerun skips the training
    assert _cached(path, "b", make)["value"] == 2  # other settings: made again
    assert len(calls) == 2
