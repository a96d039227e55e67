"""Training data for the ALL-PET latent diffusion model: Radon mask augmentation (RMAS) samples.

:class:`RMASDataset` turns a few base sinograms into many structurally
different samples ``(full, positive, negative, mask, attention, labels)``
(Huang et al., arXiv 2509.09130, fig. 1): every sample pairs a base sinogram
with a dynamic multi-mask (DMM) of active cells, and ``positive = mask * full``,
``negative = (1 - mask) * full``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from pet_projection import ParallelBeamProjector
from pet_projection.arrays import as_host_array
from pet_projection.masks import (LAYOUTS, CellGrid, CellSinogramBasis, int_range, radon_mask, random_ellipses,
                                  random_polygons, split_by_mask)
from pet_projection.validation import check_real, positive_int

__all__ = ["DATASET_LAYOUTS", "EVERY_LAYOUT", "RMASDataset"]

# 500 base sinograms x 400 = 200,000 distinct samples per epoch (why: docs/results/ldm.md).
DEFAULT_SAMPLES_PER_BASE = 400
# layout="every": each sample draws its DMM layout, a third each: the enumerated subsets (None), clustered, rings
EVERY_LAYOUT = "every"
_EVERY = (None, "clustered", "rings")
DATASET_LAYOUTS = LAYOUTS + (EVERY_LAYOUT,)
_FEISTEL_ROUNDS = 4  # Luby and Rackoff (1988): four Feistel rounds of a pseudo-random function permute pseudo-randomly
_SAMPLE_KEYS = ("full", "positive", "negative", "mask", "attention", "activity", "base_index", "sample_id")


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (Steele, Lea and Flood 2014): a bijective uint64 -> uint64 hash, wrapping arithmetic."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _feistel(x: np.ndarray, half_bits: int, keys: np.ndarray) -> np.ndarray:
    """A keyed bijection of the uint64 values below ``2 ** (2 * half_bits)``."""
    shift, low = np.uint64(half_bits), np.uint64(2**half_bits - 1)
    left, right = x >> shift, x & low
    for key in keys:
        left, right = right, left ^ (_mix64(right ^ key) & low)
    return (left << shift) | right


def _permute(x: np.ndarray, total: int, keys: np.ndarray) -> np.ndarray:
    """Keyed pseudo-random bijection of ``[0, total)``, uint64 ``(n,)``: Feistel network plus cycle walking."""
    half_bits = (max(1, (total - 1).bit_length()) + 1) // 2
    out = _feistel(x, half_bits, keys)
    walking = np.flatnonzero(out >= total)
    while walking.size:  # follow the cycle back into [0, total); the domain is under 4 * total, so few steps
        out[walking] = _feistel(out[walking], half_bits, keys)
        walking = walking[out[walking] >= total]
    return out


def _per_base(name: str, value: Any, n: int, core_shape: tuple[int, ...], kinds: str) -> np.ndarray:
    """``value`` as a host array of shape ``(n, *core_shape)`` with dtype kind in ``kinds``."""
    array = as_host_array(value, name)
    if array.dtype.kind not in kinds:
        raise TypeError(f"{name} must have a {'float' if kinds == 'f' else 'integer'} dtype, got {array.dtype}")
    if array.shape != (n,) + core_shape:
        raise ValueError(f"{name} has shape {array.shape}, expected {(n,) + core_shape} (one per base sinogram)")
    return array


def _labels(labels: Optional[Mapping[str, Any]], n: int) -> dict[str, np.ndarray]:
    """Condition labels: names (not clashing with the sample's keys) to integer arrays ``(n,)``."""
    if labels is not None and not isinstance(labels, Mapping):
        raise TypeError(f"labels must be a mapping of name to integer array (N,), got {type(labels).__name__}")
    for name in labels or {}:
        if not isinstance(name, str) or name in _SAMPLE_KEYS:
            raise ValueError(f"label names must be strings other than {_SAMPLE_KEYS}, got {name!r}")
    return {name: _per_base(f"labels[{name!r}]", value, n, (), "iu") for name, value in (labels or {}).items()}


class RMASDataset(Dataset):
    """RMAS training samples: base sinograms times DMM cell masks, each (base, mask) pair at most once per pass.

    Parameters
    ----------
    sinograms : array ``(N, n_views, n_bins)``
        Base sinograms, float32 or float64, finite; NumPy or torch CPU.
    projector : ParallelBeamProjector
        Projector of a 2D grid with ``out_shape == (n_views, n_bins)``; it
        defines the cells' sinogram masks.
    attention : array ``(N, n_views, n_bins)``, optional
        Precomputed TMA sinogram attention in ``[0, 1]``; zeros when omitted.
    labels : mapping of str to integer array ``(N,)``, optional
        Condition labels per base, e.g. ``{"tracer": ..., "region": ...}``.
    cells_per_side : int
        DMM cells per side of the field of view (:class:`CellGrid`).
    n_active : (int, int)
        Inclusive range of active cells per mask, ``1 <= low <= high <= n_cells``.
    shape_fraction : float
        Probability in ``[0, 1]`` that a sample uses a random ellipse or
        polygon mask (:func:`radon_mask`, one projection per sample: slow)
        instead of its DMM mask.
    epoch_size : int, optional
        ``len(dataset)``; default ``min(DEFAULT_SAMPLES_PER_BASE * N,``
        :meth:`n_distinct_samples` ``)``, at most the latter.
    seed : int
        Non-negative seed of the sample order and the random shapes.
    layout : {None, "random", "clustered", "rings", "every"}
        ``None`` (default): cell subsets are enumerated, uniform over all
        subsets, and no (base, subset) pair repeats (see Notes). A DMM layout
        of :meth:`CellGrid.sample_activity` instead draws each sample's cells
        with that layout (clustered: a 4-connected cluster; rings: an
        annulus) and the number of active cells uniform in ``n_active``,
        from the sample's own seed ``(seed, epoch, index)``; bases still
        follow the permutation, so each is used equally, but masks can repeat
        (:meth:`n_distinct_samples` is then an upper bound). ``"every"``
        (:data:`EVERY_LAYOUT`): each sample draws one of the enumerated
        subset, a clustered and a rings layout with equal odds, from its own
        seed.

    Notes
    -----
    The ``T =`` :meth:`n_distinct_samples` pairs (base, cell subset) are
    numbered ``id = rank * N + base``, with the subsets ranked by size, then
    lexicographically. Index ``i`` of epoch ``e`` gets ``id = pi(j)``,
    ``j = (e * epoch_size + i) mod T``, where ``pi`` is a pseudo-random
    permutation of ``[0, T)`` keyed by ``seed`` (a four-round Feistel network
    with cycle walking), so no pair repeats until all ``T`` are used,
    whichever worker or rank reads an index. Samples depend on
    ``(seed, epoch, index)`` only, not on the number of DataLoader workers;
    give each rank disjoint indices (``DistributedSampler``) and call
    :meth:`set_epoch` before each epoch (DataLoader workers copy the dataset
    when an iterator starts, so not with ``persistent_workers=True``).
    Subsets are uniform, so most have ``high`` cells (``C(n, k)`` grows with
    ``k``). Distinct subsets give distinct image masks; their sinogram masks
    can coincide on coarse geometries (few views), rarely.
    """

    def __init__(self, sinograms: Any, projector: ParallelBeamProjector, *, attention: Any = None,
                 labels: Optional[Mapping[str, Any]] = None, cells_per_side: int = 8,
                 n_active: tuple[int, int] = (1, 4), shape_fraction: float = 0.0,
                 epoch_size: Optional[int] = None, seed: int = 0, layout: Optional[str] = None) -> None:
        if not isinstance(projector, ParallelBeamProjector):
            raise TypeError(f"projector must be a ParallelBeamProjector, got {type(projector).__name__}")
        out_shape = tuple(projector.out_shape)
        sinograms = as_host_array(sinograms, "sinograms")
        n_bases = sinograms.shape[0] if sinograms.ndim else 0
        self.sinograms = _per_base("sinograms", sinograms, n_bases, out_shape, "f")
        if n_bases == 0:
            raise ValueError("sinograms must hold at least one base sinogram")
        if not np.all(np.isfinite(self.sinograms)):
            raise ValueError("sinograms must be finite")
        self.attention = None
        if attention is not None:
            self.attention = _per_base("attention", attention, n_bases, out_shape, "f")
            if not np.all((self.attention >= 0.0) & (self.attention <= 1.0)):
                raise ValueError("attention must lie in [0, 1] (and not be NaN)")
        self.labels = _labels(labels, n_bases)
        self.projector = projector
        self.basis = CellSinogramBasis(CellGrid(projector.geometry.grid, cells_per_side), projector)
        n_cells = self.basis.cells.n_cells
        self.n_active = int_range("n_active", n_active, 1, n_cells)
        self.shape_fraction = check_real("shape_fraction", shape_fraction, 0.0, 1.0)
        if layout is not None and layout not in DATASET_LAYOUTS:
            raise ValueError(f"layout must be None (enumerated subsets) or one of {DATASET_LAYOUTS}, got {layout!r}")
        self.layout = layout
        self.seed = positive_int("seed", seed, minimum=0)
        self.epoch = 0
        low, high = self.n_active
        counts = [math.comb(n_cells, k) for k in range(low, high + 1)]
        self._n_masks = sum(counts)
        total = self.n_distinct_samples()
        if total >= 2**63:
            raise ValueError(f"{total} distinct samples overflow int64 sample ids; narrow n_active={n_active}")
        self._strata_end = np.cumsum(np.array(counts, dtype=np.int64))
        self._strata_start = self._strata_end - np.array(counts, dtype=np.int64)
        default = min(DEFAULT_SAMPLES_PER_BASE * n_bases, total)
        self.epoch_size = default if epoch_size is None else positive_int("epoch_size", epoch_size)
        if self.epoch_size > total:
            raise ValueError(f"epoch_size={epoch_size} exceeds the {total} distinct samples; an epoch would repeat")
        # C(m, j) for the unranking, clipped at total: ranks are below it, so comparisons are unchanged.
        self._comb = np.array([[min(math.comb(m, j), total) for j in range(high)] for m in range(n_cells)],
                              dtype=np.int64)
        self._keys = np.random.SeedSequence([self.seed]).generate_state(_FEISTEL_ROUNDS, dtype=np.uint64)

    def __len__(self) -> int:
        return self.epoch_size

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (like ``DistributedSampler.set_epoch``): epoch ``e`` continues where ``e - 1`` ended."""
        self.epoch = positive_int("epoch", epoch, minimum=0)

    def n_distinct_masks(self) -> int:
        """Distinct DMM cell subsets: the sum of ``C(n_cells, k)`` over ``k`` in ``n_active`` (distinct image masks)."""
        return self._n_masks

    def n_distinct_samples(self) -> int:
        """Distinct (base, cell subset) pairs, ``N *`` :meth:`n_distinct_masks`."""
        return len(self.sinograms) * self.n_distinct_masks()

    def describe(self) -> str:
        """One line on the sample count, e.g. for a training log."""
        cells = self.basis.cells
        low, high = self.n_active
        layout = ("enumerated subsets" if self.layout is None
                  else "enumerated, clustered or rings layout drawn per sample: at most" if self.layout == EVERY_LAYOUT
                  else f"{self.layout} layout drawn per sample: at most")
        return (f"RMASDataset: {len(self.sinograms):,} bases x {cells.cells_per_side}x{cells.cells_per_side} cells "
                f"with {low}..{high} active ({layout}) {len(self.sinograms):,} x {self.n_distinct_masks():,} = "
                f"{self.n_distinct_samples():,} distinct samples; {self.epoch_size:,} per epoch, "
                f"shape_fraction={self.shape_fraction}")

    def sample_ids(self, indices: Any) -> np.ndarray:
        """Sample ids ``(n,)`` int64 in ``[0, T)`` of dataset ``indices`` ``(n,)`` in the current epoch."""
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iu" or indices.ndim != 1 or indices.size and (
                indices.min() < 0 or indices.max() >= self.epoch_size):
            raise ValueError(f"indices must be integers in [0, {self.epoch_size}), shape (n,)")
        total = self.n_distinct_samples()
        start = self.epoch * self.epoch_size % total
        return _permute((indices.astype(np.uint64) + np.uint64(start)) % np.uint64(total), total,
                        self._keys).astype(np.int64)

    def cell_samples(self, indices: Any) -> tuple[np.ndarray, np.ndarray]:
        """Base index ``(n,)`` int64 and cell activity ``(n, n_cells)`` bool of dataset ``indices`` ``(n,)``.

        The DMM part of :meth:`__getitem__` without building sinograms (fast;
        ``self.basis.masks(activity)`` gives the sinogram masks).
        """
        return self._decode(self.sample_ids(indices))

    def _decode(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Base ``(n,)`` and activity ``(n, n_cells)`` of sample ids ``(n,)``: unranking of the cell subsets."""
        rank, base = np.divmod(ids, len(self.sinograms))
        stratum = np.searchsorted(self._strata_end, rank, side="right")
        rank = rank - self._strata_start[stratum]
        remaining = self.n_active[0] + stratum  # cells still to place
        n_cells = self.basis.cells.n_cells
        activity = np.zeros((ids.size, n_cells), dtype=bool)
        for cell in range(n_cells):  # lexicographic unranking: C(n - cell - 1, remaining - 1) subsets take this cell
            count = np.where(remaining > 0, self._comb[n_cells - cell - 1, np.maximum(remaining - 1, 0)], 0)
            take = (remaining > 0) & (rank < count)
            activity[:, cell] = take
            rank = np.where(take, rank, rank - count)
            remaining = remaining - take
        return base, activity

    def _rank(self, activity: np.ndarray) -> np.ndarray:
        """Rank ``(n,)`` int64 of cell subsets bool ``(n, n_cells)`` among all subsets.

        The inverse of :meth:`_decode`.
        """
        n_cells = self.basis.cells.n_cells
        remaining = activity.sum(axis=1).astype(np.int64)
        rank = self._strata_start[remaining - self.n_active[0]].copy()
        for cell in range(n_cells):
            count = np.where(remaining > 0, self._comb[n_cells - cell - 1, np.maximum(remaining - 1, 0)], 0)
            take = activity[:, cell]
            rank = np.where(take, rank, rank + count)
            remaining = remaining - take
        return rank

    def _shape_mask(self, rng: np.random.Generator) -> np.ndarray:
        """Sinogram mask bool ``(n_views, n_bins)`` of random ellipses or polygons."""
        grid = self.projector.geometry.grid
        shapes = random_ellipses if rng.random() < 0.5 else random_polygons
        return radon_mask(shapes(grid, 1, rng)[0], self.projector, self.basis.threshold_mm)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """Sample ``index`` of the current epoch.

        Returns
        -------
        dict of torch tensors
            ``full``, ``positive``, ``negative``: ``(n_views, n_bins)``, the
            sinograms' dtype, ``positive + negative == full`` exactly;
            ``mask`` float32 0/1 and ``attention`` float32, ``(n_views, n_bins)``;
            ``activity`` bool ``(n_cells,)`` (all False for a shape mask);
            ``base_index`` int64; ``sample_id`` int64 in ``[0, T)`` for a DMM
            mask (``rank of the cell subset * N + base``), ``-1`` for a shape
            mask; one int64 scalar per label.
        """
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index must be an integer, got {index!r}")
        if not 0 <= index < self.epoch_size:
            raise IndexError(f"index {index} is out of range [0, {self.epoch_size})")
        ids = self.sample_ids([index])
        base, activity = (array[0] for array in self._decode(ids))
        sample_id = int(ids[0])
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, index]))
        layout = self.layout
        if layout == EVERY_LAYOUT:
            layout = _EVERY[int(rng.integers(len(_EVERY)))]
        if layout is not None:
            activity = self.basis.cells.sample_activity(1, rng, layout, self.n_active)[0]
            sample_id = int(self._rank(activity[None])[0]) * len(self.sinograms) + int(base)
        if rng.random() < self.shape_fraction:
            activity[:] = False
            mask, sample_id = self._shape_mask(rng), -1
        else:
            mask = self.basis.masks(activity)
        full = self.sinograms[base]
        positive, negative = split_by_mask(full, mask)
        attention = np.zeros(full.shape, np.float32) if self.attention is None else self.attention[base]
        sample = {"full": torch.from_numpy(np.array(full)), "positive": torch.from_numpy(positive),
                  "negative": torch.from_numpy(negative), "mask": torch.from_numpy(mask.astype(np.float32)),
                  "attention": torch.from_numpy(np.asarray(attention, dtype=np.float32)),
                  "activity": torch.from_numpy(activity), "base_index": torch.tensor(int(base)),
                  "sample_id": torch.tensor(sample_id)}
        sample.update({name: torch.tensor(int(value[base])) for name, value in self.labels.items()})
        return sample
