"""The attention of samples (``tasks.attention_inputs``): found without lesion labels, one computation for viewer,
training and sampling, after ROI edits."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import pytest

from pet_projection.attention import RoiEditSpec, default_weight
from pet_projection.simulation import SimulationConfig, TaskSample, lesion_attention, simulate_sample, write_dataset
from pet_projection.simulation.dataset_folder import SimulatedDataset
from tasks.attention_inputs import (ATTENTION_MODES, MAX_SPEC_BYTES, EditedAttention, InputSegmentation,
                                    anatomy_table, attention_for, attention_regions, check_spec, read_spec,
                                    simulated_inputs, spec_hash)

BRAINSTEM = {"version": 1, "edits": [{"op": "add", "region": "brainstem", "weight": 0.5}]}
# a strong hot lesion: its true uptake at least twice the segmentation's threshold (InputSegmentation.hyper_ratio
# times the mean of the true body's voxels at or above its median), so that any coarse segmentation should find it
STRONG = 2.0


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("attention_inputs") / "brains"
    config = SimulationConfig(size=32, n_views=24, anatomy="brain", n_lesions=(1, 1))
    write_dataset(root, "low_dose", 2, config, seed=17, progress=False)
    return root


def _lesion(sample: TaskSample) -> np.ndarray:
    """The mask of the sample's single lesion."""
    (lesion,) = sample.metadata["lesions"]
    return sample.labels == sample.names[lesion["name"]]


@pytest.fixture(scope="module")
def hot_sample() -> TaskSample:
    """The first low-dose brain slice (32 x 32, 32 views, dose reduction 4) whose single lesion is strongly hot."""
    config = SimulationConfig(size=32, n_views=32, anatomy="brain", n_lesions=(1, 1), dose_reduction_factors=(4.0,))
    for seed in range(40):
        sample = simulate_sample("low_dose", config, seed)
        if not sample.metadata["lesions"] or sample.metadata["lesions"][0]["kind"] != "hot":
            continue
        truth, body = sample.target_image, sample.labels > 0
        reference = truth[body & (truth >= np.median(truth[body]))].mean()
        if truth[_lesion(sample)].mean() >= STRONG * InputSegmentation().hyper_ratio * reference:
            return sample
    raise AssertionError("no strongly hot lesion in 40 simulated slices")


def _moved_lesion(sample: TaskSample) -> TaskSample:
    """``sample`` with false labels: the lesion's voxels labelled as its host, the lesion label on white matter."""
    (lesion,) = sample.metadata["lesions"]
    labels = np.array(sample.labels)
    inside = labels == sample.names[lesion["name"]]
    labels[inside] = sample.names[lesion["host"]]
    elsewhere = np.flatnonzero(labels == sample.names["white_matter"])[:int(inside.sum())]
    labels.reshape(-1)[elsewhere] = sample.names[lesion["name"]]
    return dataclasses.replace(sample, labels=labels)


def test_segmentation_does_not_read_the_lesion_labels(hot_sample: TaskSample) -> None:
    moved = _moved_lesion(hot_sample)
    assert not np.array_equal(moved.labels, hot_sample.labels)
    for spec in (None, RoiEditSpec.from_dict(BRAINSTEM)):  # with or without an edit of an anatomical region
        before, after = attention_for(hot_sample, spec), attention_for(moved, spec)
        np.testing.assert_array_equal(after.image, before.image)
        np.testing.assert_array_equal(after.sinogram, before.sinogram)
    oracle = attention_for(hot_sample, None, "oracle"), attention_for(moved, None, "oracle")
    assert not np.array_equal(oracle[0].image, oracle[1].image)  # the oracle follows the labels
    assert not any(default_weight(name) for name in anatomy_table(moved).names)


def test_segmentation_finds_a_strong_hot_lesion(hot_sample: TaskSample) -> None:
    lesion = _lesion(hot_sample)
    hyper = attention_regions(hot_sample).masks["hyper"]
    assert (hyper & lesion).sum() >= 0.5 * lesion.sum()  # at least half of the lesion found
    assert hyper.sum() <= 0.05 * (hot_sample.labels > 0).sum()  # and not the whole brain
    maps = attention_for(hot_sample)
    assert maps.image[lesion].max() == 1.0 and maps.sinogram.max() == pytest.approx(1.0)


def test_an_input_without_counts_has_no_attention(hot_sample: TaskSample) -> None:
    empty = dataclasses.replace(hot_sample, input=np.zeros_like(hot_sample.input))
    maps = attention_for(empty)
    assert not maps.image.any() and not maps.sinogram.any()


def test_oracle_without_edits_is_the_lesion_attention_of_the_labels(folder: pathlib.Path) -> None:
    for sample in SimulatedDataset(folder):
        image, sinogram = lesion_attention(sample)
        for spec in (None, RoiEditSpec()):
            maps = attention_for(sample, spec, "oracle")
            np.testing.assert_array_equal(maps.image, image)
            np.testing.assert_array_equal(maps.sinogram, sinogram)
        assert sinogram.max() == pytest.approx(1.0)  # each sample has a lesion: TMA peaks at 1 on its longest chord
    with pytest.raises(ValueError, match="attention"):
        attention_for(sample, None, "labels")


@pytest.mark.parametrize("mode", ATTENTION_MODES)
def test_an_edit_changes_only_the_rays_through_its_region(folder: pathlib.Path, mode: str) -> None:
    sample = SimulatedDataset(folder)[1]
    brainstem = sample.region_table().mask("brainstem")
    assert brainstem.any()
    before = attention_for(sample, None, mode)
    after = attention_for(sample, RoiEditSpec.from_dict(BRAINSTEM), mode)
    assert after.image[brainstem].min() == pytest.approx(max(0.5, before.image[brainstem].min()))
    lesions = [name for name in attention_regions(sample, mode).masks if default_weight(name)]
    alone = attention_for(sample, RoiEditSpec.from_dict(
        {"edits": [{"op": "remove", "region": name} for name in lesions] + BRAINSTEM["edits"]}), mode).sinogram
    changed = before.sinogram != after.sinogram
    assert changed.any() and np.all(alone[changed] > 0)  # every changed ray meets the brainstem


def test_segmented_regions_take_edits_and_lesion_labels_do_not(folder: pathlib.Path) -> None:
    sample = SimulatedDataset(folder)[1]
    scaled = attention_for(sample, RoiEditSpec.from_dict({"edits": [{"op": "scale", "region": "hyper",
                                                                      "factor": 0.5}]}))
    assert scaled.image.max() <= 0.5 + 1e-12
    with pytest.raises(ValueError, match="unknown region 'lesion_hot_1'"):
        attention_for(sample, RoiEditSpec.from_dict({"edits": [{"op": "scale", "region": "lesion_hot_1",
                                                                 "factor": 0.5}]}))


def test_edited_inputs_equal_the_training_inputs_without_edits(folder: pathlib.Path) -> None:
    pytest.importorskip("torch")
    from ldm.batches import collate
    from ldm.folder_datasets import SimulatedTaskDataset

    def prior(sample, attention_image):  # a model input that depends on the image attention
        return sample.input * (1.0 + np.asarray(attention_image).sum())

    batch = collate([SimulatedTaskDataset(folder, ["region"], prior)[i] for i in range(2)])
    for spec in (None, RoiEditSpec()):  # the folder dataset's attention is the oracle's
        inputs = simulated_inputs(folder, ["region"], prior, spec=spec, mode="oracle")
        assert sorted(inputs) == ["attention", "input", "region", "support"]
        for key, value in inputs.items():
            np.testing.assert_array_equal(value, batch[key][:, 0].numpy() if value.ndim == 3 else batch[key].numpy())
    for spec in (None, RoiEditSpec.from_dict(BRAINSTEM)):
        edited = simulated_inputs(folder, ["region"], prior, spec=spec, samples=[1])
        maps = attention_for(SimulatedDataset(folder)[1], spec)
        np.testing.assert_array_equal(edited["attention"][0], maps.sinogram.astype(np.float32))
        np.testing.assert_array_equal(edited["input"][0],
                                      prior(SimulatedDataset(folder)[1], maps.image).astype(np.float32))


def test_allpet_train_reads_a_folder_with_the_segmentation_attention_as_sampling_does(folder: pathlib.Path) -> None:
    pytest.importorskip("torch")
    from ldm.experiment import DataConfig
    from ldm.training_data import build_training_data
    from tasks.model_inputs import folder_model_input

    config = DataConfig(source="folder", task="paired", path=str(folder), image_size=32, n_views=24, n_bins=32,
                        model_input="physics_prior")
    data = build_training_data(config, labels=("region",), model_input=folder_model_input(config),
                               attention=EditedAttention(None, config.attention))  # as allpet train calls it
    inputs = simulated_inputs(folder, ["region"], folder_model_input(config))  # as allpet sample reads the folder
    for index in range(2):
        item, sample = data.dataset[index], SimulatedDataset(folder)[index]
        segmented = attention_for(sample, None, "segmentation").sinogram.astype(np.float32)
        np.testing.assert_array_equal(item["attention"][0].numpy(), segmented)
        np.testing.assert_array_equal(item["input"][0].numpy(), inputs["input"][index])
        assert not np.array_equal(segmented, lesion_attention(sample)[1].astype(np.float32))  # not the labels'


def test_edited_attention_is_computed_once_per_sample(folder: pathlib.Path, monkeypatch) -> None:
    import tasks.attention_inputs as module

    calls = []
    monkeypatch.setattr(module, "attention_for", lambda sample, spec, mode: calls.append(spec) or object())
    edited = EditedAttention(RoiEditSpec.from_dict(BRAINSTEM))
    samples = SimulatedDataset(folder)
    first = edited(samples[0])
    assert edited(samples[0]) is first and edited(SimulatedDataset(folder)[0]) is first and len(calls) == 1
    assert edited(samples[1]) is not first and len(calls) == 2
    resampled = dataclasses.replace(samples[1], input=samples[1].input + 1.0)  # other counts, same labels
    assert edited(resampled) is not first and len(calls) == 3


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
