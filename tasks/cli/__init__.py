"""``allpet`` command line: the main jobs of the package.

Each command lives in its own module of this package with a ``main(argv) ->
int`` function, imported only when the command runs (so ``allpet simulate``
never imports torch); ``allpet COMMAND --help`` lists the options of one
command. ``allpet bench`` runs the projector benchmark of a source checkout
(``benchmarks/``, which the package never imports) in a child process.
Errors are handled in one place (:mod:`.errors`): one line
``allpet COMMAND: message`` and exit code 2, or 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from .errors import EXIT_ERROR, run_command

# command -> (module of this package with main(argv), one-line help)
COMMANDS = {
    "demo": ("demo", "the main job: simulate, train the tiny LDM for one task, evaluate against baselines, "
                     "write report/"),
    "bench": ("bench", "time forward/back projection against peers and write JSON results (source checkout)"),
    "simulate": ("simulate", "simulate PET task datasets (phantoms, physics, dose, kinetics)"),
    "train": ("train", "train the sinogram autoencoder and latent diffusion model from a config"),
    "pretrain": ("pretrain", "pretrain the prompted foundation model (foundation preset) and export its weights"),
    "finetune": ("finetune", "adapt the pretrained foundation model to a task from a few paired examples"),
    "sample": ("sample", "generate sinograms for task inputs with a trained model"),
    "synthesize": ("synthesize", "new sinograms and OSEM images from a prompt, e.g. 'FDG brain' (foundation model)"),
    "ablate": ("ablate", "ablations (RMAS/DMM, TMA, constraints, 500 vs 5,000 samples) as one results table"),
    "convert": ("convert", "convert PET data: Interfile <-> NIfTI / NumPy images and sinograms, "
                           "mMR listmode -> Interfile sinograms"),
    "info": ("info", "print the geometry of a data file (Interfile, listmode, NIfTI, NumPy)"),
    "view": ("view", "the clinician ROI editor: a local web page for images, sinograms and TMA attention"),
    "attention": ("attention", "TMA attention of a sample after saved ROI edits (.npz)"),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``allpet`` command line; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="allpet", description="ALL-PET: exact, fast PET/Radon projectors, "
                                     "physics simulation and a projection-domain latent diffusion model.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=False)
    args, rest = parser.parse_known_args(argv)

    def dispatch() -> int:
        try:
            module = importlib.import_module(f"{__name__}.{COMMANDS[args.command][0]}")
        except ImportError as error:
            print(f"allpet {args.command} cannot start: {error}", file=sys.stderr)
            return EXIT_ERROR
        return module.main(rest)

    return run_command(args.command, dispatch)


if __name__ == "__main__":
    raise SystemExit(main())
