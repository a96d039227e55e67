"""The autoencoder-ceiling benchmark runs at tiny sizes; the kept pretrained autoencoder is calibrated to the task."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("skimage")


def test_autoencoder_ceiling_benchmark_runs_small(tmp_path, restore_threads):
    from benchmarks.bench_autoencoder_ceiling import main

    out = tmp_path / "ceiling"
    assert main(["--tasks", "attenuation_correction", "--examples", "2", "--n-test", "1", "--finetune-steps", "1",
                 "--scratch-steps", "1", "--no-progress", "--out", str(out)]) == 0
    rows = json.loads(out.with_suffix(".json").read_text())["tasks"][0]["rows"]
    assert [row["method"] for row in rows] == ["pretrained, kept", "pretrained + fine-tuning", "from scratch"]
    errors = {row["method"]: row["errors"][0] for row in rows}
    assert all(math.isfinite(e) and e > 0 for e in errors.values())
    # a zero output has error 1; the pretrained autoencoder, at the task's calibrated count scale, is far below it
    # (an uncalibrated scale gave errors above 2), while one step from fresh weights is not
    assert errors["pretrained, kept"] < 0.4 < errors["from scratch"]
    assert "| attenuation_correction | pretrained, kept | 0 |" in out.with_suffix(".md").read_text()
