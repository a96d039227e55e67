"""Synthesis: new sinograms from a prompt alone (``allpet synthesize``), their OSEM images and their files.

The foundation model (:mod:`ldm.weights`) generates a sinogram of any
window (:class:`ldm.windows.SinogramWindow`: views over an angle range,
radial bins over a radial range) for a prompt (:mod:`ldm.prompts`: tracer and
region; the task is ``"synthesis"``), with nothing known: the batch's
``input`` and ``mask`` are zero, as in the synthesis examples of its
pretraining (:mod:`ldm.foundation_data`).

:func:`reconstruct` turns the sinograms into images with OSEM and the
window's own (matching) parallel-beam projector, on a square grid of
``n_bins`` pixels of the bin width centred on the rotation axis. A generated
sinogram is prompts-like emission data without any attenuation,
normalisation or background information, so it is reconstructed with unit
attenuation and normalisation and no background (the projector alone as
system model): the image is the activity the sinogram's line integrals
describe, not an attenuation-corrected estimate of a scan.

:func:`write_synthesis` writes an output folder: ``sinograms.npy`` and
``images.npy``, per sample NIfTI and Interfile images and, where the window's
rays are exactly bins of STIR's arc-corrected projection data
(:func:`stir_mismatch`), Interfile sinograms; ``manifest.json`` and
``montage.png``.

**Task pairs** (``allpet synthesize --task``; :func:`synthetic_sample`,
:func:`write_pair_dataset`): each synthesized sinogram becomes one
:class:`~pet_projection.simulation.TaskSample` of ``low_dose`` or
``attenuation_correction``, written as an ``allpet simulate`` dataset folder
(:mod:`pet_projection.simulation.dataset_folder`), so
:func:`tasks.sources.load_samples` and :class:`ldm.folder_datasets.SimulatedTaskDataset`
read it as they are. The generated sinogram is the full-dose measured prompts
``y`` (rounded to non-negative integer counts) of a patient the simulator's
acquisition model (:class:`~pet_projection.simulation.Acquisition`) then describes:

- **body and mu-map**: the body outline is the non-attenuation-corrected OSEM
  image, smoothed (Gaussian, :data:`BODY_SMOOTHING_FWHM_BINS` bins FWHM),
  above :data:`BODY_THRESHOLD` of its maximum, holes filled, largest connected
  part; it is filled with water at 511 keV (0.0096 /mm) and labelled
  ``soft_tissue`` (no organ or lesion labels: a synthesized image has no
  ground-truth segmentation, so the lesion attention is zero);
- **background**: scatter and randoms are flat at the mean count of the rays
  that miss the body (:func:`~pet_projection.masks.body_support`), the
  simulator's randoms model with normalisation 1 (``randoms_fraction`` of
  the sample's ``metadata["acquisition"]``, scatter fraction 0);
- **activity**: OSEM of ``y`` with the attenuation factors ``a = exp(-P mu)``
  and that background, started from the body outline (EM keeps the activity
  outside the body zero), on the simulator's grid of the region: the sample's
  images, in expected-count units, so that ``a P x + b`` is the mean of ``y``
  (normalisation 1 and no resolution model: ``fwhm_mm`` 0);
- ``low_dose``: target ``y``; input its binomial thinning
  (:func:`~pet_projection.simulation.thin_counts`) by a dose reduction factor
  drawn per sample from ``dose_reduction_factors``, as the simulator thins its
  full-dose prompts;
- ``attenuation_correction``: input ``y``, the measured prompts with
  attenuation; target the noise-free corrected sinogram ``P x``
  (:meth:`~pet_projection.simulation.Acquisition.attenuation_free`).

``delayed_frame``, ``tracer_separation`` and ``tracer_conversion``
(:data:`KINETIC_TASKS`; :func:`kinetic_sample`) need what a generated
sinogram does not hold: tissue regions with their own kinetics and uptake of
a second tracer. The generated sinogram therefore becomes a *synthetic
patient*, an image phantom of the simulator
(:mod:`pet_projection.simulation.image_phantom`, the path the STIR thorax
takes), and the simulator scans that patient for the task:

- **mu-map** (:func:`tissue_mu_map`), from the body outline alone: water
  in the body; for a brain a skull band (:data:`SCALP_MM` under the
  outline, :data:`SKULL_MM` thick, cortical bone of the simulator's table),
  so that the simulator's segmentation finds the intracranial space and
  splits it into grey matter, white matter and CSF by the activity. Chests,
  abdomens and trunks are water: lungs cannot be found from emission data
  alone (in a non-corrected or water-corrected image they are not colder than
  the mediastinum; a threshold found none of the simulator's own chest
  lungs), so their synthetic patients have soft tissue and the hot and cold
  regions the segmentation turns into lesions;
- **activity**: OSEM of the generated counts with that mu-map's attenuation
  and the flat background, as for the other tasks;
- **the pair**: :func:`pet_projection.simulation.simulate_sample` of the task
  with this image phantom (``anatomy`` the prompt's region, ``tracer`` the
  prompt's, whose uptake turns the activity into the patient's texture,
  ``second_tracer`` for the two-tracer tasks, ``total_counts`` the generated
  sinogram's), with the simulator's acquisition: attenuation, resolution,
  scatter, randoms, normalisation and Poisson noise are drawn anew, so the
  pair's first scan is a new measurement of the generated patient, not the
  generated counts themselves. Hot and cold regions of the activity become
  lesions (:func:`~pet_projection.simulation.image_segmentation.segment_image`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
from scipy import ndimage

from ldm.experiment import ExperimentConfig
from ldm.model import LDMConfig, SinogramLDM
from ldm.prompts import Prompt
from ldm.sampling import sample
from ldm.schedulers import SAMPLERS
from ldm.windows import SinogramWindow, window_row
from pet_projection import (CylindricalScanner, ImageGrid, ParallelBeamProjector, PETSystemModel, ProjDataLayout,
                            __version__, osem)
from pet_projection.io import write_image, write_projdata
from pet_projection.io.formats import save_image
from pet_projection.io.nifti import write_nifti
from pet_projection.masks import body_support
from pet_projection.physics import FWHM_PER_SIGMA
from pet_projection.simulation import (Acquisition, AcquisitionSettings, Scan, SimulationConfig, TaskSample,
                                       get_tracer, save_sample, simulate_sample, thin_counts)
from pet_projection.simulation.acquisition import describe_projector, projector_grid
from pet_projection.simulation.anatomy import FIELD_OF_VIEW_MM
from pet_projection.simulation.dataset_folder import build_manifest, sample_path
from pet_projection.simulation.manifest import file_record
from pet_projection.simulation.patient import projector_for
from pet_projection.simulation.phantoms import MU_511KEV_PER_MM, MU_SOFT_TISSUE_PER_MM, REGION_LABELS
from pet_projection.validation import check_choice, positive_int

__all__ = ["BODY_SMOOTHING_FWHM_BINS", "BODY_THRESHOLD", "KINETIC_TASKS", "MANIFEST_FILE", "MONTAGE_FILE",
           "PAIR_ACQUISITION", "PAIR_TASKS", "RECONSTRUCTION_NOTE", "SCALP_MM", "SKULL_MM", "body_outline",
           "check_pair_prompt", "check_pair_task", "check_synthesis_prompt", "image_grid", "kinetic_sample",
           "pair_config", "pair_projector", "prompt_labels", "reconstruct", "stir_layout", "stir_mismatch",
           "synthesis_window", "synthesize", "synthetic_sample", "tissue_mu_map", "training_bin_width_mm",
           "write_montage", "write_pair_dataset", "write_synthesis"]

MANIFEST_FILE, MONTAGE_FILE = "manifest.json", "montage.png"
SINOGRAMS_FILE, IMAGES_FILE = "sinograms.npy", "images.npy"
MONTAGE_SAMPLES = 4
RECONSTRUCTION_NOTE = ("OSEM with the window's own parallel-beam projector; a generated sinogram carries no "
                       "attenuation, normalisation or background information, so it is reconstructed as emission "
                       "data with unit attenuation and normalisation and no background (negative values set to 0)")
# tolerance of "the same ray" when comparing the window's rays with STIR's bins: angles in rad, positions in bins
_STIR_TOLERANCE = 1e-9

# task pairs (module notes)
KINETIC_TASKS = ("delayed_frame", "tracer_separation", "tracer_conversion")
PAIR_TASKS = ("low_dose", "attenuation_correction") + KINETIC_TASKS
BODY_SMOOTHING_FWHM_BINS = 2.0
BODY_THRESHOLD = 0.2
# the acquisition of a synthesized sample: no resolution model, scatter or detector efficiencies (the sample's
# metadata carry its own randoms_fraction: the flat background of the module notes)
PAIR_ACQUISITION = AcquisitionSettings(fwhm_mm=0.0, scatter_fraction=0.0, randoms_fraction=0.0,
                                       efficiency_spread=0.0)
_BODY_LABEL = "soft_tissue"
# synthetic brains of the kinetic tasks (module notes): an adult scalp is about 5 mm thick, the skull 6-7 mm on
# average (Lynnerup, Forensic Sci Int 117:45, 2001)
SCALP_MM, SKULL_MM = 4.0, 7.0


# ------------------------------------------------------------------------------------------------ prompt and window

def check_synthesis_prompt(prompt: Prompt) -> None:
    """``ValueError`` unless ``prompt`` asks for synthesis (the other tasks need an input sinogram)."""
    if prompt.task != "synthesis":
        raise ValueError(f"the prompt asks for the task {prompt.task.replace('_', '-')!r}, which transforms an input "
                         f"sinogram; synthesis makes new sinograms from the prompt alone: drop the task word, or run "
                         f"the task with allpet sample --checkpoint MODEL --input INPUTS")


def prompt_labels(config: LDMConfig, prompt: Prompt) -> dict[str, int]:
    """The batch labels (``task``, ``tracer``, ``region`` ids, -1 unspecified) of a synthesis ``prompt`` for a model.

    Only the labels the model has classes for are returned. ``ValueError``
    when the prompt is not synthesis (:func:`check_synthesis_prompt`), the
    model is not a prompted window model (``n_tasks``, ``coordinate_channels``,
    ``mode: ddpm``), or it has no class for the prompt's tracer or region.
    """
    check_synthesis_prompt(prompt)
    ids = prompt.label_ids()
    if not config.n_tasks or not config.coordinate_channels or config.mode != "ddpm":
        raise ValueError(f"the model is no prompted foundation model, so it cannot synthesise sinogram windows (its "
                         f"config has model.n_tasks {config.n_tasks}, model.coordinate_channels "
                         f"{config.coordinate_channels}, model.mode {config.mode!r}; synthesis needs n_tasks > "
                         f"{ids['task']}, coordinate_channels true and mode ddpm): use the foundation weights or "
                         f"a run of allpet pretrain")
    labels = {"task": ids["task"]}
    for key, classes in (("tracer", config.n_tracers), ("region", config.n_regions)):
        named = getattr(prompt, key)
        if classes:
            if ids[key] >= classes:
                raise ValueError(f"the model knows {classes} {key}s, not the {key} {named!r} (class {ids[key]})")
            labels[key] = ids[key]
        elif named is not None:
            raise ValueError(f"the prompt names the {key} {named!r}, but the model takes no {key} (n_{key}s 0)")
    return labels


def training_bin_width_mm(config: ExperimentConfig, prompt: Prompt) -> float:
    """Radial bin width in mm of the model's training sinograms for the prompt's region.

    The foundation data (``data.source: foundation``) project each region on
    its field of view (:data:`~pet_projection.simulation.anatomy.FIELD_OF_VIEW_MM`,
    256 mm brain, 500 mm trunk, chest, abdomen) with ``data.image_size`` bins:
    width ``FOV / image_size`` (the widest training region's for an
    unspecified region). Other data: ``data.bin_width_mm``.
    """
    data = config.data
    if data.source != "foundation":
        return float(data.bin_width_mm)
    regions = data.regions if prompt.region is None else (prompt.region,)
    return max(FIELD_OF_VIEW_MM[region] for region in regions) / data.image_size


def synthesis_window(config: ExperimentConfig, prompt: Prompt, n_views: Optional[int] = None,
                     n_bins: Optional[int] = None, angle_range_rad: tuple[float, float] = (0.0, math.pi),
                     radial_range_mm: Optional[tuple[float, float]] = None) -> SinogramWindow:
    """The window to generate: the given values, the rest the model's training defaults.

    ``n_views`` and ``n_bins`` default to the training sinograms'
    (``data.n_views``, ``data.n_bins``); ``radial_range_mm`` to ``n_bins``
    bins of the training bin width centred on the axis
    (:func:`training_bin_width_mm`: 64 bins give +-128 mm for the brain and
    +-250 mm for the other regions of the foundation data).
    """
    n_views = config.data.n_views if n_views is None else n_views
    n_bins = config.data.n_bins if n_bins is None else n_bins
    if radial_range_mm is None:
        half = 0.5 * positive_int("n_bins", n_bins) * training_bin_width_mm(config, prompt)
        radial_range_mm = (-half, half)
    return SinogramWindow(n_views, n_bins, tuple(angle_range_rad), tuple(radial_range_mm))


# ------------------------------------------------------------------------------------------------ generation

def synthesize(model: SinogramLDM, prompt: Prompt, window: SinogramWindow, n: int, seed: int = 0, steps: int = 50,
               batch_size: int = 8, progress: bool = False, sampler: str = "ddim") -> np.ndarray:
    """Generate ``n`` sinograms of ``window`` for a synthesis ``prompt``.

    Parameters
    ----------
    model : SinogramLDM
        A prompted foundation model (:func:`prompt_labels`), in eval mode.
    prompt : Prompt
        Task ``"synthesis"``; tracer and region, or unspecified.
    window : SinogramWindow
        Views and radial bins of the sinograms.
    n, steps, batch_size : int
        Samples, sampler steps (network evaluations) and samples per model call.
    seed : int
        Seed of one generator (on the model's device) that all batches draw
        from in order: the same seed, batch size, device and model give the
        same sinograms, and the first samples of a larger ``n`` draw the same
        noise (equal to float rounding: batched convolutions round alike only
        in batches of one size).
    progress : bool
        A tqdm bar over the batches.
    sampler : {"ddim", "ddpm", "dpm-solver"}

    Returns
    -------
    ndarray ``(n, n_views, n_bins)`` float32
        Sinograms in counts (the model's sinogram units), axes (view, radial).
    """
    from tqdm.auto import tqdm

    labels = prompt_labels(model.config, prompt)
    n, steps, batch_size = positive_int("n", n), positive_int("steps", steps), positive_int("batch_size", batch_size)
    check_choice("sampler", sampler, SAMPLERS)
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    shape = (1, window.n_views, window.n_bins)
    chunks = []
    for first in tqdm(range(0, n, batch_size), desc="synthesis", unit="batch", disable=not progress):
        size = min(batch_size, n - first)
        batch = {"input": torch.zeros((size,) + shape), "mask": torch.zeros((size,) + shape),
                 "window": torch.from_numpy(np.repeat(window.row()[None], size, axis=0)),
                 **{key: torch.full((size,), value, dtype=torch.long) for key, value in labels.items()}}
        out = sample(model, batch, sampler=sampler, n_steps=steps, generator=generator)
        chunks.append(out[:, 0].float().cpu().numpy())
    return np.concatenate(chunks).astype(np.float32)


# ------------------------------------------------------------------------------------------------ reconstruction

def image_grid(window: SinogramWindow) -> ImageGrid:
    """The reconstruction grid of a window: ``n_bins`` x ``n_bins`` pixels of the bin width, centred on the axis."""
    return ImageGrid((window.n_bins, window.n_bins), voxel_size_mm=window.bin_width_mm)


def reconstruct(sinogram: Any, window: SinogramWindow, n_iterations: int = 4, n_subsets: int = 8) -> np.ndarray:
    """OSEM images of sinograms of ``window`` (see the module docstring for the system model).

    Parameters
    ----------
    sinogram : array_like ``(..., n_views, n_bins)``
        Counts, axes (view, radial); negative values are set to 0 first.
    window : SinogramWindow
    n_iterations, n_subsets : int
        OSEM iterations and view subsets (at most ``n_views`` are used).

    Returns
    -------
    ndarray ``(..., n_bins, n_bins)`` float32
        Activity on :func:`image_grid` (axes (y, x)), in counts per mm of path.
    """
    data = np.maximum(np.asarray(sinogram, dtype=np.float64), 0.0)
    if data.ndim < 2 or data.shape[-2:] != (window.n_views, window.n_bins):
        raise ValueError(f"sinogram has shape {data.shape}; the window needs (..., {window.n_views}, "
                         f"{window.n_bins})")
    system = PETSystemModel(ParallelBeamProjector(window.geometry(image_grid(window))))
    subsets = min(positive_int("n_subsets", n_subsets), window.n_views)
    return np.asarray(osem(np.ascontiguousarray(data), system, subsets, n_iterations)).astype(np.float32)


# ------------------------------------------------------------------------------------------------ STIR Interfile

def stir_mismatch(window: SinogramWindow) -> Optional[str]:
    """Why the window's rays are not bins of STIR arc-corrected projection data, or ``None`` when they are.

    STIR's view ``v`` of ``V`` lies at ``v * 180 / V`` degrees and its
    tangential bin ``b`` of ``B`` at ``(b - B // 2) * w`` mm: the window must
    cover ``[0, 180)`` degrees, and its bin ``B // 2`` must lie on the axis
    (for an odd ``B`` the centred window; for an even ``B`` the window shifted
    by half a bin).
    """
    low, high = window.angle_range_rad
    if abs(low) > _STIR_TOLERANCE or abs(high - math.pi) > _STIR_TOLERANCE:
        return (f"STIR projection data hold views over [0, 180) degrees, but the window covers "
                f"[{math.degrees(low):g}, {math.degrees(high):g}) degrees")
    width = window.bin_width_mm
    offset = window.radial_range_mm[0] + (window.n_bins // 2 + 0.5) * width  # s of bin B // 2
    if abs(offset) > _STIR_TOLERANCE * max(width, 1.0):
        start = -(window.n_bins // 2 + 0.5) * width
        return (f"STIR's arc-corrected bin {window.n_bins // 2} of {window.n_bins} lies on the axis, but the "
                f"window's lies {offset:g} mm off it (a centred window of an even number of bins is half a bin "
                f"off); --radial-range {start:g} {start + window.n_bins * width:g} gives STIR's bins")
    return None


def stir_layout(window: SinogramWindow) -> ProjDataLayout:
    """STIR projection data of one ring whose bins are exactly the window's rays, axes (plane, view, radial).

    An arc-corrected one-ring scanner (``2 n_views`` detectors, so the views
    are unmashed at STIR's angles ``v * 180 / n_views`` degrees; ring radius
    one bin beyond the window's radial half-width; ring spacing and bin size
    the bin width). ``ValueError`` with the reason when the window's rays are
    no such bins (:func:`stir_mismatch`).
    """
    reason = stir_mismatch(window)
    if reason is not None:
        raise ValueError(reason)
    width = window.bin_width_mm
    scanner = CylindricalScanner("ALL-PET synthetic parallel beam", 1, 2 * window.n_views,
                                 (0.5 * window.n_bins + 1.0) * width, 0.0, width, width,
                                 default_arc_corrected_bins=window.n_bins)
    return ProjDataLayout(scanner, [(0, 0)], [1], window.n_views, window.n_bins, True, width)


# ------------------------------------------------------------------------------------------------ files

def _geometry(window: SinogramWindow) -> dict[str, Any]:
    return {"axes": ["view", "radial"], "n_views": window.n_views,
            "angle_range_deg": [math.degrees(a) for a in window.angle_range_rad],
            "view_step_deg": math.degrees(window.view_step_rad), "n_bins": window.n_bins,
            "radial_range_mm": list(window.radial_range_mm), "bin_width_mm": window.bin_width_mm,
            "window_row": window.row().tolist()}


def write_montage(path: Path, sinograms: np.ndarray, images: np.ndarray, window: SinogramWindow, title: str) -> None:
    """A PNG of the first :data:`MONTAGE_SAMPLES` sinograms ``(N, V, B)`` (top row) and their images (bottom)."""
    from matplotlib.figure import Figure

    count = min(MONTAGE_SAMPLES, len(sinograms))
    figure = Figure(figsize=(3.0 * count, 6.0), layout="constrained")
    axes = figure.subplots(2, count, squeeze=False)
    (s0, s1), (a0, a1) = window.radial_range_mm, (math.degrees(a) for a in window.angle_range_rad)
    half = 0.5 * window.n_bins * window.bin_width_mm
    for k in range(count):
        top, bottom = axes[0, k], axes[1, k]
        top.imshow(sinograms[k], cmap="gray_r", aspect="auto", origin="upper", extent=(s0, s1, a1, a0))
        top.set(title=f"sinogram {k}", xlabel="radial position (mm)", ylabel="view angle (deg)")
        bottom.imshow(images[k], cmap="gray_r", origin="lower", extent=(-half, half, -half, half))
        bottom.set(title=f"OSEM image {k}", xlabel="x (mm)", ylabel="y (mm)")
    figure.suptitle(title)
    figure.savefig(path, dpi=80)


def write_synthesis(folder: Path, sinograms: np.ndarray, images: np.ndarray, window: SinogramWindow,
                    record: Mapping[str, Any]) -> dict[str, Any]:
    """Write the outputs of a synthesis into ``folder`` (a fresh folder; the caller makes it atomic).

    Parameters
    ----------
    folder : Path
    sinograms : ndarray ``(N, V, B)`` float32
        Generated sinograms, axes (view, radial).
    images : ndarray ``(N, B, B)`` float32
        Their images on :func:`image_grid`, axes (y, x).
    window : SinogramWindow
    record : mapping
        Entries of the manifest that describe the run (prompt, model, seed, ...).

    Returns
    -------
    dict
        The manifest written as ``manifest.json``: ``record``, the geometry,
        the reconstruction, the Interfile status, the package version and
        per-sample total counts, fraction of negative values and files.
    """
    folder = Path(folder)
    np.save(folder / SINOGRAMS_FILE, sinograms.astype(np.float32))
    np.save(folder / IMAGES_FILE, images.astype(np.float32))
    grid = image_grid(window)
    grid3d = ImageGrid((1,) + grid.shape, voxel_size_mm=window.bin_width_mm)
    reason = stir_mismatch(window)
    layout = None if reason is not None else stir_layout(window)
    samples = []
    for k, (sinogram, image) in enumerate(zip(sinograms, images)):
        files = {"image_nifti": f"image_{k:05d}.nii.gz", "image_interfile": f"image_{k:05d}.hv"}
        write_nifti(folder / files["image_nifti"], image, grid)
        write_image(folder / files["image_interfile"], image[None], grid3d)
        if layout is not None:
            files["sinogram_interfile"] = f"sinogram_{k:05d}.hs"
            write_projdata(folder / files["sinogram_interfile"], sinogram[None], layout)
        samples.append({"index": k, "total_counts": float(sinogram.sum(dtype=np.float64)),
                        "negative_fraction": float((sinogram < 0).mean()), "files": files})
    manifest = {"command": "allpet synthesize", "allpet_version": __version__, **record,
                "geometry": _geometry(window),
                "reconstruction": {**record.get("reconstruction", {}), "note": RECONSTRUCTION_NOTE,
                                   "grid": {"shape": list(grid.shape), "voxel_size_mm": list(grid.voxel_size_mm),
                                            "origin_mm": list(grid.origin_mm)}},
                "interfile_sinograms": ({"written": True, "layout": repr(layout)} if layout is not None
                                        else {"written": False, "reason": reason}),
                "files": {"sinograms": SINOGRAMS_FILE, "images": IMAGES_FILE, "montage": MONTAGE_FILE},
                "samples": samples}
    write_montage(folder / MONTAGE_FILE, sinograms, images, window, record.get("prompt", {}).get("text", ""))
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


# ------------------------------------------------------------------------------------------------ task pairs

def check_pair_task(task: str) -> str:
    """The simulator's name of ``task`` (hyphens allowed), one of :data:`PAIR_TASKS`, else ``ValueError``."""
    name = task.replace("-", "_") if isinstance(task, str) else task
    if name not in PAIR_TASKS:
        raise ValueError(f"unknown task {task!r}; synthesized pairs: {', '.join(PAIR_TASKS)}")
    return name


def check_pair_prompt(prompt: Prompt) -> None:
    """``ValueError`` unless a synthesis ``prompt`` names the tracer and the region (a task sample records both)."""
    check_synthesis_prompt(prompt)
    missing = [key for key in ("tracer", "region") if getattr(prompt, key) is None]
    if missing:
        raise ValueError(f"task pairs record the tracer and the region of every sample, but the prompt names no "
                         f"{' and no '.join(missing)}: name both, e.g. \"FDG brain\"")


def pair_config(prompt: Prompt, window: SinogramWindow, dose_reduction_factors: Optional[Sequence[float]] = None,
                task: str = "low_dose", second_tracer: Optional[str] = None) -> SimulationConfig:
    """The simulator settings that describe task pairs of ``prompt`` on ``window``.

    2D, ``window.n_bins`` pixels and bins over the region's field of view,
    ``window.n_views`` views; the prompt's tracer and region; no lesions or
    texture (the model draws the activity); ``dose_reduction_factors``
    (default the simulator's) for ``low_dose``. The acquisition is
    :data:`PAIR_ACQUISITION` for ``low_dose`` and ``attenuation_correction``
    (the generated counts are the measurement) and the simulator's default for
    :data:`KINETIC_TASKS` (it scans the synthetic patient). ``second_tracer``
    (two-tracer tasks; default the simulator's, or FDG where the prompt's
    tracer is that one) must differ from the prompt's.
    """
    check_pair_prompt(prompt)
    task = check_pair_task(task)
    factors = {} if dose_reduction_factors is None else {"dose_reduction_factors": tuple(dose_reduction_factors)}
    if second_tracer is None:
        default = SimulationConfig.second_tracer
        second_tracer = "fdg" if prompt.tracer == default else default
    second_tracer = get_tracer(second_tracer).name
    if second_tracer == prompt.tracer and task in ("tracer_separation", "tracer_conversion"):
        raise ValueError(f"{task} needs a second tracer other than the prompt's {prompt.tracer!r}")
    acquisition = AcquisitionSettings() if task in KINETIC_TASKS else PAIR_ACQUISITION
    return SimulationConfig(size=window.n_bins, n_views=window.n_views, anatomy=prompt.region, tracer=prompt.tracer,
                            second_tracer=second_tracer, n_lesions=(0, 0), texture=0.0, acquisition=acquisition,
                            **factors)


def pair_projector(config: SimulationConfig, window: SinogramWindow) -> ParallelBeamProjector:
    """The simulator's projector of ``config``'s region, which must have exactly the window's rays.

    ``ValueError`` otherwise: the dataset format describes each sample by the
    simulator's geometry (views over [0, 180), the region's field of view in
    ``n_bins`` bins centred on the axis).
    """
    projector = projector_for(config, config.anatomy)
    if not np.allclose(window_row(projector.geometry), window.row(), rtol=0.0, atol=1e-9):
        half = 0.5 * FIELD_OF_VIEW_MM[config.anatomy]
        raise ValueError(f"task pairs need the simulator's {config.anatomy} geometry: views over [0, 180) degrees "
                         f"and --radial-range {-half:g} {half:g} ({window.n_bins} bins of "
                         f"{2.0 * half / window.n_bins:g} mm), but the window covers "
                         f"[{math.degrees(window.angle_range_rad[0]):g}, {math.degrees(window.angle_range_rad[1]):g})"
                         f" degrees and {window.radial_range_mm[0]:g} to {window.radial_range_mm[1]:g} mm")
    return projector


def body_outline(image: np.ndarray) -> np.ndarray:
    """The body of a non-attenuation-corrected image (module notes): bool, the image's shape ``(ny, nx)``.

    Empty when the image has no positive value.
    """
    smooth = ndimage.gaussian_filter(np.asarray(image, dtype=np.float64), BODY_SMOOTHING_FWHM_BINS / FWHM_PER_SIGMA)
    peak = float(smooth.max())
    if peak <= 0.0:
        return np.zeros(smooth.shape, dtype=bool)
    components, n = ndimage.label(ndimage.binary_fill_holes(smooth > BODY_THRESHOLD * peak))
    largest = 1 + int(np.argmax(np.bincount(components.ravel())[1:]))
    return components == largest


def tissue_mu_map(body: np.ndarray, region: str, pixel_mm: float) -> np.ndarray:
    """The mu-map (1/mm at 511 keV) of a synthetic patient from its body outline (module notes).

    Parameters
    ----------
    body : ndarray of bool ``(ny, nx)``
        :func:`body_outline` of the non-attenuation-corrected image.
    region : {"brain", "chest", "abdomen", "trunk"}
    pixel_mm : float
        Pixel size in mm.

    Returns
    -------
    ndarray, float64 ``(ny, nx)``
        Water in the body, with a skull band for a brain; 0 outside.
    """
    mu = np.where(body, MU_SOFT_TISSUE_PER_MM, 0.0)
    if region == "brain":
        outer = ndimage.binary_erosion(body, iterations=max(1, round(SCALP_MM / pixel_mm)))
        inner = ndimage.binary_erosion(outer, iterations=max(1, round(SKULL_MM / pixel_mm)))
        mu[outer & ~inner] = MU_511KEV_PER_MM["skull"]
    return mu


def _fitted_activity(counts: np.ndarray, window: SinogramWindow, projector: ParallelBeamProjector,
                     mu_map: np.ndarray, body: np.ndarray, settings: AcquisitionSettings, rng: np.random.Generator,
                     n_iterations: int, n_subsets: int) -> tuple[np.ndarray, float, Acquisition]:
    """OSEM activity of ``counts`` with ``mu_map``'s attenuation and the flat background (module notes).

    Returns the image ``(ny, nx)`` in expected-count units (zero outside
    ``body``), the background per ray in counts and the unit acquisition
    (normalisation 1) whose attenuation it used.
    """
    misses = ~np.asarray(body_support(body.astype(np.float32), projector), dtype=bool)
    level = float(counts[misses].mean()) if misses.any() else 0.0
    unit = Acquisition(projector, mu_map, settings, rng, normalisation=np.ones(projector.out_shape))
    system = PETSystemModel(projector, attenuation=unit.attenuation, background=np.full(projector.out_shape, level))
    image = np.asarray(osem(counts, system, min(positive_int("n_subsets", n_subsets), window.n_views), n_iterations,
                            x0=body.astype(np.float64)), dtype=np.float64)  # EM keeps the zeros outside the body
    if float(unit.system.linear(image).sum()) <= 0.0:
        raise ValueError("the synthesized sinogram holds no counts from inside the body: nothing to pair")
    return image, level, unit


def synthetic_sample(task: str, sinogram: np.ndarray, window: SinogramWindow, config: SimulationConfig,
                     rng: np.random.Generator, n_iterations: int = 4, n_subsets: int = 8) -> TaskSample:
    """One task sample of a synthesized full-dose sinogram (module notes).

    Parameters
    ----------
    task : {"low_dose", "attenuation_correction"}
        The kinetic tasks go through :func:`kinetic_sample`.
    sinogram : ndarray ``(n_views, n_bins)``
        Generated counts, axes (view, radial) (:func:`synthesize`).
    window : SinogramWindow
        Its window: the simulator's geometry of ``config`` (:func:`pair_projector`).
    config : SimulationConfig
        :func:`pair_config`.
    rng : numpy.random.Generator
        ``low_dose`` draws the dose reduction factor, then the thinning.
    n_iterations, n_subsets : int
        OSEM of the outline and of the activity.

    Returns
    -------
    TaskSample
        Sinograms ``(n_views, n_bins)`` in counts, images ``(n_bins, n_bins)``
        (axes y, x) in expected-count units, mu-map in 1/mm; its metadata as
        the simulator's, with ``synthesis`` (background per ray in counts,
        body pixels, outline settings).
    """
    task = check_pair_task(task)
    if task in KINETIC_TASKS:
        raise ValueError(f"{task} pairs a synthetic patient: use kinetic_sample")
    projector = pair_projector(config, window)
    counts = np.rint(np.maximum(np.asarray(sinogram, dtype=np.float64), 0.0))
    body = body_outline(reconstruct(counts, window, n_iterations, n_subsets))
    mu_map = np.where(body, MU_SOFT_TISSUE_PER_MM, 0.0)
    image, level, unit = _fitted_activity(counts, window, projector, mu_map, body, config.acquisition, rng,
                                          n_iterations, n_subsets)
    trues, background = float(unit.system.linear(image).sum()), level * counts.size
    settings = dataclasses.replace(config.acquisition, randoms_fraction=background / (trues + background))
    ones = np.ones(projector.out_shape)
    acquisition = Acquisition(projector, mu_map, settings, rng, normalisation=ones)
    expected = acquisition.expected(image)  # trues a P x and the flat background as randoms
    tracer = get_tracer(config.tracer)
    metadata = {"task": task, "region": config.anatomy, "anatomy": config.anatomy, "dim": 2,
                "axial_position_mm": 0.0, "lesions": [], "region_names": {_BODY_LABEL: REGION_LABELS[_BODY_LABEL]},
                "total_counts": float(counts.sum()), "projector": describe_projector(projector),
                "acquisition": settings.to_dict(), "tracers": [tracer.name],
                "frames_min": [list(tracer.reference_frame_min)],
                "image_units": "expected counts per voxel: the system model of projector and attenuation maps the "
                               "image to expected trues (normalisation 1, no resolution model)",
                "synthesis": {"background_per_ray": level, "body_pixels": int(body.sum()),
                              "body_threshold": BODY_THRESHOLD, "body_smoothing_fwhm_bins": BODY_SMOOTHING_FWHM_BINS,
                              "osem": {"n_iterations": n_iterations, "n_subsets": min(n_subsets, window.n_views)}}}
    if task == "low_dose":
        factor = config.draw_dose_reduction_factor(rng)
        scan = Scan(thin_counts(counts, factor, rng), counts, expected.background / factor, expected.background)
        metadata.update(dose_reduction_factor=factor, count_scale=1.0 / factor, target_count_scale=1.0)
        input_image = image / factor
    else:
        scan = Scan(counts, acquisition.attenuation_free(image, 1.0), expected.background,
                    np.zeros(projector.out_shape))
        metadata.update(count_scale=1.0, target_count_scale=1.0)
        input_image = image
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    labels = np.where(body, REGION_LABELS[_BODY_LABEL], 0).astype(np.int16)
    return TaskSample(task, f32(scan.input), f32(scan.target), f32(input_image), f32(image), f32(mu_map), labels,
                      f32(acquisition.attenuation), f32(ones), f32(scan.input_background),
                      f32(scan.target_background), dict(metadata["region_names"]), metadata)


def kinetic_sample(task: str, sinogram: np.ndarray, window: SinogramWindow, config: SimulationConfig,
                   rng: np.random.Generator, n_iterations: int = 4, n_subsets: int = 8) -> TaskSample:
    """One task sample of the synthetic patient of a synthesized sinogram (module notes).

    Parameters
    ----------
    task : {"delayed_frame", "tracer_separation", "tracer_conversion"}
    sinogram : ndarray ``(n_views, n_bins)``
        Generated counts, axes (view, radial) (:func:`synthesize`).
    window : SinogramWindow
        Its window: the simulator's geometry of ``config`` (:func:`pair_projector`).
    config : SimulationConfig
        :func:`pair_config` of the task.
    rng : numpy.random.Generator
        The scan of the synthetic patient (:func:`~pet_projection.simulation.simulate_sample`).
    n_iterations, n_subsets : int
        OSEM of the outline and of the activity.

    Returns
    -------
    TaskSample
        The simulator's sample of the task for the synthetic patient; its
        metadata add ``synthesis`` (background per ray, body and skull
        pixels, the mu-map's settings) and ``total_counts`` is the
        generated sinogram's.
    """
    task = check_pair_task(task)
    if task not in KINETIC_TASKS:
        raise ValueError(f"{task} pairs the generated counts themselves: use synthetic_sample")
    projector = pair_projector(config, window)
    grid = projector_grid(projector)
    counts = np.rint(np.maximum(np.asarray(sinogram, dtype=np.float64), 0.0))
    body = body_outline(reconstruct(counts, window, n_iterations, n_subsets))
    mu_map = tissue_mu_map(body, config.anatomy, grid.voxel_size_mm[-1])
    image, level, _ = _fitted_activity(counts, window, projector, mu_map, body, PAIR_ACQUISITION, rng, n_iterations,
                                       n_subsets)
    # the image phantom format is 3D: one slice (its thickness is not used by 2D samples)
    plane = ImageGrid((1,) + grid.shape, (1.0,) + grid.voxel_size_mm, (0.0,) + grid.origin_mm)
    with tempfile.TemporaryDirectory(prefix="allpet-patient-") as folder:
        activity_path, mu_path = Path(folder) / "activity.npz", Path(folder) / "mu_map.npz"
        save_image(activity_path, image[None], plane)
        save_image(mu_path, mu_map[None], plane)
        patient = dataclasses.replace(config, total_counts=float(counts.sum()), activity_image=str(activity_path),
                                      mu_map_image=str(mu_path), mu_map_unit="1/mm")
        sample = simulate_sample(task, patient, rng)
    metadata = {**sample.metadata, "phantom_source": "allpet synthesize: the synthetic patient of a generated sinogram",
                "synthesis": {"background_per_ray": level, "body_pixels": int(body.sum()),
                              "skull_pixels": int(np.sum(mu_map == MU_511KEV_PER_MM["skull"])),
                              "body_threshold": BODY_THRESHOLD, "body_smoothing_fwhm_bins": BODY_SMOOTHING_FWHM_BINS,
                              "scalp_mm": SCALP_MM, "skull_mm": SKULL_MM,
                              "osem": {"n_iterations": n_iterations, "n_subsets": min(n_subsets, window.n_views)}}}
    return dataclasses.replace(sample, metadata=metadata)


def write_pair_dataset(folder: Path, samples: Sequence[TaskSample], config: SimulationConfig, window: SinogramWindow,
                       seed: int, record: Mapping[str, Any]) -> dict[str, Any]:
    """Write task samples as an ``allpet simulate`` dataset into ``folder`` (fresh; the caller makes it atomic).

    Parameters
    ----------
    folder : Path
    samples : sequence of TaskSample
        Of one task (:func:`synthetic_sample` or :func:`kinetic_sample`), sample ``i`` from
        ``sample_rng(seed, i)``.
    config : SimulationConfig
        :func:`pair_config`; its ``total_counts`` becomes the samples' mean.
    window : SinogramWindow
    seed : int
    record : mapping
        The synthesis run (prompt, model, seed, ...), kept as the manifest's ``synthesis``.

    Returns
    -------
    dict
        The manifest written as ``manifest.json``: the simulator's
        (:func:`~pet_projection.simulation.dataset_folder.build_manifest`, with the
        sample files' records), ``command``, ``allpet_version`` and ``synthesis``
        (``record``, the window's geometry and the pairing notes).
    """
    if not samples:
        raise ValueError("no task samples to write")
    folder = Path(folder)
    task = samples[0].task
    kinetic = task in KINETIC_TASKS  # montage: the synthesized scan (input) and its activity image
    totals = [float(s.metadata["total_counts"]) for s in samples]
    config = dataclasses.replace(config, total_counts=float(np.mean(totals)))
    (folder / "samples").mkdir(parents=True, exist_ok=True)
    files = []
    for index, task_sample in enumerate(samples):
        path = sample_path(folder, index)
        save_sample(path, task_sample, {"sample_index": index, "dataset_seed": seed})
        files.append(file_record(path))
    manifest = {**build_manifest(task, len(samples), config, seed), "command": "allpet synthesize",
                "allpet_version": __version__,
                "synthesis": {**record, "geometry": _geometry(window),
                              "note": ("the synthetic patients of the foundation model's sinograms, scanned by the "
                                       "simulator" if kinetic else "full-dose sinograms of the foundation model, "
                                       "paired by the simulator's physics") + "; see tasks.synthesis (task pairs)",
                              "samples": [{"index": k, "total_counts": total} for k, total in enumerate(totals)]},
                "sample_files": files}
    write_montage(folder / MONTAGE_FILE, np.stack([s.target if task == "low_dose" else s.input for s in samples]),
                  np.stack([s.input_image if kinetic else s.target_image for s in samples]), window,
                  f"{record.get('prompt', {}).get('text', '')}: {task.replace('_', ' ')} pairs")
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest
