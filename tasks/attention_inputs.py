"""The attention a model is conditioned on: TMA of a sample's regions, found without its lesion labels, after ROI edits.

One computation serves training and testing (:func:`tasks.examples.build_examples`),
the ROI editor's page (``allpet view``) and sampling (``allpet sample
--roi-spec``, the editor's "apply"): :func:`attention_for` is the TMA
attention of a sample's regions (:func:`attention_regions`) after a
:class:`~pet_projection.attention.RoiEditSpec`. The regions come in two modes
(:data:`ATTENTION_MODES`):

- ``"segmentation"`` (the default): what a user has. The lesion regions are
  ``"hyper"`` and ``"hypo"``, a coarse segmentation of the sample's *measured
  input* (:class:`InputSegmentation`: post-filtered OSEM of the input,
  :func:`~pet_projection.attention.segment_metabolic` against a reference
  tissue found in that image); the anatomical regions (liver, brainstem, ...;
  weight 0 until a clinician's edit names them) come from the label map with
  its lesions merged into their host organs (:func:`anatomy_table`), since
  an atlas or a CT gives anatomy but no lesions;
- ``"oracle"``: the simulator's label map as it is, whose ``lesion*`` regions
  (weight 1) are the true lesions: an upper bound no user has.

:class:`EditedAttention` gives the attention to a model input (the physics
prior keeps the attention's voxels unfiltered,
:meth:`tasks.task.PETTask.physics_prior`); :func:`simulated_inputs` reads
samples of an ``allpet simulate`` folder as in training, with this attention.
Specs are read from files by :func:`read_spec` and identified by :func:`spec_hash`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np
from scipy import ndimage

from pet_projection.attention import (DEFAULT_HYPO_RATIO, HYPER, HYPO, AttentionMaps, AttentionRegions, RegionTable,
                                      RoiEditSpec, TransparentMedicalAttention, default_weight, segment_metabolic)
from pet_projection.physics import GaussianResolution, PETSystemModel
from pet_projection.simulation import TaskSample, system_model
from pet_projection.simulation.acquisition import projector_from_description, projector_grid
from pet_projection.validation import check_choice

from .baselines import osem_image
from .model_inputs import ModelInput
from .registry import get_task

__all__ = ["ATTENTION_MODES", "MAX_SPEC_BYTES", "EditedAttention", "InputSegmentation", "anatomy_table",
           "attention_for", "attention_regions", "check_spec", "edited_regions", "read_spec", "simulated_inputs",
           "spec_hash"]

MAX_SPEC_BYTES = 64 << 20  # a drawn 3D mask of 256 x 256 x 128 voxels as nested 0/1 lists is about 17 MB
ATTENTION_MODES = ("segmentation", "oracle")


@dataclass(frozen=True)
class InputSegmentation:
    """A coarse segmentation of hyper- and hypometabolic regions in a sample's measured input (no labels read).

    The image is the OSEM image (``n_subsets`` x ``n_iterations``) of the
    measured input by the task's own input physics
    (:meth:`~tasks.task.PETTask.input_system`; tracer separation, which has
    none, the full physics of the measured sum), blurred by a Gaussian of
    ``fwhm_voxels`` voxels of the sample's grid. In it:

    - the body is the image above ``body_fraction`` of its maximum, holes filled;
    - the reference tissue is the body at or above the body's median uptake
      (grey and white matter of a head, organs and soft tissue of a trunk;
      no label says where the liver or cerebellum is);
    - :func:`~pet_projection.attention.segment_metabolic` marks ``"hyper"``
      above ``hyper_ratio`` times the reference mean and ``"hypo"`` below
      ``hypo_ratio`` times it inside the reference tissue's filled outline
      (pockets enclosed by tissue, as a cold lesion in an organ, not the body's
      low-uptake rim or the air), dropping components smaller than a disc
      (ball) of ``min_diameter_mm``.

    Defaults and what they find: docs/ldm-and-tasks.md ("TMA attention").
    ``hyper_ratio`` is 2 rather than PERCIST's 1.5 (to mean liver uptake)
    because the reference here is all tissue above the median, whose hottest
    normal parts (grey matter) reach 1.5 times its mean; ``min_diameter_mm``
    is the image phantoms' smallest lesion
    (:data:`pet_projection.simulation.image_segmentation.MIN_LESION_MM`).
    """

    n_subsets: int = 4
    n_iterations: int = 4
    fwhm_voxels: float = 2.0
    body_fraction: float = 0.1
    hyper_ratio: float = 2.0
    hypo_ratio: float = DEFAULT_HYPO_RATIO
    min_diameter_mm: float = 10.0

    def image(self, sample: TaskSample) -> np.ndarray:
        """The post-filtered OSEM image ``(ny, nx)`` (or ``(nz, ny, nx)``) float64 of the sample's measured input."""
        system = _measured_system(sample)
        grid = projector_grid(system.projector)
        image = osem_image(sample.input, system, self.n_subsets, self.n_iterations)
        blur = GaussianResolution(grid, self.fwhm_voxels * float(grid.voxel_size_mm[-1]))
        return np.asarray(blur(np.ascontiguousarray(image)), dtype=np.float64)

    def regions(self, sample: TaskSample) -> RegionTable:
        """Labels ``"hyper"`` (1) and ``"hypo"`` (2) on the sample's grid (both empty for an image without counts)."""
        image = self.image(sample)
        grid = projector_grid(projector_from_description(sample.metadata["projector"]))
        if not image.max() > 0.0:
            return RegionTable(np.zeros(grid.shape, dtype=np.int32), {HYPER: 1, HYPO: 2})
        body = ndimage.binary_fill_holes(image > self.body_fraction * image.max())
        reference = body & (image >= np.median(image[body]))
        return segment_metabolic(image, reference, ndimage.binary_fill_holes(reference), grid,
                                 hyper_ratio=self.hyper_ratio, hypo_ratio=self.hypo_ratio,
                                 min_diameter_mm=self.min_diameter_mm)


def _measured_system(sample: TaskSample) -> PETSystemModel:
    """The system model of a sample's measured input: its task's input physics, else the input acquisition's."""
    system = get_task(sample.task).input_system(sample)
    return system_model(sample, "input") if system is None else system


def anatomy_table(sample: TaskSample) -> RegionTable:
    """The sample's label map without lesions: its regions of default weight 0, each lesion merged into its host.

    Regions of default weight 1 (``lesion*``, ``hyper``, ``hypo``:
    :func:`~pet_projection.attention.default_weight`) are dropped; their
    voxels join their host region (the ``host`` of the sample's metadata
    ``lesions`` entry) or no region where the host is unknown. So the
    anatomical masks do not show where the lesions are.
    """
    hosts = {lesion.get("name"): lesion.get("host") for lesion in sample.metadata.get("lesions", [])}
    names = {name: value for name, value in sample.names.items() if default_weight(name) == 0.0}
    labels = np.array(sample.labels)
    for name, value in sample.names.items():
        if name not in names:
            labels[labels == value] = names.get(hosts.get(name), 0)
    return RegionTable(labels, names)


def attention_regions(sample: TaskSample, mode: str = "segmentation",
                      segmentation: InputSegmentation = InputSegmentation()) -> AttentionRegions:
    """The regions of a sample's attention in ``mode`` (module docstring), with their default weights.

    ``"segmentation"``: the anatomical regions of :func:`anatomy_table`
    (weight 0) and ``"hyper"`` / ``"hypo"`` of ``segmentation`` (weight 1);
    ``"oracle"``: every region of the sample's label map (lesions weight 1).
    """
    check_choice("attention", mode, ATTENTION_MODES)
    if mode == "oracle":
        return AttentionRegions.from_table(sample.region_table())
    anatomy, found = anatomy_table(sample), segmentation.regions(sample)
    return AttentionRegions({**{name: anatomy.mask(name) for name in anatomy.names},
                             **{name: found.mask(name) for name in found.names}})


def attention_for(sample: TaskSample, spec: Optional[RoiEditSpec] = None, mode: str = "segmentation") -> AttentionMaps:
    """TMA attention of a sample's regions in ``mode`` (:func:`attention_regions`) after the ROI edits ``spec``.

    ``TransparentMedicalAttention`` on the sample's projector (from its
    metadata): ``image`` on the sample's image grid, ``sinogram`` the shape of
    its input, float64 in ``[0, 1]``. In ``"oracle"`` mode without edits this
    equals :func:`pet_projection.simulation.lesion_attention`.
    """
    projector = projector_from_description(sample.metadata["projector"])
    regions = attention_regions(sample, mode)
    tma = TransparentMedicalAttention(projector)
    if spec is None or not spec.edits:
        return tma(regions)
    return tma.edit(regions, spec)[1]


def edited_regions(sample: TaskSample, spec: RoiEditSpec, mode: str = "segmentation") -> AttentionRegions:
    """A sample's regions in ``mode`` after ``spec`` (drawn shapes rasterised on its grid), without the TMA projections.

    ``ValueError`` / ``TypeError`` where the spec does not fit the sample
    (an edit of a region it lacks, a drawn mask of another shape).
    """
    grid = projector_grid(projector_from_description(sample.metadata["projector"]))
    return spec.apply(attention_regions(sample, mode), grid)


def check_spec(spec: RoiEditSpec, samples: Iterable[TaskSample], source: Any, mode: str = "segmentation") -> None:
    """``ValueError`` naming ``source`` (the spec's file) and the sample if ``spec`` does not fit every sample."""
    for index, sample in enumerate(samples):
        try:
            edited_regions(sample, spec, mode)
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
    """:func:`attention_for` of samples in one mode after one spec, kept for the last sample asked for.

    The attention depends only on the sample's projector, region names,
    label map and measured input, so a sample read again reuses it.
    """

    def __init__(self, spec: Optional[RoiEditSpec] = None, mode: str = "segmentation") -> None:
        if spec is not None and not isinstance(spec, RoiEditSpec):
            raise TypeError(f"spec must be a RoiEditSpec, got {type(spec).__name__}")
        self.spec, self.mode = spec, check_choice("attention", mode, ATTENTION_MODES)
        self._last: Optional[tuple[tuple, AttentionMaps]] = None

    @staticmethod
    def _key(sample: TaskSample) -> tuple:
        arrays = [np.ascontiguousarray(a) for a in (sample.labels, sample.input)]
        return (json.dumps(sample.metadata["projector"], sort_keys=True), tuple(sorted(sample.names.items())),
                *((a.shape, a.dtype.str, hashlib.sha256(a.tobytes()).digest()) for a in arrays))

    def __call__(self, sample: TaskSample) -> AttentionMaps:
        key = self._key(sample)
        if self._last is None or self._last[0] != key:
            self._last = (key, attention_for(sample, self.spec, self.mode))
        return self._last[1]


def simulated_inputs(path: Any, labels: Sequence[str] = (), model_input: Optional[ModelInput] = None,
                     input_weights: Optional[np.ndarray] = None, spec: Optional[RoiEditSpec] = None,
                     samples: Optional[Sequence[int]] = None, progress: bool = False,
                     mode: str = "segmentation", window: bool = False) -> dict[str, np.ndarray]:
    """Sampling inputs of an ``allpet simulate`` folder, read as in training, attention in ``mode`` after ``spec``.

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
        its sample in ``mode`` after them (without a spec, unedited).
    samples : sequence of int, optional
        Sample indices (all by default); a sample with several targets gives one item per target.
    progress : bool
        A tqdm bar over the items.
    mode : {"segmentation", "oracle"}
        The attention's regions (:func:`attention_regions`); ``"oracle"``
        without a spec gives the items of
        :class:`~ldm.folder_datasets.SimulatedTaskDataset` unchanged (the
        simulator's lesion labels).
    window : bool
        Add each item's sinogram window row ``"window"`` ``(N, 4)`` float64
        (a foundation model's coordinate channels: :mod:`ldm.windows`).

    Returns
    -------
    dict
        ``(N, V, R)`` float32 sinograms ``input``, ``attention`` and ``support``
        (no ``target``), ``(N,)`` int64 labels and, with ``window``, the window
        rows: N items in sample order, targets innermost.
    """
    from tqdm.auto import tqdm

    from ldm.batches import LABEL_KEYS, SINOGRAM_KEYS, WINDOW_KEY, collate
    from ldm.folder_datasets import SimulatedTaskDataset

    dataset = SimulatedTaskDataset(path, labels, model_input, input_weights, window=window,
                                   attention=EditedAttention(spec, mode))
    indices = range(len(dataset.data)) if samples is None else samples
    outside = [i for i in indices if not 0 <= i < len(dataset.data)]
    if outside:
        raise ValueError(f"samples {outside} do not exist in {path} (0 .. {len(dataset.data) - 1})")
    items = []
    for index in tqdm([i * dataset.n_targets + k for i in indices for k in range(dataset.n_targets)],
                      desc="inputs", unit="item", disable=not progress):
        items.append(dataset[index])
    batch = collate(items)
    return {key: batch[key][:, 0].numpy() if key in SINOGRAM_KEYS else batch[key].numpy()
            for key in SINOGRAM_KEYS + LABEL_KEYS + (WINDOW_KEY,) if key in batch and key != "target"}
