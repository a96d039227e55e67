"""Model examples of a task: input, target, TMA attention and body support per (sample, output channel).

:func:`build_examples` turns simulated samples into stacked arrays;
:class:`ExampleDataset` serves them as items of the sinogram LDM's batch
format (:mod:`ldm.batches`), each sinogram ``(1, n_views, n_bins)`` float32:
``target``, ``input`` (at the target's count scale), ``mask`` (all ones: the
whole input is measured), ``attention`` and ``support``, plus an int64
``tracer`` label (the output channel) for multi-output tasks.
:class:`MixedDataset` adds RMAS/DMM samples (:class:`ldm.RMASDataset`) of the
training targets: inpainting examples whose ``input`` is the target inside a
DMM sinogram mask, with that ``mask``.

TMA attention (:func:`tasks.attention_inputs.attention_for`, without edits):
by default the hyper- and hypometabolic regions of a coarse segmentation of
each sample's measured input, which is what a user has at test time, so that
training sees the attention testing will get; ``attention="oracle"`` takes the
simulator's lesion labels instead (an upper bound). The support is
:func:`~pet_projection.simulation.count_support`: the rays that meet the
body or carry expected background (randoms + scatter) in the target, so
prompt targets, which have counts on every ray, are never cut to the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from pet_projection.simulation import TaskSample, count_support
from pet_projection.simulation.deformation import DeformationSettings

from .attention_inputs import attention_for
from .model_inputs import ModelInput
from .task import PETTask, sample_projector

__all__ = ["Examples", "ExampleDataset", "MixedDataset", "build_examples", "check_same_geometry",
           "with_resampled_inputs", "with_warped_anatomies"]


@dataclass(frozen=True)
class Examples:
    """Stacked model examples, one per (sample, channel); arrays ``(N, n_views, n_bins)`` float32 unless noted.

    Attributes
    ----------
    input : ndarray
        What the model is conditioned on: the measured input or its physics
        prior (:meth:`PETTask.physics_prior`), at the target's count scale.
    measured : ndarray
        The measured input at the target's count scale (:meth:`PETTask.model_input`).
    target, attention, support : ndarray
    sample_index, channel : int64 ndarray ``(N,)``
    """

    input: np.ndarray
    measured: np.ndarray
    target: np.ndarray
    attention: np.ndarray
    support: np.ndarray
    sample_index: np.ndarray
    channel: np.ndarray

    def __len__(self) -> int:
        return int(self.input.shape[0])


def build_examples(task: PETTask, samples: Sequence[TaskSample], model_input: Optional[ModelInput] = None,
                   progress: bool = False, attention: str = "segmentation") -> Examples:
    """Examples of ``samples`` (each checked with :meth:`PETTask.check_sample`), channels innermost.

    ``model_input(sample, attention_image)`` gives the model's condition
    ``(n_views, n_bins)`` of a sample from it and its TMA image attention
    ``(ny, nx)`` (e.g. :func:`tasks.model_inputs.physics_prior_model_input`); default:
    the measured input. ``attention``: the attention's regions,
    ``"segmentation"`` of the measured input or the ``"oracle"`` lesion labels
    (:func:`tasks.attention_inputs.attention_regions`). ``progress``: a tqdm bar.
    """
    from tqdm.auto import tqdm

    if not samples:
        raise ValueError("no samples given")
    rows: dict[str, list] = {key: [] for key in ("input", "measured", "target", "attention", "support",
                                                   "sample_index", "channel")}
    shape = samples[0].input.shape
    for index, sample in enumerate(tqdm(samples, desc="model examples", disable=not progress, unit="sample")):
        task.check_sample(sample)
        if sample.input.shape != shape:
            raise ValueError(f"sample {index} has sinograms of shape {sample.input.shape}, sample 0 {shape}: one "
                             "model needs one sinogram geometry")
        maps = attention_for(sample, None, attention)
        condition = None if model_input is None else model_input(sample, maps.image)
        if condition is not None and np.shape(condition) != shape:
            raise ValueError(f"the model input of sample {index} has shape {np.shape(condition)}, its sinograms "
                             f"{shape}")
        supports = count_support(sample, sample_projector(sample))
        measured = task.model_input(sample)
        for channel in range(task.n_outputs):
            support = supports[channel] if task.n_outputs > 1 else supports
            rows["measured"].append(measured)
            rows["input"].append(measured if condition is None else condition)
            rows["target"].append(task.target(sample, channel))
            rows["attention"].append(maps.sinogram)
            rows["support"].append(support)
            rows["sample_index"].append(index)
            rows["channel"].append(channel)
    floats = {key: np.stack(rows[key]).astype(np.float32) for key in ("input", "measured", "target", "attention",
                                                                     "support")}
    return Examples(**floats, sample_index=np.asarray(rows["sample_index"], dtype=np.int64),
                    channel=np.asarray(rows["channel"], dtype=np.int64))


Augment = Callable[[TaskSample, np.random.Generator], Optional[TaskSample]]


def _with_copies(samples: Sequence[TaskSample], name: str, n_copies: int, stream: tuple[int, ...], make: Augment,
                 seed: int) -> list[TaskSample]:
    """``samples`` followed by ``n_copies`` rounds of ``make(sample, rng)`` (only ``samples`` if it gives None)."""
    if isinstance(n_copies, bool) or not isinstance(n_copies, int) or n_copies < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n_copies!r}")
    out = list(samples)
    for k in range(n_copies):
        for i, sample in enumerate(samples):
            copy = make(sample, np.random.default_rng((seed, *stream, k, i)))
            if copy is None:
                return list(samples)
            out.append(copy)
    return out


def with_resampled_inputs(task: PETTask, samples: Sequence[TaskSample], n_resamples: int,
                          seed: int = 0) -> list[TaskSample]:
    """``samples`` followed by ``n_resamples`` copies of each with a fresh input (:meth:`PETTask.resample_input`).

    Count-level augmentation of the training set; tasks without input
    resampling get ``samples`` unchanged. Copy ``k`` of sample ``i`` draws
    from ``numpy.random.default_rng((seed, k, i))``, so a sample's copies do
    not depend on the others.
    """
    return _with_copies(samples, "n_resamples", n_resamples, (), task.resample_input, seed)


def with_warped_anatomies(task: PETTask, samples: Sequence[TaskSample], n_warps: int, seed: int = 0,
                          settings: DeformationSettings = DeformationSettings()) -> list[TaskSample]:
    """``samples`` followed by ``n_warps`` new patients per sample (:meth:`PETTask.warp_sample`).

    Anatomy-level augmentation of the training set: each copy is its sample's
    anatomy under a random deformation, scanned again through the sample's
    physics with fresh counts (every task: :meth:`PETTask.scan` draws its
    sinograms). Copy ``k`` of sample ``i`` draws from ``numpy.random.default_rng((seed,
    1, k, i))``.
    """
    return _with_copies(samples, "n_warps", n_warps, (1,), lambda s, rng: task.warp_sample(s, rng, settings), seed)


class ExampleDataset:
    """torch Dataset of :class:`Examples` in the LDM batch format (module docstring).

    Parameters
    ----------
    examples : Examples
    labels : bool
        Add the ``tracer`` label (the output channel), for multi-output tasks.
    with_target : bool
        Include ``target`` (training); sampling batches leave it out.
    """

    def __init__(self, examples: Examples, labels: bool = False, with_target: bool = True) -> None:
        self.examples, self.labels, self.with_target = examples, labels, with_target

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict:
        import torch

        e = self.examples
        keys = ("input", "attention", "support") + (("target",) if self.with_target else ())
        item = {key: torch.from_numpy(getattr(e, key)[index]).unsqueeze(0) for key in keys}
        item["mask"] = torch.ones_like(item["input"])
        if self.labels:
            item["tracer"] = torch.tensor(int(e.channel[index]), dtype=torch.int64)
        return item


class MixedDataset:
    """Paired examples followed by RMAS/DMM inpainting samples of their targets (same item keys).

    Parameters
    ----------
    paired : ExampleDataset
    projector : ParallelBeamProjector
        Defines the DMM cells' sinogram masks (the first training sample's
        projector; samples of one anatomy share it).
    rmas_per_example : float
        RMAS samples per paired example in an epoch (> 0).
    cells_per_side : int
        DMM cells per side (:class:`ldm.RMASDataset`).
    seed : int
    """

    def __init__(self, paired: ExampleDataset, projector, rmas_per_example: float = 1.0, cells_per_side: int = 4,
                 seed: int = 0) -> None:
        from ldm.rmas_dataset import RMASDataset

        if not rmas_per_example > 0:
            raise ValueError(f"rmas_per_example must be positive, got {rmas_per_example!r}")
        e = paired.examples
        labels = {"tracer": e.channel} if paired.labels else None
        n_rmas = max(1, int(round(rmas_per_example * len(e))))
        self.paired = paired
        self.rmas = RMASDataset(e.target, projector, attention=e.attention, labels=labels,
                                cells_per_side=cells_per_side, n_active=(1, max(1, cells_per_side)),
                                epoch_size=None, seed=seed)
        self.n_rmas = min(n_rmas, len(self.rmas))

    def set_epoch(self, epoch: int) -> None:
        self.rmas.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.paired) + self.n_rmas

    def __getitem__(self, index: int) -> dict:
        import torch

        if index < len(self.paired):
            return self.paired[index]
        item = self.rmas[index - len(self.paired)]
        base = int(item["base_index"])
        out = {"target": item["full"].unsqueeze(0), "input": item["positive"].unsqueeze(0),
               "mask": item["mask"].float().unsqueeze(0), "attention": item["attention"].float().unsqueeze(0),
               "support": torch.from_numpy(self.paired.examples.support[base]).unsqueeze(0)}
        if self.paired.labels:
            out["tracer"] = torch.tensor(int(item["tracer"]), dtype=torch.int64)
        return out


def check_same_geometry(train: Sequence[TaskSample], test: Sequence[TaskSample],
                        names: Optional[tuple[str, str]] = None) -> None:
    """``ValueError`` naming the difference unless all samples share the first training sample's projector."""
    what = names or ("training", "test")
    reference = train[0].metadata["projector"]
    for label, samples in zip(what, (train, test)):
        for index, sample in enumerate(samples):
            if sample.metadata["projector"] != reference:
                diff = sorted(key for key in set(reference) | set(sample.metadata["projector"])
                              if reference.get(key) != sample.metadata["projector"].get(key))
                raise ValueError(f"geometry mismatch: {label} sample {index} has another projector than training "
                                 f"sample 0 (differs in {', '.join(diff)}); use data of one geometry "
                                 "(one anatomy, size and number of views)")
