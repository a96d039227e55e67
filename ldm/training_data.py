"""Training data for the sinogram LDM: the dataset a :class:`~ldm.experiment.DataConfig` describes, and how to batch it.

Three sources (``DataConfig.source``):

- **Ellipse phantoms** (``"ellipses"``, no files needed; :mod:`ldm.phantoms`):
  projected on the config's geometry, with the lesions' TMA attention and the
  body support. They are the base sinograms of an :class:`ldm.RMASDataset`
  (tasks ``"unconditional"`` and ``"inpainting"``).
- **A dataset folder** (``"folder"``; :mod:`ldm.folder_datasets`): one
  ``.npz`` file per sample, or an ``allpet simulate`` dataset, used as
  ``input -> target`` pairs (``task="paired"``) or, its targets, as RMAS bases.
- **The foundation model's base slices** (``"foundation"``; :mod:`ldm.foundation_data`):
  simulated over regions and tracers (cached in ``cache_dir``), as prompted
  RMAS inpainting and synthesis examples in random windows.

Batches (after the collate function) are in the model's format (:mod:`ldm.batches`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from pet_projection import ImageGrid, ParallelBeamGeometry, ParallelBeamProjector

from .batches import RMASCollate, collate
from .experiment import DataConfig
from .folder_datasets import ModelInput, PairedFolderDataset, SimulatedTaskDataset, is_simulated
from .foundation_data import FoundationCollate, describe_bases, load_base_slices, simulate_base_slices
from .phantoms import ellipse_phantoms
from .rmas_dataset import RMASDataset

__all__ = ["BASE_SLICES_FILE", "TrainingData", "UNMIXING_WEIGHTS_FILE", "build_training_data", "data_projector"]

# The run file of the unmixing weights of data.model_input 'unmixing' (written by allpet train, read by allpet sample).
UNMIXING_WEIGHTS_FILE = "unmixing_weights.npy"
# The run file caching the foundation source's simulated base slices (allpet train's out_dir).
BASE_SLICES_FILE = "base_slices.npz"


def data_projector(config: DataConfig) -> ParallelBeamProjector:
    """Parallel-beam projector of the config's square image grid and sinogram shape."""
    grid = ImageGrid((config.image_size, config.image_size), voxel_size_mm=config.voxel_size_mm)
    geometry = ParallelBeamGeometry(grid, n_views=config.n_views, n_bins=config.n_bins,
                                    bin_width_mm=config.bin_width_mm)
    return ParallelBeamProjector(geometry)


@dataclass(frozen=True)
class TrainingData:
    """A training dataset, how to batch it, and its geometry.

    Attributes
    ----------
    dataset : torch Dataset
        :class:`ldm.RMASDataset`, :class:`~ldm.folder_datasets.PairedFolderDataset` or
        :class:`~ldm.folder_datasets.SimulatedTaskDataset`.
    collate_fn : callable
        Items to a model batch (:class:`~ldm.batches.RMASCollate` or :func:`~ldm.batches.collate`).
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
                        fit_input_weights: Optional[Callable[[SimulatedTaskDataset], np.ndarray]] = None,
                        cache_dir: Optional[Path] = None, progress: bool = False, window: bool = False,
                        attention: Optional[Callable[[Any], Any]] = None) -> TrainingData:
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
    measured inputs and targets. ``config.attention`` ``"segmentation"``
    needs ``attention(sample)`` too (:class:`SimulatedTaskDataset`; ``allpet
    train`` passes :class:`tasks.attention_inputs.EditedAttention`);
    ``"oracle"`` reads the simulator's lesion labels.

    ``window`` adds each item's sinogram window row (models with coordinate
    channels; an ``allpet simulate`` folder only: its samples carry their
    geometry). ``config.max_examples`` keeps a folder's first items only.
    ``"foundation"`` caches its base slices in ``cache_dir /``
    :data:`BASE_SLICES_FILE` (simulated again when missing or made with
    other settings; no cache without ``cache_dir``).
    """
    if not isinstance(config, DataConfig):
        raise TypeError(f"config must be a DataConfig, got {type(config).__name__}")
    projector = data_projector(config)
    weights = None
    if config.source == "foundation":
        settings = (config.n_bases, config.image_size, config.n_views, config.regions, config.tracers, config.seed)
        bases = (simulate_base_slices(*settings, progress=progress) if cache_dir is None
                 else load_base_slices(Path(cache_dir) / BASE_SLICES_FILE, *settings, progress=progress))
        if bases.sinograms.shape[1:] != projector.out_shape:
            raise ValueError(f"data.n_bins must equal data.image_size ({config.image_size}) for source 'foundation' "
                             f"(the simulator's bins), got {config.n_bins}")
        rmas = RMASDataset(bases.sinograms, projector, attention=bases.attention, cells_per_side=config.cells_per_side,
                           n_active=config.n_active, shape_fraction=config.shape_fraction,
                           epoch_size=config.epoch_size, seed=seed, layout=config.layout)
        collate_fn = FoundationCollate(bases, config.synthesis_fraction, config.complement_fraction,
                                       config.window_views, config.window_bins, config.full_window_fraction, seed)
        counts = describe_bases(bases)
        return TrainingData(rmas, collate_fn, projector,
                            f"foundation pretraining, base slices per tracer {counts['tracers']} and per region "
                            f"{counts['regions']}; {rmas.describe()}")
    if config.source == "folder":
        if is_simulated(config.path):
            if config.model_input == "physics_prior" and model_input is None:
                raise ValueError("data.model_input 'physics_prior' needs the task's model-input function "
                                 "(tasks.model_inputs; allpet train passes it)")
            if config.model_input == "unmixing" and fit_input_weights is None:
                raise ValueError("data.model_input 'unmixing' needs a fit of the unmixing weights "
                                 "(tasks.model_inputs; allpet train passes it)")
            if config.task == "paired" and config.attention == "segmentation" and attention is None:
                raise ValueError("data.attention 'segmentation' needs the segmentation of each sample's measured "
                                 "input (tasks.attention_inputs; allpet train passes it); 'oracle' reads the "
                                 "simulator's lesion labels")
            attention = attention if config.attention == "segmentation" else None
            folder = SimulatedTaskDataset(config.path, labels,
                                          model_input if config.model_input == "physics_prior" else None,
                                          window=window, attention=attention)
            if config.model_input == "unmixing":
                weights = np.asarray(fit_input_weights(folder), dtype=np.float32)
                folder = SimulatedTaskDataset(config.path, labels, input_weights=weights, window=window,
                                              attention=attention)
        elif window:
            raise ValueError(f"the model takes sinogram windows (coordinate channels), whose geometry only an allpet "
                             f"simulate folder carries; {config.path} is not one")
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
            if config.max_examples is not None:
                if config.max_examples > len(folder):
                    raise ValueError(f"data.max_examples={config.max_examples}, but {config.path} holds "
                                     f"{len(folder)} items")
                folder = Subset(folder, range(config.max_examples))
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
