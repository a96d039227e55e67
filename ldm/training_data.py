"""Training data for the sinogram LDM: the dataset a :class:`~ldm.experiment.DataConfig` describes, and how to batch it.

Two sources (``DataConfig.source``):

- **Ellipse phantoms** (``"ellipses"``, no files needed; :mod:`ldm.phantoms`):
  projected on the config's geometry, with the lesions' TMA attention and the
  body support. They are the base sinograms of an :class:`ldm.RMASDataset`
  (tasks ``"unconditional"`` and ``"inpainting"``).
- **A dataset folder** (``"folder"``; :mod:`ldm.folder_datasets`): one
  ``.npz`` file per sample, or an ``allpet simulate`` dataset, used as
  ``input -> target`` pairs (``task="paired"``) or, its targets, as RMAS bases.

Batches (after the collate function) are in the model's format (:mod:`ldm.batches`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from pet_projection import ImageGrid, ParallelBeamGeometry, ParallelBeamProjector

from .batches import RMASCollate, collate
from .experiment import DataConfig
from .folder_datasets import ModelInput, PairedFolderDataset, SimulatedTaskDataset, is_simulated
from .phantoms import ellipse_phantoms
from .rmas_dataset import RMASDataset

__all__ = ["TrainingData", "UNMIXING_WEIGHTS_FILE", "build_training_data", "data_projector"]

# The run file of the unmixing weights of data.model_input 'unmixing' (written by allpet train, read by allpet sample).
UNMIXING_WEIGHTS_FILE = "unmixing_weights.npy"


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
