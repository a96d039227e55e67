"""``allpet sample``: generate sinograms (and images) for task inputs with a trained sinogram LDM.

Examples::

    allpet sample --checkpoint runs/tiny --input inputs.npz --out samples/
    allpet sample --checkpoint runs/tiny/checkpoints/step_00001200 --input dataset_dir/ \\
        --sampler dpm-solver --steps 20 --batch-size 16 --recon fbp --out samples/
    allpet sample --checkpoint runs/uncond --n-samples 8 --out samples/   # unconditional model

Inputs (``--input``): one ``.npz`` with arrays of shape ``(N, V, R)`` (or
``(V, R)`` for one sample), or a folder: an ``allpet simulate`` dataset (read
as in training, :class:`ldm.folder_datasets.SimulatedTaskDataset`) or one ``.npz`` per
sample (:class:`ldm.folder_datasets.PairedFolderDataset`). Arrays used: ``input`` (the
task input, at the target's count scale as in training: e.g. low-dose counts
times the dose reduction factor; a model trained with ``data.model_input:
physics_prior`` or ``unmixing`` computes that prior of an ``allpet simulate``
folder's inputs itself, the latter with the unmixing weights saved in its run,
while other inputs must hold it), ``known`` and ``mask`` (measured rays kept
exactly), ``attention`` (TMA), ``support`` (body support), and integer
``tracer``, ``region`` ``(N,)``; others (e.g. ``target``) are ignored.

Output in ``--out``: ``samples.npz`` with ``sinogram`` ``(N, V, R)`` float32
(same units as the training sinograms), the inputs' ``tracer`` / ``region``
labels where the model takes them (for tracer separation, N is samples times
tracers and ``tracer`` says which tracer each sinogram is), and, with
``--recon``, ``image`` ``(N, ny, nx)`` reconstructed on the training config's
geometry (:mod:`pet_projection.recon`); ``sampling.json`` records the settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

__all__ = ["main", "read_inputs"]

BATCH_SINOGRAMS = ("input", "known", "mask", "attention", "support")
BATCH_LABELS = ("tracer", "region")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="allpet sample", description=__doc__.split(": ", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True,
                        help="checkpoint folder (step_NNNNNNNN) or a run folder (its newest checkpoint)")
    parser.add_argument("--input", default=None, help="inputs: a .npz of (N, V, R) arrays or a folder of .npz files")
    parser.add_argument("--n-samples", type=int, default=None,
                        help="number of samples without --input (unconditional models only)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--sampler", default="ddim", choices=("ddim", "ddpm", "dpm-solver"))
    parser.add_argument("--steps", type=int, default=50, help="sampler steps (network evaluations)")
    parser.add_argument("--eta", type=float, default=0.0, help="DDIM / bridge stochasticity (0: deterministic)")
    parser.add_argument("--guidance-scale", type=float, default=0.0, help="TMA guidance scale (0: none)")
    parser.add_argument("--batch-size", type=int, default=8, help="samples per model call")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling noise")
    parser.add_argument("--raw-weights", action="store_true", help="use the raw weights instead of the EMA weights")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"), help="autocast dtype")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of torch and Numba")
    parser.add_argument("--recon", default="none", choices=("none", "fbp", "osem"),
                        help="also reconstruct images from the sinograms")
    parser.add_argument("--osem-subsets", type=int, default=8)
    parser.add_argument("--osem-iterations", type=int, default=4)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _stack(array: np.ndarray, key: str, shape: Optional[tuple[int, ...]]) -> np.ndarray:
    """A sinogram array as ``(N, V, R)`` (one sample ``(V, R)`` gains the axis)."""
    array = np.asarray(array)
    array = array[None] if array.ndim == 2 else array
    if array.ndim != 3 or (shape is not None and array.shape != shape):
        raise ValueError(f"input array {key!r} has shape {array.shape}; expected (N, V, R)"
                         + (f" = {shape}" if shape is not None else ""))
    return array


def read_inputs(path: Any, labels: Sequence[str] = (), model_input: Any = None, progress: bool = False,
                input_weights: Optional[np.ndarray] = None) -> dict[str, np.ndarray]:
    """Sampling inputs from a ``.npz`` file or a folder: ``(N, V, R)`` float32 sinograms, ``(N,)`` int64 labels.

    A folder written by ``allpet simulate`` is read as in training
    (:class:`ldm.folder_datasets.SimulatedTaskDataset`, with the ``labels`` asked for
    and its ``model_input``, e.g. the physics prior, or the run's unmixing
    ``input_weights``); other inputs are used as they are. ``progress``: a
    tqdm bar over a folder's samples.
    """
    from tqdm.auto import tqdm

    from ldm.batches import collate
    from ldm.folder_datasets import PairedFolderDataset, SimulatedTaskDataset, is_simulated

    path = Path(path)
    if path.is_dir():
        folder = (SimulatedTaskDataset(path, labels, model_input, input_weights) if is_simulated(path)
                  else PairedFolderDataset(path, required=()))
        batch = collate([folder[i] for i in tqdm(range(len(folder)), desc="inputs", unit="sample",
                                                 disable=not progress)])
        return {key: batch[key][:, 0].numpy() if key in BATCH_SINOGRAMS else batch[key].numpy()
                for key in BATCH_SINOGRAMS + BATCH_LABELS if key in batch}
    if not path.is_file():
        raise ValueError(f"input {str(path)!r} is neither a .npz file nor a folder")
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in BATCH_SINOGRAMS + BATCH_LABELS if key in archive.files}
    shape = None
    out: dict[str, np.ndarray] = {}
    for key in BATCH_SINOGRAMS:
        if key in arrays:
            out[key] = _stack(arrays[key], key, shape).astype(np.float32)
            shape = out[key].shape
    if shape is None:
        raise ValueError(f"{path} holds none of the arrays {BATCH_SINOGRAMS}")
    for key in BATCH_LABELS:
        if key in arrays:
            labels = np.asarray(arrays[key]).reshape(-1)
            if labels.dtype.kind not in "iu" or labels.shape != shape[:1]:
                raise ValueError(f"input array {key!r} must hold {shape[0]} integers, got {arrays[key]!r}")
            out[key] = labels.astype(np.int64)
    return out


def _unmixing_weights(checkpoint: Path) -> np.ndarray:
    """The unmixing weights ``allpet train`` saved in the run of ``checkpoint`` (the run or one of its checkpoints)."""
    from ldm.training_data import UNMIXING_WEIGHTS_FILE

    for folder in (checkpoint, checkpoint.parent, checkpoint.parent.parent):
        if (folder / UNMIXING_WEIGHTS_FILE).is_file():
            return np.load(folder / UNMIXING_WEIGHTS_FILE)
    raise ValueError(f"the model was trained with data.model_input 'unmixing', but its run holds no "
                     f"{UNMIXING_WEIGHTS_FILE} (looked in {checkpoint} and the two folders above it)")


def _reconstruct(sinograms: np.ndarray, projector: Any, args: argparse.Namespace) -> np.ndarray:
    from pet_projection import recon

    if args.recon == "fbp":
        return np.asarray(recon.fbp(sinograms, projector))
    from pet_projection.physics import PETSystemModel

    counts = np.clip(sinograms, 0.0, None)  # EM needs non-negative data
    return np.asarray(recon.osem(counts, PETSystemModel(projector), args.osem_subsets, args.osem_iterations))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``allpet sample``; returns the exit code (0 done, 2 bad arguments or inputs)."""
    args = _parser().parse_args(argv)
    for name in ("steps", "batch_size", "osem_subsets", "osem_iterations"):
        if getattr(args, name) < 1:
            print(f"allpet sample: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    try:
        import torch
        import yaml
        from tqdm.auto import tqdm

        from ldm.checkpoints import CONFIG_FILE, find_checkpoint, load_weights
        from ldm.experiment import config_from_dict
        from ldm.folder_datasets import is_simulated
        from ldm.model import SinogramLDM
        from ldm.runtime import AUTOCAST_DTYPES, resolve_device, set_cpu_threads
        from ldm.sampling import sample
        from ldm.training_data import data_projector
        from tasks.model_inputs import folder_model_input
    except ImportError as error:
        print(f"allpet sample needs the ldm extra (pip install 'allpet[ldm]'): {error}", file=sys.stderr)
        return 2
    try:
        if args.threads is not None:
            set_cpu_threads(args.threads)
        folder = find_checkpoint(args.checkpoint)
        if folder is None or not (folder / CONFIG_FILE).is_file():
            raise ValueError(f"no checkpoint with {CONFIG_FILE} found at {args.checkpoint}")
        with open(folder / CONFIG_FILE, encoding="utf-8") as stream:
            config = config_from_dict(yaml.safe_load(stream))
        shape = (config.data.n_views, config.data.n_bins)
        if args.input is not None:
            labels = [name for name, count in (("tracer", config.model.n_tracers),
                                               ("region", config.model.n_regions)) if count]
            simulated = Path(args.input).is_dir() and is_simulated(args.input)
            if config.data.model_input != "measured" and not simulated:
                print(f"allpet sample: the model was trained on data.model_input {config.data.model_input!r}; "
                      f"the 'input' arrays of {args.input} are used as they are, so they must hold it",
                      file=sys.stderr)
            weights = _unmixing_weights(folder) if simulated and config.data.model_input == "unmixing" else None
            inputs = read_inputs(args.input, labels, folder_model_input(config.data) if simulated else None,
                                 progress=not args.no_progress, input_weights=weights)
        elif args.n_samples is not None and args.n_samples >= 1:
            if config.model.condition_on_input:
                raise ValueError("this model is conditioned on a task input: pass --input")
            inputs = {"attention": np.zeros((args.n_samples,) + shape, np.float32)}  # fixes the size; no TMA
        else:
            raise ValueError("pass --input FILE.npz|DIR, or --n-samples N for an unconditional model")
        device = resolve_device(args.device)
    except (ValueError, TypeError) as error:
        print(f"allpet sample: {error}", file=sys.stderr)
        return 2
    model = SinogramLDM(config.model_config())
    load_weights(model, folder, ema=not args.raw_weights)
    model.to(device).eval()
    generator = torch.Generator(device).manual_seed(args.seed)
    dtype = AUTOCAST_DTYPES[args.precision]
    n = len(next(iter(inputs.values())))
    chunks = []
    start = time.perf_counter()
    try:
        for first in tqdm(range(0, n, args.batch_size), desc="sampling", unit="batch", disable=args.no_progress):
            batch = {key: torch.from_numpy(value[first:first + args.batch_size]).to(device)
                     for key, value in inputs.items()}
            batch.update({key: batch[key].unsqueeze(1) for key in BATCH_SINOGRAMS if key in batch})
            with torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None):
                out = sample(model, batch, sampler=args.sampler, n_steps=args.steps, eta=args.eta,
                             generator=generator, guidance_scale=args.guidance_scale)
            chunks.append(out[:, 0].float().cpu().numpy())
    except (KeyError, ValueError, TypeError) as error:
        print(f"allpet sample: the inputs do not fit the model: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    sinograms = np.concatenate(chunks)
    results = {"sinogram": sinograms, **{key: inputs[key] for key in BATCH_LABELS if key in inputs}}
    if args.recon != "none":
        if sinograms.shape[1:] != shape:
            print(f"allpet sample: cannot reconstruct: the sinograms are {sinograms.shape[1:]}, the training "
                  f"geometry {shape}", file=sys.stderr)
            return 2
        results["image"] = _reconstruct(sinograms, data_projector(config.data), args).astype(np.float32)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / "samples.npz", **results)
    record = {"checkpoint": str(folder), "weights": "raw" if args.raw_weights else "ema", "sampler": args.sampler,
              "steps": args.steps, "eta": args.eta, "guidance_scale": args.guidance_scale, "seed": args.seed,
              "batch_size": args.batch_size, "precision": args.precision, "device": str(device),
              "recon": args.recon, "n_samples": int(n), "sampling_s": elapsed}
    with open(out_dir / "sampling.json", "w", encoding="utf-8") as stream:
        json.dump(record, stream, indent=2)
    print(f"allpet sample: {n} sinograms {sinograms.shape[1:]} in {elapsed:.1f} s -> {out_dir / 'samples.npz'}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
