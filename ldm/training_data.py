"""Training data for the sinogram LDM: batches in the model's format, in a resumable order.

Two sources (:class:`~ldm.config.DataConfig`):

- **Ellipse phantoms** (``source="ellipses"``, no files needed): random
  activity images (a body ellipse with warm and cold organs and hot lesions)
  projected by a :class:`~pet_projection.ParallelBeamProjector`; the lesions'
  TMA attention and the body support come with them. They are the base
  sinograms of an :class:`ldm.RMASDataset` (tasks ``"unconditional"`` and
  ``"inpainting"``).
- **A simulator dataset folder** (``source="folder"``): one ``.npz`` file per
  sample and a ``manifest.json`` (see :class:`PairedFolderDataset`), used as
  ``input -> target`` pairs (``task="paired"``) or, its targets, as RMAS bases.

Batches (after the dataset's collate function) are dicts in the format of
:class:`ldm.diffusion.SinogramLDM`: ``"target"`` ``(B, 1, V, R)`` float32 and,
when present, ``"input"``, ``"known"``, ``"mask"``, ``"attention"``,
``"support"`` of the same shape, and int64 ``(B,)`` ``"tracer"``, ``"region"``.
Sinograms stay in their units (line integrals): the model calibrates its scale.

:class:`EpochBatchSampler` gives the global batches of epoch ``e`` as a
function of ``(seed, e)`` only and hands each of ``W`` processes its own part,
so a run that resumes in the middle of an epoch continues with exactly the
batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, default_collate

from pet_projection import ImageGrid, ParallelBeamGeometry, ParallelBeamProjector
from pet_projection.attention import AttentionRegions, TransparentMedicalAttention, segment_metabolic
from pet_projection.masks import body_support, random_ellipses

from .config import DataConfig
from .rmas_dataset import RMASDataset

__all__ = ["EllipsePhantoms", "EpochBatchSampler", "PairedFolderDataset", "RMASCollate", "SimulatedTaskDataset",
           "TrainingData", "build_training_data", "collate", "data_projector", "ellipse_phantoms", "is_simulated"]

SINOGRAM_KEYS = ("target", "input", "known", "mask", "attention", "support")
LABEL_KEYS = ("tracer", "region")

# Phantom activities relative to the body background (1.0). Lesions at 4-8x the background
# are well above the PERCIST measurability ratio 1.5 (Wahl et al., J Nucl Med 2009;50:122S),
# so TMA's hypermetabolic segmentation finds them; organs span cold (0.3) to warm (2.5).
BODY_SEMI_AXES = (0.55, 0.9)       # fraction of the field radius
ORGAN_SEMI_AXES = (0.1, 0.3)
LESION_SEMI_AXES = (0.04, 0.1)
WARM_ORGAN_ACTIVITY = (1.2, 2.5)
COLD_ORGAN_ACTIVITY = (0.3, 0.8)
LESION_ACTIVITY = (4.0, 8.0)


def data_projector(config: DataConfig) -> ParallelBeamProjector:
    """Parallel-beam projector of the config's square image grid and sinogram shape."""
    grid = ImageGrid((config.image_size, config.image_size), voxel_size_mm=config.voxel_size_mm)
    geometry = ParallelBeamGeometry(grid, n_views=config.n_views, n_bins=config.n_bins,
                                    bin_width_mm=config.bin_width_mm)
    return ParallelBeamProjector(geometry)


# ----------------------------------------------------------------------------------------------- phantoms

@dataclass(frozen=True)
class EllipsePhantoms:
    """Random ellipse activity phantoms and their sinogram-space companions.

    Attributes
    ----------
    activity : ndarray ``(n, ny, nx)`` float32
        Activity images (body background 1).
    body : ndarray ``(n, ny, nx)`` bool
        Body outline.
    sinograms : ndarray ``(n, n_views, n_bins)`` float32
        Line integrals of ``activity`` (activity x mm).
    attention : ndarray ``(n, n_views, n_bins)`` float32
        TMA sinogram attention in ``[0, 1]`` of the hypermetabolic regions.
    support : ndarray ``(n, n_views, n_bins)`` bool
        Rays that meet the body (:func:`~pet_projection.body_support`).
    """

    activity: np.ndarray
    body: np.ndarray
    sinograms: np.ndarray
    attention: np.ndarray
    support: np.ndarray


def ellipse_phantoms(projector: ParallelBeamProjector, n: int, seed: int) -> EllipsePhantoms:
    """``n`` random phantoms on the projector's grid, deterministic in ``seed``.

    Each phantom is a body ellipse of activity 1 with up to three warm and
    three cold organ ellipses and up to two hot lesions (activities in the
    module constants), cut to the body. The attention is TMA's
    (:class:`~pet_projection.TransparentMedicalAttention`) for the regions
    :func:`~pet_projection.segment_metabolic` finds with the body as the
    reference region (weight 1 for ``"hyper"``, 0 for ``"hypo"``).
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    grid = projector.geometry.grid
    rng = np.random.default_rng(np.random.SeedSequence([seed]))
    field_mm = 0.5 * min(grid.extent_mm)

    def ellipses(count: tuple[int, int], semi_axes: tuple[float, float], center_fraction: float) -> np.ndarray:
        return random_ellipses(grid, n, rng, n_shapes=count, semi_axes_mm=tuple(f * field_mm for f in semi_axes),
                               center_radius_mm=center_fraction * field_mm) != 0

    def level(bounds: tuple[float, float]) -> np.ndarray:
        return rng.uniform(*bounds, size=(n, 1, 1)).astype(np.float32)

    body = ellipses((1, 1), BODY_SEMI_AXES, 0.05)
    warm, cold = ellipses((0, 3), ORGAN_SEMI_AXES, 0.5) & body, ellipses((0, 3), ORGAN_SEMI_AXES, 0.5) & body
    lesions = ellipses((0, 2), LESION_SEMI_AXES, 0.5) & body
    activity = body.astype(np.float32)
    activity = np.where(warm, level(WARM_ORGAN_ACTIVITY), activity)
    activity = np.where(cold, level(COLD_ORGAN_ACTIVITY), activity)
    activity = np.where(lesions, level(LESION_ACTIVITY), activity).astype(np.float32)
    sinograms = projector(activity).astype(np.float32)
    regions = AttentionRegions.from_table(segment_metabolic(activity, body, body, grid), {"hyper": 1.0, "hypo": 0.0})
    attention = TransparentMedicalAttention(projector)(regions).sinogram.astype(np.float32)
    support = np.asarray(body_support(body.astype(np.float32), projector), dtype=bool)
    return EllipsePhantoms(activity, body, sinograms, attention, support)


# ----------------------------------------------------------------------------------------------- datasets

class RMASCollate:
    """Collate :class:`ldm.RMASDataset` items into model batches (:func:`ldm.diffusion.batch_from_rmas`).

    Parameters
    ----------
    task : {"unconditional", "inpainting"}
        ``"inpainting"`` keeps ``input = known = positive`` and ``mask`` (the
        model completes the rays outside the mask); ``"unconditional"`` keeps
        only ``target = full``, ``attention`` and the labels.
    support : ndarray ``(N, n_views, n_bins)``, optional
        Body support per base sinogram, added as ``"support"`` (by ``base_index``).
    """

    def __init__(self, task: str, support: Optional[np.ndarray] = None) -> None:
        if task not in ("unconditional", "inpainting"):
            raise ValueError(f"task must be 'unconditional' or 'inpainting' for RMAS data, got {task!r}")
        self.task = task
        self.support = None if support is None else torch.as_tensor(np.asarray(support, dtype=np.float32))

    def __call__(self, items: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        from .diffusion import batch_from_rmas

        collated = default_collate(list(items))
        batch = batch_from_rmas(collated)
        if self.task == "unconditional":
            for key in ("input", "known", "mask"):
                batch.pop(key)
        if self.support is not None:
            batch["support"] = self.support[collated["base_index"]].unsqueeze(1)
        return batch


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / "manifest.json"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as stream:
        try:
            manifest = json.load(stream)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return manifest


class PairedFolderDataset(Dataset):
    """Sinogram samples from a dataset folder, one ``.npz`` file per sample (e.g. input/target pairs).

    Parameters
    ----------
    path : str or Path
        The folder. Its ``manifest.json`` (optional) may list the sample files
        under ``"samples"`` (file names, or objects with a ``"file"`` key);
        otherwise every ``*.npz`` in the folder is a sample, in sorted order.
    required : sequence of str
        Arrays every file must hold; default ``("input", "target")``.

    Notes
    -----
    A file holds sinograms ``"target"``, ``"input"``, ``"known"``,
    ``"mask"``, ``"attention"``, ``"support"`` (those present), all of one
    shape ``(V, R)`` (or ``(1, V, R)``), and optional integer scalars
    ``"tracer"`` and ``"region"``; other arrays are ignored. Items are dicts
    of float32 tensors ``(1, V, R)`` and int64 scalars (batch them with
    :func:`collate`).
    """

    def __init__(self, path: Any, required: Sequence[str] = ("input", "target")) -> None:
        root = Path(path)
        if not root.is_dir():
            raise ValueError(f"dataset folder {str(path)!r} does not exist")
        unknown = sorted(set(required) - set(SINOGRAM_KEYS + LABEL_KEYS))
        if unknown:
            raise ValueError(f"required names unknown arrays {unknown}; known: {SINOGRAM_KEYS + LABEL_KEYS}")
        entries = _read_manifest(root).get("samples")
        if entries is None:
            files = sorted(root.glob("*.npz"))
        else:
            names = [entry["file"] if isinstance(entry, Mapping) else entry for entry in entries]
            files = [root / str(name) for name in names]
        if not files:
            raise ValueError(f"dataset folder {root} holds no .npz samples")
        missing = [str(file) for file in files if not file.is_file()]
        if missing:
            raise ValueError(f"manifest of {root} lists missing files: {missing[:3]}")
        self.files, self.required = files, tuple(required)
        self.sinogram_shape: Optional[tuple[int, ...]] = None
        first = self._load(0)
        self.sinogram_shape = next(first[key].shape for key in SINOGRAM_KEYS if key in first)

    def _load(self, index: int) -> dict[str, np.ndarray]:
        file = self.files[index]
        with np.load(file) as archive:
            arrays = {key: archive[key] for key in SINOGRAM_KEYS + LABEL_KEYS if key in archive.files}
        absent = [key for key in self.required if key not in arrays]
        if absent or not any(key in arrays for key in SINOGRAM_KEYS):
            raise ValueError(f"{file} lacks arrays {absent or list(SINOGRAM_KEYS)}; it has {sorted(arrays)}")
        for key in SINOGRAM_KEYS:
            if key in arrays:
                array = arrays[key][0] if arrays[key].ndim == 3 and arrays[key].shape[0] == 1 else arrays[key]
                if array.ndim != 2 or self.sinogram_shape not in (None, array.shape):
                    raise ValueError(f"{file}: {key!r} has shape {arrays[key].shape}, expected (n_views, n_bins)"
                                     f" = {self.sinogram_shape or 'as the other sinograms'}")
                arrays[key] = array
        return arrays

    def __len__(self) -> int:
        return len(self.files)

    def targets(self) -> np.ndarray:
        """All targets ``(n, V, R)`` float32."""
        return np.stack([self._load(i)["target"] for i in range(len(self))]).astype(np.float32)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index must be an integer, got {index!r}")
        arrays = self._load(int(index))
        item = {key: torch.as_tensor(np.asarray(arrays[key], dtype=np.float32)).unsqueeze(0)
                for key in SINOGRAM_KEYS if key in arrays}
        item.update({key: torch.tensor(int(arrays[key]), dtype=torch.int64) for key in LABEL_KEYS if key in arrays})
        return item


# The run file of the unmixing weights of data.model_input 'unmixing' (written by allpet train, read by allpet sample).
UNMIXING_WEIGHTS_FILE = "unmixing_weights.npy"

ModelInput = Callable[[Any, np.ndarray], np.ndarray]  # (TaskSample, TMA image attention (ny, nx)) -> (V, R)


class SimulatedTaskDataset(Dataset):
    """Paired task samples of a dataset written by ``allpet simulate`` (:mod:`pet_projection.simulation`).

    Parameters
    ----------
    root : str or Path
        The dataset folder (``manifest.json`` of format ``allpet-simulation``;
        2D parallel-beam sinograms ``(n_views, n_bins)``).
    labels : sequence of str
        Which of ``"tracer"`` (index in :data:`pet_projection.simulation.TRACERS`
        of the sample's first tracer, or of the item's target tracer when a
        sample has several targets) and ``"region"`` (index in
        :data:`pet_projection.simulation.ANATOMIES`) to add; the model needs
        ``n_tracers`` / ``n_regions`` at least that large.
    model_input : callable, optional
        ``model_input(sample, attention_image)``: the ``input`` of a
        :class:`~pet_projection.simulation.TaskSample` given its TMA lesion
        attention ``(ny, nx)``, ``(n_views, n_bins)`` at the target's count
        scale (e.g. the task's physics prior, :mod:`tasks.model_inputs`);
        default: the measured input.
    input_weights : ndarray, optional
        ``(n_targets, V, R)``: the input of target ``k`` is
        ``input_weights[k] * measured`` (the linear-unmixing prior of
        tracer separation); instead of ``model_input``.

    Items (read with the simulator's :class:`~pet_projection.simulation.SimulatedDataset`),
    one per sample, or for tasks with several targets per sample (tracer
    separation: one per tracer) one per (sample, target) with the targets
    innermost; such datasets need the ``tracer`` label, which then names the
    item's target tracer (it tells the model which tracer to output):
    ``target`` ``(1, V, R)`` as simulated; ``input`` ``(1, V, R)``: the
    measured input brought to the target's count scale, times
    ``target_count_scale / count_scale`` of the sample's metadata (for
    ``low_dose``: times the dose reduction factor), so that one sinogram scale
    of the model serves both, or ``model_input`` of the sample;
    ``attention``: TMA of the sample's lesions
    (:func:`~pet_projection.simulation.lesion_attention`), and ``support``:
    the rays the target can hold counts on
    (:func:`~pet_projection.simulation.count_support`: those that meet the
    body, and those with expected scatter and randoms), both on the sample's
    own projector (from its metadata). An item's derived arrays are computed
    on its first read and kept.
    """

    def __init__(self, root: Any, labels: Sequence[str] = (), model_input: Optional[ModelInput] = None,
                 input_weights: Optional[np.ndarray] = None) -> None:
        from pet_projection.simulation import TRACERS, SimulatedDataset

        self.data = SimulatedDataset(root)
        unknown = sorted(set(labels) - set(LABEL_KEYS))
        if unknown:
            raise ValueError(f"labels must be among {LABEL_KEYS}, got {unknown}")
        self.labels = tuple(labels)
        target = self.data.load_array(0, "target")
        self.n_targets = target.shape[0] if target.ndim == 3 else 1
        self.sinogram_shape = target.shape[-2:]
        if target.ndim not in (2, 3) or self.data.load_array(0, "input").shape != self.sinogram_shape:
            raise ValueError(f"{root}: the {self.data.task!r} task has targets of shape {target.shape}; the sinogram "
                             "LDM takes 2D input/target sinograms of one shape (n_views, n_bins), or several "
                             "targets of that shape per input")
        if self.n_targets > 1 and "tracer" not in self.labels:
            raise ValueError(f"{root}: the {self.data.task!r} task has {self.n_targets} targets per sample (one per "
                             "tracer), and the model tells them apart by the tracer label: set model.n_tracers "
                             f"(at least {len(TRACERS)}, the simulator's tracers)")
        if input_weights is not None:
            input_weights = np.asarray(input_weights, dtype=np.float32)
            if model_input is not None or input_weights.shape != (self.n_targets,) + self.sinogram_shape:
                raise ValueError(f"input_weights must have shape {(self.n_targets,) + self.sinogram_shape} (one "
                                 f"sinogram per target) and replace model_input, got {input_weights.shape}")
        self.model_input = model_input
        self.input_weights = input_weights
        self._projectors: dict[str, ParallelBeamProjector] = {}
        self._items: dict[int, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.data) * self.n_targets

    def targets(self) -> np.ndarray:
        """All targets ``(len(self), V, R)`` float32, in item order."""
        return self.data.stack("target").astype(np.float32).reshape(-1, *self.sinogram_shape)

    @staticmethod
    def _measured(sample: Any) -> np.ndarray:
        """The measured input at the target's count scale."""
        metadata = sample.metadata
        return sample.input * (metadata.get("target_count_scale", 1.0) / metadata.get("count_scale", 1.0))

    def measured_and_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """Every sample's measured input at the target's count scale ``(N, V, R)`` and targets ``(N, T, V, R)``."""
        measured = np.stack([self._measured(self.data[i]) for i in range(len(self.data))])
        return measured, self.data.stack("target").reshape(len(self.data), self.n_targets, *self.sinogram_shape)

    def _projector(self, description: Mapping[str, Any]) -> ParallelBeamProjector:
        from pet_projection.simulation.acquisition import projector_from_description

        key = json.dumps(description, sort_keys=True)
        if key not in self._projectors:
            self._projectors[key] = projector_from_description(dict(description))
        return self._projectors[key]

    def _sample_items(self, index: int) -> list[dict[str, torch.Tensor]]:
        """The items of sample ``index``: one per target."""
        from pet_projection.simulation import ANATOMIES, TRACERS, count_support, lesion_attention

        sample = self.data[index]
        projector = self._projector(sample.metadata["projector"])
        attention_image, attention = lesion_attention(sample, projector)
        supports = count_support(sample, projector).reshape(self.n_targets, *self.sinogram_shape)
        metadata = sample.metadata
        if self.model_input is None:
            model_input = self._measured(sample)
        else:
            model_input = np.asarray(self.model_input(sample, attention_image))
            if model_input.shape != self.sinogram_shape:
                raise ValueError(f"the model input of sample {index} has shape {model_input.shape}, its sinograms "
                                 f"{self.sinogram_shape}")
        model_input = np.asarray(model_input, dtype=np.float32)
        inputs = [model_input] * self.n_targets if self.input_weights is None else self.input_weights * model_input
        targets = sample.target.reshape(self.n_targets, *self.sinogram_shape)
        items = []
        for k in range(self.n_targets):
            ids = {"tracer": list(TRACERS).index(metadata["tracers"][k]),
                   "region": list(ANATOMIES).index(metadata["anatomy"])}
            item = {key: torch.as_tensor(np.asarray(value, dtype=np.float32)).unsqueeze(0)
                    for key, value in (("input", inputs[k]), ("target", targets[k]), ("attention", attention),
                                       ("support", supports[k]))}
            item.update({key: torch.tensor(ids[key], dtype=torch.int64) for key in self.labels})
            items.append(item)
        return items

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index not in self._items:
            first = index - index % self.n_targets
            for k, item in enumerate(self._sample_items(first // self.n_targets)):
                self._items[first + k] = item
        return dict(self._items[index])


def is_simulated(path: Any) -> bool:
    """Whether folder ``path`` holds an ``allpet simulate`` dataset (its manifest says so)."""
    return _read_manifest(Path(path)).get("format") == "allpet-simulation"


def collate(items: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack items into a batch dict (keys present in every item only)."""
    keys = set(items[0]).intersection(*items[1:])
    return default_collate([{key: item[key] for key in sorted(keys)} for item in items])


# ----------------------------------------------------------------------------------------------- assembly

@dataclass(frozen=True)
class TrainingData:
    """A training dataset, how to batch it, and its geometry.

    Attributes
    ----------
    dataset : torch Dataset
        :class:`ldm.RMASDataset` or :class:`PairedFolderDataset`.
    collate_fn : callable
        Items to a model batch (:class:`RMASCollate` or :func:`collate`).
    projector : ParallelBeamProjector
        The data's geometry (``DataConfig`` sizes), e.g. for reconstructions.
    description : str
        One line for the training log.
    input_weights : ndarray or None
        The unmixing weights of ``data.model_input: unmixing``
        (``fit_input_weights``), which sampling needs too.
    """

    dataset: Dataset
    collate_fn: Callable[[Sequence[Mapping[str, torch.Tensor]]], dict[str, torch.Tensor]]
    projector: ParallelBeamProjector
    description: str
    input_weights: Optional[np.ndarray] = None


def build_training_data(config: DataConfig, seed: int = 0, labels: Sequence[str] = (),
                        model_input: Optional[ModelInput] = None,
                        fit_input_weights: Optional[Callable[[SimulatedTaskDataset], np.ndarray]] = None
                        ) -> TrainingData:
    """The training data of ``config``; ``seed`` (the run's seed) orders the RMAS samples.

    A folder's sinograms must have the shape ``(data.n_views, data.n_bins)``,
    so that the config describes their geometry. A folder written by
    ``allpet simulate`` is read with the simulator's reader
    (:class:`SimulatedTaskDataset`, which adds the ``labels`` asked for: the
    model's label kinds with classes); other folders with
    :class:`PairedFolderDataset`.

    ``config.model_input`` other than ``"measured"`` is task physics, which
    the caller supplies (``allpet train`` takes both from
    :mod:`tasks.model_inputs`): ``"physics_prior"`` needs ``model_input``
    (see :class:`SimulatedTaskDataset`), ``"unmixing"`` needs
    ``fit_input_weights(folder) -> (n_targets, V, R)``, fitted on the folder's
    measured inputs and targets.
    """
    if not isinstance(config, DataConfig):
        raise TypeError(f"config must be a DataConfig, got {type(config).__name__}")
    projector = data_projector(config)
    weights = None
    if config.source == "folder":
        if is_simulated(config.path):
            if config.model_input == "physics_prior" and model_input is None:
                raise ValueError("data.model_input 'physics_prior' needs the task's model-input function "
                                 "(tasks.model_inputs; allpet train passes it)")
            if config.model_input == "unmixing" and fit_input_weights is None:
                raise ValueError("data.model_input 'unmixing' needs a fit of the unmixing weights "
                                 "(tasks.model_inputs; allpet train passes it)")
            folder = SimulatedTaskDataset(config.path, labels,
                                          model_input if config.model_input == "physics_prior" else None)
            if config.model_input == "unmixing":
                weights = np.asarray(fit_input_weights(folder), dtype=np.float32)
                folder = SimulatedTaskDataset(config.path, labels, input_weights=weights)
        elif config.model_input != "measured":
            raise ValueError(f"data.model_input {config.model_input!r} needs an allpet simulate folder (its samples "
                             f"carry their system models); {config.path} is not one: precompute the model inputs "
                             "into its 'input' arrays and set data.model_input to 'measured'")
        else:
            folder = PairedFolderDataset(config.path, ("input", "target") if config.task == "paired" else ("target",))
        if folder.sinogram_shape != projector.out_shape:
            raise ValueError(f"the sinograms in {config.path} have shape {folder.sinogram_shape}, but "
                             f"data.n_views x data.n_bins is {projector.out_shape}; set them to match")
        if config.task == "paired":
            return TrainingData(folder, collate, projector, f"{len(folder)} input/target pairs from {config.path}",
                                weights)
        bases, attention, support = folder.targets(), None, None
    else:
        phantoms = ellipse_phantoms(projector, config.n_bases, config.seed)
        bases, attention, support = phantoms.sinograms, phantoms.attention, phantoms.support
    rmas = RMASDataset(bases, projector, attention=attention, cells_per_side=config.cells_per_side,
                       n_active=config.n_active, shape_fraction=config.shape_fraction,
                       epoch_size=config.epoch_size, seed=seed, layout=config.layout)
    return TrainingData(rmas, RMASCollate(config.task, support), projector, f"{config.task} task, {rmas.describe()}")


# ----------------------------------------------------------------------------------------------- order

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
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
                raise ValueError(f"{name} must be an integer of at least {minimum}, got {value!r}")
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
