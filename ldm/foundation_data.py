"""Pretraining data of the foundation model: simulated base slices, RMAS/DMM masks, prompts and random windows.

The base set (:func:`simulate_base_slices`) is ``n`` 2D slices of the
simulator (:mod:`pet_projection.simulation`), spread round-robin over the
given body regions and tracers: slice ``i`` has region ``regions[i % R]`` and
tracer ``tracers[(i // R) % T]``, its own anatomy, lesions, texture and
kinetics (seed ``sample_rng(seed, i)``), and its full-dose measured prompts on
the region's field of view (256 mm brain, 500 mm trunk, chest, abdomen) as
the sinogram. The lesions' TMA attention and the body support come with it
(training data may use the simulator's labels; test inputs never do).

An :class:`~ldm.RMASDataset` of the bases gives (base, DMM mask) pairs;
:class:`FoundationCollate` turns each batch of them into prompted training
examples (Huang et al., arXiv 2509.09130: pretraining on RMAS/DMM samples
with positive/negative constraints, steered by task, tracer and region):

- task ``"inpainting"`` (probability ``1 - synthesis_fraction``): the known
  rays are the mask's, or with probability ``complement_fraction`` the
  complement's, so the model learns the negative part from the positive one
  and the positive from the negative one;
- task ``"synthesis"``: nothing is known (mask 0), the prompt alone steers;
- one random window per batch (:mod:`ldm.windows`): ``n_views`` consecutive
  views starting anywhere in ``[0, 2 pi)`` (views beyond ``pi`` are the
  mirrored data, ``p(theta + pi, s) = p(theta, -s)``) and ``n_bins``
  consecutive radial bins, sizes drawn from ``window_views`` /
  ``window_bins``; with probability ``full_window_fraction`` the whole
  sinogram ``[0, pi)``.

All draws come from the batch's sample ids and the collate seed, so a batch
is a function of its items: resume and any number of DataLoader workers give
the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import default_collate

from pet_projection.io.files import atomic_write
from pet_projection.simulation import (TRACERS, SimulationConfig, count_support, lesion_attention, sample_rng,
                                       simulate_sample)
from pet_projection.simulation.acquisition import bin_width_mm, projector_from_description
from pet_projection.simulation.anatomy import ANATOMIES
from pet_projection.validation import check_real, positive_int

from .batches import WINDOW_KEY
from .prompts import PROMPT_TASKS

__all__ = ["BaseSlices", "FoundationCollate", "describe_bases", "load_base_slices", "simulate_base_slices"]

_BASE_KEYS = ("sinograms", "attention", "support", "images", "tracer", "region", "bin_width_mm")


@dataclass(frozen=True)
class BaseSlices:
    """Base slices of the foundation model's pretraining.

    Attributes
    ----------
    sinograms : ndarray ``(N, n_views, n_bins)`` float32
        Full-dose measured prompts (counts); views over ``[0, pi)``, bins centred on the axis.
    attention : ndarray ``(N, n_views, n_bins)`` float32
        TMA sinogram attention of the lesions, in ``[0, 1]``.
    support : ndarray ``(N, n_views, n_bins)`` bool
        Rays that meet the body.
    images : ndarray ``(N, size, size)`` float32
        Ground-truth activity images (expected-count units), for scoring only.
    tracer, region : ndarray ``(N,)`` int64
        Indices in :data:`~pet_projection.simulation.TRACERS` and
        :data:`~pet_projection.simulation.anatomy.ANATOMIES` (the prompt's ids).
    bin_width_mm : ndarray ``(N,)`` float64
        Radial bin width (the region's field of view over ``size``).
    """

    sinograms: np.ndarray
    attention: np.ndarray
    support: np.ndarray
    images: np.ndarray
    tracer: np.ndarray
    region: np.ndarray
    bin_width_mm: np.ndarray

    def __len__(self) -> int:
        return len(self.sinograms)


def simulate_base_slices(n: int, size: int, n_views: int, regions: Sequence[str], tracers: Sequence[str],
                         seed: int = 0, progress: bool = False) -> BaseSlices:
    """``n`` simulated slices, round-robin over ``regions`` and ``tracers`` (module docstring)."""
    from tqdm.auto import tqdm

    positive_int("n", n)
    regions, tracers = tuple(regions), tuple(tracers)
    for region in regions:
        if region not in ANATOMIES:
            raise ValueError(f"unknown region {region!r}; regions: {', '.join(ANATOMIES)}")
    for tracer in tracers:
        if tracer not in TRACERS:
            raise ValueError(f"unknown tracer {tracer!r}; tracers: {', '.join(TRACERS)}")
    if not regions or not tracers:
        raise ValueError("need at least one region and one tracer")
    rows: dict[str, list] = {key: [] for key in _BASE_KEYS}
    for i in tqdm(range(n), desc="simulate base slices", unit="slice", disable=not progress):
        region, tracer = regions[i % len(regions)], tracers[(i // len(regions)) % len(tracers)]
        config = SimulationConfig(size=size, n_views=n_views, anatomy=region, tracer=tracer,
                                  dose_reduction_factors=(4,))
        sample = simulate_sample("low_dose", config, sample_rng(seed, i))
        projector = projector_from_description(sample.metadata["projector"])
        rows["sinograms"].append(sample.target)
        rows["attention"].append(lesion_attention(sample, projector)[1])
        rows["support"].append(count_support(sample, projector))
        rows["images"].append(sample.target_image)
        rows["tracer"].append(list(TRACERS).index(tracer))
        rows["region"].append(ANATOMIES.index(region))
        rows["bin_width_mm"].append(bin_width_mm(projector))
    return BaseSlices(np.stack(rows["sinograms"]).astype(np.float32), np.stack(rows["attention"]).astype(np.float32),
                      np.stack(rows["support"]).astype(bool), np.stack(rows["images"]).astype(np.float32),
                      np.array(rows["tracer"], np.int64), np.array(rows["region"], np.int64),
                      np.array(rows["bin_width_mm"], np.float64))


def load_base_slices(path: Path, n: int, size: int, n_views: int, regions: Sequence[str], tracers: Sequence[str],
                     seed: int = 0, progress: bool = False) -> BaseSlices:
    """The base slices cached in ``path`` (``.npz``) when they were made with these settings, else simulated and saved.

    The cache holds its settings; a file made with other settings, or one
    that cannot be read, is simulated again and replaced (atomically).
    """
    settings = np.array(repr((n, size, n_views, tuple(regions), tuple(tracers), seed)))
    path = Path(path)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as archive:
                if str(archive["settings"]) == str(settings):
                    return BaseSlices(**{key: archive[key] for key in _BASE_KEYS})
        except (OSError, ValueError, KeyError, EOFError):
            pass
    bases = simulate_base_slices(n, size, n_views, regions, tracers, seed, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: np.savez(handle, settings=settings,
                                               **{key: getattr(bases, key) for key in _BASE_KEYS}))
    return bases


def _window_rows(base: np.ndarray, start: int, n_rows: int) -> np.ndarray:
    """Views ``start ... start + n_rows - 1`` of sinograms ``(..., V, R)``, past ``pi`` with the radial flip."""
    n_views = base.shape[-2]
    index = np.arange(start, start + n_rows)
    rows = base[..., index % n_views, :]
    flipped = (index // n_views) % 2 == 1
    return np.where(flipped[:, None], rows[..., ::-1], rows)


class FoundationCollate:
    """Collate :class:`~ldm.RMASDataset` items of the base slices into prompted model batches (module docstring).

    Parameters
    ----------
    bases : BaseSlices
        The dataset's base slices (support and bin widths per base).
    synthesis_fraction, complement_fraction, full_window_fraction : float
        Probabilities in ``[0, 1]``.
    window_views, window_bins : sequence of int
        Window sizes to draw from (each at most twice the views / at most the
        bins of the bases); empty: the whole sinogram.
    seed : int
        Seed of the draws (with the items' sample ids).
    """

    def __init__(self, bases: BaseSlices, synthesis_fraction: float = 0.3, complement_fraction: float = 0.5,
                 window_views: Sequence[int] = (), window_bins: Sequence[int] = (),
                 full_window_fraction: float = 0.25, seed: int = 0) -> None:
        self.bases = bases
        self.synthesis_fraction = check_real("synthesis_fraction", synthesis_fraction, 0.0, 1.0)
        self.complement_fraction = check_real("complement_fraction", complement_fraction, 0.0, 1.0)
        self.full_window_fraction = check_real("full_window_fraction", full_window_fraction, 0.0, 1.0)
        n_views, n_bins = bases.sinograms.shape[1:]
        self.window_views = tuple(positive_int("window_views", v) for v in window_views)
        self.window_bins = tuple(positive_int("window_bins", b) for b in window_bins)
        if any(v > 2 * n_views for v in self.window_views) or any(b > n_bins for b in self.window_bins):
            raise ValueError(f"windows must have at most {2 * n_views} views and {n_bins} bins, got "
                             f"{self.window_views} x {self.window_bins}")
        self.seed = positive_int("seed", seed, minimum=0)

    def _rng(self, items: Sequence[Mapping[str, torch.Tensor]]) -> np.random.Generator:
        ids = [int(item["sample_id"]) + 1 for item in items] + [int(item["base_index"]) for item in items]
        return np.random.default_rng(np.random.SeedSequence([self.seed, *ids]))

    def _roles(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        synthesis = rng.random(batch_size) < self.synthesis_fraction
        complement = rng.random(batch_size) < self.complement_fraction
        return synthesis, complement

    def roles(self, items: Sequence[Mapping[str, torch.Tensor]]) -> tuple[np.ndarray, np.ndarray]:
        """Which items of a batch become synthesis examples (nothing known) and which know the complement of their
        mask: bool ``(len(items),)`` each, as :meth:`__call__` draws them."""
        return self._roles(self._rng(items), len(items))

    def _window(self, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """``(first view, n views, first bin, n bins)`` of the batch's window."""
        n_views, n_bins = self.bases.sinograms.shape[1:]
        if not self.window_views or rng.random() < self.full_window_fraction:
            return 0, n_views, 0, n_bins
        views = int(rng.choice(self.window_views))
        bins = int(rng.choice(self.window_bins)) if self.window_bins else n_bins
        return int(rng.integers(0, 2 * n_views)), views, int(rng.integers(0, n_bins - bins + 1)), bins

    def __call__(self, items: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        collated = default_collate(list(items))
        rng = self._rng(items)
        synthesis, complement = self._roles(rng, len(items))
        mask = collated["mask"].numpy().astype(np.float32)
        mask = np.where(complement[:, None, None], 1.0 - mask, mask)
        mask = np.where(synthesis[:, None, None], 0.0, mask).astype(np.float32)
        base = collated["base_index"].numpy()
        full = collated["full"].numpy().astype(np.float32)
        first_view, n_views, first_bin, n_bins = self._window(rng)
        crop = slice(first_bin, first_bin + n_bins)

        def window(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(_window_rows(x, first_view, n_views)[..., crop]
                                                         ).astype(np.float32)).unsqueeze(1)

        target, mask_w = window(full), window(mask)
        known = target * mask_w
        views_total = full.shape[-2]
        widths = self.bases.bin_width_mm[base]
        centre_first = (first_bin - 0.5 * (full.shape[-1] - 1)) * widths
        step = np.pi / views_total
        rows = np.stack([np.full(len(items), first_view * step), np.full(len(items), step), centre_first, widths],
                        axis=1)
        task = np.where(synthesis, PROMPT_TASKS.index("synthesis"), PROMPT_TASKS.index("inpainting"))
        return {"target": target, "input": known, "known": known, "mask": mask_w,
                "attention": window(collated["attention"].numpy()),
                "support": window(self.bases.support[base].astype(np.float32)),
                "tracer": torch.from_numpy(self.bases.tracer[base]),
                "region": torch.from_numpy(self.bases.region[base]),
                "task": torch.from_numpy(task.astype(np.int64)), WINDOW_KEY: torch.from_numpy(rows)}


def describe_bases(bases: BaseSlices) -> dict[str, Any]:
    """Counts of the base slices per tracer and region (names), for logs and the model card."""
    tracers, regions = list(TRACERS), ANATOMIES
    return {"n": len(bases),
            "tracers": {tracers[i]: int((bases.tracer == i).sum()) for i in np.unique(bases.tracer)},
            "regions": {regions[i]: int((bases.region == i).sum()) for i in np.unique(bases.region)}}
