"""RMASDataset: split invariants, determinism, distinct samples (hashed), DataLoader workers, counts, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from ldm import RMASDataset
from pet_projection import ImageGrid, ParallelBeamGeometry, ParallelBeamProjector
from pet_projection.masks import CellGrid, radon_mask

N_BASES = 500  # ALL-PET issue 7: "at least 200,000 distinct ones from 500 base sinograms"
N_TARGET = 200_000


@pytest.fixture(scope="module")
def projector() -> ParallelBeamProjector:
    grid = ImageGrid((16, 16), voxel_size_mm=1.0)  # 8x8 cells of 2x2 pixels
    return ParallelBeamProjector(ParallelBeamGeometry(grid, n_views=16, n_bins=23, bin_width_mm=1.0))


@pytest.fixture(scope="module")
def bases(projector: ParallelBeamProjector) -> np.ndarray:
    return np.random.default_rng(1).random((N_BASES,) + projector.out_shape, dtype=np.float32) + 0.5


def _dataset(bases: np.ndarray, projector: ParallelBeamProjector, **kwargs) -> RMASDataset:
    n = len(bases)
    labels = {"tracer": np.arange(n) % 3, "region": np.arange(n) % 5}
    attention = np.random.default_rng(2).random(bases.shape, dtype=np.float32)
    return RMASDataset(bases, projector, attention=attention, labels=labels, **kwargs)


def _row_keys(*columns: np.ndarray) -> np.ndarray:
    """One byte string per row of the concatenated uint8 columns, for hashing by np.unique."""
    packed = np.ascontiguousarray(np.concatenate(columns, axis=1))
    return packed.view(np.dtype((np.void, packed.shape[1]))).ravel()


def _base_bytes(base: np.ndarray) -> np.ndarray:
    return base.astype("<i8")[:, None].view(np.uint8)


@pytest.mark.parametrize("shape_fraction", [0.0, 1.0])
def test_sample_split_and_fields(bases, projector, shape_fraction):
    ds = _dataset(bases[:10], projector, shape_fraction=shape_fraction, epoch_size=40)
    for index in range(0, 40, 7):
        s = ds[index]
        base = int(s["base_index"])
        assert s["full"].dtype == torch.float32 and s["mask"].dtype == torch.float32
        for key in ("full", "positive", "negative", "mask", "attention"):
            assert s[key].shape == projector.out_shape
        assert torch.equal(s["positive"] + s["negative"], s["full"])
        assert torch.equal(s["full"], torch.from_numpy(bases[base]))
        inside = s["mask"] != 0
        assert torch.all(s["positive"][~inside] == 0) and torch.all(s["negative"][inside] == 0)
        assert torch.all(inside.any()) and not torch.all(inside)  # a mask is neither empty nor everything here
        assert torch.equal(s["attention"], torch.from_numpy(ds.attention[base]))
        assert int(s["tracer"]) == base % 3 and int(s["region"]) == base % 5
        if shape_fraction == 0.0:
            low, high = ds.n_active
            assert low <= int(s["activity"].sum()) <= high
            image = CellGrid(projector.geometry.grid, 8).images(s["activity"].numpy())
            assert torch.equal(inside, torch.from_numpy(radon_mask(image, projector)))  # fast path == slow path
        else:
            assert int(s["sample_id"]) == -1 and not s["activity"].any()


def test_deterministic_per_seed_epoch_index(bases, projector):
    ds, again = (_dataset(bases[:10], projector, shape_fraction=0.5, epoch_size=30, seed=3) for _ in range(2))
    first = [ds[i] for i in range(30)]
    assert all(torch.equal(a[k], again[i][k]) for i, a in enumerate(first) for k in a)
    ds.set_epoch(1)
    second = [ds[i] for i in range(30)]
    assert any(not torch.equal(a["mask"], b["mask"]) for a, b in zip(first, second))
    ids = {int(s["sample_id"]) for s in first + second} - {-1}
    assert len(ids) == sum(int(s["sample_id"]) >= 0 for s in first + second)  # epochs continue, not repeat


def test_200000_distinct_samples_from_500_bases(bases, projector):
    ds = _dataset(bases, projector, epoch_size=N_TARGET)
    assert len(ds) == N_TARGET
    base, activity = ds.cell_samples(np.arange(N_TARGET))
    assert np.unique(_row_keys(_base_bytes(base), np.packbits(activity, axis=1))).size == N_TARGET
    sino_masks = ds.basis.masks(activity).reshape(N_TARGET, -1)
    assert np.unique(_row_keys(_base_bytes(base), np.packbits(sino_masks, axis=1))).size == N_TARGET
    for index in np.random.default_rng(4).integers(0, N_TARGET, size=20):  # the keys are what __getitem__ yields
        s = ds[int(index)]
        assert int(s["base_index"]) == base[index] and torch.equal(s["activity"], torch.from_numpy(activity[index]))
        assert torch.equal(s["mask"] != 0, torch.from_numpy(sino_masks[index].reshape(projector.out_shape)))


def test_dataloader_workers_never_repeat(bases, projector):
    ds = _dataset(bases[:20], projector, epoch_size=96)
    loader = DataLoader(ds, batch_size=8, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    ids = torch.cat([b["sample_id"] for b in batches]).numpy()
    assert np.array_equal(np.sort(ids), np.sort(ds.sample_ids(np.arange(96))))
    base = torch.cat([b["base_index"] for b in batches]).numpy()
    masks = torch.cat([b["mask"] for b in batches]).numpy().reshape(96, -1) != 0
    assert np.unique(_row_keys(_base_bytes(base), np.packbits(masks, axis=1))).size == 96


@given(cells_per_side=st.integers(1, 3), low=st.integers(1, 9), span=st.integers(0, 9), n_bases=st.integers(1, 4))
def test_counts_and_full_enumeration(projector, cells_per_side, low, span, n_bases):
    n_cells = cells_per_side**2
    low = min(low, n_cells)
    high = min(low + span, n_cells)
    sinograms = np.ones((n_bases,) + projector.out_shape, dtype=np.float32)
    ds = RMASDataset(sinograms, projector, cells_per_side=cells_per_side, n_active=(low, high))
    n_masks = sum(math.comb(n_cells, k) for k in range(low, high + 1))
    assert ds.n_distinct_masks() == n_masks and ds.n_distinct_samples() == n_bases * n_masks
    assert len(ds) == min(400 * n_bases, n_bases * n_masks)  # the documented default epoch size
    ds = RMASDataset(sinograms, projector, cells_per_side=cells_per_side, n_active=(low, high),
                     epoch_size=n_bases * n_masks)
    base, activity = ds.cell_samples(np.arange(len(ds)))  # one epoch enumerates every (base, subset) once
    sizes = activity.sum(axis=1)
    assert sizes.min() >= low and sizes.max() <= high
    assert np.unique(_row_keys(_base_bytes(base), np.packbits(activity, axis=1))).size == len(ds)


def test_issue_count_for_500_bases(bases, projector):
    ds = _dataset(bases, projector)
    assert ds.n_distinct_masks() == sum(math.comb(64, k) for k in range(1, 5)) == 679_120
    assert ds.n_distinct_samples() == 339_560_000 >= N_TARGET
    assert len(ds) == N_TARGET  # the documented default: 400 samples per base
    assert "339,560,000" in ds.describe()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"sinograms": np.ones((3, 16, 22), np.float32)}, ValueError, "sinograms has shape"),
    ({"sinograms": np.ones((3, 16, 23), np.int32)}, TypeError, "float"),
    ({"sinograms": np.full((3, 16, 23), np.nan, np.float32)}, ValueError, "finite"),
    ({"sinograms": np.ones((0, 16, 23), np.float32)}, ValueError, "at least one"),
    ({"projector": "P"}, TypeError, "ParallelBeamProjector"),
    ({"attention": np.ones((3, 16, 22), np.float32)}, ValueError, "attention has shape"),
    ({"attention": np.full((3, 16, 23), 2.0, np.float32)}, ValueError, r"\[0, 1\]"),
    ({"labels": {"tracer": np.zeros(4, np.int64)}}, ValueError, "tracer"),
    ({"labels": {"tracer": np.zeros(3)}}, TypeError, "integer"),
    ({"labels": {"mask": np.zeros(3, np.int64)}}, ValueError, "label names"),
    ({"labels": [1, 2, 3]}, TypeError, "mapping"),
    ({"n_active": (0, 2)}, ValueError, "n_active"),
    ({"n_active": (2, 65)}, ValueError, "n_active"),
    ({"n_active": (1, 40)}, ValueError, "overflow"),
    ({"cells_per_side": 0}, ValueError, "cells_per_side"),
    ({"shape_fraction": 1.5}, ValueError, "shape_fraction"),
    ({"shape_fraction": "half"}, TypeError, "shape_fraction"),
    ({"epoch_size": 0}, ValueError, "epoch_size"),
    ({"n_active": (1, 1), "epoch_size": 193}, ValueError, "exceeds the 192"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": 1.5}, TypeError, "seed"),
    ({"layout": "spiral"}, ValueError, "layout must be None"),
])
def test_bad_input_raises(projector, kwargs, error, match):
    args = {"sinograms": np.ones((3, 16, 23), np.float32), "projector": projector, **kwargs}
    with pytest.raises(error, match=match):
        RMASDataset(args.pop("sinograms"), args.pop("projector"), **args)


def test_bad_index_and_epoch(bases, projector):
    ds = _dataset(bases[:2], projector, epoch_size=10)
    for bad, error in [(10, IndexError), (-1, IndexError), (1.0, TypeError)]:
        with pytest.raises(error, match="index"):
            ds[bad]
    with pytest.raises(ValueError, match="epoch"):
        ds.set_epoch(-1)


@pytest.mark.parametrize("layout", ["random", "clustered", "rings"])
def test_layout_mode_draws_masks_of_that_layout(bases, projector, layout):
    ds = _dataset(bases[:8], projector, layout=layout, n_active=(3, 6), epoch_size=64)
    samples = [ds[i] for i in range(64)]
    cells = ds.basis.cells
    for i, sample in enumerate(samples):
        activity = sample["activity"].numpy()
        assert 3 <= activity.sum() <= 6
        np.testing.assert_array_equal(sample["mask"].numpy() != 0, ds.basis.masks(activity))
        # the sample id still names the (base, cell subset) pair: the subset's rank inverts the unranking
        base, decoded = ds._decode(np.array([int(sample["sample_id"])]))
        assert int(base[0]) == int(sample["base_index"]) and np.array_equal(decoded[0], activity)
        if layout == "clustered":  # 4-connected, as CellGrid draws them
            from scipy import ndimage
            assert ndimage.label(activity.reshape(cells.cells_per_side, -1))[1] == 1
    # every base is used equally (the permutation still orders the bases), and the draws are per index
    counts = np.bincount([int(s["base_index"]) for s in samples], minlength=8)
    assert counts.min() >= 4
    again = _dataset(bases[:8], projector, layout=layout, n_active=(3, 6), epoch_size=64)
    assert all(torch.equal(again[i]["mask"], samples[i]["mask"]) for i in (0, 17, 63))
    assert layout in ds.describe() and "at most" in ds.describe()


def test_every_layout_mixes_enumerated_clustered_and_ring_masks(bases, projector):
    from scipy import ndimage

    ds = _dataset(bases[:8], projector, layout="every", n_active=(6, 6), epoch_size=96)
    side = ds.basis.cells.cells_per_side
    connected = []
    for i in range(96):
        sample = ds[i]
        activity = sample["activity"].numpy()
        assert activity.sum() == 6
        np.testing.assert_array_equal(sample["mask"].numpy() != 0, ds.basis.masks(activity))
        base, decoded = ds._decode(np.array([int(sample["sample_id"])]))
        assert int(base[0]) == int(sample["base_index"]) and np.array_equal(decoded[0], activity)
        connected.append(ndimage.label(activity.reshape(side, -1))[1] == 1)
    # clustered masks are one 4-connected cluster; six cells of an enumerated subset almost never are, and rings
    # are scattered round an annulus: a third to two thirds of the masks are connected, not all, not none
    assert 20 <= sum(connected) <= 70
    enumerated = _dataset(bases[:8], projector, n_active=(6, 6), epoch_size=96)
    assert sum(ndimage.label(enumerated[i]["activity"].numpy().reshape(side, -1))[1] == 1 for i in range(96)) < 5
    again = _dataset(bases[:8], projector, layout="every", n_active=(6, 6), epoch_size=96)
    assert all(torch.equal(again[i]["mask"], ds[i]["mask"]) for i in (0, 41, 95))
    assert "enumerated, clustered or rings" in ds.describe()


def test_rank_inverts_the_enumeration(bases, projector):
    ds = _dataset(bases[:3], projector, cells_per_side=3, n_active=(2, 5))
    ranks = np.arange(ds.n_distinct_masks())
    _, activity = ds._decode(ranks * 3)
    np.testing.assert_array_equal(ds._rank(activity), ranks)
