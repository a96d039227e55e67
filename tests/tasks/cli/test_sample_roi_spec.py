"""``allpet sample --roi-spec``: clinician ROI edits change the attention a model is conditioned on, and its output.

The effect test trains the tiny preset briefly on a low-dose brain folder with the physics prior (so the attention
reaches the model twice: the TMA condition channel, and the image attention that the prior keeps unfiltered), then
samples the same inputs with and without a spec that up-weights one region. The spread it is compared with is the
sampler's seed-to-seed spread: the bridge sampler with eta = 0 draws fresh noise only at its first step, so one seed
gives the same output every time (tested), and the edit's effect at a fixed seed is the edit's alone, while two
seeds without an edit give the run-to-run spread. Measurements: docs/ldm-and-tasks.md ("ROI edits").
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import yaml

pytest.importorskip("torch")

from pet_projection.attention import AttentionRegions, RoiEditSpec, TransparentMedicalAttention, default_weight
from pet_projection.simulation import SimulationConfig, write_dataset
from pet_projection.simulation.acquisition import projector_from_description
from pet_projection.simulation.dataset_folder import SimulatedDataset
from tasks.attention_inputs import anatomy_table, spec_hash
from tasks.checkpoint_sampler import CheckpointSampler
from tasks.cli import sample as cli_sample
from tasks.cli import train as cli_train
from tests.helpers import one_error_line, TINY_OVERRIDES

SIZE, VIEWS = 32, 24
# long enough that the output follows the input (after 2 steps it is mostly the sampler's noise), short for a test
TRAIN_STEPS = 40
SAMPLE_ARGS = ["--steps", "8", "--eta", "0", "--threads", "1", "--no-progress"]


def _rays_of(sample, name: str) -> np.ndarray:
    """The rays that meet anatomical region ``name`` of ``sample`` (its lesions merged into their hosts, as the
    attention's regions have it): its TMA sinogram attention is positive there (bool)."""
    projector = projector_from_description(sample.metadata["projector"])
    regions = AttentionRegions({name: anatomy_table(sample).mask(name)}, {name: 1.0})
    return TransparentMedicalAttention(projector)(regions).sinogram > 0.0


def _region_to_edit(folder: pathlib.Path) -> tuple[str, list[np.ndarray]]:
    """A region of default weight 0 in every sample whose rays are 10-60 % of the sinogram (closest to 30 %)."""
    samples = list(SimulatedDataset(folder))
    choices = []
    for name in samples[0].names:
        if default_weight(name) or not all(s.region_table().mask(name).sum() >= 4 for s in samples):
            continue
        hits = [_rays_of(s, name) for s in samples]
        fractions = [hit.mean() for hit in hits]
        if 0.1 <= min(fractions) and max(fractions) <= 0.6:
            choices.append((abs(np.mean(fractions) - 0.3), name, hits))
    assert choices, "no region of the simulated brains meets part of the rays"
    _, name, hits = min(choices, key=lambda choice: choice[:2])
    return name, hits


@pytest.fixture(scope="module")
def prior_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pathlib.Path]:
    """A low-dose brain folder and a tiny bridge model trained on its physics prior."""
    root = tmp_path_factory.mktemp("roi_spec")
    folder, run = root / "brains", root / "run"
    write_dataset(folder, "low_dose", 2, SimulationConfig(size=SIZE, n_views=VIEWS, anatomy="brain"), seed=0,
                  progress=False)
    overrides = [o for o in TINY_OVERRIDES if not o.startswith(("data.", "train.stages", "train.checkpoint"))]
    assert cli_train.main(["--config", "tiny", "--no-progress", f"train.out_dir={run}", *overrides,
                           f"data.image_size={SIZE}", f"data.n_views={VIEWS}", f"data.n_bins={SIZE}", "data.n_bases=4",
                           f"train.stages.autoencoder.steps={TRAIN_STEPS}",
                           f"train.stages.diffusion.steps={TRAIN_STEPS}",
                           f"train.checkpoint_every={TRAIN_STEPS}", "data.source=folder", "data.task=paired",
                           f"data.path={folder}", "data.model_input=physics_prior", "model.mode=bridge",
                           "model.prediction_type=sample", "model.residual_decode=true"]) == 0
    return folder, run


def _sample(run: pathlib.Path, folder: pathlib.Path, out: pathlib.Path, *extra: str) -> np.ndarray:
    assert cli_sample.main(["--checkpoint", str(run), "--input", str(folder), "--out", str(out), *SAMPLE_ARGS,
                            *extra]) == 0
    with np.load(out / "samples.npz") as result:
        return result["sinogram"]


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


def test_up_weighting_a_region_changes_the_output_on_its_rays(prior_run, tmp_path: pathlib.Path) -> None:
    folder, run = prior_run
    name, hits = _region_to_edit(folder)
    spec_file = tmp_path / "edits.json"
    spec_file.write_text(json.dumps({"version": 1, "edits": [{"op": "add", "region": name, "weight": 1.0}]}))
    spec = RoiEditSpec.from_json(spec_file.read_text())

    plain = _sample(run, folder, tmp_path / "plain", "--seed", "0")
    again = _sample(run, folder, tmp_path / "again", "--seed", "0")
    other_seed = _sample(run, folder, tmp_path / "seed1", "--seed", "1")
    edited = _sample(run, folder, tmp_path / "edited", "--seed", "0", "--roi-spec", str(spec_file))
    np.testing.assert_array_equal(again, plain)  # eta = 0: one seed, one output
    record = json.loads((tmp_path / "edited" / "sampling.json").read_text())
    assert record["roi_spec"] == {"file": str(spec_file), "sha256": spec_hash(spec), "spec": spec.to_dict()}
    assert "roi_spec" not in json.loads((tmp_path / "plain" / "sampling.json").read_text())

    # what the model is given: the attention and the physics prior change on the region's rays only
    sampler = CheckpointSampler(run, "cpu")
    before, after = sampler.folder_inputs(folder), sampler.folder_inputs(folder, spec)
    for i, hit in enumerate(hits):
        assert hit.any() and not hit.all()
        np.testing.assert_array_equal(after["attention"][i][~hit], before["attention"][i][~hit])
        assert np.all(after["attention"][i][hit] >= before["attention"][i][hit])
        assert np.all(after["attention"][i][hit] > 0.0)
        scale = np.abs(before["input"][i]).mean()
        input_change = after["input"][i] - before["input"][i]
        assert np.abs(input_change[~hit]).max() < 1e-3 * scale  # the resolution model's tails, float rounding
        assert _rms(input_change[hit]) > 0.02 * scale  # the region's voxels kept unfiltered

    # what it makes of it: on the region's rays the edit moves the output far beyond the seed-to-seed spread; the
    # rays that miss the region keep the unedited output exactly (edits are local: CheckpointSampler.sample_edited)
    for i, hit in enumerate(hits):
        effect, spread = edited[i] - plain[i], other_seed[i] - plain[i]
        print(f"sample {i}, add {name}: {hit.sum()} of {hit.size} rays meet it; rms change with the edit "
              f"{_rms(effect[hit]):.1f} on them, {_rms(effect[~hit]):.1f} on the others; rms seed-to-seed spread "
              f"{_rms(spread[hit]):.1f} / {_rms(spread[~hit]):.1f}; mean output {plain[i].mean():.0f}")
        assert _rms(effect[hit]) > 3.0 * _rms(spread[hit]), (name, i)
        np.testing.assert_array_equal(effect[~hit], 0.0)
        assert _rms(spread[~hit]) > 0.0  # the spread is not zero: "unchanged" is the strongest claim


# --- the spec is checked before any sampling: one line naming the file, nothing written ------------------------


@pytest.fixture
def never_sample(monkeypatch) -> None:
    import ldm.sampling

    def never(*args, **kwargs):
        raise AssertionError("sampled although the ROI edit spec is bad")

    monkeypatch.setattr(ldm.sampling, "sample", never)


@pytest.mark.parametrize("text, words", [
    ("{not json", ("not a valid ROI edit spec", "not valid JSON")),
    ('{"edits": [{"op": "paint", "region": "brainstem"}]}', ("not a valid ROI edit spec", "op")),
    ('{"edits": [{"op": "scale", "region": "brainstem", "factor": -1}]}', ("factor",)),
    ('{"edits": [{"op": "add", "region": "liver_of_a_brain"}]}', ("unknown region 'liver_of_a_brain'",)),
    ('{"edits": [{"op": "add", "region": "x", "drawn": {"shape": "mask", "values": [[1]]}}]}', ("shape",)),
])
def test_a_bad_spec_is_refused_before_sampling(prior_run, tmp_path, capsys, never_sample, text, words) -> None:
    folder, run = prior_run
    spec_file = tmp_path / "edits.json"
    spec_file.write_text(text)
    out = tmp_path / "samples"
    assert cli_sample.main(["--checkpoint", str(run), "--input", str(folder), "--out", str(out), *SAMPLE_ARGS,
                            "--roi-spec", str(spec_file)]) == 2
    one_error_line(capsys, str(spec_file), *words)
    assert not out.exists()


def test_a_missing_spec_file_is_named(prior_run, tmp_path, capsys, never_sample) -> None:
    folder, run = prior_run
    missing = tmp_path / "nowhere.json"
    assert cli_sample.main(["--checkpoint", str(run), "--input", str(folder), "--out", str(tmp_path / "samples"),
                            "--roi-spec", str(missing)]) == 2
    one_error_line(capsys, str(missing))
    assert cli_sample.main(["--checkpoint", str(run), "--input", str(folder), "--out", str(tmp_path / "samples"),
                            "--roi-spec", str(tmp_path)]) == 2
    one_error_line(capsys, str(tmp_path), "folder")
    assert not (tmp_path / "samples").exists()


def test_a_spec_needs_inputs_with_label_maps(prior_run, tmp_path, capsys, never_sample) -> None:
    folder, run = prior_run
    spec_file = tmp_path / "edits.json"
    spec_file.write_text('{"edits": []}')
    sample = SimulatedDataset(folder)[0]
    np.savez(tmp_path / "inputs.npz", input=sample.input[None].astype(np.float32))
    (tmp_path / "pairs").mkdir()
    np.savez(tmp_path / "pairs" / "one.npz", input=sample.input, target=sample.target)
    for inputs in (["--input", str(tmp_path / "inputs.npz")], ["--input", str(tmp_path / "pairs")],
                   ["--n-samples", "2"]):
        assert cli_sample.main(["--checkpoint", str(run), *inputs, "--out", str(tmp_path / "samples"),
                                "--roi-spec", str(spec_file)]) == 2
        one_error_line(capsys, str(spec_file), "label maps")
    assert not (tmp_path / "samples").exists()


def test_a_spec_for_a_model_that_takes_no_attention_is_refused(tmp_path, capsys, never_sample) -> None:
    folder, run = tmp_path / "d", tmp_path / "run"
    write_dataset(folder, "low_dose", 2, SimulationConfig(size=16, n_views=16, anatomy="brain"), seed=0,
                  progress=False)
    assert cli_train.main(["--config", "tiny", "--no-progress", f"train.out_dir={run}", *TINY_OVERRIDES,
                           "data.source=folder", "data.task=paired", f"data.path={folder}", "model.use_tma=false",
                           "data.model_input=measured"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["use_tma"] is False
    capsys.readouterr()
    spec_file = tmp_path / "edits.json"
    spec_file.write_text('{"edits": [{"op": "add", "region": "brainstem"}]}')
    assert cli_sample.main(["--checkpoint", str(run), "--input", str(folder), "--out", str(tmp_path / "samples"),
                            "--roi-spec", str(spec_file)]) == 2
    one_error_line(capsys, str(spec_file), "takes no attention")
