"""``allpet`` command line: the main jobs of the package.

Each command lives in its own module with a ``main(argv) -> int`` function,
imported only when the command runs (so ``allpet simulate`` never imports
torch); ``allpet COMMAND --help`` lists the options of one command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

# command -> (module with main(argv), one-line help)
COMMANDS = {
    "demo": ("tasks.cli_demo", "the main job: simulate, train the tiny LDM for one task, evaluate against baselines, "
                               "write report/"),
    "bench": ("benchmarks.bench_projectors", "time forward/back projection against peers and write JSON results"),
    "simulate": ("pet_projection.simulation.cli", "simulate PET task datasets (phantoms, physics, dose, kinetics)"),
    "train": ("ldm.cli", "train the sinogram autoencoder and latent diffusion model from a config"),
    "sample": ("ldm.cli_sample", "generate sinograms for task inputs with a trained model"),
    "ablate": ("tasks.cli_ablate", "ablations (RMAS/DMM, TMA, constraints, 500 vs 5,000 samples) as one results table"),
    "convert": ("pet_projection.io.cli_convert", "convert PET data: Interfile <-> NIfTI / NumPy images and sinograms, "
                                                 "mMR listmode -> Interfile sinograms"),
    "info": ("pet_projection.io.cli_info", "print the geometry of a data file (Interfile, listmode, NIfTI, NumPy)"),
    "view": ("pet_projection.viewer.cli", "the clinician ROI editor: a local web page for images, sinograms and TMA "
                                          "attention"),
    "attention": ("pet_projection.viewer.cli_attention", "TMA attention of a sample after saved ROI edits (.npz)"),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``allpet`` command line; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="allpet", description="ALL-PET: exact, fast PET/Radon projectors, "
                                     "physics simulation and a projection-domain latent diffusion model.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=False)
    args, rest = parser.parse_known_args(argv)
    module_name = COMMANDS[args.command][0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        print(f"allpet {args.command} cannot start: {error}", file=sys.stderr)
        return 2
    return module.main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
