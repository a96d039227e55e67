"""Simulated datasets on disk: one ``.npz`` per sample plus a JSON manifest; parallel, resumable writing.

Layout of a dataset folder::

    DIR/manifest.json                 task, seed, config, geometry, physics, array descriptions
    DIR/samples/sample_00000.npz      one file per sample (NumPy npz, see ARRAY_DESCRIPTIONS)
    DIR/nifti/sample_00000_*.nii.gz   optional NIfTI copies of the images (nibabel)

Sample ``i`` is simulated from ``numpy.random.SeedSequence(seed, spawn_key=(i,))``,
so the data do not depend on the number of workers or on the order in which
samples are written. A sample file is written under a temporary name and
renamed into place (``os.replace``, atomic on POSIX), so a killed run leaves
only complete files (and perhaps a hidden ``.tmp`` file, removed on resume).

The manifest's ``sample_files`` records each sample file's size in bytes and
SHA-256 (``null`` for samples not written yet); during a run it is rewritten
when a sample is finished and :data:`~.manifest.MANIFEST_INTERVAL_S` seconds have passed
since the last rewrite, and at the end of the run, also after an error or
Ctrl-C. Rerunning the same command keeps a sample only if its file
matches its record, and rebuilds every other one: a missing, truncated or
foreign file, and one without a record (from a run killed before its record
was written, or a folder written before records existed); the simulation is
deterministic, so a rebuilt file equals the one a finished run would hold.
:class:`SimulatedDataset` checks each sample's size and SHA-256 against the
manifest lazily, the first time it reads the sample, and all of them at once
on request (:meth:`SimulatedDataset.verify`).
"""

from __future__ import annotations

import json
import os
import pathlib
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

from ..attention import LESION_PREFIX, AttentionRegions, TransparentMedicalAttention
from ..io.files import atomic_write
from ..io.numpy_files import open_npz
from ..masks import body_support
from ..io.nifti import write_nifti
from ..physics import GaussianResolution, PETSystemModel
from .acquisition import describe_projector, projector_from_description, projector_grid
from .kinetics import decay_constant_per_min
from .manifest import ManifestWriter, file_record, read_manifest, record_mismatch, sample_records
from .phantoms import LESION_LABEL_OFFSET, MU_511KEV_PER_MM, REGION_LABELS
from .config import SimulationConfig, check_task
from .patient import projector_for
from .sample import TaskSample
from .task_samples import sample_rng, simulate_sample
from .tracers import TRACERS

PathLike = Union[str, os.PathLike]

FORMAT = "allpet-simulation"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SAMPLES_DIR = "samples"
NIFTI_DIR = "nifti"
ARRAY_DESCRIPTIONS = {
    "input": "float32 sinogram: measured prompts of the input acquisition (counts)",
    "target": "float32 sinogram ((2, ...) for tracer_separation): the target (see the task)",
    "input_image": "float32 image: ground-truth activity of the input in expected-count units",
    "target_image": "float32 image ((2, ...) for tracer_separation): ground truth of the target",
    "mu_map": "float32 image: linear attenuation coefficient at 511 keV in 1/mm",
    "labels": "int16 image: region labels (names in metadata['region_names'])",
    "attenuation": "float32 sinogram: attenuation factors exp(-P mu)",
    "normalisation": "float32 sinogram: detector normalisation factors",
    "input_background": "float32 sinogram: expected scatter + randoms of the input",
    "target_background": "float32 sinogram: expected scatter + randoms of the target (0 if corrected)",
    "metadata": "JSON string: task, anatomy, tracers, frames, dose factor, count scales, lesions, projector",
}


def sample_path(root: PathLike, index: int) -> pathlib.Path:
    """``root/samples/sample_{index:05d}.npz``."""
    return pathlib.Path(root) / SAMPLES_DIR / f"sample_{index:05d}.npz"


def save_sample(path: PathLike, sample: TaskSample, extra_metadata: Optional[dict] = None,
                compress: bool = False) -> None:
    """Write ``sample`` to the ``.npz`` file ``path`` atomically (see the module notes)."""
    metadata = {**sample.metadata, **(extra_metadata or {})}
    arrays = {**sample.arrays(), "metadata": np.array(json.dumps(metadata))}
    save = np.savez_compressed if compress else np.savez
    atomic_write(pathlib.Path(path), lambda handle: save(handle, **arrays))


def load_sample(path: PathLike) -> TaskSample:
    """Read a sample written by :func:`save_sample`.

    Raises ``ValueError`` naming the file if it is not such a sample (not an
    ``.npz``, truncated, arrays or metadata missing).
    """
    with open_npz(path) as data:
        missing = [key for key in TaskSample.ARRAY_KEYS + ("metadata",) if key not in data]
        if missing:
            raise ValueError(f"{path} is not a sample written by allpet simulate: it lacks the arrays {missing}")
        text = data["metadata"]
        arrays = {key: data[key] for key in TaskSample.ARRAY_KEYS}
    try:
        metadata = json.loads(str(text)) if text.dtype.kind == "U" and text.ndim == 0 else None
    except (ValueError, RecursionError):
        metadata = None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("task"), str) \
            or not isinstance(metadata.get("region_names"), dict):
        raise ValueError(f"{path}: its 'metadata' is not the JSON object of an allpet sample (task, region_names)")
    try:
        return TaskSample(metadata["task"], names=dict(metadata["region_names"]), metadata=metadata, **arrays)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path} holds no valid sample: {error}") from None


# --- NIfTI ---------------------------------------------------------------------------------------

def export_sample_nifti(sample: TaskSample, folder: PathLike, stem: str, missing_only: bool = False
                        ) -> list[pathlib.Path]:
    """NIfTI files of the sample's images (``input_image``, ``target_image`` (one per tracer if stacked),
    ``mu_map``, ``labels``) as ``folder/{stem}_{name}.nii.gz``; returns the paths.

    With ``missing_only``, files already there are kept (not written again).
    """
    grid = projector_grid(projector_from_description(sample.metadata["projector"]))
    images = {"input_image": sample.input_image, "mu_map": sample.mu_map, "labels": sample.labels}
    if sample.target_image.shape == grid.shape:
        images["target_image"] = sample.target_image
    else:
        for tracer, image in zip(sample.metadata["tracers"], sample.target_image):
            images[f"target_image_{tracer}"] = image
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, image in images.items():
        path = folder / f"{stem}_{name}.nii.gz"
        if not (missing_only and path.is_file()):
            write_nifti(path, image, grid)
        paths.append(path)
    return paths


# --- writing -------------------------------------------------------------------------------------

def build_manifest(task: str, n_samples: int, config: SimulationConfig, seed: int) -> dict:
    """The JSON manifest of a dataset (geometry, seeds, physics parameters, task, array descriptions)."""
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "task": task, "n_samples": n_samples, "seed": seed,
        "sample_seed": "numpy.random.SeedSequence(seed, spawn_key=(index,))",
        "files": f"{SAMPLES_DIR}/sample_{{index:05d}}.npz",
        "config": config.to_dict(),
        "geometry": {anatomy: {"field_of_view_mm": projector_grid(projector_for(config, anatomy)).extent_mm[-1],
                               **describe_projector(projector_for(config, anatomy))} for anatomy in config.anatomies},
        "physics": {"acquisition": config.acquisition.to_dict(), "mu_511kev_per_mm": MU_511KEV_PER_MM,
                    "tracers": {name: {"description": t.description, "half_life_min": t.half_life_min,
                                       "decay_constant_per_min": decay_constant_per_min(t.half_life_min),
                                       "reference_frame_min": list(t.reference_frame_min),
                                       "uptake": {region: vars(k) for region, k in t.uptake.items()},
                                       "hot_lesion_k2_k3_k4_vb": list(t.hot_lesion),
                                       "hot_contrast": list(t.hot_contrast), "cold_contrast": list(t.cold_contrast)}
                                for name, t in TRACERS.items() if name in (config.tracer, config.second_tracer)}},
        "region_labels": REGION_LABELS, "lesion_label_offset": LESION_LABEL_OFFSET,
        "arrays": ARRAY_DESCRIPTIONS,
    }


def _same_dataset(old: dict, new: dict) -> bool:
    return all(old.get(key) == new.get(key) for key in ("format", "version", "task", "seed", "config"))


@dataclass(frozen=True)
class _Job:
    root: str
    task: str
    config: SimulationConfig
    seed: int
    nifti: bool
    compress: bool


def _write_one(job: _Job, index: int, simulate: bool = True) -> tuple[int, Optional[dict]]:
    """Simulate and write sample ``index`` (returns its index and manifest record) or, with ``simulate=False``,
    write the NIfTI files it lacks from its file (returns its index and None)."""
    path = sample_path(job.root, index)
    if not simulate:
        export_sample_nifti(load_sample(path), pathlib.Path(job.root) / NIFTI_DIR, f"sample_{index:05d}",
                            missing_only=True)
        return index, None
    sample = simulate_sample(job.task, job.config, sample_rng(job.seed, index))
    save_sample(path, sample, {"sample_index": index, "dataset_seed": job.seed}, job.compress)
    record = file_record(path)
    if job.nifti:
        export_sample_nifti(sample, pathlib.Path(job.root) / NIFTI_DIR, f"sample_{index:05d}")
    return index, record


def _single_thread_worker() -> None:
    """Worker initialiser: one Numba thread per process (the processes already share the cores)."""
    import numba

    numba.set_num_threads(1)


@dataclass(frozen=True)
class WriteSummary:
    """What :func:`write_dataset` did: samples simulated and written (``n_written``, of which ``n_rebuilt``
    replaced a file that did not match the manifest) and samples kept (``n_skipped``)."""

    root: pathlib.Path
    n_written: int
    n_skipped: int
    n_rebuilt: int = 0


def write_dataset(root: PathLike, task: str, n_samples: int, config: Optional[SimulationConfig] = None, *,
                  seed: int = 0, workers: int = 1, nifti: bool = False, compress: bool = False,
                  progress: bool = True) -> WriteSummary:
    """Simulate ``n_samples`` samples of ``task`` into the folder ``root`` (created if needed).

    Parameters
    ----------
    root : path
    task : str
        One of :data:`~.tasks.TASKS`.
    n_samples : int
        At least 1. Rerunning with a larger number extends the dataset.
    config : SimulationConfig, optional
    seed : int
        Dataset seed (non-negative).
    workers : int
        Processes (1: in this process; 0: one per CPU). Each worker runs
        Numba with one thread.
    nifti : bool
        Also write NIfTI images (needs nibabel); on a rerun also for the
        samples kept, where their NIfTI files are missing.
    compress : bool
        ``np.savez_compressed`` (about 2.5 times smaller files for 2D samples, 6 times
        slower to write) or ``np.savez`` (default).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    WriteSummary
        Samples written (and of those, rebuilt: see the module notes) and kept.

    Raises
    ------
    ValueError
        If ``root`` holds a dataset with another task, seed or config, or a
        manifest that is not a JSON object.
    """
    from tqdm import tqdm

    task = check_task(task)
    config = SimulationConfig() if config is None else config
    if not isinstance(config, SimulationConfig):
        raise TypeError(f"config must be a SimulationConfig, got {type(config).__name__}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    sample_rng(seed, 0)  # validates the seed
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be a non-negative integer (0 = one per CPU), got {workers!r}")
    workers = workers or os.cpu_count() or 1
    root = pathlib.Path(root)
    (root / SAMPLES_DIR).mkdir(parents=True, exist_ok=True)
    manifest = build_manifest(task, n_samples, config, seed)
    manifest_path = root / MANIFEST_NAME
    old: dict = {}
    if manifest_path.exists():
        old = read_manifest(manifest_path)
        if not _same_dataset(old, manifest):
            raise ValueError(f"{root} holds a dataset with other parameters (task {old.get('task')!r}, seed "
                             f"{old.get('seed')!r} or config); write to another folder or remove it")
        old_n = old.get("n_samples")
        manifest["n_samples"] = max(n_samples, old_n if isinstance(old_n, int) and not isinstance(old_n, bool)
                                    else 0)
    records = sample_records(old, manifest["n_samples"])
    for stale in (root / SAMPLES_DIR).glob(".*.tmp"):
        stale.unlink()
    todo, kept, n_rebuilt = [], [], 0
    for index in range(n_samples):
        if not sample_path(root, index).exists():
            todo.append(index)
        elif record_mismatch(sample_path(root, index), records[index]) is None:
            kept.append(index)
        else:
            todo.append(index)
            n_rebuilt += 1
    for index in todo:
        records[index] = None
    run = ManifestWriter(manifest_path, manifest, records)
    run.write()
    jobs = [(index, True) for index in todo] + [(index, False) for index in kept if nifti]
    job = _Job(str(root), task, config, int(seed), bool(nifti), bool(compress))
    try:
        with tqdm(total=len(jobs), disable=not progress, desc=f"allpet simulate {task}", unit="sample") as bar:
            if workers == 1 or len(jobs) <= 1:
                for index, simulate in jobs:
                    run.record(*_write_one(job, index, simulate))
                    bar.update()
            else:
                pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=get_context("spawn"),
                                           initializer=_single_thread_worker)
                futures = {pool.submit(_write_one, job, index, simulate) for index, simulate in jobs}
                try:
                    pending = set(futures)
                    while pending:
                        done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                        for future in done:
                            run.record(*future.result())  # re-raises a worker's error
                            bar.update()
                finally:  # after an error (or Ctrl-C) drop the samples not started yet, record those finished
                    pool.shutdown(wait=True, cancel_futures=True)
                    for future in futures:
                        if future.done() and not future.cancelled() and future.exception() is None:
                            run.record(*future.result())
    finally:  # the records of every sample written so far, also after an error or Ctrl-C
        run.write()
    return WriteSummary(root, len(todo), len(kept), n_rebuilt)


# --- reading -------------------------------------------------------------------------------------

class SimulatedDataset(Sequence):
    """Read a dataset written by :func:`write_dataset`: ``len``, indexing (-> :class:`~.tasks.TaskSample`), iteration.

    Each sample file is checked against the manifest's record (size and
    SHA-256) the first time this object reads it; a file that does not match
    raises ``ValueError`` naming it (rerun the ``allpet simulate`` command to
    rebuild it). :meth:`verify` checks every sample at once. Samples without
    a record (folders written before records existed) are read unchecked.

    Parameters
    ----------
    root : path
        The dataset folder (with ``manifest.json``).
    require_complete : bool
        Raise ``ValueError`` if some samples of the manifest are missing (default True).
    """

    def __init__(self, root: PathLike, require_complete: bool = True) -> None:
        self.root = pathlib.Path(root)
        manifest_path = self.root / MANIFEST_NAME
        if not manifest_path.exists():
            raise ValueError(f"{self.root} is not a simulated dataset (no {MANIFEST_NAME})")
        self.manifest = read_manifest(manifest_path)
        if self.manifest.get("format") != FORMAT or self.manifest.get("version") != FORMAT_VERSION:
            raise ValueError(f"{manifest_path} is not a {FORMAT} version {FORMAT_VERSION} manifest")
        task, n = self.manifest.get("task"), self.manifest.get("n_samples")
        if not isinstance(task, str) or isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"{manifest_path}: 'task' must be a task name and 'n_samples' a non-negative integer, "
                             f"got {task!r} and {n!r}")
        self.task: str = task
        try:
            self.config = SimulationConfig.from_dict(self.manifest.get("config"))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{manifest_path}: its 'config' is not a simulation config: {error}") from None
        self._n = n
        self._records = sample_records(self.manifest, n)
        self._verified: set[int] = set()
        missing = self.missing()
        if missing and require_complete:
            raise ValueError(f"{self.root} misses {len(missing)} of {self._n} samples (first: {missing[0]}); rerun "
                             "the same allpet simulate command to finish it")

    def missing(self) -> list[int]:
        """Indices of the manifest's samples that have no file yet."""
        return [i for i in range(self._n) if not sample_path(self.root, i).exists()]

    def _checked(self, index: int) -> pathlib.Path:
        """The file of sample ``index``, checked against its record the first time (see the class notes)."""
        path = sample_path(self.root, index)
        if index not in self._verified and self._records[index] is not None:
            problem = record_mismatch(path, self._records[index])
            if problem is not None:
                raise ValueError(f"{path} does not match the manifest: {problem}; rerun the allpet simulate command "
                                 f"that wrote {self.root} to rebuild it")
            self._verified.add(index)
        return path

    def verify(self) -> None:
        """Check every sample file against the manifest now; ``ValueError`` naming those that do not match."""
        problems = []
        for index in range(self._n):
            try:
                self._checked(index)
            except ValueError as error:
                problems.append(str(error))
        if problems:
            raise ValueError(f"{len(problems)} of {self._n} samples of {self.root} do not match the manifest: "
                             + "; ".join(problems[:3]))

    def __len__(self) -> int:
        return self._n

    def _index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {index!r}")
        if not -self._n <= index < self._n:
            raise IndexError(f"index {index} out of range for a dataset of {self._n} samples")
        return int(index) % self._n

    def __getitem__(self, index: int) -> TaskSample:  # type: ignore[override]
        return load_sample(self._checked(self._index(index)))

    def __iter__(self) -> Iterator[TaskSample]:
        return (self[i] for i in range(self._n))

    def load_array(self, index: int, key: str) -> np.ndarray:
        """One array of sample ``index`` (only that array is read and decompressed)."""
        if key not in TaskSample.ARRAY_KEYS:
            raise ValueError(f"unknown array {key!r}; arrays: {TaskSample.ARRAY_KEYS}")
        path = self._checked(self._index(index))
        with open_npz(path) as data:
            if key not in data:
                raise ValueError(f"{path} is not a sample written by allpet simulate: it lacks the array {key!r}")
            return data[key]

    def stack(self, key: str, indices: Optional[Sequence[int]] = None) -> np.ndarray:
        """Array ``key`` of the samples ``indices`` (default all) stacked along a new first axis.

        All samples must share the array's shape (one anatomy, or 2D sinograms,
        which have the same shape for both anatomies).
        """
        indices = range(self._n) if indices is None else indices
        return np.stack([self.load_array(i, key) for i in indices])


def lesion_attention(sample: TaskSample, projector: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """TMA attention of a sample's lesions: ``(image (ny, nx), sinogram (n_views, n_bins))``, zeros if none.

    The regions named ``lesion*`` of the sample's label map (weight 1) through
    :class:`~pet_projection.TransparentMedicalAttention` on ``projector``
    (default: the sample's own, from its metadata), as a clinician's lesion
    ROIs would be.
    """
    projector = projector_from_description(sample.metadata["projector"]) if projector is None else projector
    table = sample.region_table()
    lesions = {name: table.mask(name) for name in table.names if name.startswith(LESION_PREFIX)}
    if not any(mask.any() for mask in lesions.values()):
        return np.zeros(projector.in_shape), np.zeros(projector.out_shape)
    maps = TransparentMedicalAttention(projector)(AttentionRegions(lesions))
    return maps.image, maps.sinogram


def count_support(sample: TaskSample, projector: Any = None) -> np.ndarray:
    """The rays a sample's target can hold counts on: bool, the shape of ``sample.target_background``.

    Rays that meet the body (labels != 0, :func:`~pet_projection.body_support`
    on ``projector``, default the sample's own) and rays where the target's
    expected scatter and randoms are positive, which reach rays that miss the
    body. Per target channel for stacked targets (tracer separation).
    """
    projector = projector_from_description(sample.metadata["projector"]) if projector is None else projector
    body = np.asarray(body_support((sample.labels != 0).astype(np.float32), projector), dtype=bool)
    return body | (np.asarray(sample.target_background) > 0)


def system_model(sample: TaskSample, which: str = "input", channel: Optional[int] = None) -> PETSystemModel:
    """The ``PETSystemModel`` of a sample's input (or target) acquisition: projector, factors, resolution, background.

    ``system_model(sample).expected(sample.input_image)`` is the mean of
    ``sample.input``; likewise for the target with ``which="target"`` (for the
    stacked ``tracer_separation`` target pass ``channel`` 0 or 1, and use
    ``sample.target_image[channel]``).
    """
    if which not in ("input", "target"):
        raise ValueError(f"which must be 'input' or 'target', got {which!r}")
    projector = projector_from_description(sample.metadata["projector"])
    fwhm = sample.metadata["acquisition"]["fwhm_mm"]
    resolution = GaussianResolution(projector_grid(projector), fwhm) if fwhm > 0 else None
    background = sample.input_background if which == "input" else sample.target_background
    if background.shape != tuple(projector.out_shape):
        if channel is None or not 0 <= channel < background.shape[0]:
            raise ValueError(f"the {which} of this sample is stacked ({background.shape[0]} channels); pass channel "
                             f"in 0 .. {background.shape[0] - 1}, got {channel!r}")
        background = background[channel]
    return PETSystemModel(projector, attenuation=sample.attenuation, normalisation=sample.normalisation,
                          background=background, resolution=resolution)
