"""The attention a model is conditioned on: TMA of a sample's regions after a clinician's ROI edits.

One computation serves the ROI editor's page (``allpet view``) and sampling
(``allpet sample --roi-spec``, the editor's "apply"): :func:`attention_for`
is the TMA attention of a sample's label map after a :class:`~pet_projection.attention.RoiEditSpec`;
:class:`EditedAttention` gives it to a model input (the physics prior keeps the
attention's voxels unfiltered, :meth:`tasks.task.PETTask.physics_prior`);
:func:`simulated_inputs` reads samples of an ``allpet simulate`` folder as in
training, with that attention in place of the lesions' one. Specs are read
from files by :func:`read_spec` and identified by :func:`spec_hash`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from pet_projection.attention import AttentionMaps, AttentionRegions, RoiEditSpec, TransparentMedicalAttention
from pet_projection.simulation import TaskSample
from pet_projection.simulation.acquisition import projector_from_description, projector_grid

from .model_inputs import ModelInput

__all__ = ["MAX_SPEC_BYTES", "EditedAttention", "attention_for", "check_spec", "edited_regions", "read_spec",
           "simulated_inputs", "spec_hash"]

MAX_SPEC_BYTES = 64 << 20  # a drawn 3D mask of 256 x 256 x 128 voxels as nested 0/1 lists is about 17 MB


def attention_for(sample: TaskSample, spec: Optional[RoiEditSpec] = None) -> AttentionMaps:
    """TMA attention of a sample's label map (lesions weight 1, other regions 0) after the ROI edits ``spec``.

    ``TransparentMedicalAttention`` on the sample's projector (from its
    metadata), regions from its label map: ``image`` on the sample's image
    grid, ``sinogram`` the shape of its input, float64 in ``[0, 1]``. Without
    edits this equals :func:`pet_projection.simulation.lesion_attention` for the
    simulator's region names (the attention the models are trained with).
    """
    projector = projector_from_description(sample.metadata["projector"])
    regions = AttentionRegions.from_table(sample.region_table())
    tma = TransparentMedicalAttention(projector)
    if spec is None or not spec.edits:
        return tma(regions)
    return tma.edit(regions, spec)[1]


def edited_regions(sample: TaskSample, spec: RoiEditSpec) -> AttentionRegions:
    """A sample's regions after ``spec`` (drawn shapes rasterised on its grid), without the TMA projections.

    ``ValueError`` / ``TypeError`` where the spec does not fit the sample
    (an edit of a region it lacks, a drawn mask of another shape).
    """
    grid = projector_grid(projector_from_description(sample.metadata["projector"]))
    return spec.apply(AttentionRegions.from_table(sample.region_table()), grid)


def check_spec(spec: RoiEditSpec, samples: Iterable[TaskSample], source: Any) -> None:
    """``ValueError`` naming ``source`` (the spec's file) and the sample if ``spec`` does not fit every sample."""
    for index, sample in enumerate(samples):
        try:
            edited_regions(sample, spec)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{source}: {error} (in sample {index})") from None


def read_spec(path: Any) -> RoiEditSpec:
    """The ROI edit spec in JSON file ``path`` (at most :data:`MAX_SPEC_BYTES`); ``ValueError`` naming the file.

    A missing or unreadable file is an ``OSError`` naming it.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not an ROI edit spec (.json)")
    with open(path, "rb") as stream:  # OSError: no such file, no permission
        text = stream.read(MAX_SPEC_BYTES + 1)
    if len(text) > MAX_SPEC_BYTES:
        raise ValueError(f"{path} is larger than {MAX_SPEC_BYTES} bytes, too large for an ROI edit spec")
    try:
        return RoiEditSpec.from_json(text)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path} is not a valid ROI edit spec: {error}") from None


def spec_hash(spec: RoiEditSpec) -> str:
    """SHA-256 (hex) of the spec's canonical JSON (:meth:`RoiEditSpec.to_json`: sorted keys, no indent).

    Equal for equal edits, whatever the spacing or key order of the file they came from.
    """
    return hashlib.sha256(spec.to_json().encode("utf-8")).hexdigest()


class EditedAttention:
    """:func:`attention_for` of samples after one spec, kept for the last label map asked for.

    The attention depends only on the sample's projector, region names and
    label map, so a sample read again (or another with the same labels) reuses it.
    """

    def __init__(self, spec: Optional[RoiEditSpec] = None) -> None:
        if spec is not None and not isinstance(spec, RoiEditSpec):
            raise TypeError(f"spec must be a RoiEditSpec, got {type(spec).__name__}")
        self.spec = spec
        self._last: Optional[tuple[tuple, AttentionMaps]] = None

    @staticmethod
    def _key(sample: TaskSample) -> tuple:
        labels = np.ascontiguousarray(sample.labels)
        return (json.dumps(sample.metadata["projector"], sort_keys=True), tuple(sorted(sample.names.items())),
                labels.shape, labels.dtype.str, hashlib.sha256(labels.tobytes()).digest())

    def __call__(self, sample: TaskSample) -> AttentionMaps:
        key = self._key(sample)
        if self._last is None or self._last[0] != key:
            self._last = (key, attention_for(sample, self.spec))
        return self._last[1]

    def model_input(self, base: ModelInput) -> ModelInput:
        """``base(sample, attention_image)`` given this attention's image instead of the one it is called with."""

        def edited(sample: TaskSample, attention_image: np.ndarray) -> np.ndarray:
            return base(sample, self(sample).image)

        return edited


def simulated_inputs(path: Any, labels: Sequence[str] = (), model_input: Optional[ModelInput] = None,
                     input_weights: Optional[np.ndarray] = None, spec: Optional[RoiEditSpec] = None,
                     samples: Optional[Sequence[int]] = None, progress: bool = False) -> dict[str, np.ndarray]:
    """Sampling inputs of an ``allpet simulate`` folder, read as in training, with the attention after ``spec``.

    Parameters
    ----------
    path : path
        The folder.
    labels, model_input, input_weights
        As :class:`ldm.folder_datasets.SimulatedTaskDataset` takes them (the
        ``tracer`` / ``region`` labels the model needs, its model input, e.g. the
        physics prior, or the unmixing weights).
    spec : RoiEditSpec, optional
        ROI edits: the ``attention`` sinogram of each item, and the image
        attention that ``model_input`` receives, are :func:`attention_for` of
        its sample after them; without a spec, the lesions' attention of training.
    samples : sequence of int, optional
        Sample indices (all by default); a sample with several targets gives one item per target.
    progress : bool
        A tqdm bar over the items.

    Returns
    -------
    dict
        ``(N, V, R)`` float32 sinograms ``input``, ``attention`` and ``support``
        (no ``target``) and ``(N,)`` int64 labels: N items in sample order, targets innermost.
    """
    from tqdm.auto import tqdm

    from ldm.batches import LABEL_KEYS, SINOGRAM_KEYS, collate
    from ldm.folder_datasets import SimulatedTaskDataset

    edited = EditedAttention(spec) if spec is not None else None
    if edited is not None and model_input is not None:
        model_input = edited.model_input(model_input)
    dataset = SimulatedTaskDataset(path, labels, model_input, input_weights)
    indices = range(len(dataset.data)) if samples is None else samples
    outside = [i for i in indices if not 0 <= i < len(dataset.data)]
    if outside:
        raise ValueError(f"samples {outside} do not exist in {path} (0 .. {len(dataset.data) - 1})")
    items = []
    for index in tqdm([i * dataset.n_targets + k for i in indices for k in range(dataset.n_targets)],
                      desc="inputs", unit="item", disable=not progress):
        item = dataset[index]
        if edited is not None:
            sinogram = edited(dataset.data[index // dataset.n_targets]).sinogram
            item["attention"] = item["attention"].new_tensor(np.asarray(sinogram, dtype=np.float32)).unsqueeze(0)
        items.append(item)
    batch = collate(items)
    return {key: batch[key][:, 0].numpy() if key in SINOGRAM_KEYS else batch[key].numpy()
            for key in SINOGRAM_KEYS + LABEL_KEYS if key in batch and key != "target"}
