"""Sinogram datasets read from folders: plain ``.npz`` samples, and the task samples of ``allpet simulate``.

Items are dicts of float32 sinograms ``(1, V, R)`` (:data:`ldm.batches.SINOGRAM_KEYS`)
and int64 scalar labels (:data:`ldm.batches.LABEL_KEYS`); batch them with
:func:`ldm.batches.collate`.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from pet_projection import ParallelBeamProjector
from pet_projection.io.numpy_files import open_npz

from .batches import LABEL_KEYS, SINOGRAM_KEYS, WINDOW_KEY
from .prompts import PROMPT_TASKS
from .windows import window_row

__all__ = ["ModelInput", "PairedFolderDataset", "SimulatedTaskDataset", "is_simulated"]


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
        with open_npz(file) as archive:  # sizes checked before anything is allocated; no pickles
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
        sample has several targets), ``"region"`` (index in
        :data:`pet_projection.simulation.ANATOMIES`) and ``"task"`` (index of
        the folder's task in :data:`ldm.prompts.PROMPT_TASKS`) to add; the
        model needs ``n_tracers`` / ``n_regions`` / ``n_tasks`` at least that large.
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
    window : bool
        Add each item's sinogram window row ``"window"`` (:func:`ldm.windows.window_row`
        of its projector), which models with coordinate channels need.
    attention : callable, optional
        ``attention(sample)``: its TMA attention, an object with ``image``
        ``(ny, nx)`` and ``sinogram`` ``(n_views, n_bins)`` in ``[0, 1]``
        (e.g. :class:`tasks.attention_inputs.EditedAttention`: a segmentation
        of the sample's measured input); default: the TMA of the simulator's
        lesion labels (:func:`~pet_projection.simulation.lesion_attention`),
        an upper bound no user has.

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
    ``attention``: the sample's TMA attention (``attention``), and ``support``:
    the rays the target can hold counts on
    (:func:`~pet_projection.simulation.count_support`: those that meet the
    body, and those with expected scatter and randoms), both on the sample's
    own projector (from its metadata). An item's derived arrays are computed
    on its first read and kept.
    """

    def __init__(self, root: Any, labels: Sequence[str] = (), model_input: Optional[ModelInput] = None,
                 input_weights: Optional[np.ndarray] = None, window: bool = False,
                 attention: Optional[Callable[[Any], Any]] = None) -> None:
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
        self.window = bool(window)
        self.attention = attention
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
        if self.attention is None:
            attention_image, attention = lesion_attention(sample, projector)
        else:
            maps = self.attention(sample)
            attention_image, attention = np.asarray(maps.image), np.asarray(maps.sinogram)
            if attention.shape != self.sinogram_shape:
                raise ValueError(f"the attention of sample {index} has shape {attention.shape}, its sinograms "
                                 f"{self.sinogram_shape}")
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
                   "region": list(ANATOMIES).index(metadata["anatomy"]),
                   "task": PROMPT_TASKS.index(self.data.task)}
            item = {key: torch.as_tensor(np.asarray(value, dtype=np.float32)).unsqueeze(0)
                    for key, value in (("input", inputs[k]), ("target", targets[k]), ("attention", attention),
                                       ("support", supports[k]))}
            item.update({key: torch.tensor(ids[key], dtype=torch.int64) for key in self.labels})
            if self.window:
                item[WINDOW_KEY] = torch.from_numpy(window_row(projector.geometry))
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
