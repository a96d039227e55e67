"""``allpet demo``: the whole ALL-PET job for one task on a fresh machine (no data, no GPU needed).

Examples::

    allpet demo                          # low dose: fine-tune the shipped model on 16 examples, report in ./report
    allpet demo --model tiny             # the tiny LDM trained from scratch on 128 slices of 32 x 32 instead
    allpet demo --task tracer_separation --out report_sep
    allpet demo --quick                  # CI size, well under a minute
    allpet demo --train-data data/train --test-data data/test   # your own allpet simulate folders
    allpet demo --keep-model && allpet sample --checkpoint report/model --input data/test --out samples
    allpet demo --attention oracle       # the simulator's lesion labels as attention: an upper bound
    allpet demo --unseen-test            # no unseen test sets (default: stir_thorax left_out_region)
    allpet demo --unsupervised           # low dose: also the shipped model with no pairs (Poisson likelihood)

Writes ``OUT/index.html`` (and ``report.md``), ``OUT/figures/*.png``,
``OUT/metrics.csv`` and ``OUT/results.json`` (with ``--keep-model`` also the
trained LDM in ``OUT/model``, for ``allpet sample``); uses the GPU when torch
sees one.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Optional, Sequence

from .arguments import ATTENTION_HELP, TASK_HELP, UNSEEN_TEST_HELP, task_name
from .errors import command

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="allpet demo", description=__doc__.split("\n")[0].split(": ", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="low_dose", type=task_name, help=TASK_HELP)
    parser.add_argument("--out", default="report", help="report folder (replaced atomically on success)")
    parser.add_argument("--quick", action="store_true", help="CI-sized run")
    parser.add_argument("--n-train", type=int, default=None, help="training samples")
    parser.add_argument("--n-test", type=int, default=None, help="test samples")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--counts", type=float, default=None,
                        help="full-dose prompts per slice (default: 1e6 per 128 x 128 slice, scaled to the grid)")
    parser.add_argument("--train-data", default=None, help="allpet simulate folder of training samples")
    parser.add_argument("--test-data", default=None, help="allpet simulate folder of test samples")
    parser.add_argument("--count-resampling", type=int, default=None, metavar="K",
                        help="K fresh low-dose inputs per training sample, thinned from its full-dose prompts "
                             "(count-level augmentation; low_dose only; default 0)")
    parser.add_argument("--anatomy-warps", type=int, default=None, metavar="W",
                        help="W new patients per training sample: its anatomy randomly deformed and scanned again "
                             "(anatomy-level augmentation, every task; default 0)")
    parser.add_argument("--latent-factor", type=int, default=None, choices=(2, 4, 8),
                        help="downsampling factor of the LDM's autoencoder (default: the task's own, 4 for "
                             "low_dose and 2 for the others)")
    parser.add_argument("--denoiser-channels", type=int, default=None, metavar="C",
                        help="channels of the LDM denoiser's first level, a multiple of 8 (default: the tiny "
                             "preset's 32; wider denoisers train slower)")
    parser.add_argument("--attention", default=None, choices=("segmentation", "oracle"), help=ATTENTION_HELP)
    parser.add_argument("--unseen-test", nargs="*", default=None, metavar="SET", help=UNSEEN_TEST_HELP)
    parser.add_argument("--n-unseen-test", type=int, default=None, metavar="N",
                        help="samples per unseen test set (default 16; --quick 2)")
    parser.add_argument("--model", default="foundation",
                        help="foundation (default: the shipped pretrained model, fine-tuned on 16 examples of 64 x 64 "
                             "pixels and views beside the same architecture trained from scratch on them), a "
                             "weights or run folder of such a model, or tiny (the tiny LDM trained from scratch on "
                             "128 slices of 32 x 32 pixels; no pretrained weights)")
    parser.add_argument("--scratch-steps", type=int, default=None, metavar="N",
                        help="pretrained models: autoencoder and diffusion steps of the same architecture trained "
                             "from scratch on the same examples (default 300; 0: leave that row out)")
    parser.add_argument("--unsupervised", action="store_true",
                        help="low dose: add the shipped foundation model used with no paired example (a posterior "
                             "sample of each input's Poisson counts)")
    parser.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's, one per core; 1 where other jobs share the CPU)")
    parser.add_argument("--keep-model", action="store_true",
                        help="keep the trained LDM in OUT/model (allpet sample --checkpoint OUT/model applies it)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


@command("demo")
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``allpet demo``; 0 on success, 2 for bad arguments or inconsistent data (earlier reports kept)."""
    args = _parser().parse_args(argv)
    try:
        from tasks.demo import demo_config, format_summary, run_demo
    except ImportError as error:
        print(f"allpet demo needs the ldm extra and scikit-image (pip install 'allpet[ldm,test]'): {error}",
              file=sys.stderr)
        return 2
    changes = {key: value for key, value in (("n_train", args.n_train), ("n_test", args.n_test), ("seed", args.seed),
                                             ("total_counts", args.counts),
                                             ("count_resampling", args.count_resampling),
                                             ("anatomy_warps", args.anatomy_warps),
                                             ("latent_factor", args.latent_factor),
                                             ("denoiser_channels", args.denoiser_channels),
                                             ("attention", args.attention), ("n_unseen_test", args.n_unseen_test),
                                             ("unseen_test", args.unseen_test),
                                             ("train_data", args.train_data), ("test_data", args.test_data))
               if value is not None}
    if args.model == "tiny" and args.scratch_steps is not None:
        print("allpet demo: --scratch-steps compares a pretrained model with its architecture from scratch; "
              "--model tiny is trained from scratch already", file=sys.stderr)
        return 2
    if args.model != "tiny" and (args.latent_factor is not None or args.denoiser_channels is not None):
        print("allpet demo: --latent-factor and --denoiser-channels shape the tiny LDM (--model tiny); a pretrained "
              "model keeps its architecture", file=sys.stderr)
        return 2
    if args.scratch_steps is not None:
        changes["scratch_steps"] = args.scratch_steps
    if args.unsupervised:
        changes["unsupervised"] = True
    start = time.perf_counter()
    try:
        config = demo_config(args.task, args.quick, args.model, device=args.device, threads=args.threads, **changes)
        folder, result = run_demo(config, args.out, progress=not args.no_progress, keep_model=args.keep_model)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"allpet demo: {error} (nothing was written; an earlier report in {args.out} is unchanged)",
              file=sys.stderr)
        return 2
    print(format_summary(result, time.perf_counter() - start))
    print(f"allpet demo: report written to {folder}/index.html")
    if args.keep_model:
        print(f"allpet demo: LDM kept in {folder}/model (allpet sample --checkpoint {folder}/model --input DIR)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
