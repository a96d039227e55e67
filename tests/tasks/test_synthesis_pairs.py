"""Task pairs of synthesized sinograms (``tasks.synthesis``, ``allpet synthesize --task``): the simulator's physics
relations, the ``allpet simulate`` dataset format and the command's errors.

The shipped foundation model generates the sinograms (few sampler steps on CPU: realistic FDG brain data in well
under a second).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ldm.folder_datasets import SimulatedTaskDataset
from ldm.prompts import PROMPT_TASKS, parse_prompt
from ldm.weights import load_model
from ldm.windows import SinogramWindow
from pet_projection.physics import attenuation_factors
from pet_projection.simulation import TRACERS, SimulatedDataset, sample_rng, system_model
from pet_projection.simulation.acquisition import projector_from_description
from pet_projection.simulation.anatomy import ANATOMIES
from pet_projection.simulation.phantoms import MU_SOFT_TISSUE_PER_MM, REGION_LABELS
from tasks.cli import synthesize as cli
from tasks.sources import load_samples
from tasks.synthesis import (PAIR_TASKS, UNPAIRABLE_TASKS, check_pair_task, pair_config, synthesize,
                             synthetic_sample)
from tests.helpers import one_error_line

pytestmark = pytest.mark.usefixtures("torch_one_thread")

FAST = ["--steps", "4", "--osem-iterations", "2", "--osem-subsets", "4", "--device", "cpu", "--threads", "1",
        "--no-progress"]
BRAIN_WINDOW = SinogramWindow(64, 64, (0.0, math.pi), (-128.0, 128.0))  # the simulator's 64-pixel brain geometry


@pytest.fixture(scope="module")
def sinograms():
    """Two synthesized full-dose FDG brain sinograms ``(2, 64, 64)`` of the shipped foundation model."""
    model, _, _ = load_model(None, "cpu")
    return synthesize(model, parse_prompt("FDG brain"), BRAIN_WINDOW, 2, seed=1, steps=4)


@pytest.fixture(scope="module")
def low_dose_folder(tmp_path_factory):
    """``allpet synthesize --task low_dose`` output (shipped model, two samples, one dose factor)."""
    out = tmp_path_factory.mktemp("pairs") / "low_dose"
    threads = torch.get_num_threads()
    try:
        assert cli.main(["--prompt", "18F-FDG brain", "--n", "2", "--task", "low-dose", "--dose-factors", "10",
                         "--seed", "3", "--out", str(out), *FAST]) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def _samples(sinograms, task):
    config = pair_config(parse_prompt("FDG brain"), BRAIN_WINDOW, (4.0,))
    return [synthetic_sample(task, sinogram, BRAIN_WINDOW, config, sample_rng(0, k), 2, 4)
            for k, sinogram in enumerate(sinograms)]


# ------------------------------------------------------------------------------------------------ physics

def test_low_dose_inputs_are_binomial_thinnings_of_the_integer_full_dose_counts(low_dose_folder):
    samples = load_samples(low_dose_folder, "low_dose", progress=False)
    assert len(samples) == 2
    for sample in samples:
        target, low = sample.target.astype(np.float64), sample.input.astype(np.float64)
        assert sample.metadata["dose_reduction_factor"] == 10.0
        assert target.sum() > 1e5  # realistic full-dose counts, not an empty sinogram
        np.testing.assert_array_equal(target, np.rint(target))
        np.testing.assert_array_equal(low, np.rint(low))
        assert low.min() >= 0 and np.all(low <= target)
        # binomial thinning with p = 1/10: mean N p, variance N p (1 - p)
        n, p = target.sum(), 0.1
        assert abs(low.sum() - n * p) < 5.0 * math.sqrt(n * p * (1.0 - p))
        # the simulator's count scales: the input at the target's scale is the input times the factor
        assert sample.metadata["target_count_scale"] / sample.metadata["count_scale"] == pytest.approx(10.0)
        np.testing.assert_allclose(sample.input_image * 10.0, sample.target_image, rtol=1e-6)
        np.testing.assert_allclose(sample.input_background * 10.0, sample.target_background, rtol=1e-6)


def test_attenuation_pair_meets_the_simulators_relation_on_the_expected_counts(sinograms):
    for measured, sample in zip(sinograms, _samples(sinograms, "attenuation_correction")):
        projector = projector_from_description(sample.metadata["projector"])
        body = sample.labels != 0
        assert body.any() and not body.all()
        assert sample.names == {"soft_tissue": REGION_LABELS["soft_tissue"]}
        np.testing.assert_array_equal(sample.labels[body], REGION_LABELS["soft_tissue"])
        np.testing.assert_array_equal(sample.mu_map, np.where(body, np.float32(MU_SOFT_TISSUE_PER_MM), 0.0))
        np.testing.assert_allclose(sample.attenuation, attenuation_factors(projector, sample.mu_map.astype(np.float64)),
                                   rtol=1e-5)
        assert sample.attenuation.min() < 0.5  # rays through the head lose most of their counts
        # the input is the synthesized measured prompts; the target the corrected P x of the activity x
        np.testing.assert_array_equal(sample.input, np.rint(np.maximum(measured, 0.0)))
        expected = system_model(sample).expected(sample.input_image)
        np.testing.assert_allclose(expected, sample.attenuation * sample.target + sample.input_background,
                                   rtol=1e-4, atol=1e-3)
        np.testing.assert_array_equal(sample.target_background, 0.0)
        assert np.all(sample.target_image[~body] == 0)  # no activity outside the body
        # OSEM fits the measured counts: the expected total equals the measured one up to a few per cent
        assert expected.sum() == pytest.approx(sample.input.sum(dtype=np.float64), rel=0.03)
        # the flat background is the mean of the rays that miss the body
        level = sample.metadata["synthesis"]["background_per_ray"]
        assert level > 0
        np.testing.assert_allclose(sample.input_background, level, rtol=1e-5)
        assert sample.target.sum() > 1.5 * (sample.input.sum() - sample.input_background.sum())  # corrected > NAC


def test_low_dose_and_attenuation_samples_share_one_patient(sinograms):
    low, corrected = _samples(sinograms, "low_dose"), _samples(sinograms, "attenuation_correction")
    for a, b in zip(low, corrected):
        np.testing.assert_array_equal(a.target, b.input)
        np.testing.assert_array_equal(a.target_image, b.target_image)
        np.testing.assert_array_equal(a.mu_map, b.mu_map)
        assert a.metadata["dose_reduction_factor"] == 4.0
        low_mean = system_model(a).expected(a.input_image)
        np.testing.assert_allclose(low_mean * 4.0, system_model(a, "target").expected(a.target_image), rtol=1e-5)


# ------------------------------------------------------------------------------------------------ files

def test_the_folder_reads_as_an_allpet_simulate_dataset(low_dose_folder):
    dataset = SimulatedDataset(low_dose_folder)
    dataset.verify()
    assert dataset.task == "low_dose" and len(dataset) == 2
    assert dataset.config.anatomy == "brain" and dataset.config.tracer == "fdg"
    assert dataset.config.dose_reduction_factors == (10.0,)
    manifest = json.loads((low_dose_folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["command"] == "allpet synthesize"
    synthesis = manifest["synthesis"]
    assert (synthesis["seed"], synthesis["steps"], synthesis["task"]) == (3, 4, "low_dose")
    assert synthesis["prompt"]["tracer"] == "fdg" and synthesis["prompt"]["region"] == "brain"
    assert synthesis["geometry"]["radial_range_mm"] == [-128.0, 128.0]
    assert synthesis["model"]["card"].startswith("# ALL-PET foundation model")
    items = SimulatedTaskDataset(low_dose_folder, labels=("tracer", "region", "task"), window=True)
    assert len(items) == 2
    item = items[1]
    sample = dataset[1]
    np.testing.assert_array_equal(item["target"][0].numpy(), sample.target)
    np.testing.assert_allclose(item["input"][0].numpy(), sample.input * 10.0, rtol=1e-6)  # at the target's scale
    assert bool(item["support"].all())  # the flat background reaches every ray
    assert float(item["attention"].abs().sum()) == 0.0  # no lesion labels: no attention
    assert (int(item["tracer"]), int(item["region"]), int(item["task"])) == (
        list(TRACERS).index("fdg"), ANATOMIES.index("brain"), PROMPT_TASKS.index("low_dose"))
    np.testing.assert_allclose(item["window"].numpy(), BRAIN_WINDOW.row())


def test_a_non_empty_folder_is_refused_before_any_sampling(low_dose_folder, tmp_path, capsys):
    before = (low_dose_folder / "manifest.json").read_bytes()
    assert cli.main(["--prompt", "FDG brain", "--n", "2", "--task", "low_dose", "--out", str(low_dose_folder),
                     *FAST]) == 2
    one_error_line(capsys, "already exists and is not empty")
    assert (low_dose_folder / "manifest.json").read_bytes() == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    assert cli.main(["--prompt", "FDG brain", "--n", "2", "--task", "low_dose", "--out", str(other), "--overwrite",
                     *FAST]) == 2
    one_error_line(capsys, "replaces only an earlier allpet synthesize output")
    assert sorted(path.name for path in other.iterdir()) == ["notes.txt"]


# ------------------------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("task", sorted(UNPAIRABLE_TASKS))
def test_tasks_physics_cannot_pair_give_one_line_naming_the_supported_ones(task, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["--prompt", "FDG brain", "--n", "2", "--task", task.replace("_", "-"), "--out", str(out),
                     *FAST]) == 2
    one_error_line(capsys, task, "low_dose, attenuation_correction")
    assert not out.exists()
    assert sorted(PAIR_TASKS + tuple(UNPAIRABLE_TASKS)) == sorted(PROMPT_TASKS[2:])  # every simulator task decided


@pytest.mark.parametrize("options, words", [
    (["--task", "denoise"], ("unknown task 'denoise'", "low_dose, attenuation_correction")),
    (["--task", "low_dose", "--prompt", "FDG"], ("names no region",)),
    (["--task", "attenuation_correction", "--dose-factors", "4"], ("--dose-factors applies to --task low_dose",)),
    (["--task", "low_dose", "--dose-factors", "0.5"], ("at least 1",)),
    (["--task", "low_dose", "--angle-range", "0", "90"], ("--radial-range -128 128", "[0, 90) degrees")),
])
def test_bad_pair_options_give_one_line(options, words, tmp_path, capsys):
    argv = ["--prompt", "FDG brain", "--n", "2", "--out", str(tmp_path / "out"), *FAST, *options]
    assert cli.main(argv) == 2
    one_error_line(capsys, *words)
    assert not (tmp_path / "out").exists()


def test_check_pair_task_accepts_hyphens():
    assert check_pair_task("attenuation-correction") == "attenuation_correction"
    with pytest.raises(ValueError, match="kinetics"):
        check_pair_task("delayed-frame")
