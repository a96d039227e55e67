"""``allpet pretrain``: pretrain the foundation model (the ``foundation`` preset) and export it as shipped weights.

Examples::

    allpet pretrain                                   # runs/foundation/, resumes where a killed run stopped
    allpet pretrain --export ldm/weights/foundation   # ... then write the weights folder the package ships
    allpet pretrain --out runs/f2 train.stages.diffusion.steps=20000 data.n_bases=1000   # a larger run
    torchrun --nproc_per_node 4 -m tasks.cli.pretrain --out runs/f4                      # 4 GPUs (DDP)

It is ``allpet train --config foundation --resume`` with ``train.out_dir``
set to ``--out`` (the same checkpoints, logs and exact resume); ``--export``
then writes the newest checkpoint's EMA weights, the config and a model card
(:func:`model_card`: command, data, steps, samples seen, time, machine) as a
weights folder (:mod:`ldm.weights`).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

from .errors import command

__all__ = ["main", "model_card"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="allpet pretrain", description=__doc__.split(": ", 1)[1].split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="overrides of the foundation preset, e.g. train.stages.diffusion.steps=20000")
    parser.add_argument("--out", default="runs/foundation", help="run folder (default runs/foundation)")
    parser.add_argument("--export", default=None, metavar="DIR",
                        help="after training, write the weights folder DIR (e.g. ldm/weights/foundation)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this global step")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _log_rows(run: Path, stage: str) -> list[dict[str, str]]:
    path = run / f"log_{stage}.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _stages(run: Path, config: Any, step: int, totals: dict[str, int]) -> tuple[list[tuple[str, str]], float]:
    """``("<stage> stage", "N steps x batch = M examples; last logged loss L")`` of each stage run trained (up to
    global ``step``), and its logged training seconds; adds each stage's examples to ``totals``."""
    stages, elapsed, before = [], 0.0, 0
    for stage, stage_config in config.train.stages.items():
        done = min(stage_config.steps, max(0, step - before))
        before += stage_config.steps
        if done == 0:
            continue
        logged = [row for row in _log_rows(run, stage) if int(row.get("step", 0)) <= step]  # logged global steps
        elapsed += sum(float(row.get("elapsed_s", 0.0)) for row in logged)
        loss = f"{float(logged[-1]['loss']):.4f}" if logged else "not logged"
        examples = done * config.train.batch_size
        totals[stage] = totals.get(stage, 0) + examples
        stages.append((f"{stage} stage", f"{done} steps x {config.train.batch_size} = {examples:,} examples; "
                                         f"last logged loss {loss}"))
    return stages, elapsed


def model_card(run: Path, checkpoint: Path, command_line: str, n_parameters: int) -> str:
    """The model card (Markdown) of run folder ``run`` exported from ``checkpoint``."""
    import numpy as np
    import torch

    from ldm.checkpoints import CONFIG_FILE, checkpoint_step, read_run_config, run_lineage
    from ldm.foundation_data import BaseSlices, describe_bases
    from ldm.training_data import BASE_SLICES_FILE

    config = read_run_config(checkpoint / CONFIG_FILE)
    step = checkpoint_step(checkpoint)
    lines = ["# ALL-PET foundation model", "",
             "One prompted sinogram latent diffusion model (task, tracer, region: `ldm.prompts`) of sinogram",
             "windows (`ldm.windows`), pretrained on simulated slices as RMAS/DMM inpainting (mask and",
             "complement) and prompted synthesis examples (`ldm.foundation_data`); `ldm.weights.load_model` loads it.",
             "", "| | |", "|---|---|",
             f"| command | `{command_line}` |",
             f"| exported | {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} from `{checkpoint.name}` |",
             f"| parameters | {n_parameters:,} |",
             f"| seed | {config.train.seed} |",
             f"| DMM layout | {config.data.layout or 'enumerated'} (`data.layout`) |",
             f"| global step | {step} of {config.train.total_steps} |"]
    earlier, rows = run_lineage(config), []
    totals: dict[str, int] = {}
    elapsed = 0.0
    for ancestor_run, ancestor_config, ancestor_step in [*earlier, (run, config, step)]:
        stages, seconds = _stages(ancestor_run, ancestor_config, ancestor_step, totals)
        elapsed += seconds
        if ancestor_run != run:
            done = "; ".join(f"{name}: {text}" for name, text in stages)
            rows.append(f"| continues | `{ancestor_run}` (seed {ancestor_config.train.seed}, DMM layout "
                        f"{ancestor_config.data.layout or 'enumerated'}): {done}; {seconds / 60:.1f} min |")
        else:
            rows += [f"| {name} | {text} |" for name, text in stages]
    lines += rows
    if earlier:
        lines.append("| in all | " + "; ".join(f"{stage} {n:,} examples" for stage, n in totals.items()) + " |")
    lines.append(f"| training time | {elapsed / 60:.1f} min{' in all' if earlier else ''} |")
    device = f"CUDA {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "no GPU"
    lines.append(f"| machine | {platform.machine()}, {os.cpu_count()} CPU cores, {device}, torch {torch.__version__}, "
                 f"torch threads: {config.train.cpu_threads or 'default'} |")
    bases_path = run / BASE_SLICES_FILE
    if bases_path.is_file():
        with np.load(bases_path, allow_pickle=False) as archive:
            counts = describe_bases(BaseSlices(**{key: archive[key] for key in archive.files if key != "settings"}))
        lines.append(f"| data | {counts['n']} simulated base slices of {config.data.image_size} x "
                     f"{config.data.image_size} pixels, {config.data.n_views} views; per tracer {counts['tracers']}; "
                     f"per region {counts['regions']} |")
    lines += ["", "The full configuration is `config.yaml` beside this card; docs/foundation.md says what was",
              "reached and what a larger run would need.", ""]
    return "\n".join(lines)


@command("pretrain")
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``allpet pretrain``; returns the exit code."""
    from . import train

    args = _parser().parse_intermixed_args(argv)
    run = Path(args.out)
    train_args = ["--config", "foundation", f"train.out_dir={run}", "--resume", *args.overrides]
    if args.max_steps is not None:
        train_args += ["--max-steps", str(args.max_steps)]
    if args.no_progress:
        train_args.append("--no-progress")
    code = train.main(train_args)
    if code or args.export is None:
        return code
    from ldm.weights import export_weights, load_model

    model, _, checkpoint = load_model(run)
    n_parameters = sum(parameter.numel() for parameter in model.parameters())
    command_line = "allpet pretrain " + shlex.join(argv if argv is not None else sys.argv[1:])
    export_weights(run, args.export, model_card(run, checkpoint, command_line, n_parameters))
    print(f"allpet pretrain: wrote {args.export} from {checkpoint}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
