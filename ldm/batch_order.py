"""The order of training batches: a shuffle per epoch that depends on ``(seed, epoch)`` only, shared across processes.

:class:`EpochBatchSampler` gives the global batches of epoch ``e`` as a
function of ``(seed, e)`` only and hands each of ``W`` processes its own part,
so a run that resumes in the middle of an epoch continues with exactly the
batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from torch.utils.data import Sampler

from pet_projection.validation import positive_int

__all__ = ["EpochBatchSampler"]


class EpochBatchSampler(Sampler):
    """Global batches from a shuffle that depends on ``(seed, epoch)`` only; this process's share of each.

    Parameters
    ----------
    n_samples : int
        Dataset length.
    batch_size : int
        Global batch size, a multiple of ``world_size`` and at most ``n_samples``.
    seed : int
        Shuffle seed.
    rank, world_size : int
        This process and the number of processes; process ``r`` gets items
        ``r * b .. (r + 1) * b - 1`` of each global batch, ``b = batch_size / world_size``,
        so the processes together see exactly the batch one process would.
    shuffle : bool
        False: epochs run in index order.

    Notes
    -----
    An epoch has ``n_samples // batch_size`` batches (a last incomplete batch
    is dropped). :meth:`set_position` selects the epoch and the first batch,
    so iteration can start in the middle of an epoch (resume).
    """

    def __init__(self, n_samples: int, batch_size: int, *, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True) -> None:
        for name, value, minimum in (("n_samples", n_samples, 1), ("batch_size", batch_size, 1), ("seed", seed, 0),
                                     ("rank", rank, 0), ("world_size", world_size, 1)):
            positive_int(name, value, minimum)
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} is not a multiple of the {world_size} processes")
        if batch_size > n_samples:
            raise ValueError(f"batch_size {batch_size} exceeds the {n_samples} samples of an epoch")
        if rank >= world_size:
            raise ValueError(f"rank {rank} must be below world_size {world_size}")
        self.n_samples, self.batch_size, self.seed = int(n_samples), int(batch_size), int(seed)
        self.rank, self.world_size, self.shuffle = int(rank), int(world_size), bool(shuffle)
        self.epoch, self.start_batch = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        """Global batches per epoch."""
        return self.n_samples // self.batch_size

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Sample indices ``(n_samples,)`` of epoch ``epoch`` in order."""
        if not self.shuffle:
            return np.arange(self.n_samples)
        return np.random.default_rng(np.random.SeedSequence([self.seed, epoch])).permutation(self.n_samples)

    def set_position(self, epoch: int, start_batch: int = 0) -> None:
        """Iterate epoch ``epoch`` from global batch ``start_batch`` on."""
        if not 0 <= start_batch < self.batches_per_epoch:
            raise ValueError(f"start_batch must lie in [0, {self.batches_per_epoch}), got {start_batch}")
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def __iter__(self) -> Iterator[list[int]]:
        order = self.epoch_order(self.epoch)
        share = self.batch_size // self.world_size
        for batch in range(self.start_batch, self.batches_per_epoch):
            start = batch * self.batch_size + self.rank * share
            yield order[start:start + share].tolist()

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch
