"""``allpet train`` and ``allpet sample``: checkpoints, logs, exact resume, bad configs, and sampling of simulator
folders with the physics prior and the unmixing prior."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

from ldm.experiment import config_to_dict
from ldm.presets import load_config
from ldm.training_data import build_training_data
from tasks.cli import sample as cli_sample
from tasks.cli import train as cli
from tests.helpers import one_error_line, TINY_OVERRIDES, assert_same_tensors, load_safetensors


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 4-step tiny run of the real SinogramLDM through ``allpet train``."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    assert cli.main(["--config", "tiny", "--no-progress", f"train.out_dir={out}", *TINY_OVERRIDES]) == 0
    return out


def test_cli_train_writes_checkpoints_and_logs(tiny_run):
    assert sorted(path.name for path in (tiny_run / "checkpoints").iterdir()) == ["step_00000002", "step_00000004"]
    for name in ("model.safetensors", "ema.safetensors", "state.pt", "config.yaml"):
        assert (tiny_run / "checkpoints" / "step_00000004" / name).is_file()
    with open(tiny_run / "log_diffusion.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["step"] for row in rows] == ["3", "4"] and all(np.isfinite(float(row["loss"])) for row in rows)
    saved = yaml.safe_load((tiny_run / "config.yaml").read_text())
    assert saved["train"]["batch_size"] == 2 and saved["data"]["n_bins"] == 16


def test_cli_train_resume_after_kill_is_bit_identical(tiny_run, tmp_path):
    out = tmp_path / "run"
    args = ["--config", "tiny", "--no-progress", f"train.out_dir={out}", *TINY_OVERRIDES]
    assert cli.main(args + ["--max-steps", "3"]) == 0  # "killed" after step 3; newest checkpoint: step 2
    assert cli.main(args) == 2  # refuses to overwrite a run without --resume
    assert cli.main(args + ["--resume"]) == 0
    for name in ("model.safetensors", "ema.safetensors"):
        assert_same_tensors(load_safetensors(out / "checkpoints" / "step_00000004" / name),
                          load_safetensors(tiny_run / "checkpoints" / "step_00000004" / name))
    changed = args + ["--resume", "model.denoiser.base_channels=16"]
    assert cli.main(changed) == 2


def test_cli_train_print_config_and_errors(capsys, tmp_path):
    assert cli.main(["--config", "tiny", "--print-config", "train.batch_size=3"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["train"]["batch_size"] == 3
    assert cli.main(["--config", "tiny", "train.batch_sise=3"]) == 2
    assert "train.batch_sise" in capsys.readouterr().err
    assert cli.main(["--config", "nonexistent"]) == 2
    missing = tmp_path / "missing"
    assert cli.main(["--config", "tiny", "data.source=folder", f"data.path={missing}",
                     f"train.out_dir={tmp_path / 'run'}"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_sample_writes_sinograms_and_images(tiny_run, tmp_path):
    config = load_config("tiny", TINY_OVERRIDES)
    data = build_training_data(config.data, config.train.seed)
    batch = data.collate_fn([data.dataset[i] for i in range(3)])
    arrays = {key: value[:, 0].numpy() for key, value in batch.items() if key != "target"}
    np.savez(tmp_path / "inputs.npz", **arrays)
    out = tmp_path / "samples"
    assert cli_sample.main(["--checkpoint", str(tiny_run), "--input", str(tmp_path / "inputs.npz"), "--out", str(out),
                            "--steps", "2", "--batch-size", "2", "--recon", "fbp", "--threads", "1"]) == 0
    with np.load(out / "samples.npz") as result:
        sinograms, images = result["sinogram"], result["image"]
    assert sinograms.shape == (3, 16, 16) and images.shape == (3, 16, 16)
    assert np.all(np.isfinite(sinograms)) and np.all(np.isfinite(images))
    known = arrays["mask"] != 0
    assert np.array_equal(sinograms[known], arrays["known"][known])  # measured rays are kept exactly
    record = json.loads((out / "sampling.json").read_text())
    assert record["n_samples"] == 3 and record["weights"] == "ema"
    np.savez(tmp_path / "bad.npz", mask=arrays["mask"])
    assert cli_sample.main(["--checkpoint", str(tiny_run), "--input", str(tmp_path / "bad.npz"),
                            "--out", str(out), "--steps", "1"]) == 2  # the model needs 'input'
    assert cli_sample.main(["--checkpoint", str(tmp_path), "--input", str(tmp_path / "inputs.npz"),
                            "--out", str(out)]) == 2  # no checkpoint there


def _train_and_sample_on_a_folder(tmp_path, task: str, *settings: str, recon: str = "osem") -> tuple:
    """``allpet train`` (tiny) on a 2-sample ``allpet simulate`` folder of ``task``, then ``allpet sample`` on it."""
    from pet_projection.simulation import SimulationConfig, write_dataset

    folder, run, out = tmp_path / task, tmp_path / "run", tmp_path / "samples"
    write_dataset(folder, task, 2, SimulationConfig(size=16, n_views=12), seed=0, progress=False)
    overrides = [o for o in TINY_OVERRIDES if not o.startswith(("data.n_views", "data.n_bases"))]
    assert cli.main(["--config", "tiny", "--no-progress", f"train.out_dir={run}", *overrides, "data.n_views=12",
                     "data.source=folder", "data.task=paired", f"data.path={folder}", *settings]) == 0
    assert cli_sample.main(["--checkpoint", str(run), "--input", str(folder), "--out", str(out), "--steps", "2",
                            "--threads", "1", "--recon", recon]) == 0
    with np.load(out / "samples.npz") as result:
        return run, out, dict(result)


def test_cli_train_and_sample_on_the_physics_prior_of_a_simulated_folder(tmp_path, capsys):
    run, out, result = _train_and_sample_on_a_folder(tmp_path, "low_dose", "data.model_input=physics_prior",
                                                     "model.mode=bridge", "model.prediction_type=sample",
                                                     "model.residual_decode=true")
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["model_input"] == "physics_prior"
    assert result["sinogram"].shape == (2, 12, 16) and np.all(np.isfinite(result["sinogram"]))
    assert result["image"].shape == (2, 16, 16)
    capsys.readouterr()
    np.savez(tmp_path / "inputs.npz", input=np.ones((1, 12, 16), np.float32))
    assert cli_sample.main(["--checkpoint", str(run), "--input", str(tmp_path / "inputs.npz"), "--out", str(out),
                            "--steps", "1", "--threads", "1", "--overwrite"]) == 0
    assert "physics_prior" in capsys.readouterr().err  # warned: such inputs must hold the prior themselves


def test_cli_train_and_sample_on_a_tracer_separation_folder(tmp_path):
    from pet_projection.simulation import TRACERS

    _, _, result = _train_and_sample_on_a_folder(tmp_path, "tracer_separation", f"model.n_tracers={len(TRACERS)}",
                                                 recon="none")
    assert result["sinogram"].shape == (4, 12, 16) and np.all(np.isfinite(result["sinogram"]))
    np.testing.assert_array_equal(result["tracer"], [list(TRACERS).index(name) for name in ("fdg", "met")] * 2)



def test_cli_sample_refuses_a_folder_of_another_task_or_image_size(tmp_path, capsys):
    from pet_projection.simulation import TRACERS, SimulationConfig, write_dataset

    run, out, _ = _train_and_sample_on_a_folder(tmp_path, "tracer_separation", f"model.n_tracers={len(TRACERS)}",
                                                recon="none")
    before = (out / "samples.npz").read_bytes()
    write_dataset(tmp_path / "low_dose", "low_dose", 1, SimulationConfig(size=16, n_views=12), seed=0, progress=False)
    write_dataset(tmp_path / "large", "tracer_separation", 1, SimulationConfig(size=32, n_views=12), seed=0,
                  progress=False)
    capsys.readouterr()
    for folder, words in (("low_dose", ("tracer_separation", "low_dose")), ("large", ("16 x 16", "32 x 32"))):
        assert cli_sample.main(["--checkpoint", str(run), "--input", str(tmp_path / folder), "--out", str(out),
                                "--steps", "1", "--overwrite"]) == 2
        one_error_line(capsys, *words)
    assert (out / "samples.npz").read_bytes() == before


def test_cli_train_and_sample_on_the_unmixing_prior_of_a_tracer_separation_folder(tmp_path, capsys):
    from pet_projection.simulation import TRACERS

    run, out, result = _train_and_sample_on_a_folder(
        tmp_path, "tracer_separation", f"model.n_tracers={len(TRACERS)}", "data.model_input=unmixing",
        "model.mode=bridge", "model.prediction_type=sample", "model.residual_decode=true",
        "model.autoencode_inputs=true", recon="none")
    weights = np.load(run / "unmixing_weights.npy")
    assert weights.shape == (2, 12, 16) and result["sinogram"].shape == (4, 12, 16)
    checkpoint = next((run / "checkpoints").iterdir())  # a checkpoint folder finds its run's weights
    assert cli_sample.main(["--checkpoint", str(checkpoint), "--input", str(tmp_path / "tracer_separation"),
                            "--out", str(out), "--steps", "2", "--threads", "1", "--recon", "none",
                            "--overwrite"]) == 0
    with np.load(out / "samples.npz") as again:
        np.testing.assert_array_equal(again["sinogram"], result["sinogram"])
    (run / "unmixing_weights.npy").unlink()
    capsys.readouterr()
    assert cli_sample.main(["--checkpoint", str(run), "--input", str(tmp_path / "tracer_separation"),
                            "--out", str(out), "--steps", "2", "--threads", "1", "--overwrite"]) == 2
    assert "unmixing_weights.npy" in capsys.readouterr().err


def test_resuming_a_run_saved_before_new_config_keys(tmp_path):
    config = load_config("tiny", TINY_OVERRIDES)
    plain = config_to_dict(config)
    older = {**plain, "data": {k: v for k, v in plain["data"].items() if not k.startswith(("model_input", "prior_"))}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(older))
    cli._check_resumable(tmp_path / "config.yaml", plain)  # the missing keys compare at their defaults
    changed = config_to_dict(load_config("tiny", TINY_OVERRIDES + ["data.n_bases=5"]))
    with pytest.raises(ValueError, match="data.n_bases"):
        cli._check_resumable(tmp_path / "config.yaml", changed)


# --- careless and hostile input (issue 32): checks before long work, clear one-line errors, nothing overwritten ---

def _inputs(tmp_path, shape=(3, 16, 16), **extra) -> str:
    """A ``.npz`` of inpainting inputs (the tiny run's task) of ``shape`` ``(N, V, R)``."""
    rng = np.random.default_rng(0)
    mask = (rng.random(shape) > 0.5).astype(np.float32)
    full = rng.random(shape).astype(np.float32)
    path = tmp_path / f"inputs_{'x'.join(map(str, shape))}.npz"
    np.savez(path, **{"input": full * mask, "known": full * mask, "mask": mask, **extra})
    return str(path)



def _run_copy(tiny_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    return copy, copy / "checkpoints" / "step_00000004"


def test_cli_sample_refuses_inputs_of_another_geometry(tiny_run, tmp_path, capsys):
    out = tmp_path / "samples"
    for shape, word in (((2, 12, 16), "n_views"), ((2, 16, 24), "n_bins")):
        assert cli_sample.main(["--checkpoint", str(tiny_run), "--input", _inputs(tmp_path, shape), "--out", str(out),
                                "--steps", "1"]) == 2
        one_error_line(capsys, f"({shape[1]}, {shape[2]})", "(16, 16)", word)
    assert not out.exists()


def test_cli_sample_refuses_a_simulated_folder_for_an_inpainting_model(tiny_run, tmp_path, capsys):
    from pet_projection.simulation import SimulationConfig, write_dataset

    out = tmp_path / "samples"
    write_dataset(tmp_path / "low_dose", "low_dose", 1, SimulationConfig(size=16, n_views=16), seed=0, progress=False)
    assert cli_sample.main(["--checkpoint", str(tiny_run), "--input", str(tmp_path / "low_dose"), "--out", str(out),
                            "--steps", "1"]) == 2  # the tiny run is an inpainting model
    one_error_line(capsys, "inpainting", "low_dose")
    assert not out.exists()


def test_cli_sample_needs_the_inputs_of_its_task(tiny_run, tmp_path, capsys):
    np.savez(tmp_path / "paired.npz", input=np.ones((2, 16, 16), np.float32))
    assert cli_sample.main(["--checkpoint", str(tiny_run), "--input", str(tmp_path / "paired.npz"),
                            "--out", str(tmp_path / "samples"), "--steps", "1"]) == 2
    one_error_line(capsys, "inpainting", "mask")


def test_cli_sample_refuses_zero_samples(tiny_run, tmp_path, capsys):
    assert cli_sample.main(["--checkpoint", str(tiny_run), "--input", _inputs(tmp_path, (0, 16, 16)),
                            "--out", str(tmp_path / "samples"), "--steps", "1"]) == 2
    one_error_line(capsys, "no samples")
    assert not (tmp_path / "samples").exists()


def test_cli_sample_keeps_earlier_samples_unless_told(tiny_run, tmp_path, capsys):
    out = tmp_path / "samples"
    args = ["--checkpoint", str(tiny_run), "--input", _inputs(tmp_path), "--out", str(out), "--steps", "1"]
    assert cli_sample.main(args) == 0
    before = {name: (out / name).read_bytes() for name in ("samples.npz", "sampling.json")}
    capsys.readouterr()
    assert cli_sample.main(args + ["--seed", "5"]) == 2
    one_error_line(capsys, str(out / "samples.npz"), "--overwrite")
    assert {name: (out / name).read_bytes() for name in before} == before
    assert cli_sample.main(args + ["--seed", "5", "--overwrite"]) == 0
    assert (out / "samples.npz").read_bytes() != before["samples.npz"]
    assert sorted(path.name for path in out.iterdir()) == ["samples.npz", "sampling.json"]  # no temporary files


def test_cli_sample_checks_its_output_folder_before_sampling(tiny_run, tmp_path, capsys, read_only, monkeypatch):
    import ldm.sampling

    def never(*args, **kwargs):
        raise AssertionError("sampled although the output cannot be written")

    monkeypatch.setattr(ldm.sampling, "sample", never)
    (tmp_path / "a_file").write_text("")
    for out in (tmp_path / "a_file", tmp_path / "a_file" / "below"):
        assert cli_sample.main(["--checkpoint", str(tiny_run), "--input", _inputs(tmp_path), "--out", str(out),
                                "--steps", "1"]) == 2
        one_error_line(capsys, str(tmp_path / "a_file"))
    (tmp_path / "locked").mkdir()
    locked = read_only(tmp_path / "locked")
    assert cli_sample.main(["--checkpoint", str(tiny_run), "--input", _inputs(tmp_path), "--out", str(locked),
                            "--steps", "1"]) == 2
    line = one_error_line(capsys, str(locked))
    assert ".tmp" not in line


@pytest.mark.parametrize("name, damage", [("ema.safetensors", "truncate"), ("ema.safetensors", "empty"),
                                          ("model.safetensors", "truncate"), ("config.yaml", "yaml"),
                                          ("config.yaml", "list"), ("config.yaml", "binary")])
def test_cli_sample_names_a_broken_checkpoint_file(tiny_run, tmp_path, capsys, name, damage):
    _, checkpoint = _run_copy(tiny_run, tmp_path)
    path = checkpoint / name
    data = path.read_bytes()
    path.write_bytes({"truncate": data[:len(data) // 2], "empty": b"", "yaml": b"model: {autoencoder: [",
                      "list": b"- 1\n- 2\n", "binary": b"\xff\xfe\x00garbage"}[damage])
    weights = ["--raw-weights"] if name == "model.safetensors" else []
    assert cli_sample.main(["--checkpoint", str(checkpoint), "--input", _inputs(tmp_path), "--out",
                            str(tmp_path / "samples"), "--steps", "1", *weights]) == 2
    one_error_line(capsys, str(path))
    assert not (tmp_path / "samples").exists()


def test_cli_train_resume_falls_back_to_the_newest_checkpoint_that_loads(tiny_run, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--config", "tiny", "--no-progress", f"train.out_dir={out}", *TINY_OVERRIDES]
    assert cli.main(args) == 0  # checkpoints at steps 2 and 4
    newest = out / "checkpoints" / "step_00000004" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])  # a crash or a full disk after the rename
    capsys.readouterr()
    assert cli.main(args + ["--resume"]) == 0
    err = capsys.readouterr().err
    assert "step_00000004" in err and "model.safetensors" in err and "step_00000002" in err
    for name in ("model.safetensors", "ema.safetensors"):  # steps 3 and 4 again, as in an uninterrupted run
        assert_same_tensors(load_safetensors(out / "checkpoints" / "step_00000004" / name),
                            load_safetensors(tiny_run / "checkpoints" / "step_00000004" / name))


@pytest.mark.parametrize("damage", ["empty state", "all broken"])
def test_cli_train_resume_with_broken_checkpoints_is_a_clear_error(tiny_run, tmp_path, capsys, damage):
    copy, _ = _run_copy(tiny_run, tmp_path)
    folders = sorted((copy / "checkpoints").iterdir())
    for folder in folders if damage == "all broken" else folders[-1:]:
        (folder / "state.pt").write_bytes(b"")
    args = ["--config", "tiny", "--no-progress", f"train.out_dir={copy}", *TINY_OVERRIDES, "--resume"]
    if damage == "empty state":
        assert cli.main(args) == 0
        assert "state.pt" in capsys.readouterr().err
        return
    before = {path: path.read_bytes() for path in copy.rglob("*") if path.is_file()}
    assert cli.main(args) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after a line per checkpoint skipped
    assert last.startswith("allpet train: ") and "no checkpoint" in last and str(copy) in last
    assert {path: path.read_bytes() for path in copy.rglob("*") if path.is_file()} == before


@pytest.mark.parametrize("change", ["train.batch_size=4", "train.seed=1", "train.stages.diffusion.steps=3",
                                    "train.stages.autoencoder.lr=0.01", "train.precision=bf16"])
def test_cli_train_resume_refuses_train_settings_that_change_the_run(tiny_run, tmp_path, capsys, monkeypatch, change):
    import ldm.training_data

    def never(*args, **kwargs):
        raise AssertionError("built the training data before checking the config")

    copy, _ = _run_copy(tiny_run, tmp_path)
    monkeypatch.setattr(ldm.training_data, "build_training_data", never)
    assert cli.main(["--config", "tiny", "--no-progress", f"train.out_dir={copy}", *TINY_OVERRIDES, change,
                     "--resume"]) == 2
    one_error_line(capsys, "cannot resume", change.split("=")[0])


def test_cli_train_resume_allows_settings_that_keep_the_run(tiny_run, tmp_path):
    copy, _ = _run_copy(tiny_run, tmp_path)
    assert cli.main(["--config", "tiny", "--no-progress", f"train.out_dir={copy}", *TINY_OVERRIDES,
                     "train.log_every=2", "train.keep_checkpoints=3", "train.checkpoint_every=1", "--resume"]) == 0


def test_cli_train_refuses_an_output_folder_it_cannot_write(tmp_path, capsys, read_only, monkeypatch):
    import ldm.training_data

    def never(*args, **kwargs):
        raise AssertionError("built the training data before checking the output folder")

    monkeypatch.setattr(ldm.training_data, "build_training_data", never)
    (tmp_path / "a_file").write_text("")
    (tmp_path / "locked").mkdir()
    for out in (tmp_path / "a_file", tmp_path / "a_file" / "run", read_only(tmp_path / "locked"),
                tmp_path / "locked" / "run"):
        assert cli.main(["--config", "tiny", "--no-progress", f"train.out_dir={out}", *TINY_OVERRIDES]) == 2
        one_error_line(capsys, str(out))


@pytest.mark.parametrize("text", [b"model: {autoencoder: [", b"- 1\n- 2\n", b"\xff\xfe\x00garbage", b"base: 7\n"])
def test_cli_train_names_a_broken_config_file(tmp_path, capsys, text):
    path = tmp_path / "broken.yaml"
    path.write_bytes(text)
    assert cli.main(["--config", str(path), f"train.out_dir={tmp_path / 'run'}"]) == 2
    one_error_line(capsys, str(path))
