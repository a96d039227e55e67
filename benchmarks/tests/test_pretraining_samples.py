"""benchmarks.pretraining_samples: the replay of a pretraining lineage's data order counts what the denoiser saw."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("diffusers")

TINY = ["data.n_bases=4", "data.image_size=16", "data.n_views=16", "data.n_bins=16", "data.window_views=[16]",
        "data.window_bins=[16]", "data.cells_per_side=4", "data.n_active=[1,4]", "data.shape_fraction=0.0",
        "model.autoencoder.base_channels=8", "model.autoencoder.norm_groups=4", "model.denoiser.base_channels=16",
        "model.denoiser.norm_groups=4", "train.batch_size=4", "train.cpu_threads=1"]


def test_replay_counts_the_diffusion_items_of_every_run_of_the_lineage(tmp_path):
    from benchmarks import pretraining_samples
    from ldm.checkpoints import CONFIG_FILE, find_checkpoint, read_run_config
    from ldm.training_data import build_training_data
    from tasks.cli import main as allpet

    first, second = tmp_path / "first", tmp_path / "second"
    assert allpet(["pretrain", "--out", str(first), "--no-progress", *TINY, "train.stages.autoencoder.steps=1",
                   "train.stages.diffusion.steps=3"]) == 0
    assert allpet(["pretrain", "--out", str(second), "--no-progress", *TINY, f"train.init_from={first}",
                   "train.stages.autoencoder.steps=0", "train.stages.diffusion.steps=2", "train.seed=1",
                   "data.layout=every"]) == 0
    out = tmp_path / "counts"
    assert pretraining_samples.main([str(second), "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    runs = report["runs"]
    assert [row["run"] for row in runs] == [str(first), str(second)]
    assert [row["layout"] for row in runs] == ["enumerated", "every"]
    assert [row["items"] for row in runs] == [12, 8]  # diffusion steps x batch 4; the autoencoder's batch left out
    for row in [*runs, report["total"]]:
        assert row["synthesis"] + row["inpainting"] == row["items"] and 0 < row["distinct"] <= row["inpainting"]
    # the first run's replayed items are the sampler's batches 1..3 of its dataset (batch 0 went to the autoencoder)
    config = read_run_config(find_checkpoint(first) / CONFIG_FILE)
    data = build_training_data(config.data, config.train.seed, cache_dir=first)
    from ldm.batch_order import EpochBatchSampler

    order = EpochBatchSampler(len(data.dataset), 4, seed=config.train.seed).epoch_order(0)
    items = [data.dataset[int(i)] for i in order[4:16]]
    synthesis = sum(int(data.collate_fn.roles(items[k:k + 4])[0].sum()) for k in (0, 4, 8))
    assert runs[0]["synthesis"] == synthesis


def test_a_folder_without_checkpoints_is_refused_in_one_line(tmp_path, capsys):
    from benchmarks import pretraining_samples

    with pytest.raises(SystemExit):
        pretraining_samples.main([str(tmp_path), "--out", str(tmp_path / "counts")])
    assert f"{tmp_path} has no checkpoint: not a training run" in capsys.readouterr().err
    assert not (tmp_path / "counts.json").exists()
