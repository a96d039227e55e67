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
from scipy import ndimage

from ldm.folder_datasets import SimulatedTaskDataset
from ldm.prompts import PROMPT_TASKS, parse_prompt
from ldm.weights import load_model
from ldm.windows import SinogramWindow
from pet_projection.physics import attenuation_factors
from pet_projection.simulation import TRACERS, SimulatedDataset, sample_rng, system_model
from pet_projection.simulation.acquisition import projector_from_description
from pet_projection.simulation.anatomy import ANATOMIES
from pet_projection.simulation.phantoms import MU_511KEV_PER_MM, MU_SOFT_TISSUE_PER_MM, REGION_LABELS
from tasks.cli import synthesize as cli
from tasks.sources import load_samples
from tasks.synthesis import (KINETIC_TASKS, PAIR_TASKS, SCALP_MM, SKULL_MM, check_pair_task, kinetic_sample,
                             pair_config, pair_projector, synthesize, synthetic_sample, tissue_mu_map)
from tests.helpers import one_error_line

pytestmark = pytest.mark.usefixtures("torch_one_thread")

FAST = ["--steps", "4", "--osem-iterations", "2", "--osem-subsets", "4", "--device", "cpu", "--threads", "1",
        "--no-progress"]
BRAIN_WINDOW = SinogramWindow(64, 64, (0.0, math.pi), (-128.0, 128.0))  # the simulator's 64-pixel brain geometry
CHEST_WINDOW = SinogramWindow(64, 64, (0.0, math.pi), (-250.0, 250.0))  # its chest geometry (7.8 mm bins)


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


# ------------------------------------------------------------------------------------------------ synthetic patients

def _chest_counts(total: float = 5e5) -> np.ndarray:
    """Counts of a chest-like image through the simulator's chest projector: a body with two colder regions."""
    config = pair_config(parse_prompt("FDG chest"), CHEST_WINDOW, task="tracer_conversion")
    projector = pair_projector(config, CHEST_WINDOW)
    y, x = np.mgrid[-31.5:32.5, -31.5:32.5] * (500.0 / 64)
    image = ((x / 170) ** 2 + (y / 120) ** 2 <= 1.0).astype(np.float64)
    for side in (-1, 1):
        image[((x - side * 75) / 50) ** 2 + (y / 75) ** 2 <= 1.0] = 0.25  # lungs: a quarter of the soft tissue
    mean = np.asarray(projector(image))
    return np.random.default_rng(5).poisson(mean * total / mean.sum()).astype(np.float64)


def test_tissue_mu_map_puts_the_skull_under_the_scalp_of_a_brain_only():
    y, x = np.mgrid[-31.5:32.5, -31.5:32.5]
    body = x ** 2 + (y / 1.2) ** 2 <= 24 ** 2
    mu = tissue_mu_map(body, "brain", 4.0)
    skull = mu == MU_511KEV_PER_MM["skull"]
    depth = ndimage.distance_transform_edt(body)  # pixels to the outside
    assert skull.any() and np.all(depth[skull] > round(SCALP_MM / 4.0))
    assert np.all(depth[skull] <= round(SCALP_MM / 4.0) + round(SKULL_MM / 4.0))
    assert np.all(depth[body & ~skull & (depth > 4)] > round(SCALP_MM / 4.0) + round(SKULL_MM / 4.0))  # a closed band
    np.testing.assert_array_equal(mu[body & ~skull], MU_SOFT_TISSUE_PER_MM)
    np.testing.assert_array_equal(mu[~body], 0.0)
    for region in ("chest", "abdomen", "trunk"):
        np.testing.assert_array_equal(tissue_mu_map(body, region, 7.8), np.where(body, MU_SOFT_TISSUE_PER_MM, 0.0))


def test_delayed_frame_pairs_scale_each_tissue_class_by_its_own_kinetics(sinograms):
    config = pair_config(parse_prompt("FDG brain"), BRAIN_WINDOW, task="delayed_frame")
    for k, sinogram in enumerate(sinograms):
        sample = kinetic_sample("delayed_frame", sinogram, BRAIN_WINDOW, config, sample_rng(0, k), 2, 4)
        assert {"skull", "grey_matter", "white_matter"} <= set(sample.names)  # the synthetic skull gives the brain
        assert sample.metadata["total_counts"] == pytest.approx(np.rint(np.maximum(sinogram, 0)).sum())
        ratios = {}
        for name, label in sample.names.items():
            inside = sample.labels == label
            ratio = sample.target_image[inside] / sample.input_image[inside]
            np.testing.assert_allclose(ratio, ratio.mean(), rtol=1e-4)  # one kinetic ratio per region
            ratios[name] = float(ratio.mean())
        assert max(ratios.values()) > 1.1 * min(ratios.values())  # not one image scaled: regions differ
        assert sample.target.sum() < sample.input.sum()  # the delayed frame has fewer counts (decay)
        expected = system_model(sample).expected(sample.input_image)  # a new scan of the synthetic patient
        assert np.corrcoef(expected.ravel(), sample.input.ravel())[0, 1] > 0.9


def test_tracer_separation_pairs_sum_to_their_mixture(sinograms):
    config = pair_config(parse_prompt("FDG brain"), BRAIN_WINDOW, task="tracer_separation")
    assert config.second_tracer == "met"
    sample = kinetic_sample("tracer_separation", sinograms[0], BRAIN_WINDOW, config, sample_rng(0, 0), 2, 4)
    assert sample.target.shape == (2,) + sample.input.shape and sample.metadata["tracers"] == ["fdg", "met"]
    np.testing.assert_array_equal(sample.input, sample.target.sum(axis=0))
    np.testing.assert_allclose(sample.input_image, sample.target_image.sum(axis=0), rtol=1e-5)


def test_tracer_conversion_of_a_chest_scans_its_soft_tissue_with_a_second_tracer():
    prompt = parse_prompt("MET chest")
    config = pair_config(prompt, CHEST_WINDOW, task="tracer_conversion")
    assert (config.tracer, config.second_tracer) == ("met", "fdg")  # the default second tracer differs
    sample = kinetic_sample("tracer_conversion", _chest_counts(), CHEST_WINDOW, config, sample_rng(0, 1), 4, 8)
    assert sample.metadata["tracers"] == ["met", "fdg"] and "soft_tissue" in sample.names
    body = sample.labels != 0
    np.testing.assert_allclose(sample.mu_map[body], MU_SOFT_TISSUE_PER_MM, rtol=1e-6)
    assert sample.metadata["synthesis"]["skull_pixels"] == 0
    soft = sample.labels == sample.names["soft_tissue"]
    ratio = sample.target_image[soft] / sample.input_image[soft]
    np.testing.assert_allclose(ratio, ratio.mean(), rtol=1e-4)  # one uptake ratio for the tissue class
    assert sample.target.sum() > 1e5 and sample.input.sum() > 1e5


@pytest.mark.parametrize("task", KINETIC_TASKS)
def test_kinetic_pairs_read_as_an_allpet_simulate_dataset(task, tmp_path):
    out = tmp_path / task
    threads = torch.get_num_threads()
    try:
        assert cli.main(["--prompt", "FDG brain", "--n", "2", "--task", task.replace("_", "-"), "--seed", "2",
                         "--out", str(out), *FAST]) == 0
    finally:
        torch.set_num_threads(threads)
    dataset = SimulatedDataset(out)
    dataset.verify()
    assert dataset.task == task and len(dataset) == 2 and dataset.config.anatomy == "brain"
    samples = load_samples(out, task, progress=False)
    assert all(sample.metadata["phantom_source"].startswith("allpet synthesize") for sample in samples)
    assert samples[0].input.sum() > 1e5 and not np.array_equal(samples[0].input, samples[1].input)
    items = SimulatedTaskDataset(out, labels=("tracer", "region", "task"), window=True)
    assert int(items[0]["task"]) == PROMPT_TASKS.index(task)


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

@pytest.mark.parametrize("options, words", [
    (["--task", "denoise"], ("unknown task 'denoise'", "low_dose, attenuation_correction")),
    (["--task", "low_dose", "--prompt", "FDG"], ("names no region",)),
    (["--task", "attenuation_correction", "--dose-factors", "4"], ("--dose-factors applies to --task low_dose",)),
    (["--task", "low_dose", "--dose-factors", "0.5"], ("at least 1",)),
    (["--task", "low_dose", "--angle-range", "0", "90"], ("--radial-range -128 128", "[0, 90) degrees")),
    (["--task", "delayed_frame", "--second-tracer", "met"], ("--second-tracer applies to",)),
    (["--task", "tracer_conversion", "--second-tracer", "fdg"], ("a second tracer other than the prompt's 'fdg'",)),
    (["--task", "tracer_separation", "--second-tracer", "h2o"], ("h2o",)),
])
def test_bad_pair_options_give_one_line(options, words, tmp_path, capsys):
    argv = ["--prompt", "FDG brain", "--n", "2", "--out", str(tmp_path / "out"), *FAST, *options]
    assert cli.main(argv) == 2
    one_error_line(capsys, *words)
    assert not (tmp_path / "out").exists()


def test_check_pair_task_accepts_hyphens_and_every_simulator_task():
    assert check_pair_task("attenuation-correction") == "attenuation_correction"
    assert check_pair_task("delayed-frame") == "delayed_frame"
    assert sorted(PAIR_TASKS) == sorted(PROMPT_TASKS[2:])  # every task of the simulator and the prompts
