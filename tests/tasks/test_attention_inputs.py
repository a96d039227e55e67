"""The attention of samples after ROI edits (``tasks.attention_inputs``): one computation for viewer and sampling."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from pet_projection.attention import RoiEditSpec
from pet_projection.simulation import SimulationConfig, lesion_attention, write_dataset
from pet_projection.simulation.dataset_folder import SimulatedDataset
from tasks.attention_inputs import (MAX_SPEC_BYTES, EditedAttention, attention_for, check_spec, read_spec,
                                    simulated_inputs, spec_hash)

BRAINSTEM = {"version": 1, "edits": [{"op": "add", "region": "brainstem", "weight": 0.5}]}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("attention_inputs") / "brains"
    config = SimulationConfig(size=32, n_views=24, anatomy="brain", n_lesions=(1, 1))
    write_dataset(root, "low_dose", 2, config, seed=17, progress=False)
    return root


def test_without_edits_it_is_the_lesion_attention_of_training(folder: pathlib.Path) -> None:
    for sample in SimulatedDataset(folder):
        image, sinogram = lesion_attention(sample)
        for spec in (None, RoiEditSpec()):
            maps = attention_for(sample, spec)
            np.testing.assert_array_equal(maps.image, image)
            np.testing.assert_array_equal(maps.sinogram, sinogram)
        assert sinogram.max() == pytest.approx(1.0)  # each sample has a lesion: TMA peaks at 1 on its longest chord


def test_an_edit_changes_only_the_rays_through_its_region(folder: pathlib.Path) -> None:
    sample = SimulatedDataset(folder)[1]
    brainstem = sample.region_table().mask("brainstem")
    assert brainstem.any()
    before, after = attention_for(sample), attention_for(sample, RoiEditSpec.from_dict(BRAINSTEM))
    assert before.image[brainstem].max() == 0.0 and after.image[brainstem].max() == pytest.approx(0.5)
    alone = attention_for(sample, RoiEditSpec.from_dict(
        {"edits": [{"op": "remove", "region": name} for name in sample.names if name.startswith("lesion")]
         + BRAINSTEM["edits"]})).sinogram
    changed = before.sinogram != after.sinogram
    assert changed.any() and np.all(alone[changed] > 0)  # every changed ray meets the brainstem


def test_edited_inputs_equal_the_training_inputs_without_edits(folder: pathlib.Path) -> None:
    pytest.importorskip("torch")
    from ldm.batches import collate
    from ldm.folder_datasets import SimulatedTaskDataset

    def prior(sample, attention_image):  # a model input that depends on the image attention
        return sample.input * (1.0 + np.asarray(attention_image).sum())

    batch = collate([SimulatedTaskDataset(folder, ["region"], prior)[i] for i in range(2)])
    for spec in (None, RoiEditSpec()):
        inputs = simulated_inputs(folder, ["region"], prior, spec=spec)
        assert sorted(inputs) == ["attention", "input", "region", "support"]
        for key, value in inputs.items():
            np.testing.assert_array_equal(value, batch[key][:, 0].numpy() if value.ndim == 3 else batch[key].numpy())
    edited = simulated_inputs(folder, ["region"], prior, spec=RoiEditSpec.from_dict(BRAINSTEM), samples=[1])
    maps = attention_for(SimulatedDataset(folder)[1], RoiEditSpec.from_dict(BRAINSTEM))
    np.testing.assert_array_equal(edited["attention"][0], maps.sinogram.astype(np.float32))
    np.testing.assert_array_equal(edited["input"][0],
                                  prior(SimulatedDataset(folder)[1], maps.image).astype(np.float32))


def test_edited_attention_is_computed_once_per_label_map(folder: pathlib.Path, monkeypatch) -> None:
    import tasks.attention_inputs as module

    calls = []
    monkeypatch.setattr(module, "attention_for", lambda sample, spec: calls.append(spec) or object())
    edited = EditedAttention(RoiEditSpec.from_dict(BRAINSTEM))
    samples = SimulatedDataset(folder)
    first = edited(samples[0])
    assert edited(samples[0]) is first and edited(SimulatedDataset(folder)[0]) is first and len(calls) == 1
    assert edited(samples[1]) is not first and len(calls) == 2


def test_read_spec_names_the_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "edits.json"
    path.write_text(json.dumps(BRAINSTEM, indent=3))
    assert read_spec(path) == RoiEditSpec.from_dict(BRAINSTEM)
    for text, words in (("{not json", "not valid JSON"), ('{"edits": [{"op": "paint", "region": "x"}]}', "op"),
                        ('{"edits": ' + "[" * 100_000, "nested")):
        path.write_text(text)
        with pytest.raises(ValueError, match=words) as raised:
            read_spec(path)
        assert str(path) in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(OSError):
        read_spec(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="folder"):
        read_spec(tmp_path)
    path.write_bytes(b" " * (MAX_SPEC_BYTES + 1))
    with pytest.raises(ValueError, match="too large"):
        read_spec(path)


def test_spec_hash_is_the_same_for_the_same_edits() -> None:
    spec = RoiEditSpec.from_dict(BRAINSTEM)
    same = RoiEditSpec.from_json(json.dumps({"edits": [{"weight": 0.5, "region": "brainstem", "op": "add"}]}, indent=4))
    other = RoiEditSpec.from_dict({"edits": [{"op": "add", "region": "brainstem", "weight": 0.25}]})
    assert spec_hash(spec) == spec_hash(same) != spec_hash(other)
    assert len(spec_hash(spec)) == 64 and int(spec_hash(spec), 16) >= 0


def test_check_spec_names_the_spec_and_the_sample(folder: pathlib.Path) -> None:
    check_spec(RoiEditSpec.from_dict(BRAINSTEM), SimulatedDataset(folder), "edits.json")
    with pytest.raises(ValueError, match=r"edits.json: .*unknown region 'nowhere'.*\(in sample 0\)"):
        check_spec(RoiEditSpec.from_dict({"edits": [{"op": "scale", "region": "nowhere", "factor": 2}]}),
                   SimulatedDataset(folder), "edits.json")
    with pytest.raises(ValueError, match="edits.json: .*shape"):
        check_spec(RoiEditSpec.from_dict({"edits": [{"op": "add", "region": "drawn",
                                                     "drawn": {"shape": "mask", "values": [[1, 0], [0, 1]]}}]}),
                   SimulatedDataset(folder), "edits.json")
