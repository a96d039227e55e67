"""What the ROI editor shows and computes, without any web code: samples, reconstructions, TMA attention, specs.

A :class:`ViewerSession` is opened on a folder (an ``allpet simulate``
dataset) or one sample file (``.npz``); that folder is the only place it
reads from and writes to. Saved ROI edit specs go to ``FOLDER/roi_edits/NAME.json``
in the JSON form of :class:`~pet_projection.RoiEditSpec`, so
``allpet attention SAMPLE --spec FOLDER/roi_edits/NAME.json`` (or
:func:`tasks.attention_inputs.attention_for`) reproduces what the page showed,
and ``allpet sample --roi-spec`` conditions a model on it.

With a model (a :class:`~tasks.checkpoint_sampler.CheckpointSampler`, loaded
once), :meth:`ViewerSession.apply` samples one sample again with the edited
attention and returns it beside the output with the unedited attention.
"""

from __future__ import annotations

import errno
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from pet_projection.attention import AttentionMaps, RoiEditSpec
from pet_projection.io.files import atomic_write
from pet_projection.io.numpy_files import open_npz
from pet_projection.simulation.dataset_folder import MANIFEST_NAME, SimulatedDataset, load_sample, system_model
from pet_projection.simulation.sample import TaskSample
from tasks.attention_inputs import attention_for, attention_regions, edited_regions
from tasks.checkpoint_sampler import SamplingSettings, localise_edit

PathLike = Union[str, os.PathLike]

SPEC_FOLDER = "roi_edits"
SPEC_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
OSEM_SUBSETS, OSEM_ITERATIONS = 4, 4
MAX_JSON_DEPTH = 32  # arrays and objects inside each other; a 3D drawn mask in a spec needs 7
APPLY_WAIT_S = 120.0  # an apply waits this long for another one to end, then the page is told to try again
OUTPUT_OSEM = (8, 4)  # subsets, iterations of the model outputs' images: allpet sample --recon osem's defaults
_JSON_SPECIAL = re.compile(rb'["\\\[\]{}]')


class ViewerError(ValueError):
    """Bad input from the page (unknown sample, malformed spec, bad name): the message is shown there.

    ``status`` is the HTTP status the server answers with (400 unless said).
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ModelOutputs:
    """Task outputs of a model for the samples, in dataset order: sinograms ``(N, ...)`` (and images, if given)."""

    sinograms: np.ndarray
    images: Optional[np.ndarray] = None


@dataclass(frozen=True)
class AppliedEdits:
    """A sample's model outputs with the unedited (``before``) and the edited attention (``after``).

    Each holds one sinogram ``(V, R)`` and OSEM image ``(ny, nx)`` per target of
    the sample (``(T, V, R)``, ``(T, ny, nx)``); ``seconds`` is the time the apply took (sampling both
    when ``before`` was not kept from an earlier apply of the sample).
    """

    before: ModelOutputs
    after: ModelOutputs
    seconds: float


class ViewerSession:
    """Samples, reconstructions, attention and saved specs under one folder.

    Parameters
    ----------
    path : path
        An ``allpet simulate`` dataset folder, or one sample ``.npz`` (its folder is then the root).
    outputs : path, optional
        ``samples.npz`` of ``allpet sample`` for this dataset (``sinogram`` ``(N, ...)``, optional ``image``):
        the page then shows input, output and target with error maps. Must lie under the root.
    sampler : CheckpointSampler, optional
        A trained model for this dataset folder (checked against it), loaded
        once: :meth:`apply` samples with it, one apply at a time.
    settings : SamplingSettings, optional
        How :meth:`apply` samples (default: ``allpet sample``'s defaults, seed 0).
    """

    def __init__(self, path: PathLike, outputs: Optional[PathLike] = None, sampler: Any = None,
                 settings: Optional[SamplingSettings] = None) -> None:
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
        if sampler is not None:
            if self._dataset is None:
                raise ViewerError("a model needs an allpet simulate dataset folder, not one sample file")
            try:
                sampler.check_folder(self.root)
            except (ValueError, OSError) as error:
                raise ViewerError(str(error)) from None
        self.sampler = sampler
        self.settings = SamplingSettings() if settings is None else settings
        self._model_lock = threading.Lock()
        self._unedited: dict[int, ModelOutputs] = {}

    # --- files --------------------------------------------------------------------------------------

    def inside(self, relative: str) -> Path:
        """``root / relative`` if it stays inside the root (no ``..``, no absolute paths, no symlinks out)."""
        if not isinstance(relative, str) or "\0" in relative:
            raise ViewerError(f"{relative!r} is not a file name")
        try:
            candidate = (self.root / relative).resolve()
        except (OSError, ValueError, RuntimeError) as error:  # too long, a symlink loop
            raise ViewerError(f"{relative!r} is not a usable path: {error}") from None
        if candidate != self.root and self.root not in candidate.parents:
            raise ViewerError(f"{relative!r} is outside the viewer's folder")
        return candidate

    def _read_outputs(self, outputs: PathLike) -> ModelOutputs:
        path = Path(outputs).resolve()
        if path != self.root and self.root not in path.parents:
            raise ViewerError(f"the model outputs {path} must lie under the viewer's folder {self.root}")
        with open_npz(path) as archive:
            if "sinogram" not in archive.files:
                raise ViewerError(f"{path} has no 'sinogram' array (write it with allpet sample)")
            sinograms = archive["sinogram"]
            images = archive["image"] if "image" in archive.files else None
        if len(sinograms) != len(self):
            raise ViewerError(f"{path} holds {len(sinograms)} outputs for {len(self)} samples")
        return ModelOutputs(sinograms, images)

    def spec_path(self, name: str) -> Path:
        if not isinstance(name, str) or not SPEC_NAME.fullmatch(name):
            raise ViewerError(f"spec names are 1-64 letters, digits, '_' or '-' (starting with a letter or digit), "
                              f"got {name!r}")
        return self.inside(f"{SPEC_FOLDER}/{name}.json")

    def save_spec(self, name: str, spec: RoiEditSpec) -> Path:
        """Write ``spec`` to ``ROOT/roi_edits/NAME.json`` atomically; a folder it cannot write is a ViewerError."""
        path = self.spec_path(name)
        text = spec.to_json(indent=1).encode()
        try:
            path.parent.mkdir(exist_ok=True)
            atomic_write(path, lambda handle: handle.write(text))
        except OSError as error:
            status = 403 if isinstance(error, PermissionError) or error.errno == errno.EROFS else 500
            raise ViewerError(f"cannot save {path.relative_to(self.root)} in {self.root}: "
                              f"{error.strerror or error}", status) from None
        return path

    def load_spec(self, name: str) -> RoiEditSpec:
        path = self.spec_path(name)
        if not path.is_file():
            raise ViewerError(f"no saved spec named {name!r}")
        return parse_spec(path.read_bytes())

    def spec_names(self) -> list[str]:
        folder = self.root / SPEC_FOLDER
        return sorted(p.stem for p in folder.glob("*.json") if SPEC_NAME.fullmatch(p.stem)) if folder.is_dir() else []

    # --- samples -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return 1 if self._dataset is None else len(self._dataset)

    def sample(self, index: int) -> TaskSample:
        if not isinstance(index, int) or not 0 <= index < len(self):
            raise ViewerError(f"sample {index!r} does not exist (0 .. {len(self) - 1})")
        if self._single is not None:
            return self._single
        if index not in self._cache:
            try:
                sample = self._dataset[index]
            except (KeyError, ValueError, OSError) as error:  # a broken or replaced sample file
                raise ViewerError(f"sample {index} cannot be read: {error}") from None
            self._cache = {index: sample}  # one sample at a time is enough for a page
        return self._cache[index]

    def describe(self, index: int) -> dict:
        """JSON-ready summary of sample ``index``: shapes, slices, region names with labels and default weights."""
        sample = self.sample(index)
        regions = attention_regions(sample)  # the editable regions: anatomy of the labels, hyper/hypo segmented
        grid_shape = list(sample.labels.shape)
        return {"index": index, "n_samples": len(self), "task": sample.task, "image_shape": grid_shape,
                "n_slices": grid_shape[0] if len(grid_shape) == 3 else 1,
                "sinogram_shape": list(sample.input.shape),
                "voxel_size_mm": sample.metadata["projector"]["voxel_size_mm"],
                "origin_mm": sample.metadata["projector"]["origin_mm"],
                "regions": [{"name": name, "label": sample.names.get(name), "weight": regions.weights[name]}
                            for name in regions.masks],
                "has_outputs": self.outputs is not None, "has_model": self.sampler is not None,
                "specs": self.spec_names()}

    def reconstruction(self, index: int) -> np.ndarray:
        """OSEM image of the sample's input with its full system model (cached per sample)."""
        return _reconstruct(self, index)

    def attention(self, index: int, spec: RoiEditSpec) -> AttentionMaps:
        try:
            return attention_for(self.sample(index), spec)
        except (ValueError, TypeError) as error:
            raise ViewerError(str(error)) from None

    def apply(self, index: int, spec: RoiEditSpec) -> AppliedEdits:
        """Sample ``index`` through the model with the attention after ``spec``, and with the unedited attention.

        The model input is built as in training (:meth:`CheckpointSampler.folder_inputs`),
        the sinograms sampled with :attr:`settings` (the same seed for both, so
        they differ by the edit alone) and reconstructed by OSEM on the training
        geometry. The unedited output of the last sample applied is kept. One
        apply runs at a time; another waits up to :data:`APPLY_WAIT_S` seconds,
        then gets a ViewerError (503). Requests that do not sample are not held up.
        """
        if self.sampler is None:
            raise ViewerError("no model is loaded: start allpet view with --checkpoint RUN to apply edits", 409)
        try:
            edited_regions(self.sample(index), spec)  # a spec that does not fit is refused before any sampling
        except (ValueError, TypeError) as error:
            raise ViewerError(str(error)) from None
        if not self._model_lock.acquire(timeout=APPLY_WAIT_S):
            raise ViewerError(f"the model is still busy with another apply after {APPLY_WAIT_S:g} s; try again", 503)
        try:
            start = time.perf_counter()
            if index not in self._unedited:
                self._unedited = {index: self._model_outputs(index, None)}
            after = self._model_outputs(index, spec, self._unedited[index])
            return AppliedEdits(self._unedited[index], after, time.perf_counter() - start)
        finally:
            self._model_lock.release()

    def _model_outputs(self, index: int, spec: Optional[RoiEditSpec],
                       unedited: Optional[ModelOutputs] = None) -> ModelOutputs:
        """The model's output for sample ``index`` with the attention after ``spec`` (None: unedited).

        With ``unedited`` (the output without edits) the edit is local: rays
        whose attention the edit leaves unchanged keep the unedited output
        (:func:`~tasks.checkpoint_sampler.localise_edit`).
        """
        try:
            inputs = self.sampler.folder_inputs(self.root, spec, samples=[index])
            sinograms = self.sampler.sample(inputs, self.settings)
            if unedited is not None:
                plain = self.sampler.folder_inputs(self.root, None, samples=[index])
                sinograms = localise_edit(unedited.sinograms, sinograms, plain["attention"], inputs["attention"])
        except (ValueError, TypeError, KeyError, OSError) as error:
            raise ViewerError(f"sampling sample {index} failed: {error}") from None
        return ModelOutputs(sinograms, self.sampler.reconstruct(sinograms, "osem", *OUTPUT_OSEM))


@lru_cache(maxsize=4)
def _reconstruct(session: ViewerSession, index: int) -> np.ndarray:
    from pet_projection.recon import osem

    sample = session.sample(index)
    counts = np.maximum(sample.input.astype(np.float64), 0.0)
    return np.asarray(osem(counts, system_model(sample), OSEM_SUBSETS, OSEM_ITERATIONS))


def check_json_depth(text: Union[str, bytes], limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON text whose arrays and objects nest deeper than ``limit``, before any parser recurses into it.

    One pass over the brackets and quotes (text inside strings does not count);
    the text need not be valid JSON.
    """
    if not isinstance(text, (str, bytes, bytearray)):
        return  # not text: the parser says so
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    depth, in_string, skip = 0, False, -1
    for match in _JSON_SPECIAL.finditer(data):
        position = match.start()
        if position < skip:
            continue
        char = data[position:position + 1]
        if in_string:
            if char == b"\\":
                skip = position + 2  # the escaped character
            elif char == b'"':
                in_string = False
        elif char == b'"':
            in_string = True
        elif char in (b"[", b"{"):
            depth += 1
            if depth > limit:
                raise ViewerError(f"the JSON is nested more than {limit} levels deep")
        elif char in (b"]", b"}"):
            depth -= 1


def parse_spec(text: Union[str, bytes]) -> RoiEditSpec:
    """A spec from JSON text, with errors as :class:`ViewerError`."""
    check_json_depth(text)
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
