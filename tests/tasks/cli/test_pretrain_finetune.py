"""allpet pretrain (export of shipped weights) and allpet finetune (few-shot adaptation) at tiny sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from ldm.prompts import PROMPT_TASKS  # noqa: E402
from ldm.weights import init_weights, is_weights_folder, load_model  # noqa: E402
from tasks.cli import main as allpet  # noqa: E402

TINY = ["data.n_bases=4", "data.image_size=16", "data.n_views=16", "data.n_bins=16", "data.window_views=[16,24]",
        "data.window_bins=[16]", "data.cells_per_side=4", "data.n_active=[1,4]", "data.shape_fraction=0.0",
        "model.autoencoder.base_channels=8", "model.autoencoder.norm_groups=4", "model.denoiser.base_channels=16",
        "model.denoiser.norm_groups=4", "train.stages.autoencoder.steps=2", "train.stages.diffusion.steps=2",
        "train.batch_size=4", "train.cpu_threads=1"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    assert allpet(["pretrain", "--out", str(root / "run"), "--export", str(root / "weights"), "--no-progress",
                   *TINY]) == 0
    return root


def test_pretrain_exports_a_weights_folder_with_its_model_card(pretrained):
    weights = pretrained / "weights"
    assert is_weights_folder(weights) and not is_weights_folder(pretrained / "run")
    card = (weights / "MODEL_CARD.md").read_text()
    assert "| global step | 4 of 4 |" in card and "4 simulated base slices" in card and "allpet pretrain" in card
    model, config, folder = load_model(weights)
    assert folder == weights and config.model.n_tasks == 7 and config.model.coordinate_channels
    run_model, _, _ = load_model(pretrained / "run")  # the run's newest EMA weights are what was exported
    for (name, value), other in zip(model.state_dict().items(), run_model.state_dict().values()):
        torch.testing.assert_close(value, other, rtol=0, atol=0, msg=name)


def test_the_model_card_of_a_continued_pretraining_counts_every_run_of_its_lineage(pretrained):
    more = pretrained / "more"
    assert allpet(["pretrain", "--out", str(more / "run"), "--export", str(more / "weights"), "--no-progress", *TINY,
                   f"train.init_from={pretrained / 'run'}", "train.stages.autoencoder.steps=0",
                   "train.stages.diffusion.steps=3", "data.layout=every"]) == 0
    card = (more / "weights" / "MODEL_CARD.md").read_text()
    first = f"| continues | `{pretrained / 'run'}` (seed 0, DMM layout enumerated): autoencoder stage: 2 steps x 4"
    assert first + " = 8 examples" in card
    assert "| diffusion stage | 3 steps x 4 = 12 examples;" in card and "autoencoder stage |" not in card
    assert "| in all | autoencoder 8 examples; diffusion 20 examples |" in card  # 2 x 4 before, 3 x 4 now
    assert "| DMM layout | every (`data.layout`) |" in card and "min in all |" in card


def test_init_weights_refuses_another_architecture(pretrained):
    from ldm.model import LDMConfig, SinogramLDM

    other = SinogramLDM(LDMConfig(autoencoder={"base_channels": 8, "norm_groups": 4, "channel_mults": (1, 2, 2)},
                                  denoiser={"base_channels": 16, "norm_groups": 4}))
    with pytest.raises(ValueError, match="another architecture"):
        init_weights(other, str(pretrained / "weights"))
    with pytest.raises(ValueError, match="holds no model"):
        load_model(pretrained)


def test_init_weights_can_leave_the_sinogram_scale_to_the_new_data(pretrained):
    model, _, _ = load_model(pretrained / "weights")
    pretrained_scale = float(model.sinogram_scale)
    init_weights(model, str(pretrained / "weights"), calibrate_sinogram_scale=True)
    assert float(model.sinogram_scale) == 0.0 and float(model.latent_scale) > 0.0
    target = 7.0 * pretrained_scale * torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    window = torch.tensor([[0.0, torch.pi / 16, -64.0, 8.0]] * 2, dtype=torch.float64)
    batch = {"target": target, "input": torch.zeros_like(target), "mask": torch.zeros_like(target),
             "window": window, "task": torch.tensor([0, 0])}
    model.train().loss(batch, "diffusion")
    torch.testing.assert_close(float(model.sinogram_scale), float(target.double().square().mean().sqrt()))


def test_finetune_adapts_the_denoiser_and_keeps_the_pretrained_autoencoder(pretrained, tmp_path, capsys):
    data = tmp_path / "ld"
    assert allpet(["simulate", "--task", "low_dose", "--n", "3", "--size", "16", "--views", "16", "--region",
                   "brain", "--dose-factors", "20", "--out", str(data), "--quiet"]) == 0
    run = tmp_path / "ft"
    assert allpet(["finetune", "--task", "low-dose", "--data", str(data), "--examples", "2", "--steps", "2",
                   "--model", str(pretrained / "weights"), "--out", str(run), "--no-progress"]) == 0
    before, _, _ = load_model(pretrained / "weights")
    after, config, _ = load_model(run)
    assert config.model.mode == "bridge" and config.data.max_examples == 2
    for name, value in before.autoencoder.state_dict().items():
        torch.testing.assert_close(after.autoencoder.state_dict()[name], value, rtol=0, atol=0, msg=name)
    # the pretrained latent scale is kept, the sinogram scale is calibrated on the task's (other) count level
    assert float(after.latent_scale) == float(before.latent_scale)
    assert config.train.calibrate_sinogram_scale and float(after.sinogram_scale) != float(before.sinogram_scale)
    changed = [name for name, value in before.denoiser.state_dict().items()
               if not torch.equal(after.denoiser.state_dict()[name], value)]
    assert changed, "fine-tuning left the denoiser unchanged"
    # allpet sample gives the fine-tuned model the folder's task label and window
    assert allpet(["sample", "--checkpoint", str(run), "--input", str(data), "--steps", "2", "--recon", "none",
                   "--out", str(tmp_path / "samples"), "--no-progress"]) == 0
    with np.load(tmp_path / "samples" / "samples.npz") as samples:
        assert samples["sinogram"].shape == (3, 16, 16) and np.isfinite(samples["sinogram"]).all()
        assert samples["task"].tolist() == [PROMPT_TASKS.index("low_dose")] * 3
    capsys.readouterr()
    assert allpet(["finetune", "--task", "delayed_frame", "--data", str(data), "--examples", "2",
                   "--model", str(pretrained / "weights"), "--out", str(tmp_path / "x")]) == 2
    assert "holds a 'low_dose' dataset, not 'delayed_frame'" in capsys.readouterr().err


def test_finetune_adapts_the_autoencoder_to_attenuation_correction_inputs(pretrained, tmp_path):
    data = tmp_path / "ac"
    assert allpet(["simulate", "--task", "attenuation_correction", "--n", "2", "--size", "16", "--views", "16",
                   "--region", "brain", "--out", str(data), "--quiet"]) == 0
    run = tmp_path / "ft"
    assert allpet(["finetune", "--task", "attenuation_correction", "--data", str(data), "--examples", "2",
                   "--steps", "1", "--autoencoder-steps", "2", "--model", str(pretrained / "weights"),
                   "--out", str(run), "--no-progress"]) == 0
    before, _, _ = load_model(pretrained / "weights")
    after, config, _ = load_model(run)
    assert config.model.autoencode_inputs and config.train.stages["autoencoder"].steps == 2
    changed = [name for name, value in before.autoencoder.state_dict().items()
               if not torch.equal(after.autoencoder.state_dict()[name], value)]
    assert changed, "the autoencoder was not fine-tuned"
    assert float(after.latent_scale) == float(before.latent_scale)
