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
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch

from ldm.experiment import ExperimentConfig
from ldm.model import LDMConfig, SinogramLDM
from ldm.prompts import Prompt
from ldm.sampling import sample
from ldm.schedulers import SAMPLERS
from ldm.windows import SinogramWindow
from pet_projection import (CylindricalScanner, ImageGrid, ParallelBeamProjector, PETSystemModel, ProjDataLayout,
                            __version__, osem)
from pet_projection.io import write_image, write_projdata
from pet_projection.io.nifti import write_nifti
from pet_projection.simulation.anatomy import FIELD_OF_VIEW_MM
from pet_projection.validation import check_choice, positive_int

__all__ = ["MANIFEST_FILE", "MONTAGE_FILE", "RECONSTRUCTION_NOTE", "check_synthesis_prompt", "image_grid",
           "prompt_labels", "reconstruct", "stir_layout", "stir_mismatch", "synthesis_window", "synthesize",
           "training_bin_width_mm", "write_montage", "write_synthesis"]

MANIFEST_FILE, MONTAGE_FILE = "manifest.json", "montage.png"
SINOGRAMS_FILE, IMAGES_FILE = "sinograms.npy", "images.npy"
MONTAGE_SAMPLES = 4
RECONSTRUCTION_NOTE = ("OSEM with the window's own parallel-beam projector; a generated sinogram carries no "
                       "attenuation, normalisation or background information, so it is reconstructed as emission "
                       "data with unit attenuation and normalisation and no background (negative values set to 0)")
# tolerance of "the same ray" when comparing the window's rays with STIR's bins: angles in rad, positions in bins
_STIR_TOLERANCE = 1e-9


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
