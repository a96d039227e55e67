"""``allpet sample``: generate sinograms (and images) for task inputs with a trained sinogram LDM.

Examples::

    allpet sample --checkpoint runs/tiny --input inputs.npz --out samples/
    allpet sample --checkpoint runs/tiny/checkpoints/step_00001200 --input dataset_dir/ \\
        --sampler dpm-solver --steps 20 --batch-size 16 --recon fbp --out samples/
    allpet sample --checkpoint runs/uncond --n-samples 8 --out samples/   # unconditional model
    allpet sample --checkpoint runs/prior --input brains/ --roi-spec brains/roi_edits/edit_1.json --out edited/

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

The checkpoint is checked against the inputs before any sampling: the
sinograms' shape must be the training one (``data.n_views`` x ``data.n_bins``;
an ``allpet simulate`` folder also its image size, ``data.image_size``), and the
inputs must be the model's task (``data.task``: a ``paired`` model takes
``input`` arrays, from a folder of the task it was trained on; an
``inpainting`` model ``input`` (or ``known``) and ``mask`` arrays, so not an
``allpet simulate`` folder; an ``unconditional`` model no folder).

Output in ``--out``: ``samples.npz`` with ``sinogram`` ``(N, V, R)`` float32
(same units as the training sinograms), the inputs' ``tracer`` / ``region``
labels where the model takes them (for tracer separation, N is samples times
tracers and ``tracer`` says which tracer each sinogram is), and, with
``--recon``, ``image`` ``(N, ny, nx)`` reconstructed on the training config's
geometry (:mod:`pet_projection.recon`); ``sampling.json`` records the settings.
Both are written atomically, and earlier ones are kept unless ``--overwrite``.

Clinician ROI edits (``--roi-spec EDITS.json``, a :class:`~pet_projection.attention.RoiEditSpec`
as ``allpet view`` saves it) change the attention the model is conditioned on,
for an ``allpet simulate`` folder: the ``attention`` sinogram and the TMA image
attention that the physics prior keeps unfiltered are those of each sample's
regions after the edits (:func:`tasks.attention_inputs.attention_for`, what the
ROI editor shows) instead of its lesions'. The spec is checked against every
sample before any sampling, and ``sampling.json`` records it with its SHA-256
(:func:`tasks.attention_inputs.spec_hash`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from pet_projection.io.files import atomic_paths, check_writable_folder
from pet_projection.io.numpy_files import open_npz

from .errors import check_outputs, command, run_command

__all__ = ["main", "read_inputs", "sample_with"]

BATCH_SINOGRAMS = ("input", "known", "mask", "attention", "support")
BATCH_LABELS = ("tracer", "region", "task")
SAMPLES_FILE, RECORD_FILE = "samples.npz", "sampling.json"


def _parser(loaded: bool = False) -> argparse.ArgumentParser:
    """The options; ``loaded``: without those of loading the model (for :func:`sample_with`)."""
    parser = argparse.ArgumentParser(prog="allpet sample", description=__doc__.split(": ", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if not loaded:
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
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"), help="autocast dtype")
    if not loaded:
        parser.add_argument("--raw-weights", action="store_true",
                            help="use the raw weights instead of the EMA weights")
        parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
        parser.add_argument("--threads", type=int, default=None, help="CPU threads of torch and Numba")
    parser.add_argument("--roi-spec", type=Path, default=None,
                        help="ROI edits (JSON, as allpet view saves them) applied to the attention of each sample of "
                             "an allpet simulate --input folder")
    parser.add_argument("--recon", default="none", choices=("none", "fbp", "osem"),
                        help="also reconstruct images from the sinograms")
    parser.add_argument("--osem-subsets", type=int, default=8)
    parser.add_argument("--osem-iterations", type=int, default=4)
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace {SAMPLES_FILE} and {RECORD_FILE} of an earlier run in --out")
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
                input_weights: Optional[np.ndarray] = None, spec: Any = None) -> dict[str, np.ndarray]:
    """Sampling inputs from a ``.npz`` file or a folder: ``(N, V, R)`` float32 sinograms, ``(N,)`` int64 labels.

    A folder written by ``allpet simulate`` is read as in training
    (:func:`tasks.attention_inputs.simulated_inputs`, with the ``labels`` asked for
    and its ``model_input``, e.g. the physics prior, or the run's unmixing
    ``input_weights``, and the attention after the ROI edits ``spec``); other
    inputs are used as they are. ``progress``: a tqdm bar over a folder's samples.
    """
    from tqdm.auto import tqdm

    from ldm.batches import collate
    from ldm.folder_datasets import PairedFolderDataset, is_simulated
    from tasks.attention_inputs import simulated_inputs

    path = Path(path)
    if path.is_dir() and is_simulated(path):
        inputs = simulated_inputs(path, labels, model_input, input_weights, spec, progress=progress)
        return {key: inputs[key] for key in BATCH_SINOGRAMS + BATCH_LABELS if key in inputs}
    if spec is not None:
        raise ValueError(f"ROI edits need the label maps of an allpet simulate folder; {path} is not one")
    if path.is_dir():
        folder = PairedFolderDataset(path, required=())
        batch = collate([folder[i] for i in tqdm(range(len(folder)), desc="inputs", unit="sample",
                                                 disable=not progress)])
        return {key: batch[key][:, 0].numpy() if key in BATCH_SINOGRAMS else batch[key].numpy()
                for key in BATCH_SINOGRAMS + BATCH_LABELS if key in batch}
    if not path.is_file():
        raise ValueError(f"input {str(path)!r} is neither a .npz file nor a folder")
    with open_npz(path) as archive:
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


def _checked_options(args: argparse.Namespace) -> Any:
    """Check the options and the output folder before any long work; the ROI edit spec read (or None)."""
    for name in ("steps", "batch_size", "osem_subsets", "osem_iterations"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    out_dir = Path(args.out)
    check_writable_folder(out_dir)
    check_outputs([out_dir / SAMPLES_FILE, out_dir / RECORD_FILE], args.overwrite)
    if args.roi_spec is None:
        return None
    from tasks.attention_inputs import read_spec

    return read_spec(args.roi_spec)


def _check_spec_input(args: argparse.Namespace, spec: Any) -> None:
    """ROI edits need an ``allpet simulate`` folder: the regions they edit are its samples' label maps."""
    from ldm.folder_datasets import is_simulated

    if spec is None or (args.input is not None and Path(args.input).is_dir() and is_simulated(args.input)):
        return
    what = "no --input" if args.input is None else f"--input {args.input} has no label maps (it is not an allpet " \
                                                     f"simulate folder)"
    raise ValueError(f"--roi-spec {args.roi_spec}: ROI edits change the regions of the label maps of an allpet "
                     f"simulate folder's samples, but {what}")


def _spec_fits(sampler: Any, spec: Any, args: argparse.Namespace) -> None:
    """The model must take the attention, and every sample of the folder hold the regions the spec edits."""
    from pet_projection.simulation.dataset_folder import SimulatedDataset
    from tasks.attention_inputs import check_spec

    if not sampler.takes_attention:
        config = sampler.config
        raise ValueError(f"--roi-spec {args.roi_spec}: the model takes no attention (model.use_tma "
                         f"{config.model.use_tma}, data.model_input {config.data.model_input!r}), so ROI edits "
                         f"would not change its output")
    check_spec(spec, SimulatedDataset(args.input), args.roi_spec)


def _run(args: argparse.Namespace, sampler: Any, spec: Any) -> int:
    """Read and check the inputs, sample, reconstruct and write ``samples.npz`` and ``sampling.json``."""
    from ldm.folder_datasets import is_simulated
    from tasks.attention_inputs import spec_hash
    from tasks.checkpoint_sampler import SamplingSettings

    config = sampler.config
    settings = SamplingSettings(args.sampler, args.steps, args.eta, args.guidance_scale, args.batch_size, args.seed,
                                args.precision)
    if args.input is not None:
        simulated = Path(args.input).is_dir() and is_simulated(args.input)
        if simulated:
            sampler.check_folder(Path(args.input))
            if spec is not None:
                _spec_fits(sampler, spec, args)
            inputs = sampler.folder_inputs(args.input, spec, progress=not args.no_progress)
        else:
            if config.data.model_input != "measured":
                print(f"allpet sample: the model was trained on data.model_input {config.data.model_input!r}; "
                      f"the 'input' arrays of {args.input} are used as they are, so they must hold it",
                      file=sys.stderr)
            inputs = read_inputs(args.input, progress=not args.no_progress)
        sampler.check_inputs(inputs, args.input)
    elif args.n_samples is not None and args.n_samples >= 1:
        if config.model.condition_on_input:
            raise ValueError("this model is conditioned on a task input: pass --input")
        inputs = {"attention": np.zeros((args.n_samples,) + sampler.shape, np.float32)}  # fixes the size; no TMA
    else:
        raise ValueError("pass --input FILE.npz|DIR, or --n-samples N (at least 1) for an unconditional model")
    n = len(next(iter(inputs.values())))
    start = time.perf_counter()
    if spec is None:
        sinograms = sampler.sample(inputs, settings, progress=not args.no_progress)
    else:  # local edits: the unedited output on every ray the edits leave alone
        _, sinograms = sampler.sample_edited(args.input, spec, settings, progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    results = {"sinogram": sinograms, **{key: inputs[key] for key in BATCH_LABELS if key in inputs}}
    if args.recon != "none":
        results["image"] = sampler.reconstruct(sinograms, args.recon, args.osem_subsets,
                                               args.osem_iterations).astype(np.float32)
    record = {"checkpoint": str(sampler.folder), "weights": "ema" if sampler.ema else "raw",
              "sampler": args.sampler, "steps": args.steps, "eta": args.eta, "guidance_scale": args.guidance_scale,
              "seed": args.seed, "batch_size": args.batch_size, "precision": args.precision,
              "device": str(sampler.device), "recon": args.recon, "n_samples": int(n), "sampling_s": elapsed}
    if spec is not None:
        record["roi_spec"] = {"file": str(args.roi_spec), "sha256": spec_hash(spec), "spec": spec.to_dict()}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_paths(out_dir / SAMPLES_FILE, out_dir / RECORD_FILE) as (samples_tmp, record_tmp):
        with open(samples_tmp, "wb") as stream:
            np.savez(stream, **results)
        record_tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    print(f"allpet sample: {n} sinograms {sinograms.shape[1:]} in {elapsed:.1f} s -> {out_dir / SAMPLES_FILE}",
          file=sys.stderr)
    return 0


@command("sample")
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``allpet sample``; returns the exit code (0 done, 2 bad arguments or inputs, 130 after Ctrl-C).

    Arguments, the output folder, the ROI edit spec, the checkpoint and the inputs are checked before any sampling.
    """
    args = _parser().parse_args(argv)
    spec = _checked_options(args)
    try:
        import torch  # noqa: F401  (the ldm extra)
        import tqdm  # noqa: F401

        from ldm.runtime import set_cpu_threads
        from tasks.checkpoint_sampler import CheckpointSampler
    except ImportError as error:
        print(f"allpet sample needs the ldm extra (pip install 'allpet[ldm]'): {error}", file=sys.stderr)
        return 2
    if args.threads is not None:
        set_cpu_threads(args.threads)
    _check_spec_input(args, spec)
    sampler = CheckpointSampler(args.checkpoint, args.device, ema=not args.raw_weights)
    return _run(args, sampler, spec)


def sample_with(sampler: Any, argv: Sequence[str]) -> int:
    """``allpet sample`` with a model loaded before (a :class:`tasks.checkpoint_sampler.CheckpointSampler`).

    ``argv`` as for :func:`main`, without ``--checkpoint``, ``--raw-weights``,
    ``--device`` and ``--threads`` (the sampler's); the same exit codes.
    """
    def body() -> int:
        args = _parser(loaded=True).parse_args(argv)
        spec = _checked_options(args)
        _check_spec_input(args, spec)
        return _run(args, sampler, spec)

    return run_command("sample", body)


if __name__ == "__main__":
    raise SystemExit(main())
