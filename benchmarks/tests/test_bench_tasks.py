"""The task benchmarks run at tiny sizes and write what their reports promise."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("skimage")

from pet_projection.simulation import SimulationConfig, simulate_sample  # noqa: E402
from tasks.results import METHOD_LDM, METHOD_UNET  # noqa: E402
from tasks.registry import get_task  # noqa: E402


def test_count_resampling_benchmark_runs_small(tmp_path):
    import json

    from benchmarks.bench_count_resampling import main

    assert main(["--n-train", "3", "--steps", "2", "--resamples", "0", "1", "--jobs", "1",
                 "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert [row["n_train_examples"] for row in report["rows"]] == [3, 6]
    assert all(np.isfinite(row["image_psnr_db"]) for row in report["rows"])
    assert "| 1 | 6 |" in (tmp_path / "r.md").read_text()


def test_limits_benchmark_region_fit_recovers_piecewise_constant_activity(tmp_path):
    from benchmarks.bench_low_dose_limits import main, region_fit

    sample = simulate_sample("low_dose", SimulationConfig(size=16, n_views=16), 0)
    system = get_task("low_dose").target_system(sample)
    values = np.unique(sample.labels)
    truth = sum((1.0 + 0.5 * i) * (sample.labels == v) for i, v in enumerate(values))
    # Noise-free data: MLEM on the region basis converges to the truth, but slowly for the
    # one-voxel lesion regions this phantom has, hence the many (cheap, 5-column) iterations.
    fit = region_fit(np.asarray(system.expected(truth)), system, sample.labels, 20000)
    np.testing.assert_allclose(fit, truth, rtol=1e-3, atol=1e-6)
    assert main(["--n-test", "2", "--out", str(tmp_path / "limits")]) == 0
    assert "oracle segmentation" in (tmp_path / "limits.md").read_text()


def test_training_phantoms_benchmark_runs_small(tmp_path):
    import json

    import torch

    from benchmarks.bench_training_phantoms import ImageDenoiser, main

    assert ImageDenoiser()(torch.zeros(3, 2, 8, 8)).shape == (3, 1, 8, 8)
    assert main(["--n-train", "2", "3", "--resamples", "1", "0", "--warps", "0", "1", "--steps", "3", "--every", "2",
                 "--threads", "1", "--out", str(tmp_path / "p")]) == 0
    report = json.loads((tmp_path / "p.json").read_text())
    assert [[c["step"] for c in row["curve"]] for row in report["rows"]] == [[2, 3], [2, 3]]
    assert all(np.isfinite(c["test_psnr_db"]) for row in report["rows"] for c in row["curve"])
    text = (tmp_path / "p.md").read_text()
    assert "| 2 | 0 | 1 |" in text and "| 3 | 1 | 0 |" in text and "Best post-filtered OSEM" in text
    with pytest.raises(SystemExit):
        main(["--n-train", "2", "3", "--resamples", "1", "0", "--out", str(tmp_path / "q")])  # --warps: 3 values


def test_latent_benchmark_runs_small(tmp_path):
    import json

    from benchmarks.bench_ldm_latent import main

    assert main(["--factors", "4", "2", "--n-train", "4", "--n-test", "3", "--autoencoder-steps", "2",
                 "--diffusion-steps", "2", "--batch-size", "2", "--warps", "1", "--denoiser-channels", "16",
                 "--jobs", "1", "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert [row["latent_shape"] for row in report["rows"]] == [[4, 8, 8], [4, 16, 16]]
    assert all(row["denoiser_channels"] == 16 and 0 < row["denoiser_parameters"] < row["parameters"]
               for row in report["rows"])
    assert all(row["n_train_examples"] == 8 for row in report["rows"])
    for row in report["rows"]:
        assert all(np.isfinite(row[key]) for key in ("ceiling_psnr_db", "ldm_psnr_db", "post_filter_psnr_db"))
        assert row["gain_db"]["low"] <= row["gain_db"]["mean"] <= row["gain_db"]["high"]
    assert "| 2 | 4 x 16 x 16 | 16 |" in (tmp_path / "r.md").read_text()


def test_tasks_benchmark_runs_small(tmp_path):
    import json

    from benchmarks.bench_tasks import main

    assert main(["--tasks", "tracer_separation", "--quick", "--n-train", "4", "--n-test", "2", "--jobs", "1",
                 "--out", str(tmp_path / "r")]) == 0
    (row,) = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert row["task"] == "tracer_separation" and row["filtered_baseline"] in row["methods"]
    assert set(row["ldm_minus"]) == {row["filtered_baseline"], METHOD_UNET}
    ldm = row["metrics"][METHOD_LDM]["psnr"]
    assert ldm["n"] == 4 and ldm["low"] <= ldm["mean"] <= ldm["high"]  # 2 slices x 2 tracers
    assert "## tracer_separation" in (tmp_path / "r.md").read_text()


def test_low_dose_gap_figure_shows_the_recorded_results(tmp_path):
    pytest.importorskip("matplotlib")
    from benchmarks.bench_physics_prior import RESULTS
    from benchmarks.plot_low_dose_gap import gap_rows, main

    rows = {label: (gain, interval) for label, gain, interval, _ in gap_rows(RESULTS)}
    demo = next(row for row in json.loads((RESULTS / "tasks_demo.json").read_text())["rows"]
                if row["task"] == "low_dose")
    recorded = demo["ldm_minus"][demo["filtered_baseline"]]
    assert rows["LDM, demo (128 slices)"] == (recorded["mean"], (recorded["low"], recorded["high"]))
    assert rows["OSEM of the full-dose data"][0] > rows["image CNN, 5,000 slices (best step)"][0] > 0
    for name, suffix in (("ldm_latent_low_dose_warps15", ""), ("ldm_latent_low_dose_warps15_wide", ", width 64")):
        for row in json.loads((RESULTS / f"{name}.json").read_text())["rows"]:
            gain = row["gain_db"]
            label = f"LDM, 500 + 15 warps each, long training, factor {row['latent_factor']}{suffix}"
            assert rows[label] == (gain["mean"], (gain["low"], gain["high"]))
    assert main(["--out", str(tmp_path / "gap.png")]) == 0
    assert (tmp_path / "gap.png").stat().st_size > 10_000
    with pytest.raises(FileNotFoundError, match="tasks_demo.json is missing"):
        gap_rows(tmp_path)
