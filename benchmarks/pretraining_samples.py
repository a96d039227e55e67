"""The examples a foundation pretraining actually showed its denoiser: how many, how many distinct, of which layouts.

Replays the data order of a run folder and of every run it continues
(``train.init_from``, :func:`ldm.checkpoints.run_lineage`) without training:
the same :class:`~ldm.batch_order.EpochBatchSampler` batches, the same
:class:`~ldm.RMASDataset` items (from the run's cached base slices) and the
same :class:`~ldm.foundation_data.FoundationCollate` roles. For the diffusion
stage's batches it counts the items, the synthesis examples (prompt only,
nothing known), the inpainting examples and among those the distinct
``(base slice, known rays)`` pairs (the known rays are the DMM or random-shape
mask or its complement), per DMM layout.

Run: ``python -m benchmarks.pretraining_samples runs/foundation_every`` (17
minutes for 256,000 items on a 2-core CPU shared with other jobs); ``--out``
gets ``.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from benchmarks.reports import write_results
from ldm.batch_order import EpochBatchSampler
from ldm.checkpoints import CONFIG_FILE, checkpoint_step, find_checkpoint, read_run_config, run_lineage
from ldm.training_data import build_training_data


def _known_key(base: int, known: np.ndarray) -> bytes:
    return hashlib.blake2b(np.packbits(known.astype(bool)).tobytes(), digest_size=16,
                           key=int(base).to_bytes(4, "little")).digest()


def replay(run: Path, config: Any, step: int, progress: bool = False) -> dict:
    """Counts of one run's diffusion-stage examples up to global ``step`` (module docstring); ``keys`` holds the
    distinct (base, known rays) digests of its inpainting examples."""
    from tqdm import tqdm

    data = build_training_data(config.data, config.train.seed, cache_dir=run, progress=False)
    dataset, collate = data.dataset, data.collate_fn
    stages = list(config.train.stages.items())
    before = sum(stage.steps for name, stage in stages[:[n for n, _ in stages].index("diffusion")])
    first, last = before, min(step, before + config.train.stages["diffusion"].steps)
    sampler = EpochBatchSampler(len(dataset), config.train.batch_size, seed=config.train.seed)
    counts = {"run": str(run), "seed": config.train.seed, "layout": config.data.layout or "enumerated",
              "items": 0, "synthesis": 0, "inpainting": 0, "shape_masks": 0, "keys": set()}
    order, epoch = None, -1
    for batch in tqdm(range(first, last), desc=f"replaying {run.name}", disable=not progress):
        if batch // sampler.batches_per_epoch != epoch:
            epoch = batch // sampler.batches_per_epoch
            dataset.set_epoch(epoch)
            order = sampler.epoch_order(epoch)
        start = (batch % sampler.batches_per_epoch) * sampler.batch_size
        items = [dataset[int(index)] for index in order[start:start + sampler.batch_size]]
        synthesis, complement = collate.roles(items)
        counts["items"] += len(items)
        counts["synthesis"] += int(synthesis.sum())
        for item, is_synthesis, is_complement in zip(items, synthesis, complement):
            if is_synthesis:
                continue
            counts["inpainting"] += 1
            counts["shape_masks"] += int(item["sample_id"]) < 0
            known = item["mask"].numpy() > 0.5
            counts["keys"].add(_known_key(int(item["base_index"]), ~known if is_complement else known))
    return counts


def lineage_counts(run: Path, progress: bool = False) -> list[dict]:
    """:func:`replay` of ``run`` (its newest checkpoint) and of each run it continues, oldest first."""
    checkpoint = find_checkpoint(run)
    if checkpoint is None:
        raise ValueError(f"{run} has no checkpoint: not a training run")
    config = read_run_config(checkpoint / CONFIG_FILE)
    chain = [*run_lineage(config), (Path(run), config, checkpoint_step(checkpoint))]
    return [replay(folder, run_config, step, progress) for folder, run_config, step in chain]


def markdown(report: dict) -> str:
    lines = [f"# The foundation pretraining's diffusion examples ({report['date']})", "",
             f"Command: `{report['command']}` (a replay of the data order; nothing is trained).", "",
             "| run | seed | DMM layout | items | synthesis (prompt only) | inpainting | of which random shapes | "
             "distinct (base, known rays) |", "|---|---|---|---|---|---|---|---|"]
    for row in report["runs"]:
        lines.append(f"| `{row['run']}` | {row['seed']} | {row['layout']} | {row['items']:,} | {row['synthesis']:,} | "
                     f"{row['inpainting']:,} | {row['shape_masks']:,} | {row['distinct']:,} |")
    total = report["total"]
    lines += [f"| all | | | {total['items']:,} | {total['synthesis']:,} | {total['inpainting']:,} | "
              f"{total['shape_masks']:,} | {total['distinct']:,} |", ""]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="run folder of the pretraining (its newest checkpoint is the end)")
    parser.add_argument("--out", default="benchmarks/results/pretraining_samples")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        runs = lineage_counts(Path(args.run), args.progress)
    except ValueError as error:  # not a run folder, or a config or cache that does not read
        parser.error(str(error))
    keys: set = set()
    for row in runs:
        keys |= row["keys"]
        row["distinct"] = len(row.pop("keys"))
    total = {name: sum(row[name] for row in runs) for name in ("items", "synthesis", "inpainting", "shape_masks")}
    total["distinct"] = len(keys)
    command = "python -m benchmarks.pretraining_samples " + " ".join(sys.argv[1:] if argv is None else argv)
    report = {"command": command, "date": time.strftime("%Y-%m-%d"), "runs": runs, "total": total}
    write_results(Path(args.out), report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
