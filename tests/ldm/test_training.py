"""LDM training: configs, data order, Trainer (EMA, checkpoints, exact resume, DDP), and the train/sample CLIs."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn

from ldm.batch_order import EpochBatchSampler
from ldm.checkpoints import find_checkpoint
from ldm.experiment import DataConfig, StageConfig, TrainConfig, config_from_dict, config_to_dict
from ldm.folder_datasets import PairedFolderDataset
from ldm.phantoms import ellipse_phantoms
from ldm.presets import load_config
from ldm.runtime import set_cpu_threads
from ldm.trainer import Trainer, lr_factor
from ldm.training_data import build_training_data, data_projector
from tests.helpers import TINY_OVERRIDES, assert_same_tensors, load_safetensors



@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One thread (torch and Numba): faster on the shared 2-core machine, and the same reductions in every run."""
    import numba

    threads = torch.get_num_threads(), numba.get_num_threads()
    set_cpu_threads(1)
    yield
    torch.set_num_threads(threads[0])
    numba.set_num_threads(threads[1])


# ------------------------------------------------------------------------------------------- stand-in model

class StandIn(nn.Module):
    """Two stages of two linear layers on 4x4 'sinograms'; with ``noisy``, the loss draws torch noise."""

    stages = ("first", "second")

    def __init__(self, noisy: bool = True, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.noisy = noisy
        self.a = nn.Linear(16, 8, dtype=dtype)
        self.b = nn.Linear(8, 16, dtype=dtype)

    def parameters_for(self, stage: str) -> list[nn.Parameter]:
        return list((self.a if stage == "first" else self.b).parameters())

    def loss(self, batch: dict, stage: str) -> dict:
        x = batch["target"].flatten(1).to(self.a.weight.dtype)
        if self.noisy:
            x = x + 0.1 * torch.randn_like(x)
        error = (self.b(torch.tanh(self.a(x))) - x).square().mean()
        return {"loss": error, "mse": error.detach()}


class EpochData(torch.utils.data.Dataset):
    """12 random 'sinograms' whose values also depend on the epoch (so set_epoch must be called right)."""

    def __init__(self, n: int = 12) -> None:
        self.base = torch.from_numpy(np.random.default_rng(3).random((n, 1, 4, 4), dtype=np.float32))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        return {"target": self.base[index] + 0.01 * self.epoch}


def _train_config(out_dir: Path, **changes) -> TrainConfig:
    settings = dict(stages={"first": StageConfig(steps=5, lr=1e-2, warmup_steps=2),
                            "second": StageConfig(steps=5, lr=1e-2)},
                    batch_size=4, checkpoint_every=2, log_every=1, ema_decay=0.9, out_dir=str(out_dir),
                    grad_clip_norm=0.5)
    settings.update(changes)
    return TrainConfig(**settings)


def _trainer(out_dir: Path, **changes) -> Trainer:
    torch.manual_seed(0)
    return Trainer(StandIn(), _train_config(out_dir, **changes), EpochData(), progress=False)


def _log_rows(out_dir: Path) -> list[dict]:
    rows = []
    for stage in StandIn.stages:
        if not (out_dir / f"log_{stage}.csv").is_file():
            continue
        with open(out_dir / f"log_{stage}.csv", newline="") as stream:
            rows += [{key: row[key] for key in ("step", "epoch", "lr", "loss", "mse")}
                     for row in csv.DictReader(stream)]
    return rows


# ------------------------------------------------------------------------------------------- configs

def test_presets_load_and_round_trip():
    for name in ("tiny", "paper"):
        config = load_config(name)
        assert config_from_dict(config_to_dict(config)) == config
    paper = load_config("paper")
    assert min(paper.data.n_views, paper.data.n_bins) >= 256  # issue 8: paper scale is 256 x 256 or larger
    assert paper.train.precision == "bf16" and paper.train.gradient_checkpointing


def test_gradient_checkpointing_reaches_model_config():
    config = load_config("tiny", ["train.gradient_checkpointing=true"])
    model = config.model_config()
    assert model.autoencoder.gradient_checkpointing and model.denoiser.gradient_checkpointing
    assert not config.model.autoencoder.gradient_checkpointing  # the config itself is unchanged


@pytest.mark.parametrize("override, error, words", [
    ("train.batch_sise=4", ValueError, ["train.batch_sise", "batch_size"]),
    ("model.denoiser.base_chanels=8", ValueError, ["model.denoiser.base_chanels", "base_channels"]),
    ("bogus.key=1", ValueError, ["bogus"]),
    ("train.stages.difusion.steps=3", ValueError, ["difusion"]),
    ("train.precision=fp8", ValueError, ["train.precision", "fp8"]),
    ("train.batch_size=two", TypeError, ["train.batch_size"]),
    ("train.batch_size=0", ValueError, ["batch_size"]),
    ("train.stages.diffusion.lr=-1", ValueError, ["lr"]),
    ("data.task=paired", ValueError, ["paired", "folder"]),
    ("data.n_active=[1]", ValueError, ["data.n_active"]),
    ("data.layout=spiral", ValueError, ["layout", "spiral", "clustered"]),
    ("model.autoencoder.channel_mults=[1]", ValueError, ["channel_mults"]),
    ("model.autoencoder.gradient_checkpointing=true", ValueError, ["train.gradient_checkpointing"]),
    ("train=3", TypeError, ["train"]),
    ("data.task=unconditional", ValueError, ["model.condition_on_input"]),
    ("data.model_input=prior", ValueError, ["model_input", "physics_prior"]),
    ("data.model_input=physics_prior", ValueError, ["physics_prior", "paired"]),
    ("data.prior_osem=[4]", ValueError, ["data.prior_osem"]),
    ("data.prior_osem=[4, 0]", ValueError, ["prior_osem"]),
])
def test_bad_configs_name_the_key(override, error, words):
    with pytest.raises(error) as raised:
        load_config("tiny", [override])
    for word in words:
        assert word in str(raised.value)


def test_dmm_layout_reaches_the_dataset():
    config = load_config("tiny", TINY_OVERRIDES + ["data.layout=clustered"])
    data = build_training_data(config.data, config.train.seed)
    assert data.dataset.layout == "clustered" and "clustered layout" in data.description


def test_yaml_file_with_base_and_float_strings(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("base: tiny\ntrain:\n  stages:\n    diffusion: {steps: 7, lr: 3e-4}\n  batch_size: 4\n")
    config = load_config(path)
    assert config.train.stages["diffusion"].lr == 3e-4  # PyYAML reads 3e-4 as a string
    assert config.train.stages["diffusion"].steps == 7 and config.train.batch_size == 4
    assert config.train.stages["autoencoder"] == load_config("tiny").train.stages["autoencoder"]
    with pytest.raises(ValueError, match="neither a preset"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(TypeError, match="mapping"):
        load_config(tmp_path / "list.yaml")


def test_lr_schedule_warmup_and_cosine():
    stage = StageConfig(steps=10, lr=1.0, warmup_steps=4, min_lr_ratio=0.1)
    assert [lr_factor(step, stage) for step in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, stage) == 1.0 and lr_factor(10, stage) == pytest.approx(0.1)
    assert lr_factor(7, stage) == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the cosine


# ------------------------------------------------------------------------------------------- data order

@given(n=st.integers(1, 40), share=st.integers(1, 5), world=st.integers(1, 4), seed=st.integers(0, 2**32),
       epoch=st.integers(0, 50), data=st.data())
def test_epoch_batches_shard_and_resume(n, share, world, seed, epoch, data):
    batch = share * world
    assume(batch <= n)
    samplers = [EpochBatchSampler(n, batch, seed=seed, rank=r, world_size=world) for r in range(world)]
    order = samplers[0].epoch_order(epoch)
    assert sorted(order.tolist()) == list(range(n))
    assert np.array_equal(order, EpochBatchSampler(n, batch, seed=seed).epoch_order(epoch))
    start = data.draw(st.integers(0, n // batch - 1))
    for sampler in samplers:
        sampler.set_position(epoch, start)
    per_rank = [list(sampler) for sampler in samplers]
    assert all(len(batches) == n // batch - start for batches in per_rank)
    for index, parts in enumerate(zip(*per_rank)):  # the ranks' parts, concatenated, are the global batch
        global_index = start + index
        assert sum(parts, []) == order[global_index * batch:(global_index + 1) * batch].tolist()


def test_epoch_batches_differ_between_epochs_and_seeds():
    sampler = EpochBatchSampler(50, 5, seed=1)
    assert not np.array_equal(sampler.epoch_order(0), sampler.epoch_order(1))
    assert not np.array_equal(sampler.epoch_order(0), EpochBatchSampler(50, 5, seed=2).epoch_order(0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_samples=10, batch_size=3, world_size=2), "multiple"),
    (dict(n_samples=4, batch_size=8), "exceeds"),
    (dict(n_samples=10, batch_size=2, rank=2, world_size=2), "rank"),
    (dict(n_samples=0, batch_size=1), "n_samples"),
])
def test_epoch_batch_sampler_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EpochBatchSampler(**kwargs)


# ------------------------------------------------------------------------------------------- datasets

def test_ellipse_rmas_batches_in_model_format():
    config = DataConfig(image_size=16, n_views=12, n_bins=20, n_bases=3, cells_per_side=4)
    data = build_training_data(config, seed=5)
    phantoms = ellipse_phantoms(data_projector(config), 3, config.seed)
    items = [data.dataset[i] for i in range(4)]
    batch = data.collate_fn(items)
    assert set(batch) == {"target", "input", "known", "mask", "attention", "support"}
    for key in batch:
        assert batch[key].shape == (4, 1, 12, 20) and batch[key].dtype == torch.float32
    for i, item in enumerate(items):
        base = int(item["base_index"])
        assert np.array_equal(batch["target"][i, 0].numpy(), phantoms.sinograms[base])
        assert np.array_equal(batch["support"][i, 0].numpy(), phantoms.support[base].astype(np.float32))
        assert torch.equal(batch["input"][i, 0], batch["target"][i, 0] * batch["mask"][i, 0])
    assert phantoms.attention.max() <= 1.0 and phantoms.attention.min() >= 0.0
    assert np.array_equal(ellipse_phantoms(data_projector(config), 3, config.seed).activity, phantoms.activity)
    unconditional = build_training_data(DataConfig(image_size=16, n_views=12, n_bins=20, n_bases=3,
                                                   task="unconditional"))
    assert set(unconditional.collate_fn([unconditional.dataset[0]])) == {"target", "attention", "support"}


def _write_folder(root: Path, n: int, shape=(8, 12), manifest: bool = True) -> None:
    root.mkdir()
    rng = np.random.default_rng(0)
    names = []
    for i in range(n):
        names.append(f"sample_{i:03d}.npz")
        np.savez(root / names[-1], input=rng.random(shape, dtype=np.float32),
                 target=rng.random((1,) + shape, dtype=np.float32), tracer=np.int64(i % 2), extra=np.zeros(3))
    if manifest:
        (root / "manifest.json").write_text(json.dumps({"samples": [{"file": name} for name in names[::-1]]}))


def test_paired_folder_dataset(tmp_path):
    _write_folder(tmp_path / "pairs", 3)
    folder = PairedFolderDataset(tmp_path / "pairs")
    assert len(folder) == 3 and folder.files[0].name == "sample_002.npz"  # the manifest's order
    item = folder[0]
    assert set(item) == {"input", "target", "tracer"} and item["target"].shape == (1, 8, 12)
    assert int(item["tracer"]) == 0
    config = DataConfig(source="folder", task="paired", path=str(tmp_path / "pairs"), n_views=8, n_bins=12)
    data = build_training_data(config)
    batch = data.collate_fn([data.dataset[i] for i in range(3)])
    assert batch["input"].shape == (3, 1, 8, 12) and batch["tracer"].tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="shape"):
        build_training_data(DataConfig(source="folder", task="paired", path=str(tmp_path / "pairs")))
    np.savez(tmp_path / "pairs" / "sample_001.npz", target=np.zeros((8, 12), np.float32))
    with pytest.raises(ValueError, match="sample_001.npz lacks arrays \\['input'\\]"):
        folder[1]
    with pytest.raises(ValueError, match="does not exist"):
        PairedFolderDataset(tmp_path / "nowhere")


def test_simulator_folder_is_read_with_its_reader(tmp_path):
    from pet_projection.masks import body_support
    from pet_projection.simulation import ANATOMIES, TRACERS, SimulatedDataset, SimulationConfig, write_dataset
    from pet_projection.simulation.acquisition import projector_from_description

    write_dataset(tmp_path / "low_dose", "low_dose", 2, SimulationConfig(size=16, n_views=12), seed=0,
                  progress=False)
    config = DataConfig(source="folder", task="paired", path=str(tmp_path / "low_dose"), n_views=12, n_bins=16)
    with pytest.raises(ValueError, match="data.attention 'segmentation' needs the segmentation"):
        build_training_data(config, labels=("tracer", "region"))  # what a user has is the tasks layer's to compute
    config = dataclasses.replace(config, attention="oracle")  # ldm alone: the simulator's lesion labels
    data = build_training_data(config, labels=("tracer", "region"))
    raw = SimulatedDataset(tmp_path / "low_dose")[1]
    item = data.dataset[1]
    factor = raw.metadata["dose_reduction_factor"]
    torch.testing.assert_close(item["input"][0], torch.from_numpy(raw.input * np.float32(factor)))
    assert torch.equal(item["target"][0], torch.from_numpy(raw.target))
    assert int(item["tracer"]) == list(TRACERS).index(raw.metadata["tracers"][0])
    assert int(item["region"]) == list(ANATOMIES).index(raw.metadata["anatomy"])
    assert 0.0 <= float(item["attention"].min()) and float(item["attention"].max()) <= 1.0
    assert set(np.unique(item["support"].numpy())) <= {0.0, 1.0} and float(item["support"].mean()) > 0.0
    assert not torch.any((item["support"] == 0) & (item["attention"] > 0))  # lesions lie inside the body
    # randoms and scatter reach rays that miss the body: the support keeps them (the sampler zeroes what is outside)
    projector = projector_from_description(raw.metadata["projector"])
    body = torch.from_numpy(np.asarray(body_support((raw.labels != 0).astype(np.float32), projector)))
    assert torch.any((item["target"][0] > 0) & ~body)
    assert not torch.any((item["support"] == 0) & (item["target"] > 0))


def test_simulator_folder_with_one_item_per_target_tracer(tmp_path):
    from pet_projection.simulation import TRACERS, SimulatedDataset, SimulationConfig, write_dataset

    write_dataset(tmp_path / "separation", "tracer_separation", 2, SimulationConfig(size=16, n_views=12), seed=0,
                  progress=False)
    config = DataConfig(source="folder", task="paired", path=str(tmp_path / "separation"), n_views=12, n_bins=16,
                        attention="oracle")
    data = build_training_data(config, labels=("tracer",))
    assert len(data.dataset) == 4
    raw = SimulatedDataset(tmp_path / "separation")[1]
    tracers = [list(TRACERS).index(name) for name in raw.metadata["tracers"]]
    assert len(set(tracers)) == 2
    for k in range(2):
        item = data.dataset[2 + k]  # targets innermost
        assert torch.equal(item["target"][0], torch.from_numpy(raw.target[k]))
        assert int(item["tracer"]) == tracers[k]
        torch.testing.assert_close(item["input"][0], torch.from_numpy(raw.input.astype(np.float32)))
    np.testing.assert_array_equal(data.dataset.targets()[2:], raw.target)
    with pytest.raises(ValueError, match="tracer label"):
        build_training_data(config)


def test_simulator_folder_with_the_unmixing_prior(tmp_path):
    from pet_projection.simulation import SimulatedDataset, SimulationConfig, write_dataset
    from ldm.folder_datasets import SimulatedTaskDataset
    from tasks.model_inputs import fit_unmixing_weights
    from tasks.baselines import LinearUnmixing

    write_dataset(tmp_path / "separation", "tracer_separation", 3, SimulationConfig(size=16, n_views=12), seed=0,
                  progress=False)
    config = DataConfig(source="folder", task="paired", path=str(tmp_path / "separation"), n_views=12, n_bins=16,
                        model_input="unmixing", attention="oracle")
    with pytest.raises(ValueError, match="fit of the unmixing weights"):
        build_training_data(config, labels=("tracer",))
    data = build_training_data(config, labels=("tracer",), fit_input_weights=fit_unmixing_weights)
    raw = [SimulatedDataset(tmp_path / "separation")[i] for i in range(3)]
    expected = LinearUnmixing().fit(np.stack([r.input for r in raw]), np.stack([r.target for r in raw])).weights
    np.testing.assert_allclose(data.input_weights, expected, rtol=1e-6)
    assert data.input_weights.shape == (2, 12, 16) and not np.allclose(data.input_weights[0], data.input_weights[1])
    for k in range(2):
        torch.testing.assert_close(data.dataset[2 + k]["input"][0],
                                   torch.from_numpy(data.input_weights[k] * raw[1].input.astype(np.float32)))
        assert torch.equal(data.dataset[2 + k]["target"][0], torch.from_numpy(raw[1].target[k]))
    with pytest.raises(ValueError, match="input_weights must have shape"):
        SimulatedTaskDataset(tmp_path / "separation", ("tracer",), input_weights=np.ones((3, 12, 16)))
    write_dataset(tmp_path / "low_dose", "low_dose", 1, SimulationConfig(size=16, n_views=12), progress=False)
    with pytest.raises(ValueError, match="several targets per sample"):
        fit_unmixing_weights(SimulatedTaskDataset(tmp_path / "low_dose"))


def test_simulator_folder_with_the_physics_prior_as_model_input(tmp_path):
    from pet_projection.simulation import SimulatedDataset, SimulationConfig, lesion_attention, write_dataset
    from tasks.model_inputs import folder_model_input
    from tasks.registry import get_task
    from tasks.task import sample_projector

    write_dataset(tmp_path / "low_dose", "low_dose", 2, SimulationConfig(size=16, n_views=12, n_lesions=(1, 1)), seed=0,
                  progress=False)
    config = DataConfig(source="folder", task="paired", path=str(tmp_path / "low_dose"), n_views=12, n_bins=16,
                        model_input="physics_prior", prior_fwhm_voxels=1.5, prior_osem=(3, 2), attention="oracle")
    with pytest.raises(ValueError, match="model-input function"):
        build_training_data(config)
    data = build_training_data(config, model_input=folder_model_input(config))
    raw = SimulatedDataset(tmp_path / "low_dose")[0]
    voxel_mm = float(sample_projector(raw).geometry.grid.voxel_size_mm[-1])
    attention_image, _ = lesion_attention(raw)
    expected = get_task("low_dose").physics_prior(raw, 1.5 * voxel_mm, 3, 2, np.clip(attention_image, 0.0, 1.0))
    item = data.dataset[0]
    torch.testing.assert_close(item["input"][0], torch.from_numpy(expected))
    measured = raw.input * np.float32(raw.metadata["dose_reduction_factor"])
    assert not np.allclose(expected, measured)  # the prior is not the measured input
    assert torch.equal(data.dataset[0]["input"], item["input"])  # kept after the first read
    np.savez(tmp_path / "pair.npz", input=measured, target=raw.target)
    with pytest.raises(ValueError, match="allpet simulate"):
        build_training_data(DataConfig(source="folder", task="paired", path=str(tmp_path), n_views=12, n_bins=16,
                                       model_input="physics_prior"))


# ------------------------------------------------------------------------------------------- Trainer

def test_ema_follows_diffusers_warmup_and_freezes_other_stages(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.start_stage("first")
    batches = trainer.batches()
    frozen = {key: value.clone() for key, value in trainer.model.b.state_dict().items()}
    live = []
    for _ in range(2):
        trainer.train_step(next(batches))
        live.append({key: value.clone() for key, value in trainer.model.a.state_dict().items()})
    ema = trainer.ema_state_dict()
    for key in ("weight", "bias"):
        # EMAModel's decay is 0 at the first update, then min(ema_decay, (1 + 1) / (10 + 1)) at the second
        expected = 2.0 / 11.0 * live[0][key] + 9.0 / 11.0 * live[1][key]
        torch.testing.assert_close(ema[f"a.{key}"], expected)
        assert not torch.equal(ema[f"a.{key}"], live[1][key])
        assert torch.equal(trainer.model.b.state_dict()[key], frozen[key])
        assert torch.equal(ema[f"b.{key}"], frozen[key])


def test_stage_end_copies_ema_into_model(tmp_path):
    trainer = _trainer(tmp_path, checkpoint_every=100)
    trainer.fit()
    stage_end = tmp_path / "checkpoints" / "step_00000005"
    model, ema = load_safetensors(stage_end / "model.safetensors"), load_safetensors(stage_end / "ema.safetensors")
    assert_same_tensors(model, ema)  # the finished stage's EMA is now the model's first layer
    assert torch.equal(trainer.model.a.weight.detach(), model["a.weight"])  # and stays frozen in stage 2
    final = find_checkpoint(tmp_path)
    model, ema = load_safetensors(final / "model.safetensors"), load_safetensors(final / "ema.safetensors")
    assert final.name == "step_00000010" and torch.equal(model["a.weight"], ema["a.weight"])
    assert not torch.equal(model["b.weight"], ema["b.weight"])  # the last stage keeps raw and EMA weights apart


@pytest.mark.parametrize("kill_after, newest", [(3, 2), (5, 5), (9, 8)])
def test_resume_after_kill_is_bit_identical(tmp_path, kill_after, newest):
    """Checkpoints (3 batches per epoch) at step 2: mid-epoch, mid-stage; 5: the stage's end; 8: second stage."""
    reference = _trainer(tmp_path / "reference")
    reference.fit()
    killed = _trainer(tmp_path / "run")
    killed.fit(max_steps=kill_after)  # then "killed": the object is dropped without saving
    del killed
    resumed = _trainer(tmp_path / "run")
    folder = resumed.resume()
    assert folder.name == f"step_{newest:08d}"
    resumed.fit()
    assert_same_tensors(resumed.model.state_dict(), reference.model.state_dict())
    assert resumed.dataset.epoch == reference.dataset.epoch == 3  # 10 steps of 3 batches per epoch
    last = "step_00000010"
    assert_same_tensors(load_safetensors(tmp_path / "run" / "checkpoints" / last / "ema.safetensors"),
                      load_safetensors(tmp_path / "reference" / "checkpoints" / last / "ema.safetensors"))
    assert _log_rows(tmp_path / "run") == _log_rows(tmp_path / "reference")  # also no duplicated rows
    assert len(_log_rows(tmp_path / "run")) == 10
    kept = sorted(path.name for path in (tmp_path / "run" / "checkpoints").iterdir())
    assert kept == ["step_00000008", last]  # keep_checkpoints = 2


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path)
    trainer.fit(max_steps=2)
    assert find_checkpoint(tmp_path).name == "step_00000002"

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        trainer.fit(max_steps=4)
    monkeypatch.undo()
    assert find_checkpoint(tmp_path).name == "step_00000002"  # the half-written step 4 has a temporary name
    assert any(path.name.startswith(".tmp-") for path in (tmp_path / "checkpoints").iterdir())
    resumed = _trainer(tmp_path)
    assert resumed.resume().name == "step_00000002" and resumed.state.step == 2
    resumed.fit(max_steps=4)
    assert not any(path.name.startswith(".tmp-") for path in (tmp_path / "checkpoints").iterdir())


@pytest.mark.parametrize("broken, damage", [("model.safetensors", "truncate"), ("ema.safetensors", "truncate"),
                                            ("state.pt", "empty"), ("state.pt", "truncate"), ("state.pt", "garbage")])
def test_resume_falls_back_past_a_broken_checkpoint(tmp_path, capsys, broken, damage):
    """A kill or a full disk that leaves the newest checkpoint's files broken costs the steps since the one before."""
    reference = _trainer(tmp_path / "reference")
    reference.fit()
    killed = _trainer(tmp_path / "run")
    killed.fit(max_steps=5)  # checkpoints at steps 2, 4 and 5 (the first stage's end); keep_checkpoints = 2
    path = tmp_path / "run" / "checkpoints" / "step_00000005" / broken
    data = path.read_bytes()
    path.write_bytes({"truncate": data[:len(data) // 2], "empty": b"", "garbage": b"not a checkpoint" * 8}[damage])
    resumed = _trainer(tmp_path / "run")
    assert resumed.resume().name == "step_00000004" and resumed.state.step == 4
    err = capsys.readouterr().err
    assert "step_00000005" in err and broken in err and "Traceback" not in err
    resumed.fit()
    assert_same_tensors(resumed.model.state_dict(), reference.model.state_dict())
    assert _log_rows(tmp_path / "run") == _log_rows(tmp_path / "reference")


def test_resume_without_a_checkpoint_that_loads_is_a_clear_error(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.fit(max_steps=4)
    for folder in (tmp_path / "checkpoints").iterdir():
        (folder / "ema.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match=r"no checkpoint in .* loads \(2 tried.*step_00000004.*ema.safetensors"):
        _trainer(tmp_path).resume()
    named = tmp_path / "checkpoints" / "step_00000004"
    with pytest.raises(ValueError, match=f"{named / 'ema.safetensors'}"):  # a checkpoint named by the user: no fallback
        _trainer(tmp_path).resume(named)
    with pytest.raises(ValueError, match="no checkpoint found"):
        _trainer(tmp_path).resume(tmp_path / "nowhere")


@pytest.mark.parametrize("name, content, match", [
    ("ema.safetensors", b"", "ema.safetensors is not a readable safetensors file"),
    ("model.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{}", "model.safetensors is not a readable"),
    ("state.pt", b"", "state.pt is empty or truncated"),
    ("state.pt", b"PK\x03\x04" + b"\x00" * 40, "state.pt is not a trainer state"),
    ("config.yaml", b"train: {batch_size: [", "config.yaml is not valid YAML"),
    ("config.yaml", b"\xff\xfe\x00", "config.yaml is not a YAML file"),
    ("config.yaml", b"- 1", "config.yaml must hold a mapping"),
    ("config.yaml", b"train: {batch_sise: 2}", "config.yaml: .*batch_sise"),
])
def test_checkpoint_readers_name_the_broken_file(tmp_path, name, content, match):
    from ldm.checkpoints import load_state, read_run_config, read_weights

    trainer = _trainer(tmp_path, stages={"first": StageConfig(steps=2)}, checkpoint_every=2)
    trainer.run_config = config_to_dict(load_config("tiny"))
    trainer.fit()
    folder = tmp_path / "checkpoints" / "step_00000002"
    (folder / name).write_bytes(content)
    read = {"ema.safetensors": lambda: read_weights(folder, ema=True),
            "model.safetensors": lambda: read_weights(folder, ema=False), "state.pt": lambda: load_state(folder),
            "config.yaml": lambda: read_run_config(folder / name)}[name]
    with pytest.raises((ValueError, TypeError), match=f"{folder}.*{match}" if ":" not in match else match) as error:
        read()
    assert "\n" not in str(error.value) and "weights_only=False" not in str(error.value)


def test_trainer_rejects_bad_setups(tmp_path):
    with pytest.raises(ValueError, match="stages"):
        Trainer(StandIn(), _train_config(tmp_path, stages={"third": StageConfig(steps=1)}), EpochData())
    with pytest.raises(TypeError, match="model must have 'stages'"):
        Trainer(nn.Linear(2, 2), _train_config(tmp_path), EpochData())
    with pytest.raises(ValueError, match="fp16"):
        Trainer(StandIn(), _train_config(tmp_path, precision="fp16"), EpochData())
    with pytest.raises(ValueError, match="exceeds"):
        Trainer(StandIn(), _train_config(tmp_path, batch_size=13), EpochData())
    trainer = _trainer(tmp_path)
    trainer.fit(max_steps=2)
    other = Trainer(StandIn(), _train_config(tmp_path, batch_size=6), EpochData(), progress=False)
    with pytest.raises(ValueError, match="batch size"):
        other.resume()


def test_bf16_autocast_trains(tmp_path):
    trainer = _trainer(tmp_path, precision="bf16")
    trainer.fit(max_steps=3)
    losses = [float(row["loss"]) for row in _log_rows(tmp_path)]
    assert len(losses) == 3 and all(np.isfinite(losses))
    reference = _trainer(tmp_path / "fp32", precision="fp32")  # the same run without autocast
    reference.fit(max_steps=3)
    exact = [float(row["loss"]) for row in _log_rows(tmp_path / "fp32")]
    # bf16 keeps 8 significant bits (relative rounding 2**-9 per operation): the same losses to about 1%, but
    # not bit for bit (the forward pass really ran in bf16); weights and optimiser stay float32
    np.testing.assert_allclose(losses, exact, rtol=1e-2)
    assert losses != exact
    assert all(param.dtype == torch.float32 for param in trainer.model.parameters())


# ------------------------------------------------------------------------------------------- DDP

def _gradients(trainer: Trainer) -> dict:
    trainer.start_stage("first")
    trainer.compute_gradients(next(trainer.batches()))
    return {key: param.grad.clone() for key, param in trainer.model.named_parameters() if param.grad is not None}


def _ddp_worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    set_cpu_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)
        trainer = Trainer(StandIn(noisy=False, dtype=torch.float64), _train_config(Path(out_dir)), EpochData(),
                          progress=False)
        torch.save(_gradients(trainer), Path(out_dir) / f"grads_{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    torch.manual_seed(0)
    single = _gradients(Trainer(StandIn(noisy=False, dtype=torch.float64), _train_config(tmp_path), EpochData(),
                                progress=False))
    assert set(single) == {"a.weight", "a.bias"}
    for rank in range(2):
        distributed = torch.load(tmp_path / f"grads_{rank}.pt")
        assert distributed.keys() == single.keys()
        for key in single:
            torch.testing.assert_close(distributed[key], single[key], rtol=1e-12, atol=1e-14)
    # the halves alone give other gradients: each process saw its own half of the batch
    half = Trainer(StandIn(noisy=False, dtype=torch.float64), _train_config(tmp_path, batch_size=2), EpochData(),
                   progress=False)
    torch.manual_seed(0)
    half.model.load_state_dict(StandIn(noisy=False, dtype=torch.float64).state_dict())
    assert not torch.allclose(_gradients(half)["a.weight"], single["a.weight"])
