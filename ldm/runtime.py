"""Where and how a training or sampling process runs: seeds and RNG states, CPU threads, devices, torch.distributed.

Distributed data parallel: start one process per GPU with ``torchrun``
(:func:`init_distributed` reads its ``env://`` variables; NCCL on CUDA, gloo
on the CPU).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np
import torch

from pet_projection.validation import positive_int

__all__ = ["AUTOCAST_DTYPES", "DistributedEnv", "current_env", "init_distributed", "resolve_device", "rng_state",
           "seed_everything", "seed_for", "set_cpu_threads", "set_rng_state"]

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


# ----------------------------------------------------------------------------------------------- seeds, RNG

def set_cpu_threads(n: int) -> None:
    """Use ``n`` CPU threads in torch and in Numba (the projectors).

    Both must be set: with Numba's OpenMP threading layer every parallel
    Numba call sets the thread count of the OpenMP runtime that torch shares,
    which would undo ``torch.set_num_threads`` alone.
    """
    import numba

    n = positive_int("the number of CPU threads", n)
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def seed_for(*words: int) -> int:
    """A 63-bit seed mixed from non-negative integers (NumPy ``SeedSequence``), e.g. ``seed_for(seed, rank)``."""
    return int(np.random.SeedSequence(list(words)).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), NumPy's global RNG and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def rng_state() -> dict[str, Any]:
    """This process's RNG states (torch, CUDA, NumPy, Python) in types ``torch.load(weights_only=True)`` accepts."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached))}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the RNG states of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------------- devices, processes

@dataclass(frozen=True)
class DistributedEnv:
    """This process's place in a (possibly single-process) run and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device


def resolve_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` (CUDA device ``local_rank`` if CUDA is present, else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.

    A CUDA device becomes torch's current device.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        chosen = torch.device(f"cuda:{local_rank}" if device == "cuda" else device)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for, but torch sees no CUDA device")
        torch.cuda.set_device(chosen)
    return chosen


def init_distributed(device: str = "auto") -> DistributedEnv:
    """Join the ``torchrun`` process group (``env://``) when ``WORLD_SIZE > 1``, and pick this process's device.

    Parameters
    ----------
    device : str
        ``"auto"`` (CUDA device ``LOCAL_RANK`` if CUDA is present, else the
        CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Uses NCCL for CUDA devices and gloo for the CPU. An already initialised
    process group (e.g. from a test) is used as it is.
    """
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = resolve_device(device, local_rank)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and dist.is_available() and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo", init_method="env://")
    if dist.is_available() and dist.is_initialized():
        return DistributedEnv(dist.get_rank(), dist.get_world_size(), local_rank, chosen)
    return DistributedEnv(0, 1, 0, chosen)


def current_env(device: Optional[Any]) -> DistributedEnv:
    """This process's place in the current process group (if any) on ``device`` (default: the CPU)."""
    import torch.distributed as dist

    device = torch.device("cpu") if device is None else torch.device(device)
    if dist.is_available() and dist.is_initialized():
        return DistributedEnv(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), device)
    return DistributedEnv(0, 1, 0, device)
