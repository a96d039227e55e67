"""tasks/: metrics against hand-computed values, baselines, every task end to end (CI size), demo, bad input."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("skimage")

from pet_projection.simulation import TASKS, SimulationConfig, simulate_sample, write_dataset  # noqa: E402
from tasks.baselines import LinearUnmixing  # noqa: E402
from tasks.classical_baselines import with_unmixed_inputs  # noqa: E402
from tasks.examples import build_examples, check_same_geometry, with_resampled_inputs  # noqa: E402
from tasks.metrics import lesion_metrics, nrmse, psnr, ssim, summarise  # noqa: E402
from pet_projection.io.files import atomic_directory  # noqa: E402
from tasks.pipeline import run_task  # noqa: E402
from tasks.pipeline_config import PipelineConfig  # noqa: E402
from tasks.results import IN_DISTRIBUTION, METHOD_LDM  # noqa: E402
from tasks.registry import get_task  # noqa: E402
from tasks.task import sample_projector  # noqa: E402

# ----------------------------------------------------------------------------------------------- metrics


def test_psnr_nrmse_ssim_hand_values():
    reference = np.arange(9.0).reshape(3, 3)          # range 8, sum of squares 204
    estimate = reference + 1.0                         # MSE 1
    assert psnr(reference, estimate) == pytest.approx(20.0 * math.log10(8.0))
    assert nrmse(reference, estimate) == pytest.approx(3.0 / math.sqrt(204.0))
    assert ssim(reference, reference) == pytest.approx(1.0)
    assert ssim(reference, estimate) < 1.0


def test_metrics_reject_bad_pairs():
    with pytest.raises(ValueError, match="shape"):
        psnr(np.ones((3, 3)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="constant"):
        psnr(np.ones((3, 3)), np.zeros((3, 3)))


def test_lesion_metrics_hand_values():
    labels = np.array([[1, 1, 1, 1], [1, 101, 101, 1], [1, 1, 1, 1], [0, 0, 0, 0]])
    names = {"liver": 1, "lesion_hot_1": 101}
    reference = np.where(labels == 101, 4.0, np.where(labels == 1, 1.0, 0.0))  # true contrast 4 / 1 - 1 = 3
    estimate = np.where(labels == 101, 3.0, np.where(labels == 1, 1.0, 0.0))   # bias -1/4, contrast 2
    out = lesion_metrics(reference, estimate, labels, names, {"lesion_hot_1": "liver"})
    assert out["lesion_bias"] == pytest.approx(-0.25)
    assert out["lesion_abs_bias"] == pytest.approx(0.25)
    assert out["contrast_recovery"] == pytest.approx(2.0 / 3.0)
    empty = lesion_metrics(reference, estimate, np.ones_like(labels), names, {})
    assert math.isnan(empty["lesion_bias"]) and math.isnan(empty["contrast_recovery"])


def test_summarise_student_t():
    # two values 1 and 3: mean 2, s = sqrt(2); t(0.975, 1 dof) = 12.7062 (any t table) -> half-width 12.7062
    s = summarise([1.0, 3.0, float("nan")])
    assert (s.mean, s.n) == (2.0, 2)
    assert s.high - s.mean == pytest.approx(12.7062, abs=1e-3)
    assert summarise([]).n == 0


@settings(deadline=None, max_examples=20)
@given(st.floats(0.05, 0.95), st.integers(0, 2**31 - 1))
def test_linear_unmixing_recovers_fixed_fractions(fraction, seed):
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(1.0, 10.0, size=(6, 4, 5))
    targets = np.stack([fraction * inputs, (1.0 - fraction) * inputs], axis=1)
    estimate = LinearUnmixing().fit(inputs, targets).predict(inputs[:2])
    np.testing.assert_allclose(estimate, targets[:2], rtol=1e-10)


# ----------------------------------------------------------------------------------------------- pipelines

@pytest.mark.parametrize("task", TASKS)
def test_task_pipeline_end_to_end(task, tmp_path):
    config = PipelineConfig.quick(task, n_test=1, anatomy_warps=1)
    result = run_task(config, tmp_path / "work", progress=False)
    spec = get_task(task)
    assert result.info["n_train_examples"] == 2 * config.n_train * spec.n_outputs  # each sample and one warp
    assert METHOD_LDM in result.methods and result.methods[-1].startswith("reference")
    assert len([r for r in result.records if r["method"] == METHOD_LDM and r["test_set"] == IN_DISTRIBUTION]) \
        == spec.n_outputs
    for record in result.records:
        assert np.isfinite(record["psnr"]) and np.isfinite(record["sino_ssim"])
    assert result.example["images"][METHOD_LDM].shape == (config.size, config.size)
    assert result.logs["LDM diffusion"]["step"]
    assert result.info["latent_factor"] == spec.latent_factor
    # the unseen test sets go through the same methods (the STIR thorax only where its files are)
    unseen = [name for name in result.test_sets if name != IN_DISTRIBUTION]
    assert "left_out_region" in unseen and sorted(unseen + list(result.info["skipped_test_sets"])) == sorted(
        config.unseen_test)
    for name in result.test_sets:
        rows = [r for r in result.records if r["test_set"] == name]
        n_samples = config.n_test if name == IN_DISTRIBUTION else config.n_unseen_test
        assert len(rows) == n_samples * spec.n_outputs * len(result.methods)
        assert np.isfinite(result.summary("psnr", METHOD_LDM, name).mean)
    assert result.unseen_examples["left_out_region"]["images"][METHOD_LDM].shape == (config.size, config.size)


@pytest.mark.parametrize("task", ["attenuation_correction", "tracer_separation"])
def test_dataset_folders_give_the_results_of_the_same_samples_in_memory(task, tmp_path):
    """A user's folders in the documented format run the whole pipeline: same samples, same numbers."""
    config = PipelineConfig.quick(task, n_train=4, n_test=2)
    simulation = config.simulation_config()
    write_dataset(tmp_path / "train", task, 4, simulation, seed=config.seed, progress=False)
    write_dataset(tmp_path / "test", task, 2, simulation, seed=config.seed + 1, progress=False)
    in_memory = run_task(config, tmp_path / "memory", progress=False)
    from_folders = run_task(PipelineConfig.quick(task, n_train=4, n_test=2, train_data=str(tmp_path / "train"),
                                                 test_data=str(tmp_path / "test")), tmp_path / "folders",
                            progress=False)
    n_sets = len(in_memory.test_sets)  # the in-distribution set and the unseen ones, 2 samples each
    assert len(from_folders.records) == len(in_memory.records) \
        == n_sets * 2 * get_task(task).n_outputs * len(in_memory.methods)
    for ours, theirs in zip(from_folders.records, in_memory.records):
        assert ours["method"] == theirs["method"]
        assert ours["psnr"] == pytest.approx(theirs["psnr"], abs=1e-9)


def test_demo_cli_quick_writes_report(tmp_path):
    from tasks.cli.demo import main

    out = tmp_path / "report"
    assert main(["--quick", "--model", "tiny", "--out", str(out), "--no-progress", "--n-test", "1",
                 "--latent-factor", "2", "--denoiser-channels", "16"]) == 0
    # (low dose, the demo's default task, would use 4 by itself; the preset's denoiser is 32 wide)
    for name in ("index.html", "report.md", "metrics.csv", "metrics_per_sample.csv", "results.json",
                 "figures/example.png", "figures/attention.png", "figures/training.png",
                 "figures/input_output_target.png"):
        assert (out / name).is_file(), name
    assert METHOD_LDM in (out / "metrics.csv").read_text()
    report = (out / "report.md").read_text()
    assert "autoencoder downsampling 2, denoiser width 16;" in report
    assert "**attention**: segmentation of the input (training and testing)" in report
    # the metrics of every test set side by side: a column per set, the same rows
    assert "| metric | method | in-distribution |" in report and "left-out region (unseen) |" in report
    assert (out / "figures" / "input_output_target_left_out_region.png").is_file()
    with open(out / "metrics.csv", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    counts = {name: sum(r["test_set"] == name for r in rows) for name in {r["test_set"] for r in rows}}
    assert counts[IN_DISTRIBUTION] == counts["left_out_region"] > 0
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary["left_out_region"][METHOD_LDM]["psnr"]["n"] == 2  # --quick: 2 samples per unseen set


def test_demo_cli_starts_from_the_shipped_model_beside_its_architecture_from_scratch(tmp_path, capsys):
    from tasks.cli.demo import main
    from tasks.results import METHOD_SCRATCH, METHOD_UNSUPERVISED

    out = tmp_path / "report"
    assert main(["--quick", "--unsupervised", "--out", str(out), "--no-progress", "--n-test", "1",
                 "--unseen-test"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["ldm_init"] == "foundation" and results["config"]["unsupervised"]
    assert results["config"]["scratch_steps"] > 0
    for method in (METHOD_LDM, METHOD_SCRATCH, METHOD_UNSUPERVISED):
        assert np.isfinite(results["summary"][IN_DISTRIBUTION][method]["psnr"]["mean"]), method
    assert f"| {METHOD_SCRATCH}: PSNR (dB) |" in (out / "report.md").read_text()
    capsys.readouterr()
    assert main(["--quick", "--task", "delayed_frame", "--unsupervised", "--out", str(tmp_path / "x")]) == 2
    assert main(["--quick", "--latent-factor", "2", "--out", str(tmp_path / "x")]) == 2
    assert "a pretrained model keeps its architecture" in capsys.readouterr().err
    assert main(["--quick", "--model", "tiny", "--scratch-steps", "5", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_oracle_attention_is_the_old_label_attention(tmp_path):
    """``attention="oracle"``: the examples' attention and the prior's unfiltered regions are the lesion labels'."""
    from pet_projection.simulation import lesion_attention
    from tasks.report import write_report

    config = PipelineConfig.quick(attention="oracle", n_train=4, n_test=1, unseen_test=())
    task = get_task("low_dose")
    simulation = PipelineConfig(n_lesions=(1, 1)).simulation_config()  # the demo's 32 x 32 slices, one lesion each
    samples = [simulate_sample("low_dose", simulation, seed) for seed in range(3)]
    prior = config.model_input(task)
    examples = build_examples(task, samples, prior, attention="oracle")
    for k, sample in enumerate(samples):
        image, sinogram = lesion_attention(sample, sample_projector(sample))
        np.testing.assert_array_equal(examples.attention[k], sinogram.astype(np.float32))
        np.testing.assert_array_equal(examples.input[k], prior(sample, image))
    assert examples.attention.max() == 1.0
    assert not np.array_equal(build_examples(task, samples, prior).attention, examples.attention)
    result = run_task(config, tmp_path / "work", progress=False)
    assert list(result.test_sets) == [IN_DISTRIBUTION]
    write_report(result, tmp_path / "report")
    assert "**attention**: oracle attention (upper bound) (training and testing)" in (
        tmp_path / "report" / "report.md").read_text()


def test_unseen_sets_are_skipped_with_a_reason(monkeypatch):
    import tasks.sources as sources

    monkeypatch.setattr(sources, "third_party_folder", lambda: None)
    sets, skipped = sources.unseen_test_sets(PipelineConfig.quick(n_unseen_test=1), progress=False)
    assert [s.name for s in sets] == ["left_out_region"] and list(skipped) == ["stir_thorax"]
    assert "ALLPET_THIRD_PARTY_DATA" in skipped["stir_thorax"]
    assert sets[0].samples[0].metadata["region"] == "trunk"  # the demo trains on brain: trunk is left out
    sets, skipped = sources.unseen_test_sets(PipelineConfig.quick(anatomy="mixed", unseen_test=("left_out_region",)),
                                             progress=False)
    assert sets == [] and "every region family" in skipped["left_out_region"]
    sets, _ = sources.unseen_test_sets(PipelineConfig.quick(anatomy="chest", unseen_test=("left_out_region",),
                                                            n_unseen_test=1), progress=False)
    assert sets[0].samples[0].metadata["region"] == "brain"


def test_the_stir_thorax_set_reads_the_third_party_images(third_party):
    from tasks.sources import unseen_test_sets

    (stir,), skipped = unseen_test_sets(PipelineConfig.quick(unseen_test=("stir_thorax",), n_unseen_test=2),
                                        progress=False)
    assert not skipped and stir.name == "stir_thorax" and "STIR-exercises" in stir.description
    for sample in stir.samples:
        assert sample.metadata["region"] == "chest" and sample.input.shape == (16, 16)
        assert {"lungs", "soft_tissue"} <= set(sample.names)


@pytest.mark.parametrize("task", ["low_dose", "tracer_separation"])
def test_a_kept_demo_model_samples_a_folder_as_the_demo_did(task, tmp_path):
    """``allpet demo --keep-model`` then ``allpet sample --raw-weights`` on the same test samples as a folder."""
    from tasks.cli.sample import main as sample_main
    from tasks.demo import demo_config, run_demo

    config = demo_config(task, quick=True, model="tiny", n_train=4, n_test=2)
    write_dataset(tmp_path / "test", task, 2, config.simulation_config(), seed=config.seed + 1, progress=False)
    folder, result = run_demo(config, tmp_path / "report", progress=False, keep_model=True)
    assert (folder / "model" / "config.yaml").is_file()
    assert (folder / "model" / "unmixing_weights.npy").is_file() == (task == "tracer_separation")
    n_items = 2 * get_task(task).n_outputs
    assert sample_main(["--checkpoint", str(folder / "model"), "--input", str(tmp_path / "test"), "--out",
                        str(tmp_path / "samples"), "--steps", str(config.sampling_steps), "--batch-size",
                        str(n_items), "--seed", str(config.seed), "--raw-weights", "--no-progress",
                        "--threads", "1"]) == 0
    sinograms = np.load(tmp_path / "samples" / "samples.npz")["sinogram"]
    assert sinograms.shape == (n_items, config.n_views, config.size)
    np.testing.assert_allclose(sinograms[0], result.example["sinograms"][METHOD_LDM], rtol=1e-5, atol=1e-4)


# ----------------------------------------------------------------------------------------------- bad input

def _old_report(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "marker.txt").write_text("earlier result")
    return out


def test_geometry_mismatch_stops_and_keeps_earlier_report(tmp_path, capsys):
    from tasks.cli.demo import main

    write_dataset(tmp_path / "train", "low_dose", 2, SimulationConfig(size=16, n_views=16, anatomy="brain"),
                  progress=False)
    write_dataset(tmp_path / "test", "low_dose", 1, SimulationConfig(size=16, n_views=12, anatomy="brain"),
                  progress=False)
    out = _old_report(tmp_path)
    code = main(["--quick", "--out", str(out), "--no-progress", "--n-train", "2", "--n-test", "1",
                 "--train-data", str(tmp_path / "train"), "--test-data", str(tmp_path / "test")])
    assert code == 2
    assert "geometry mismatch" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["marker.txt"]
    assert not list(tmp_path.glob(".report.tmp-*"))


def test_missing_folder_and_missing_sample_files(tmp_path, capsys):
    from tasks.cli.demo import main

    out = _old_report(tmp_path)
    assert main(["--quick", "--out", str(out), "--no-progress", "--train-data", str(tmp_path / "nowhere"),
                 "--test-data", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    write_dataset(tmp_path / "data", "low_dose", 2, SimulationConfig(size=16, n_views=16), progress=False)
    (tmp_path / "data" / "samples" / "sample_00001.npz").unlink()
    assert main(["--quick", "--out", str(out), "--no-progress", "--train-data", str(tmp_path / "data"),
                 "--test-data", str(tmp_path / "data")]) == 2
    assert "misses 1 of 2 samples" in capsys.readouterr().err
    assert (out / "marker.txt").read_text() == "earlier result"


def test_wrong_task_and_wrong_shapes_raise():
    config = SimulationConfig(size=16, n_views=16, anatomy="brain")
    separation = simulate_sample("tracer_separation", config, 0)
    with pytest.raises(ValueError, match="task 'tracer_separation'"):
        build_examples(get_task("low_dose"), [separation])
    low = simulate_sample("low_dose", config, 0)
    broken = type(low)(**{**{k: getattr(low, k) for k in ("task", "input", "input_image", "target_image", "mu_map",
                                                         "labels", "attenuation", "normalisation", "input_background",
                                                         "target_background", "names", "metadata")},
                          "target": low.target[:, :8]})
    with pytest.raises(ValueError, match="target has shape"):
        build_examples(get_task("low_dose"), [broken])
    other = simulate_sample("low_dose", SimulationConfig(size=16, n_views=16, anatomy="trunk"), 0)
    with pytest.raises(ValueError, match="geometry mismatch"):
        check_same_geometry([low], [other])


def test_pipeline_config_rejects_bad_values():
    with pytest.raises(ValueError, match="unknown task"):
        PipelineConfig(task="denoise")
    with pytest.raises(ValueError, match="osem_subsets"):
        PipelineConfig(n_views=4, osem_subsets=8)
    with pytest.raises(ValueError, match="n_train"):
        PipelineConfig(n_train=0)
    with pytest.raises(ValueError, match="prior_fwhm_voxels"):
        PipelineConfig(prior_fwhm_voxels=-1.0)
    with pytest.raises(ValueError, match="count_resampling"):
        PipelineConfig(count_resampling=-1)
    with pytest.raises(ValueError, match="attention"):
        PipelineConfig(attention="labels")
    with pytest.raises(ValueError, match="unseen_test"):
        PipelineConfig(unseen_test=("brain_mri",))
    with pytest.raises(ValueError, match="unseen_test"):
        PipelineConfig(unseen_test=("stir_thorax", "stir_thorax"))
    with pytest.raises(TypeError, match="unseen_test"):
        PipelineConfig(unseen_test="stir_thorax")
    with pytest.raises(ValueError, match="n_unseen_test"):
        PipelineConfig(n_unseen_test=0)


def test_physics_prior_filter_defaults_to_the_tasks_own():
    from tasks.model_inputs import physics_prior_model_input

    config = SimulationConfig(size=16, n_views=16, anatomy="brain")
    for name, fwhm in (("low_dose", 2.0), ("attenuation_correction", 0.0)):
        task = get_task(name)
        assert task.prior_fwhm_voxels == fwhm
        sample = simulate_sample(name, config, 0)
        attention = np.zeros(sample_projector(sample).in_shape)
        quick = PipelineConfig.quick(name, osem_subsets=2, osem_iterations=2)
        default = quick.model_input(task)(sample, attention)
        np.testing.assert_array_equal(default, physics_prior_model_input(task, fwhm, 2, 2)(sample, attention))
        other = PipelineConfig.quick(name, prior_fwhm_voxels=fwhm + 1.0).model_input(task)(sample, attention)
        assert np.abs(other - default).max() > 1e-3 * np.abs(default).max()  # an explicit FWHM overrides the task's


def test_physics_prior_is_closer_to_the_truth_than_the_measured_input():
    # dose reduction 20 at the demo's counts per pixel: the measured sinogram holds about 2 counts per ray, so the
    # smooth model fit of its OSEM image is far closer to the noise-free target A x + b (demo: 24.6 against 13.3 dB)
    config = PipelineConfig(size=16, n_views=16)
    task = get_task("low_dose")
    for seed in range(3):
        sample = simulate_sample("low_dose", config.simulation_config(), seed)
        voxel_mm = float(sample_projector(sample).geometry.grid.voxel_size_mm[-1])
        prior = task.physics_prior(sample, 2.0 * voxel_mm, 2, 4)
        truth = task.reference_sinogram(sample)
        assert prior.shape == sample.input.shape and prior.dtype == np.float32 and (prior >= 0).all()
        assert psnr(truth, prior) > psnr(truth, task.model_input(sample)) + 5.0
        # the prior is at the target's count scale: equal total counts within the input's Poisson noise
        assert prior.sum() == pytest.approx(task.model_input(sample).sum(), rel=0.2)


def test_physics_prior_attention_keeps_the_marked_region_unfiltered():
    config = SimulationConfig(size=16, n_views=16, anatomy="brain")
    task = get_task("low_dose")
    sample = simulate_sample("low_dose", config, 1)
    shape = sample_projector(sample).in_shape
    plain, sharp = task.physics_prior(sample, 32.0, 2, 2), task.physics_prior(sample, 0.0, 2, 2)
    np.testing.assert_allclose(task.physics_prior(sample, 32.0, 2, 2, np.zeros(shape)), plain, rtol=1e-6)
    np.testing.assert_allclose(task.physics_prior(sample, 32.0, 2, 2, np.ones(shape)), sharp, rtol=1e-6)
    half = task.physics_prior(sample, 32.0, 2, 2, np.full(shape, 0.5))
    np.testing.assert_allclose(half, 0.5 * (plain + sharp), rtol=1e-5, atol=1e-6)  # the forward model is affine
    assert np.abs(plain - sharp).max() > 1e-3 * plain.max()
    with pytest.raises(ValueError, match="attention has shape"):
        task.physics_prior(sample, 32.0, 2, 2, np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        task.physics_prior(sample, 32.0, 2, 2, np.full(shape, 2.0))


def test_examples_keep_the_measured_input_beside_the_model_input():
    config = SimulationConfig(size=16, n_views=16, anatomy="brain")
    task = get_task("low_dose")
    samples = [simulate_sample("low_dose", config, seed) for seed in range(2)]
    seen = []

    def constant(sample, attention_image):
        seen.append(attention_image.shape)
        return np.full(sample.input.shape, 7.0, dtype=np.float32)

    examples = build_examples(task, samples, constant)
    np.testing.assert_array_equal(examples.input, 7.0)
    np.testing.assert_array_equal(examples.measured, np.stack([task.model_input(s) for s in samples]))
    assert seen == [sample_projector(s).in_shape for s in samples]  # called once per sample with its image attention
    plain = build_examples(task, samples)
    np.testing.assert_array_equal(plain.input, plain.measured)
    with pytest.raises(ValueError, match="model input of sample 0 has shape"):
        build_examples(task, samples, lambda sample, attention: sample.input[:4])


def test_unmixed_inputs_condition_each_channel_on_its_own_unmixing():
    config = SimulationConfig(size=16, n_views=16, anatomy="brain")
    task = get_task("tracer_separation")
    examples = build_examples(task, [simulate_sample("tracer_separation", config, seed) for seed in range(3)])
    first = examples.channel == 0
    weights = LinearUnmixing().fit(examples.measured[first], np.stack([examples.target[examples.channel == c]
                                                                      for c in (0, 1)], axis=1)).weights
    unmixed = with_unmixed_inputs(examples, weights)
    np.testing.assert_allclose(unmixed.input[first], weights[0] * examples.measured[first], rtol=1e-6)
    np.testing.assert_allclose(unmixed.input[~first], weights[1] * examples.measured[~first], rtol=1e-6)
    np.testing.assert_allclose(unmixed.input[first] + unmixed.input[~first], examples.measured[first], rtol=1e-4,
                               atol=1e-4)  # the two fractions of a ray sum to about 1 (the targets sum to the input)
    np.testing.assert_array_equal(unmixed.target, examples.target)
    np.testing.assert_array_equal(unmixed.measured, examples.measured)
    with pytest.raises(ValueError, match="unmixing weights of shape"):
        with_unmixed_inputs(examples, weights[:1])
    with pytest.raises(ValueError, match="unmixing weights of shape"):
        with_unmixed_inputs(examples, weights[:, :4])


@pytest.mark.parametrize("prior", [True, False])
def test_tracer_separation_trains_on_the_unmixing_prior(prior, tmp_path, monkeypatch):
    import tasks.pipeline

    seen = {}

    def stop(task, train_ex, *args, **kwargs):
        seen["examples"] = train_ex
        raise KeyboardInterrupt

    monkeypatch.setattr(tasks.pipeline, "train_ldm", stop)
    with pytest.raises(KeyboardInterrupt):
        run_task(PipelineConfig.quick("tracer_separation", n_train=3, n_test=1, physics_prior=prior), tmp_path)
    examples = seen["examples"]
    if not prior:
        np.testing.assert_array_equal(examples.input, examples.measured)
        assert not (tmp_path / "unmixing_weights.npy").exists()
        return
    first = examples.channel == 0
    weights = LinearUnmixing().fit(examples.measured[first], np.stack([examples.target[examples.channel == c]
                                                                      for c in (0, 1)], axis=1)).weights
    np.testing.assert_allclose(examples.input, weights[examples.channel] * examples.measured, rtol=1e-6)
    saved = np.load(tmp_path / "unmixing_weights.npy")  # kept with the run, for new inputs
    assert saved.dtype == np.float32 and saved.shape == (2,) + examples.measured.shape[1:]
    np.testing.assert_allclose(saved, weights, rtol=1e-6)


@settings(deadline=None, max_examples=10)
@given(st.floats(2.0, 50.0), st.integers(1, 200), st.integers(0, 2**31 - 1))
def test_low_dose_resampling_is_a_binomial_thinning_of_the_target(factor, counts, seed):
    import dataclasses

    task = get_task("low_dose")
    sample = simulate_sample("low_dose", SimulationConfig(size=16, n_views=16, dose_reduction_factors=(factor,)), 0)
    target = np.full(sample.target.shape, float(counts), dtype=np.float32)
    sample = dataclasses.replace(sample, target=target)
    rng = np.random.default_rng(seed)
    draws = np.stack([task.resample_input(sample, rng).input for _ in range(20)])
    assert (draws >= 0).all() and (draws <= target).all() and (draws == np.rint(draws)).all()
    # Binomial(counts, 1/f) per ray: the mean over 20 x 256 independent rays is within 5 standard errors
    p = 1.0 / factor
    assert abs(draws.mean() - counts * p) < 5.0 * math.sqrt(counts * p * (1 - p) / draws.size) + 1e-9
    copy = task.resample_input(sample, rng)
    assert copy.target is sample.target and copy.labels is sample.labels and copy.metadata == sample.metadata


def test_resampled_inputs_extend_low_dose_only():
    import dataclasses

    config = SimulationConfig(size=16, n_views=16)
    low = [simulate_sample("low_dose", config, seed) for seed in range(2)]
    task = get_task("low_dose")
    out = with_resampled_inputs(task, low, 2, seed=3)
    assert len(out) == 6 and out[:2] == low
    for i, copy in enumerate(out[2:]):
        assert copy.target is low[i % 2].target and not np.array_equal(copy.input, low[i % 2].input)
    again = with_resampled_inputs(task, low, 2, seed=3)
    assert all(np.array_equal(a.input, b.input) for a, b in zip(out, again))  # deterministic in the seed
    assert not np.array_equal(with_resampled_inputs(task, low, 1, seed=4)[2].input, out[2].input)
    other = [simulate_sample("delayed_frame", config, 0)]
    assert with_resampled_inputs(get_task("delayed_frame"), other, 3) == other  # no resampling: unchanged
    with pytest.raises(ValueError, match="non-negative integers"):
        task.resample_input(dataclasses.replace(low[0], target=low[0].target + 0.5), np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_resamples"):
        with_resampled_inputs(task, low, -1)


def test_pipeline_trains_on_the_augmented_inputs(tmp_path):
    import dataclasses

    config = PipelineConfig.quick("low_dose", n_train=3, n_test=1, count_resampling=2, baselines=False)
    result = run_task(config, tmp_path / "work", progress=False)
    assert result.info["n_train_examples"] == 9 and result.info["n_test_examples"] == 1
    warped = dataclasses.replace(config, anatomy_warps=1, autoencoder_steps=1, diffusion_steps=1)
    result = run_task(warped, tmp_path / "warped", progress=False)
    assert result.info["n_train_examples"] == 18  # (3 slices + 3 warped patients) x (1 + 2 resampled inputs)
    with pytest.raises(ValueError, match="anatomy_warps"):
        PipelineConfig(anatomy_warps=-1)


def test_atomic_directory_keeps_old_on_error_and_replaces_on_success(tmp_path):
    out = _old_report(tmp_path)
    with pytest.raises(RuntimeError):
        with atomic_directory(out) as folder:
            (folder / "new.txt").write_text("new")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in out.iterdir()) == ["marker.txt"]
    with atomic_directory(out) as folder:
        (folder / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_default_counts_keep_clinical_counts_per_pixel():
    # 1e6 counts on a 128 x 128 slice: 62,500 on the demo's 32 x 32 grid, 1e6 again at 128
    assert PipelineConfig(size=32).counts == 62_500.0
    assert PipelineConfig(size=128).simulation_config().total_counts == 1e6
    assert PipelineConfig(size=32, total_counts=2e4).simulation_config().counts == 2e4


@pytest.mark.parametrize("task", TASKS)
def test_residual_decode_only_with_a_physics_prior_like_the_target(task, tmp_path):
    # the residual decode passes the input's full-resolution content through: the prior (tracer separation: each
    # tracer's unmixing), never raw counts, and only where the prior is the same kind of sinogram as the target at
    # about its scale (not tracer conversion, whose input has several times the target's counts); the autoencoder
    # then learns inputs unlike its targets
    from tasks.ldm_runs import ldm_experiment

    residual_tasks = {"low_dose", "delayed_frame", "attenuation_correction", "tracer_separation"}
    input_tasks = {"delayed_frame", "attenuation_correction", "tracer_separation"}
    for prior in (True, False):
        model, _ = ldm_experiment(get_task(task), PipelineConfig.quick(task, physics_prior=prior), 8, tmp_path)
        assert model.residual_decode is (prior and task in residual_tasks) and model.mode == "bridge"
        assert model.autoencode_inputs is (prior and task in input_tasks)


def test_latent_factor_sets_the_autoencoder_levels(tmp_path):
    from tasks.ldm_runs import ldm_experiment

    task = get_task("low_dose")
    for factor, levels in ((2, (1, 2)), (4, (1, 2, 2)), (8, (1, 2, 2, 2))):
        model, _ = ldm_experiment(task, PipelineConfig.quick(latent_factor=factor), 8, tmp_path)
        assert model.autoencoder.channel_mults == levels and model.autoencoder.downsampling_factor == factor
    for bad in (3, 1, True):
        with pytest.raises(ValueError, match="latent_factor"):
            PipelineConfig.quick(latent_factor=bad)
    # None (the default): the task's own factor, 2 except low dose's 4; an explicit factor overrides it
    for name in TASKS:
        model, _ = ldm_experiment(get_task(name), PipelineConfig.quick(name), 8, tmp_path)
        assert model.autoencoder.downsampling_factor == (4 if name == "low_dose" else 2)
    model, _ = ldm_experiment(get_task("attenuation_correction"),
                               PipelineConfig.quick("attenuation_correction", latent_factor=4), 8, tmp_path)
    assert model.autoencoder.downsampling_factor == 4


def test_denoiser_channels_set_the_denoiser_width(tmp_path):
    from tasks.ldm_runs import ldm_experiment

    task = get_task("low_dose")
    model, _ = ldm_experiment(task, PipelineConfig.quick(), 8, tmp_path)
    assert model.denoiser.base_channels == 32  # the tiny preset's
    model, _ = ldm_experiment(task, PipelineConfig.quick(denoiser_channels=64), 8, tmp_path)
    assert model.denoiser.base_channels == 64 and model.denoiser.channel_mults == (1, 2)
    for bad in (0, 12, 64.0, True):
        with pytest.raises(ValueError, match="denoiser_channels"):
            PipelineConfig.quick(denoiser_channels=bad)
