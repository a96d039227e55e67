"""``allpet synthesize``: new sinograms (and their OSEM images) from a prompt with the foundation model.

Examples::

    allpet synthesize --prompt "FDG brain" --n 16 --out synth/
    allpet synthesize --prompt "68Ga-PSMA chest" --n 4 --views 48 --angle-range 0 120 --radial-bins 40 \\
        --radial-range -150 100 --seed 3 --out psma_window/
    allpet synthesize --prompt "FDOPA brain" --n 8 --model runs/foundation --steps 20 --out synth/ --overwrite
    allpet synthesize --prompt "FDG brain" --n 200 --task low_dose --out data/ld_synth/
    allpet demo --task low_dose --train-data data/ld_synth/ --test-data data/ld_test/

The prompt names a tracer and a body region in words (``ldm.prompts``:
``"18F-FDG brain"``, ``"methionine head"``, ``"whole body"``); either may be
left out (unspecified). Its task is synthesis (the default, or the word
``synthesis``); the other tasks transform an input sinogram and run with
``allpet sample``. The window: ``--views`` views over ``--angle-range`` (degrees,
half-open, default 0 180) and ``--radial-bins`` bins tiling ``--radial-range``
(mm); by default the model's training sinograms (64 x 64 for the foundation
model, its bins 4 mm wide for the brain and 7.8125 mm for the other regions,
so +-128 mm or +-250 mm). ``--model``: a weights folder, a run or a
checkpoint folder (default: the shipped foundation weights).

Output folder ``--out`` (written whole under a temporary name, then renamed;
a non-empty folder is refused before any sampling, and ``--overwrite``
replaces only an earlier ``allpet synthesize`` output): ``sinograms.npy``
``(N, V, B)`` float32 counts (axes view, radial); ``images.npy`` ``(N, B, B)``
float32, their OSEM images on ``B`` x ``B`` pixels of the bin width (axes y, x),
reconstructed with the window's projector as emission data with unit
attenuation and normalisation and no background (the generated sinograms
carry none); per sample ``image_NNNNN.nii.gz`` and ``image_NNNNN.hv``/``.v``
(one slice) and, where the window's rays are exactly STIR's arc-corrected
bins (views over [0, 180), bin ``B // 2`` on the axis), ``sinogram_NNNNN.hs``/``.s``
(else ``manifest.json`` says why not); ``manifest.json`` (prompt, geometry,
seed, steps, sampler, model, package version, per-sample total counts and
fraction of negative values) and ``montage.png``.

``--task T`` writes task pairs instead, in the dataset format of
``allpet simulate`` (``manifest.json`` and ``samples/sample_NNNNN.npz``, read
by ``allpet demo --train-data`` and ``allpet train data.source=folder
data.path=DIR``), for every task (``tasks.synthesis``, task pairs).
``low_dose`` and ``attenuation_correction``: each generated sinogram is the
full-dose measured prompts of one sample, and the simulator's physics gives
its partner: a water mu-map in the body outline of its OSEM image, a flat
background from the rays that miss the body, the attenuation-corrected
activity image; ``low_dose`` inputs are binomial thinnings by a factor drawn
per sample from ``--dose-factors`` (default 4 10 20 50 100),
``attenuation_correction`` targets the noise-free corrected sinogram.
``delayed_frame``, ``tracer_separation`` and ``tracer_conversion``: each
generated sinogram becomes a synthetic patient (its activity image and a
water mu-map of its body outline, with a skull band for a brain), an
image phantom the simulator scans for the task with its kinetics, its second
tracer (``--second-tracer``, default MET, or FDG for a MET prompt) and its
acquisition physics. The prompt must name the tracer and the region, and the
window must be the simulator's geometry of the region: views over [0, 180)
and bins over the region's field of view (256 mm brain, 500 mm trunk, chest,
abdomen) centred on the axis, the default radial range with ``--task``. The
manifest's ``synthesis`` holds the prompt, model, seed, steps and geometry;
``montage.png`` shows the sinograms and activity images.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from pet_projection.io.files import atomic_directory, check_writable_folder

from .errors import command

__all__ = ["main"]

MANIFEST_FILE = "manifest.json"  # tasks.synthesis.MANIFEST_FILE; read here before the ldm extra is imported
COMMAND_NAME = "allpet synthesize"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=COMMAND_NAME, description=__doc__.split(": ", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt", required=True, help='tracer and region in words, e.g. "FDG brain"')
    parser.add_argument("--n", type=int, required=True, help="number of sinograms")
    parser.add_argument("--views", type=int, default=None, help="views of the window (default: the model's)")
    parser.add_argument("--angle-range", type=float, nargs=2, default=(0.0, 180.0), metavar=("A0", "A1"),
                        help="angle range of the views in degrees, half-open [A0, A1) (default 0 180)")
    parser.add_argument("--radial-bins", type=int, default=None, help="radial bins (default: the model's)")
    parser.add_argument("--radial-range", type=float, nargs=2, default=None, metavar=("S0", "S1"),
                        help="radial range in mm tiled by the bins (default: the training bin width, centred)")
    parser.add_argument("--model", default=None,
                        help="weights, run or checkpoint folder (default: the shipped foundation weights)")
    parser.add_argument("--steps", type=int, default=50, help="sampler steps (network evaluations)")
    parser.add_argument("--sampler", default="ddim", choices=("ddim", "ddpm", "dpm-solver"))
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling noise")
    parser.add_argument("--batch-size", type=int, default=8, help="samples per model call")
    parser.add_argument("--osem-iterations", type=int, default=4)
    parser.add_argument("--osem-subsets", type=int, default=8)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of torch and Numba")
    parser.add_argument("--task", default=None,
                        help="write task pairs in the allpet simulate format: low_dose, attenuation_correction, "
                             "delayed_frame, tracer_separation or tracer_conversion")
    parser.add_argument("--second-tracer", default=None,
                        help="--task tracer_separation or tracer_conversion: the second tracer (default met, or fdg "
                             "for a met prompt)")
    parser.add_argument("--dose-factors", type=float, nargs="+", default=None, metavar="F",
                        help="--task low_dose: dose reduction factors drawn per sample (each >= 1; default the "
                             "simulator's 4 10 20 50 100)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the folder --out of an earlier allpet synthesize run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _check_options(args: argparse.Namespace) -> None:
    """Numbers and the output folder, before anything is imported or loaded."""
    for name in ("n", "steps", "batch_size", "osem_iterations", "osem_subsets", "views", "radial_bins"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    for name in ("angle_range", "radial_range"):
        value = getattr(args, name)
        if value is not None and not (all(math.isfinite(v) for v in value) and value[0] < value[1]):
            raise ValueError(f"--{name.replace('_', '-')} must be two finite numbers, the first smaller, got "
                             f"{' '.join(f'{v:g}' for v in value)}")
    if args.second_tracer is not None and (args.task is None or args.task.replace("-", "_") not in
                                           ("tracer_separation", "tracer_conversion")):
        raise ValueError("--second-tracer applies to --task tracer_separation or tracer_conversion only")
    if args.dose_factors is not None:
        if args.task is None or args.task.replace("-", "_") != "low_dose":
            raise ValueError("--dose-factors applies to --task low_dose only")
        bad = [f for f in args.dose_factors if not (math.isfinite(f) and f >= 1.0)]
        if bad:
            raise ValueError(f"--dose-factors must be finite and at least 1 (1 = full dose), got {bad[0]:g}")
    out = args.out
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "is not a folder", str(out))
    if out.is_dir() and any(out.iterdir()):
        if not args.overwrite:
            raise FileExistsError(errno.EEXIST, "already exists and is not empty; pass --overwrite to replace an "
                                                "earlier allpet synthesize output", str(out))
        if _earlier_command(out / MANIFEST_FILE) != COMMAND_NAME:
            raise ValueError(f"{out}: --overwrite replaces only an earlier allpet synthesize output (with its "
                             f"{MANIFEST_FILE}), and this folder holds other files; choose another --out")
    check_writable_folder(out.absolute().parent)


def _earlier_command(path: Path) -> Optional[str]:
    """The ``command`` of an earlier run's manifest, or ``None``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("command") if isinstance(data, dict) else None


def _card_title(folder: Path) -> Optional[str]:
    """The first line of the model folder's ``MODEL_CARD.md``, or ``None``."""
    from ldm.weights import CARD_FILE

    card = folder / CARD_FILE
    if not card.is_file():
        return None
    lines = card.read_text(encoding="utf-8").splitlines()
    return lines[0].strip() if lines else None


def _run(args: argparse.Namespace) -> int:
    """Parse the prompt, load and check the model, then synthesise, reconstruct and write ``--out``."""
    from ldm.prompts import parse_prompt
    from ldm.runtime import resolve_device, set_cpu_threads
    from ldm.weights import is_weights_folder, load_model, shipped_weights
    from pet_projection.simulation.anatomy import FIELD_OF_VIEW_MM
    from tasks.synthesis import (check_pair_prompt, check_pair_task, check_synthesis_prompt, pair_config,
                                 pair_projector, prompt_labels, reconstruct, synthesis_window, synthesize,
                                 write_synthesis)

    prompt = parse_prompt(args.prompt)
    check_synthesis_prompt(prompt)
    task = None if args.task is None else check_pair_task(args.task)
    if task is not None:
        check_pair_prompt(prompt)
    if args.threads is not None:
        set_cpu_threads(args.threads)
    if args.model is None and not is_weights_folder(shipped_weights()):
        raise ValueError(f"the foundation weights are not installed ({shipped_weights()} holds none): pass --model "
                         f"DIR, a weights folder or a run of allpet pretrain")
    device = resolve_device(args.device)
    model, config, folder = load_model(args.model, str(device))
    prompt_labels(model.config, prompt)
    radial_range = None if args.radial_range is None else tuple(args.radial_range)
    if task is not None and radial_range is None:  # the simulator's geometry: the region's field of view
        half = 0.5 * FIELD_OF_VIEW_MM[prompt.region]
        radial_range = (-half, half)
    window = synthesis_window(config, prompt, args.views, args.radial_bins,
                              tuple(math.radians(a) for a in args.angle_range), radial_range)
    simulation = None
    if task is not None:
        simulation = pair_config(prompt, window, args.dose_factors, task, args.second_tracer)
        pair_projector(simulation, window)
    start = time.perf_counter()
    sinograms = synthesize(model, prompt, window, args.n, args.seed, args.steps, args.batch_size,
                           progress=not args.no_progress, sampler=args.sampler)
    sampling_s = time.perf_counter() - start
    record: dict[str, Any] = {
        "prompt": {"text": args.prompt, "words": prompt.text(), "task": prompt.task, "tracer": prompt.tracer,
                   "region": prompt.region, "label_ids": prompt.label_ids()},
        "n_samples": args.n, "seed": args.seed, "steps": args.steps, "sampler": args.sampler,
        "batch_size": args.batch_size, "device": str(device), "sampling_s": sampling_s,
        "model": {"folder": str(folder), "card": _card_title(folder)},
        "reconstruction": {"method": "osem", "n_iterations": args.osem_iterations,
                           "n_subsets": min(args.osem_subsets, window.n_views)}}
    if task is not None:
        return _write_pairs(args, task, sinograms, window, simulation, record)
    images = reconstruct(sinograms, window, args.osem_iterations, args.osem_subsets)
    with atomic_directory(args.out) as staging:
        manifest = write_synthesis(staging, sinograms, images, window, record)
    interfile = "with" if manifest["interfile_sinograms"]["written"] else "without"
    print(f"{COMMAND_NAME}: {args.n} sinograms {sinograms.shape[1:]} of {prompt.text()!r} in {sampling_s:.1f} s, "
          f"{interfile} Interfile sinograms -> {args.out}", file=sys.stderr)
    return 0


def _write_pairs(args: argparse.Namespace, task: str, sinograms: Any, window: Any, simulation: Any,
                 record: dict[str, Any]) -> int:
    """Pair every sinogram for ``task`` and write them as an ``allpet simulate`` dataset into ``--out``."""
    from tqdm.auto import tqdm

    from pet_projection.simulation import sample_rng
    from tasks.synthesis import KINETIC_TASKS, kinetic_sample, synthetic_sample, write_pair_dataset

    pair = kinetic_sample if task in KINETIC_TASKS else synthetic_sample
    samples = [pair(task, sinogram, window, simulation, sample_rng(args.seed, k), args.osem_iterations,
                    args.osem_subsets)
               for k, sinogram in enumerate(tqdm(sinograms, desc=f"pair {task}", unit="sample",
                                                 disable=args.no_progress))]
    with atomic_directory(args.out) as staging:
        write_pair_dataset(staging, samples, simulation, window, args.seed, {**record, "task": task})
    print(f"{COMMAND_NAME}: {args.n} {task} pairs {sinograms.shape[1:]} of {record['prompt']['words']!r} in "
          f"{record['sampling_s']:.1f} s of sampling -> {args.out} (allpet simulate format)", file=sys.stderr)
    return 0


@command("synthesize")
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``allpet synthesize``; returns the exit code (0 done, 2 bad arguments or model, 130 after Ctrl-C).

    The options, the output folder, the prompt and the model are checked before any sampling.
    """
    args = _parser().parse_args(argv)
    _check_options(args)
    try:
        import matplotlib  # noqa: F401  (the montage)
        import nibabel  # noqa: F401  (the NIfTI images)
        import torch  # noqa: F401  (the ldm extra)
        import tqdm  # noqa: F401
    except ImportError as error:
        print(f"{COMMAND_NAME} needs the ldm, io and plot extras (pip install 'allpet[tasks,io]'): {error}",
              file=sys.stderr)
        return 2
    return _run(args)


if __name__ == "__main__":
    raise SystemExit(main())
