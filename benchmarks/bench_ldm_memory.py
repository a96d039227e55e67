"""Memory and time of the sinogram LDM: the paper-scale config in training and sampling, the tiny config on CPU.

On a CUDA GPU (``--device cuda``, the default when one is present), for the
``paper`` preset (256 x 256 sinograms, bf16 autocast, gradient checkpointing):

- training, per stage (autoencoder, diffusion): peak ``torch.cuda.max_memory_allocated``
  and the median time of a full :class:`~ldm.trainer.Trainer` step (forward,
  backward, AdamW, EMA) at the preset's batch size on one GPU;
- sampling: peak memory and time of ``ldm.sampling.sample`` (DDIM) for a batch.

On the CPU (no GPU here), the same steps cannot run at full size in reasonable
time, so the script reports

- the parameter counts of the paper (and tiny) models;
- an **estimate** of the GPU peak memory (:data:`ESTIMATE_METHOD`): the bytes
  held by live tensors (a ``TorchDispatchMode`` that counts every tensor
  storage an operation creates and subtracts it when the storage is freed)
  in real Trainer steps on the CPU, at two small batch sizes, extrapolated
  linearly in the batch size;
- the tiny preset's measured step times (both stages) and sampling time on
  this CPU, and the implied time of a whole tiny training run.

Targets (ALL-PET issue 8): paper-scale training peak <= 12 GB, sampling <= 4 GB;
tiny CPU training under 10 minutes.

Usage::

    python -m benchmarks.bench_ldm_memory              # GPU if present, else CPU; writes benchmarks/results/
    python -m benchmarks.bench_ldm_memory --quick      # fewer timing repeats
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

from benchmarks.bench_projectors import machine_info
from ldm.experiment import ExperimentConfig
from ldm.model import SinogramLDM
from ldm.presets import load_config
from ldm.runtime import set_cpu_threads
from ldm.sampling import sample
from ldm.trainer import Trainer
from ldm.training_data import build_training_data

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS_GB = {"train": 12.0, "sample": 4.0}  # ALL-PET issue 8: half the paper's 24 GB; sampling
TINY_TARGET_MIN = 10.0  # ALL-PET issue 8: the tiny CPU config trains in under 10 minutes
GB = 1e9
SAMPLE_BATCH = 8  # sinograms per sampling call at paper scale
SAMPLE_STEPS = 50  # DDIM steps for the timing
PROBE_BASES = 8  # phantoms generated for the probes (only the shapes matter)
ESTIMATE_METHOD = (
    "paper preset with gradient checkpointing, run on the CPU in fp32 (bf16 convolutions are emulated, ~100x slower, "
    "on CPUs without AVX512-BF16/AMX). A TorchDispatchMode counts the bytes of live tensor storages: 'static' = "
    "weights, EMA copies, AdamW state and the batch before the step; the transient peak on top of it (gradients, "
    "activations, temporaries) is measured at two batch sizes and extrapolated linearly to the preset's batch. "
    "estimated_peak_fp32_gb is an upper bound for bf16 autocast; estimated_peak_bf16_gb halves the transient part "
    "(autocast keeps conv/matmul activations in bf16, but GroupNorm/softmax/loss and the gradients of the fp32 "
    "weights stay fp32, so the truth lies between the two). CUDA allocator rounding and cuDNN workspaces add a little.")


class LiveTensorBytes(TorchDispatchMode):
    """Bytes held by live tensor storages created under the mode (plus those :meth:`track` is given); the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: WeakIdKeyDictionary = WeakIdKeyDictionary()

    def track(self, tensor: torch.Tensor) -> None:
        """Count ``tensor``'s storage until it is freed (once per storage)."""
        storage = tensor.untyped_storage()
        if storage in self._seen:
            return
        size = storage.nbytes()
        self._seen[storage] = size
        self.live += size
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._free, size)

    def _free(self, size: int) -> None:
        self.live -= size

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for item in tree_flatten(out)[0]:
            if isinstance(item, torch.Tensor):
                self.track(item)
        return out


def _config(name: str, batch_size: int, out_dir: str, overrides: tuple[str, ...] = ()) -> ExperimentConfig:
    return load_config(name, [f"train.batch_size={batch_size}", f"data.n_bases={PROBE_BASES}",
                              "train.num_workers=0", f"train.out_dir={out_dir}", *overrides])


def _trainer(config: ExperimentConfig, device: torch.device) -> Trainer:
    torch.manual_seed(0)
    data = build_training_data(config.data, config.train.seed)
    model = SinogramLDM(config.model_config())
    return Trainer(model, config.train, data.dataset, collate_fn=data.collate_fn, device=device, progress=False)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_time(step: Callable[[], Any], device: torch.device, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        _synchronize(device)
        start = time.perf_counter()
        step()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sample_batch(trainer: Trainer, n: int) -> dict[str, torch.Tensor]:
    """Conditions of ``n`` training items for ``ldm.sampling.sample`` (no target)."""
    batch = trainer.collate_fn([trainer.dataset[i] for i in range(n)])
    return {key: value.to(trainer.env.device) for key, value in batch.items() if key != "target"}


def _parameter_counts(model: SinogramLDM) -> dict[str, int]:
    return {"autoencoder": sum(p.numel() for p in model.autoencoder.parameters()),
            "denoiser": sum(p.numel() for p in model.denoiser.parameters()),
            "total": sum(p.numel() for p in model.parameters())}


# ----------------------------------------------------------------------------------------------- GPU

def _gpu_train(config: ExperimentConfig, stage: str, device: torch.device, repeat: int) -> dict[str, Any]:
    trainer = _trainer(config, device)
    stages = list(trainer.stage_names)
    batches = trainer.batches()
    if stage == "diffusion":  # calibrate the model's scales as a real run would, on one autoencoder step
        trainer.start_stage("autoencoder")
        trainer.train_step(next(batches))
    trainer.start_stage(stage)
    trainer.train_step(next(batches))  # warm-up: optimizer state, cuDNN autotuning
    batch = next(batches)
    torch.cuda.reset_peak_memory_stats(device)
    seconds = _median_time(lambda: trainer.train_step(batch), device, repeat)
    return {"stage": stage, "stages_in_config": stages, "batch_size": config.train.batch_size,
            "peak_gb": torch.cuda.max_memory_allocated(device) / GB, "step_s": seconds,
            "samples_per_s": config.train.batch_size / seconds}


def _gpu_sample(config: ExperimentConfig, device: torch.device, n_steps: int) -> dict[str, Any]:
    trainer = _trainer(config, device)
    batches = trainer.batches()
    for stage in ("autoencoder", "diffusion"):  # calibrate the scales
        trainer.start_stage(stage)
        trainer.train_step(next(batches))
    model = trainer.model.eval()
    batch = _sample_batch(trainer, SAMPLE_BATCH)
    generator = torch.Generator(device).manual_seed(0)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        sample(model, batch, n_steps=2, generator=generator)  # warm-up
        torch.cuda.reset_peak_memory_stats(device)
        seconds = _median_time(lambda: sample(model, batch, n_steps=n_steps, generator=generator), device, 1)
    return {"sampler": "ddim", "steps": n_steps, "batch_size": SAMPLE_BATCH, "precision": "bf16",
            "peak_gb": torch.cuda.max_memory_allocated(device) / GB, "seconds": seconds,
            "seconds_per_sample": seconds / SAMPLE_BATCH}


# ----------------------------------------------------------------------------------------------- CPU

def _cpu_train_probe(stage: str, batch_size: int, out_dir: str) -> tuple[int, int]:
    """Live bytes before, and the peak during, the second fp32 Trainer step of ``stage`` at paper scale.

    Before: weights, EMA copies, AdamW state, the batch. The peak adds the
    gradients and the activations (with gradient checkpointing).
    """
    config = _config("paper", batch_size, out_dir, ["train.precision=fp32"])
    trainer = _trainer(config, torch.device("cpu"))
    batches = trainer.batches()
    if stage == "diffusion":
        trainer.start_stage("autoencoder")
        trainer.train_step(next(batches))
    warm, batch = next(batches), next(batches)
    with LiveTensorBytes() as counter:
        for tensor in list(trainer.model.state_dict().values()) + list(warm.values()) + list(batch.values()):
            counter.track(tensor)
        trainer.start_stage(stage)  # EMA copies, optimizer
        trainer.train_step(warm)  # creates the AdamW state
        before = counter.live
        counter.peak = before
        trainer.train_step(batch)
    return before, counter.peak


def _cpu_sample_probe(batch_size: int, out_dir: str) -> tuple[int, int]:
    """Live bytes before (weights, conditions), and the peak during, fp32 DDIM sampling at paper scale."""
    config = _config("paper", max(batch_size, 2), out_dir, ["train.precision=fp32"])
    trainer = _trainer(config, torch.device("cpu"))
    batches = trainer.batches()
    for stage in ("autoencoder", "diffusion"):  # calibrate the model's scales
        trainer.start_stage(stage)
        trainer.train_step(next(batches))
    model = trainer.model.eval()
    batch = _sample_batch(trainer, batch_size)
    with LiveTensorBytes() as counter:
        for tensor in list(model.state_dict().values()) + list(batch.values()):
            counter.track(tensor)
        before = counter.live
        sample(model, batch, n_steps=2, generator=torch.Generator().manual_seed(0))
    return before, counter.peak


def _estimate(probes: dict[int, tuple[int, int]], target: int, limit_gb: float) -> dict[str, Any]:
    """Linear extrapolation in the batch size of the transient (peak - before) bytes of two probes.

    Also the largest batch whose estimated peak stays within ``limit_gb``,
    for the fp32 bound and the bf16 estimate.
    """
    (small, (static_small, peak_small)), (large, (static_large, peak_large)) = sorted(probes.items())
    transient_small, transient_large = peak_small - static_small, peak_large - static_large
    per_sample = (transient_large - transient_small) / (large - small)
    transient = transient_small + per_sample * (target - small)
    static = static_small
    def largest_batch(fraction: float) -> int:  # transient bytes scaled by fraction (1: fp32, 1/2: bf16)
        room = limit_gb * GB - static - fraction * (transient_small - per_sample * small)
        return int(room // (fraction * per_sample))

    return {"probe_batches": [small, large], "probe_static_gb": [static_small / GB, static_large / GB],
            "probe_peak_gb": [peak_small / GB, peak_large / GB], "static_gb": static / GB,
            "transient_per_sample_fp32_gb": per_sample / GB, "batch_size": target,
            "estimated_peak_fp32_gb": (static + transient) / GB,
            "estimated_peak_bf16_gb": (static + transient / 2.0) / GB, "limit_gb": limit_gb,
            "largest_batch_within_limit": {"fp32_bound": largest_batch(1.0), "bf16_estimate": largest_batch(0.5)}}


def _tiny_times(out_dir: str, repeat: int) -> dict[str, Any]:
    config = load_config("tiny", [f"train.out_dir={out_dir}"])
    trainer = _trainer(config, torch.device("cpu"))
    batches = trainer.batches()
    result: dict[str, Any] = {"batch_size": config.train.batch_size, "cpu_threads": torch.get_num_threads()}
    total = 0.0
    for stage in trainer.stage_names:
        trainer.start_stage(stage)
        trainer.train_step(next(batches))
        seconds = statistics.median(_step_times(trainer, batches, repeat))
        steps = config.train.stages[stage].steps
        result[stage] = {"step_s": seconds, "steps": steps, "samples_per_s": config.train.batch_size / seconds}
        total += seconds * steps
    result["estimated_training_min"] = total / 60.0
    result["target_min"] = TINY_TARGET_MIN
    model = trainer.model.eval()
    batch = _sample_batch(trainer, config.train.batch_size)
    start = time.perf_counter()
    sample(model, batch, n_steps=SAMPLE_STEPS, generator=torch.Generator().manual_seed(0))
    result["sampling"] = {"sampler": "ddim", "steps": SAMPLE_STEPS, "batch_size": config.train.batch_size,
                          "seconds": time.perf_counter() - start}
    return result


def _step_times(trainer: Trainer, batches: Any, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        batch = next(batches)
        start = time.perf_counter()
        trainer.train_step(batch)
        times.append(time.perf_counter() - start)
    return times


# ----------------------------------------------------------------------------------------------- main

def run_gpu(repeat: int) -> dict[str, Any]:
    device = torch.device("cuda")
    with tempfile.TemporaryDirectory() as scratch:
        config = load_config("paper", [f"train.out_dir={scratch}", f"data.n_bases={PROBE_BASES}"])
        result = {"card": torch.cuda.get_device_name(device),
                  "parameters": _parameter_counts(SinogramLDM(config.model_config())),
                  "train": [_gpu_train(config, stage, device, repeat) for stage in ("autoencoder", "diffusion")],
                  "sample": _gpu_sample(config, device, SAMPLE_STEPS)}
    result["targets_gb"] = TARGETS_GB
    result["met"] = (max(row["peak_gb"] for row in result["train"]) <= TARGETS_GB["train"]
                     and result["sample"]["peak_gb"] <= TARGETS_GB["sample"])
    return result


def run_cpu(repeat: int, probes: tuple[int, int]) -> dict[str, Any]:
    paper = load_config("paper")
    with tempfile.TemporaryDirectory() as scratch:
        result: dict[str, Any] = {
            "parameters": {"paper": _parameter_counts(SinogramLDM(paper.model_config())),
                           "tiny": _parameter_counts(SinogramLDM(load_config("tiny").model_config()))},
            "method": ESTIMATE_METHOD, "tiny": _tiny_times(scratch + "/tiny", repeat), "train_estimate": {}}
        for stage in ("autoencoder", "diffusion"):
            measured = {batch: _cpu_train_probe(stage, batch, f"{scratch}/{stage}{batch}") for batch in probes}
            result["train_estimate"][stage] = _estimate(measured, paper.train.batch_size, TARGETS_GB["train"])
        measured = {batch: _cpu_sample_probe(batch, f"{scratch}/sample{batch}") for batch in probes}
        result["sample_estimate"] = {"sampler": "ddim", **_estimate(measured, SAMPLE_BATCH, TARGETS_GB["sample"])}
    worst = max(row["estimated_peak_bf16_gb"] for row in result["train_estimate"].values())
    result["targets_gb"] = TARGETS_GB
    result["bf16_estimate_met"] = (worst <= TARGETS_GB["train"]
                                   and result["sample_estimate"]["estimated_peak_bf16_gb"] <= TARGETS_GB["sample"])
    return result


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--repeat", type=int, default=5, help="timed steps per measurement (median)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    parser.add_argument("--threads", type=int, default=1, help="torch and Numba CPU threads (1 is fastest on a "
                        "shared machine)")
    parser.add_argument("--out", type=Path, default=None, help="output JSON (default benchmarks/results/...)")
    args = parser.parse_args(argv)
    set_cpu_threads(args.threads)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    repeat = 2 if args.quick else args.repeat
    start = time.perf_counter()
    result = run_gpu(repeat) if device == "cuda" else run_cpu(repeat, (1, 2))
    result.update(device=device, torch=torch.__version__, threads=torch.get_num_threads(),
                  machine=machine_info(), date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  benchmark_s=time.perf_counter() - start)
    out = args.out or RESULTS / f"ldm_memory_{'gpu' if device == 'cuda' else 'cpu'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
