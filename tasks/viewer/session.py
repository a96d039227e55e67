"""What the ROI editor shows and computes, without any web code: samples, reconstructions, TMA attention, specs.

A :class:`ViewerSession` is opened on a folder (an ``allpet simulate``
dataset) or one sample file (``.npz``); that folder is the only place it
reads from and writes to. Saved ROI edit specs go to ``FOLDER/roi_edits/NAME.json``
in the JSON form of :class:`~pet_projection.RoiEditSpec`, so
``allpet attention SAMPLE --spec FOLDER/roi_edits/NAME.json`` (or
:func:`attention_for`) reproduces what the page showed.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

import numpy as np

from pet_projection.attention import AttentionMaps, AttentionRegions, RoiEditSpec, TransparentMedicalAttention
from pet_projection.io.files import atomic_write
from pet_projection.simulation.acquisition import projector_from_description
from pet_projection.simulation.dataset_folder import MANIFEST_NAME, SimulatedDataset, load_sample, system_model
from pet_projection.simulation.sample import TaskSample

PathLike = Union[str, os.PathLike]

SPEC_FOLDER = "roi_edits"
SPEC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
OSEM_SUBSETS, OSEM_ITERATIONS = 4, 4


class ViewerError(ValueError):
    """Bad input from the page (unknown sample, malformed spec, bad name): the message is shown there."""


def attention_for(sample: TaskSample, spec: Optional[RoiEditSpec] = None) -> AttentionMaps:
    """TMA attention of a sample's label map (lesions weight 1, other regions 0) after the ROI edits ``spec``.

    The same computation as the page's: ``TransparentMedicalAttention`` on the
    sample's projector, regions from its label map.
    """
    projector = projector_from_description(sample.metadata["projector"])
    regions = AttentionRegions.from_table(sample.region_table())
    tma = TransparentMedicalAttention(projector)
    if spec is None or not spec.edits:
        return tma(regions)
    return tma.edit(regions, spec)[1]


@dataclass(frozen=True)
class ModelOutputs:
    """Task outputs of a model for the samples, in dataset order: sinograms ``(N, ...)`` (and images, if given)."""

    sinograms: np.ndarray
    images: Optional[np.ndarray] = None


class ViewerSession:
    """Samples, reconstructions, attention and saved specs under one folder.

    Parameters
    ----------
    path : path
        An ``allpet simulate`` dataset folder, or one sample ``.npz`` (its folder is then the root).
    outputs : path, optional
        ``samples.npz`` of ``allpet sample`` for this dataset (``sinogram`` ``(N, ...)``, optional ``image``):
        the page then shows input, output and target with error maps. Must lie under the root.
    """

    def __init__(self, path: PathLike, outputs: Optional[PathLike] = None) -> None:
        path = Path(path).resolve()
        if path.is_dir():
            if not (path / MANIFEST_NAME).is_file():
                raise ViewerError(f"{path} is not an allpet simulate dataset (no {MANIFEST_NAME}); pass the dataset "
                                  f"folder or one sample .npz")
            self.root = path
            self._dataset: Optional[SimulatedDataset] = SimulatedDataset(path)
            self._single: Optional[TaskSample] = None
        elif path.is_file() and path.suffix == ".npz":
            self.root = path.parent
            self._dataset = None
            try:
                self._single = load_sample(path)
            except (KeyError, ValueError) as error:
                raise ViewerError(f"{path} is not a sample written by allpet simulate: {error}") from None
        else:
            raise ViewerError(f"{path} is neither a dataset folder nor a sample .npz")
        self.outputs = self._read_outputs(outputs) if outputs is not None else None
        self._cache: dict[int, TaskSample] = {}

    # --- files --------------------------------------------------------------------------------------

    def inside(self, relative: str) -> Path:
        """``root / relative`` if it stays inside the root (no ``..``, no absolute paths, no symlinks out)."""
        candidate = (self.root / relative).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            raise ViewerError(f"{relative!r} is outside the viewer's folder")
        return candidate

    def _read_outputs(self, outputs: PathLike) -> ModelOutputs:
        path = Path(outputs).resolve()
        if path != self.root and self.root not in path.parents:
            raise ViewerError(f"the model outputs {path} must lie under the viewer's folder {self.root}")
        with np.load(path, allow_pickle=False) as archive:
            if "sinogram" not in archive.files:
                raise ViewerError(f"{path} has no 'sinogram' array (write it with allpet sample)")
            sinograms = archive["sinogram"]
            images = archive["image"] if "image" in archive.files else None
        if len(sinograms) != len(self):
            raise ViewerError(f"{path} holds {len(sinograms)} outputs for {len(self)} samples")
        return ModelOutputs(sinograms, images)

    def spec_path(self, name: str) -> Path:
        if not isinstance(name, str) or not SPEC_NAME.match(name):
            raise ViewerError(f"spec names are 1-64 letters, digits, '_' or '-' (starting with a letter or digit), "
                              f"got {name!r}")
        return self.inside(f"{SPEC_FOLDER}/{name}.json")

    def save_spec(self, name: str, spec: RoiEditSpec) -> Path:
        path = self.spec_path(name)
        path.parent.mkdir(exist_ok=True)
        text = spec.to_json(indent=1).encode()
        atomic_write(path, lambda handle: handle.write(text))
        return path

    def load_spec(self, name: str) -> RoiEditSpec:
        path = self.spec_path(name)
        if not path.is_file():
            raise ViewerError(f"no saved spec named {name!r}")
        return parse_spec(path.read_bytes())

    def spec_names(self) -> list[str]:
        folder = self.root / SPEC_FOLDER
        return sorted(p.stem for p in folder.glob("*.json") if SPEC_NAME.match(p.stem)) if folder.is_dir() else []

    # --- samples -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return 1 if self._dataset is None else len(self._dataset)

    def sample(self, index: int) -> TaskSample:
        if not isinstance(index, int) or not 0 <= index < len(self):
            raise ViewerError(f"sample {index!r} does not exist (0 .. {len(self) - 1})")
        if self._single is not None:
            return self._single
        if index not in self._cache:
            self._cache = {index: self._dataset[index]}  # one sample at a time is enough for a page
        return self._cache[index]

    def describe(self, index: int) -> dict:
        """JSON-ready summary of sample ``index``: shapes, slices, region names with labels and default weights."""
        sample = self.sample(index)
        regions = AttentionRegions.from_table(sample.region_table())
        grid_shape = list(sample.labels.shape)
        return {"index": index, "n_samples": len(self), "task": sample.task, "image_shape": grid_shape,
                "n_slices": grid_shape[0] if len(grid_shape) == 3 else 1,
                "sinogram_shape": list(sample.input.shape),
                "voxel_size_mm": sample.metadata["projector"]["voxel_size_mm"],
                "origin_mm": sample.metadata["projector"]["origin_mm"],
                "regions": [{"name": name, "label": int(sample.names[name]), "weight": regions.weights[name]}
                            for name in sorted(sample.names, key=sample.names.get)],
                "has_outputs": self.outputs is not None, "specs": self.spec_names()}

    def reconstruction(self, index: int) -> np.ndarray:
        """OSEM image of the sample's input with its full system model (cached per sample)."""
        return _reconstruct(self, index)

    def attention(self, index: int, spec: RoiEditSpec) -> AttentionMaps:
        try:
            return attention_for(self.sample(index), spec)
        except (ValueError, TypeError) as error:
            raise ViewerError(str(error)) from None


@lru_cache(maxsize=4)
def _reconstruct(session: ViewerSession, index: int) -> np.ndarray:
    from pet_projection.recon import osem

    sample = session.sample(index)
    counts = np.maximum(sample.input.astype(np.float64), 0.0)
    return np.asarray(osem(counts, system_model(sample), OSEM_SUBSETS, OSEM_ITERATIONS))


def parse_spec(text: Union[str, bytes]) -> RoiEditSpec:
    """A spec from JSON text, with errors as :class:`ViewerError`."""
    try:
        return RoiEditSpec.from_json(text)
    except (TypeError, ValueError) as error:
        raise ViewerError(f"malformed ROI edit spec: {error}") from None


def spec_from_request(data: object) -> RoiEditSpec:
    """A spec from a decoded JSON request body."""
    try:
        return parse_spec(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ViewerError(f"malformed ROI edit spec: {error}") from None
