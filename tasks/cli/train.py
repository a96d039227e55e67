"""``allpet train``: train the sinogram autoencoder and latent diffusion model from a config.

Examples::

    allpet train --config tiny                          # CPU, minutes; writes runs/tiny/
    allpet train --config paper train.out_dir=runs/p1   # dotted overrides, values parsed as YAML
    allpet train --config my.yaml --resume              # continue after a kill, bit-identical
    torchrun --nproc_per_node 4 -m tasks.cli.train --config paper            # 4 GPUs (DDP)
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d \\
        --rdzv_endpoint HOST:29500 -m tasks.cli.train --config paper         # 2 nodes

The run folder gets ``config.yaml`` (the resolved config), ``log_<stage>.csv``
and ``checkpoints/step_NNNNNNNN/`` (see :mod:`ldm.checkpoints`); ``allpet sample``
reads a checkpoint folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from pet_projection.io.files import atomic_write, check_writable_folder

from .errors import command

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="allpet train", description=__doc__.split(": ", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True,
                        help="preset name (tiny, paper) or a YAML file (which may start from a preset with base: NAME)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides with dotted keys, e.g. train.batch_size=16 data.n_bases=128")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in train.out_dir (a fresh start if there is none)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop after this global step (checkpoints as configured), e.g. for a time-limited job")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    return parser


# train.* keys a resumed run may change: where and how fast it runs, how often it logs and saves; any other
# change (batch size, seed, stages, optimiser, precision, EMA) would not continue the same run
RESUMABLE_TRAIN_KEYS = ("out_dir", "device", "cpu_threads", "num_workers", "checkpoint_every", "log_every",
                        "keep_checkpoints", "gradient_checkpointing", "find_unused_parameters")


def _flat(data: Any, prefix: str) -> dict[str, Any]:
    """A nested mapping as ``{"section.key.subkey": value}``."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}.{key}"))
    return out


def _check_resumable(saved_path: Path, config: dict) -> None:
    """The run's saved config must equal the new one, but for :data:`RESUMABLE_TRAIN_KEYS` (else resuming is wrong).

    The saved config is resolved first, so keys added since the run was
    started compare at their defaults. A broken file is an error naming it.
    """
    from ldm.checkpoints import read_run_config
    from ldm.experiment import config_to_dict

    saved = config_to_dict(read_run_config(saved_path))
    free = {f"train.{key}" for key in RESUMABLE_TRAIN_KEYS}
    for section in ("model", "data", "train"):
        old, new = _flat(saved.get(section, {}), section), _flat(config[section], section)
        changed = sorted(key for key in set(old) | set(new) if key not in free and old.get(key) != new.get(key))
        if changed:
            raise ValueError(f"cannot resume: {changed[0]} differs from the run's {saved_path} "
                             f"({old.get(changed[0])!r} there, {new.get(changed[0])!r} now); "
                             f"use another train.out_dir for a new run")


@command("train")
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``allpet train``; returns the exit code (0 done, 2 bad config or arguments, 130 after Ctrl-C).

    Arguments, the config and the output folder are checked before any data is built.
    """
    args = _parser().parse_intermixed_args(argv)
    try:
        import yaml

        from ldm.experiment import config_to_dict
        from ldm.presets import load_config
    except ImportError as error:
        print(f"allpet train needs the ldm extra (pip install 'allpet[ldm]'): {error}", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config, args.overrides)
    except (ValueError, TypeError) as error:
        raise type(error)(f"bad config: {error}") from None
    plain = config_to_dict(config)
    if args.print_config:
        print(yaml.safe_dump(plain, sort_keys=False), end="")
        return 0
    if args.max_steps is not None and args.max_steps < 0:
        raise ValueError("--max-steps must be >= 0")

    from ldm.training_data import UNMIXING_WEIGHTS_FILE, build_training_data
    from tasks.attention_inputs import EditedAttention
    from tasks.model_inputs import fit_unmixing_weights, folder_model_input
    from ldm.checkpoints import CONFIG_FILE, find_checkpoint
    from ldm.model import SinogramLDM
    from ldm.runtime import init_distributed, seed_everything, seed_for, set_cpu_threads
    from ldm.trainer import Trainer

    out_dir = Path(config.train.out_dir)
    check_writable_folder(out_dir)
    if find_checkpoint(out_dir) is not None and not args.resume:
        raise ValueError(f"{out_dir} already holds checkpoints: pass --resume to continue that run, or choose "
                         f"another train.out_dir")
    if args.resume and (out_dir / CONFIG_FILE).is_file():
        _check_resumable(out_dir / CONFIG_FILE, plain)
    if config.train.cpu_threads is not None:
        set_cpu_threads(config.train.cpu_threads)
    import torch.distributed as dist

    joined = dist.is_available() and not dist.is_initialized()  # whether this call creates the process group
    try:
        env = init_distributed(config.train.device)
        seed_everything(seed_for(config.train.seed))  # the same initial weights on every process
        labels = [name for name, count in (("tracer", config.model.n_tracers), ("region", config.model.n_regions),
                                           ("task", config.model.n_tasks)) if count]
        data = build_training_data(config.data, config.train.seed, labels, folder_model_input(config.data),
                                   fit_unmixing_weights, cache_dir=out_dir, progress=not args.no_progress,
                                   window=config.model.coordinate_channels,
                                   attention=EditedAttention(None, config.data.attention))
        model = SinogramLDM(config.model_config())
        if config.train.init_from is not None:
            from ldm.weights import init_weights

            folder = init_weights(model, config.train.init_from, config.train.calibrate_sinogram_scale)
            print(f"allpet train: starting from the weights of {folder}", file=sys.stderr)
        trainer = Trainer(model, config.train, data.dataset, collate_fn=data.collate_fn, run_config=plain,
                          device=env.device, progress=not args.no_progress)
        if trainer.is_main and data.input_weights is not None:  # sampling conditions its inputs with them too
            out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(out_dir / UNMIXING_WEIGHTS_FILE, lambda handle: np.save(handle, data.input_weights))
        if trainer.is_main:
            n_params = sum(param.numel() for param in model.parameters())
            print(f"allpet train: {n_params:,} parameters; {data.description}; {env.world_size} process(es) on "
                  f"{env.device}; writing to {out_dir}", file=sys.stderr)
        resumed = trainer.resume() if args.resume else None
        if resumed is not None and trainer.is_main:
            print(f"allpet train: resumed from {resumed} (step {trainer.state.step})", file=sys.stderr)
        state = trainer.fit(max_steps=args.max_steps)
        if trainer.is_main:
            print(f"allpet train: stopped at step {state.step} of {trainer.total_steps}; newest checkpoint "
                  f"{find_checkpoint(out_dir)}", file=sys.stderr)
    finally:
        if joined and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
