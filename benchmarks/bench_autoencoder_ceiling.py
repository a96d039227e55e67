"""How well does the pretrained autoencoder reconstruct a task's sinograms, kept, fine-tuned or trained from scratch?

The autoencoder bounds what the diffusion stage can reach: a perfect
denoiser's output is the target's own latent, decoded
(:meth:`ldm.model.SinogramLDM.autoencoder_ceiling`, with the task's
residual decode). For each task, on the task's K training examples
(:func:`tasks.pipeline.model_examples`, 64 x 64 brain slices, the physics
prior, fair attention), this measures the relative L2 error of that
output against the target on the in-distribution test examples for

- ``pretrained, kept``: the shipped foundation model's autoencoder, its
  sinogram scale calibrated on the training examples (what fine-tuning used
  before ``PipelineConfig.finetune_autoencoder_steps``);
- ``pretrained + N fine-tuning steps``: the pipeline's autoencoder
  fine-tune (:func:`tasks.ldm_runs.train_ldm` with ``ldm_init``, no
  diffusion steps) on the examples' targets and inputs, for the tasks that
  autoencode their inputs (:attr:`tasks.task.PETTask.autoencode_inputs`;
  low dose keeps the pretrained autoencoder, so it has no such row);
- ``from scratch, M steps``: the same architecture's autoencoder trained
  from fresh weights on the same examples.

Writes ``--out`` ``.json`` and ``.md``. Run:
``python -m benchmarks.bench_autoencoder_ceiling`` (about 5 minutes per
task on a 2-core CPU, 1 torch thread).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from benchmarks.reports import write_results
from tasks.ldm_runs import autoencoder_steps, example_items, ldm_experiment, train_ldm
from tasks.metrics import summarise
from tasks.pipeline import model_examples
from tasks.pipeline_config import PipelineConfig
from tasks.registry import get_task
from tasks.sources import make_samples
from tasks.task import sample_projector

TASKS = ("low_dose", "attenuation_correction", "delayed_frame", "tracer_separation", "tracer_conversion")


def _batch(task, examples, config, projector) -> dict:
    from ldm.batches import collate

    items = example_items(task, examples, config, projector)
    return collate([items[i] for i in range(len(items))])


def relative_errors(model, batch: dict) -> list[float]:
    """Per-example relative L2 error of the model's autoencoder ceiling against the batch's targets."""
    import torch

    with torch.no_grad():
        output = model.autoencoder_ceiling(batch)
    target = batch["target"]
    return [float((o - t).norm() / t.norm()) for o, t in zip(output, target)]


def calibrate(model, batch: dict) -> None:
    """Calibrate the model's unset scales on ``batch`` as its first diffusion training step would."""
    import torch

    with torch.no_grad():
        model.loss(batch, "diffusion")


def run(task_name: str, k: int, n_test: int, finetune_steps: int, scratch_steps: int, seed: int,
        progress: bool) -> dict:
    """Errors of the three autoencoders of one task (module docstring)."""
    from ldm.model import SinogramLDM
    from ldm.weights import init_weights

    task = get_task(task_name)
    base = PipelineConfig(task=task_name, size=64, n_views=64, n_train=k, n_test=n_test, seed=seed,
                          ldm_init="foundation", diffusion_steps=0, unseen_test=())
    train, test = make_samples(base, progress=progress)
    _, train_ex, test_ex = model_examples(task, base, train, test, progress)
    projector = sample_projector(train[0])
    train_batch, test_batch = (_batch(task, ex, base, projector) for ex in (train_ex, test_ex))
    out: dict = {"task": task_name, "rows": []}

    model_config, _ = ldm_experiment(task, dataclasses.replace(base, diffusion_steps=1), len(train_ex), Path("unused"))
    kept = SinogramLDM(model_config)
    init_weights(kept, "foundation", calibrate_sinogram_scale=True)
    calibrate(kept.eval(), train_batch)
    out["rows"].append({"method": "pretrained, kept", "steps": 0, "errors": relative_errors(kept, test_batch)})
    tuned = dataclasses.replace(base, finetune_autoencoder_steps=finetune_steps)
    variants = ((("pretrained + fine-tuning", tuned, finetune_steps),) if autoencoder_steps(task, tuned) else ()) + (
        ("from scratch", dataclasses.replace(base, ldm_init=None, ldm_preset="foundation",
                                             autoencoder_steps=scratch_steps), scratch_steps),)
    for name, config, steps in variants:
        with tempfile.TemporaryDirectory() as work:
            started = time.perf_counter()
            model = train_ldm(task, train_ex, config, Path(work), projector, progress)
            seconds = time.perf_counter() - started
        calibrate(model, train_batch)
        out["rows"].append({"method": name, "steps": steps, "seconds": seconds,
                            "errors": relative_errors(model, test_batch)})
    return out


def markdown(report: dict) -> str:
    lines = [f"# Autoencoder ceiling of each task ({report['machine']}, {report['date']})", "",
             f"Command: `{report['command']}`", "",
             "Relative L2 error of a perfect denoiser's output (the target's own latent, decoded with the task's "
             "residual decode) against the target, on the in-distribution test examples; mean ± 95% CI.", "",
             "| task | autoencoder | training steps | relative error |", "|---|---|---|---|"]
    for task in report["tasks"]:
        for row in task["rows"]:
            lines.append(f"| {task['task']} | {row['method']} | {row['steps']} | "
                         f"{summarise(row['errors']).format(3)} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--examples", type=int, default=16, help="K paired training examples")
    parser.add_argument("--n-test", type=int, default=8)
    parser.add_argument("--finetune-steps", type=int, default=200)
    parser.add_argument("--scratch-steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/autoencoder_ceiling")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    report = {"machine": f"{platform.machine()}, CPU only", "date": time.strftime("%Y-%m-%d"),
              "command": "python -m benchmarks.bench_autoencoder_ceiling " + " ".join(sys.argv[1:] if argv is None
                                                                                      else argv),
              "tasks": [run(t, args.examples, args.n_test, args.finetune_steps, args.scratch_steps, args.seed,
                            not args.no_progress) for t in args.tasks]}
    write_results(Path(args.out), report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
