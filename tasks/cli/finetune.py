"""``allpet finetune``: adapt the pretrained foundation model to one task from a few paired examples.

Examples::

    allpet simulate --task low_dose --n 80 --size 64 --views 64 --region brain --out data/ld64
    allpet finetune --task low_dose --data data/ld64 --examples 16 --out runs/ld16

It is ``allpet train`` on the model's own config (``--model``: the shipped
``foundation`` weights by default, or a weights, run or checkpoint folder)
with these changes: the data are the first ``--examples`` pairs of the
``allpet simulate`` folder ``--data``, conditioned as ``allpet demo``
conditions them (the task's physics prior, :attr:`tasks.task.PETTask.prior_model_input`);
the model becomes the input-to-target bridge that predicts ``z0``, as the
pretrained denoiser does, with the task's residual decode; training starts
from the pretrained weights (``train.init_from``), keeps the pretrained
autoencoder and its latent scale (or, for tasks whose inputs are another
kind of sinogram, :attr:`tasks.task.PETTask.autoencode_inputs`, fine-tunes
the autoencoder on the inputs and targets for ``--autoencoder-steps`` first,
default 200, latent scale kept), calibrates the
sinogram scale on the task's data (``train.calibrate_sinogram_scale``: the
pretrained autoencoder sees them at the level it was trained at, whatever
their counts) and runs ``--steps`` diffusion steps. The
prompt's task label is the folder's task. Further ``KEY=VALUE`` overrides
follow these. The fine-tuned run is a checkpoint for :func:`ldm.weights.load_model`,
for task runs (``PipelineConfig.ldm_init``) and for ``allpet sample --checkpoint
RUN --input DIR`` on an ``allpet simulate`` folder of the task (each input gets
the folder's task label and its sinogram window).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from .errors import command

__all__ = ["finetune_overrides", "main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="allpet finetune", description=__doc__.split(": ", 1)[1].split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="further config overrides")
    parser.add_argument("--task", required=True, help="the task of the --data folder (e.g. low_dose)")
    parser.add_argument("--data", required=True, help="an allpet simulate folder of that task")
    parser.add_argument("--examples", type=int, required=True, help="paired examples to adapt on (its first K)")
    parser.add_argument("--model", default="foundation", help="pretrained weights (default: the shipped foundation)")
    parser.add_argument("--steps", type=int, default=400, help="diffusion fine-tuning steps (default 400)")
    parser.add_argument("--autoencoder-steps", type=int, default=None,
                        help="autoencoder fine-tuning steps (default: 200 for tasks whose inputs are another kind of "
                             "sinogram than the targets, else 0)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size (at most --examples; default 8)")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def finetune_overrides(task_name: str, data: Path, examples: int, model: str, steps: int, batch_size: int,
                       out: Path, autoencoder_steps: Optional[int] = None) -> list[str]:
    """The ``allpet train`` overrides of a fine-tune (module docstring); checks the folder first."""
    from pet_projection.simulation import SimulatedDataset

    from ..pipeline_config import PipelineConfig
    from ..registry import get_task

    task = get_task(task_name)
    if examples < 1 or steps < 1 or batch_size < 1:
        raise ValueError("--examples, --steps and --batch-size must be positive")
    autoencode_inputs = task.residual_decode and task.autoencode_inputs
    if autoencoder_steps is None:
        autoencoder_steps = PipelineConfig.finetune_autoencoder_steps if autoencode_inputs else 0
    if autoencoder_steps < 0:
        raise ValueError("--autoencoder-steps must be >= 0")
    folder = SimulatedDataset(data)
    if folder.task != task.name:
        raise ValueError(f"{data} holds a {folder.task!r} dataset, not {task.name!r}")
    projector = folder[0].metadata["projector"]
    return ["data.source=folder", "data.task=paired", f"data.path={data}", f"data.max_examples={examples}",
            f"data.image_size={projector['grid_shape'][-1]}", f"data.voxel_size_mm={projector['voxel_size_mm'][-1]}",
            f"data.n_views={projector['n_views']}", f"data.n_bins={projector['n_bins']}",
            f"data.bin_width_mm={projector['bin_width_mm']}", f"data.model_input={task.prior_model_input}",
            f"data.prior_fwhm_voxels={task.prior_fwhm_voxels}", "model.mode=bridge", "model.prediction_type=sample",
            f"model.residual_decode={str(task.residual_decode).lower()}", f"train.init_from={model}",
            "train.calibrate_sinogram_scale=true",
            f"model.autoencode_inputs={str(autoencode_inputs).lower()}",
            f"train.stages.autoencoder.steps={autoencoder_steps}", "train.stages.autoencoder.lr=4.0e-4",
            f"train.stages.autoencoder.warmup_steps={min(50, autoencoder_steps // 10)}",
            f"train.stages.diffusion.steps={steps}",
            f"train.stages.diffusion.warmup_steps={min(50, steps // 10)}", "train.stages.diffusion.lr=2.0e-4",
            f"train.batch_size={min(batch_size, examples * task.n_outputs)}", f"train.out_dir={out}",
            f"train.checkpoint_every={steps + autoencoder_steps}", f"train.log_every={max(1, min(25, steps // 10))}"]


@command("finetune")
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``allpet finetune``; returns the exit code."""
    from ldm.checkpoints import CONFIG_FILE
    from ldm.weights import SHIPPED_MODELS, load_model, shipped_weights

    from . import train

    args = _parser().parse_intermixed_args(argv)
    model = shipped_weights(args.model) if args.model in SHIPPED_MODELS else Path(args.model)
    _, _, folder = load_model(model)  # a missing or broken model fails before the data are read
    overrides = finetune_overrides(args.task, Path(args.data), args.examples, str(model), args.steps,
                                   args.batch_size, Path(args.out), args.autoencoder_steps)
    train_args = ["--config", str(folder / CONFIG_FILE), *overrides, *args.overrides]
    if args.no_progress:
        train_args.append("--no-progress")
    return train.main(train_args)


if __name__ == "__main__":
    raise SystemExit(main())
