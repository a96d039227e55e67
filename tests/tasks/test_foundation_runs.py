"""Task runs from the foundation model: prompted items, fine-tuning pretrained weights, the same model from scratch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from ldm.prompts import PROMPT_TASKS  # noqa: E402
from ldm.weights import load_model  # noqa: E402
from ldm.windows import window_row  # noqa: E402
from pet_projection import ImageGrid, ParallelBeamGeometry  # noqa: E402
from tasks.ldm_runs import PromptedItems, ldm_experiment  # noqa: E402
from tasks.pipeline import run_task  # noqa: E402
from tasks.pipeline_config import PipelineConfig  # noqa: E402
from tasks.registry import get_task  # noqa: E402
from tasks.report import comparison_table  # noqa: E402
from tasks.results import METHOD_LDM, METHOD_SCRATCH, METHOD_UNET, METHOD_UNSUPERVISED  # noqa: E402
from tests.tasks.test_synthesis import write_tiny_weights  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_prompted_items_carry_the_task_or_inpainting_the_labels_and_the_window():
    geometry = ParallelBeamGeometry(ImageGrid((8, 8), voxel_size_mm=4.0), 6, 8, 4.0)
    paired = {"input": torch.ones(1, 6, 8), "mask": torch.ones(1, 6, 8)}
    rmas = {"input": torch.ones(1, 6, 8), "mask": torch.zeros(1, 6, 8), "tracer": torch.tensor(1)}
    items = PromptedItems([paired, rmas], "low_dose", tracer=3, region=0, row=window_row(geometry))
    first, second = items[0], items[1]
    assert int(first["task"]) == PROMPT_TASKS.index("low_dose") and int(first["tracer"]) == 3
    assert int(second["task"]) == PROMPT_TASKS.index("inpainting") and int(second["tracer"]) == 1
    assert int(first["region"]) == 0
    np.testing.assert_allclose(first["window"].numpy(), [0.0, np.pi / 6, -14.0, 4.0])


def test_fine_tuning_keeps_the_pretrained_architecture_and_autoencoder(tmp_path):
    weights = write_tiny_weights(tmp_path / "tiny")
    config = PipelineConfig.quick(ldm_init=str(weights), unseen_test=(), unsupervised=True, scratch_steps=2)
    model_config, train_config = ldm_experiment(get_task("low_dose"), config, 8, tmp_path / "run")
    pretrained, pretrained_config, _ = load_model(weights)
    assert model_config.mode == "bridge" and model_config.coordinate_channels
    assert model_config.denoiser == pretrained_config.model.denoiser
    assert train_config.stages["autoencoder"].steps == 0 and train_config.init_from == str(weights)
    assert train_config.calibrate_sinogram_scale  # the task's count level, not the pretraining's
    result = run_task(config, tmp_path / "work", progress=False)
    for method in (METHOD_LDM, METHOD_UNSUPERVISED, METHOD_SCRATCH):
        rows = [record for record in result.records if record["method"] == method]
        assert len(rows) == config.n_test and all(np.isfinite(record["psnr"]) for record in rows)
    # the same architecture from scratch: its own run folder, fresh weights, both stages trained
    scratch, scratch_config, _ = load_model(tmp_path / "work" / "ldm_scratch")
    assert scratch_config.train.init_from is None and scratch_config.train.stages["autoencoder"].steps == 2
    assert any(not torch.equal(scratch.autoencoder.state_dict()[name], value)
               for name, value in pretrained.autoencoder.state_dict().items())
    assert [row[0] for row in comparison_table(result)[1]][-2:] == [f"{METHOD_UNET}: PSNR (dB)",
                                                                    f"{METHOD_SCRATCH}: PSNR (dB)"]
    tuned, _, _ = load_model(tmp_path / "work" / "ldm")
    for name, value in pretrained.autoencoder.state_dict().items():
        torch.testing.assert_close(tuned.autoencoder.state_dict()[name], value, rtol=0, atol=0, msg=name)


def test_fine_tuning_adapts_the_autoencoder_where_the_inputs_are_another_kind_of_sinogram(tmp_path):
    weights = write_tiny_weights(tmp_path / "tiny")
    config = PipelineConfig.quick("attenuation_correction", ldm_init=str(weights), baselines=False, unseen_test=(),
                                  finetune_autoencoder_steps=3)
    model_config, train_config = ldm_experiment(get_task("attenuation_correction"), config, 8, tmp_path / "run")
    assert model_config.autoencode_inputs and model_config.residual_decode
    assert train_config.stages["autoencoder"].steps == 3 and train_config.init_from == str(weights)
    run_task(config, tmp_path / "work", progress=False)
    pretrained, tuned = load_model(weights)[0], load_model(tmp_path / "work" / "ldm")[0]
    changed = [name for name, value in pretrained.autoencoder.state_dict().items()
               if not torch.equal(tuned.autoencoder.state_dict()[name], value)]
    assert changed
    assert torch.equal(tuned.latent_scale, pretrained.latent_scale)  # the pretrained denoiser's latent units


def test_the_same_architecture_from_scratch_trains_both_stages(tmp_path):
    config = PipelineConfig.quick(ldm_preset="foundation", baselines=False, unseen_test=())
    model_config, train_config = ldm_experiment(get_task("low_dose"), config, 8, tmp_path)
    assert model_config.n_tasks == len(PROMPT_TASKS) and model_config.coordinate_channels
    assert model_config.sinogram_scale is None and train_config.init_from is None
    assert train_config.stages["autoencoder"].steps == config.autoencoder_steps


def test_the_scratch_reference_needs_pretrained_weights_to_compare_with():
    with pytest.raises(ValueError, match="set ldm_init"):
        PipelineConfig.quick(scratch_steps=10)


def test_unsupervised_sampling_is_for_low_dose_only():
    with pytest.raises(ValueError, match="low_dose task only"):
        PipelineConfig.quick("delayed_frame", unsupervised=True)
