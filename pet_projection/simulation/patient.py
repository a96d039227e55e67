"""One simulated patient: its phantom, its acquisition physics and activity texture, and its tracers' images.

:func:`make_patient` draws a patient from a :class:`~.config.SimulationConfig`
(a procedural phantom of a drawn body region, or the config's image phantom)
on the (cached) projector of the region's grid; :func:`tracer_images` gives a tracer's
activity x time images of the patient's frames, with per-sample kinetics
(:func:`region_kinetics`, :func:`frame_images`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from ..grid import ImageGrid
from .acquisition import (Acquisition, Projector, parallel_beam_projector, projector_grid,
                          reduced_clinical_projector)
from .anatomy import MIXED_ANATOMIES
from .config import SimulationConfig
from .image_phantom import image_phantom
from .phantoms import LYMPH_NODE_PREFIX, Phantom, anatomy_grid, make_phantom, smooth_texture
from .tracers import RegionKinetics, Tracer, get_tracer

__all__ = ["Patient", "frame_images", "make_patient", "projector_for", "region_kinetics", "tracer_images"]


@lru_cache(maxsize=8)
def _grid_projector(grid: ImageGrid, n_views: int, view_step: int, span: int, max_ring_difference: int) -> Projector:
    if grid.ndim == 2:
        return parallel_beam_projector(grid, n_views)
    return reduced_clinical_projector(grid, view_step, span, max_ring_difference)


def projector_for(config: SimulationConfig, anatomy: str) -> Projector:
    """The (cached) projector of ``config`` for the body region ``anatomy`` (procedural or image phantom).

    Regions of one field of view (trunk, chest, abdomen) share one projector.
    """
    grid = anatomy_grid(anatomy, config.size, config.n_slices if config.dim == 3 else None)
    return _grid_projector(grid, config.n_views, config.view_step, config.span, config.max_ring_difference)


@dataclass(frozen=True, eq=False)
class Patient:
    """One simulated patient.

    Attributes
    ----------
    phantom : Phantom
        Labels, region names, lesions and the 511 keV mu-map on the projector's grid.
    acquisition : Acquisition
        The scan physics of this patient (projector, attenuation, normalisation, background model).
    texture : ndarray, float64, image shape
        Smooth multiplicative activity texture, shared by all the patient's frames and tracers.
    """

    phantom: Phantom
    acquisition: Acquisition
    texture: np.ndarray


def make_patient(config: SimulationConfig, rng: np.random.Generator) -> Patient:
    """A new patient of ``config`` drawn with ``rng`` (region, phantom, acquisition, texture, in this order).

    Lymph nodes are hot with the first tracer's ``hot_node_probability``.
    """
    if config.image_source is not None:
        return _image_patient(config, rng)
    anatomy = config.anatomy
    if anatomy == "mixed":
        anatomy = MIXED_ANATOMIES[int(rng.integers(len(MIXED_ANATOMIES)))]
    projector = projector_for(config, anatomy)
    phantom = make_phantom(anatomy, projector_grid(projector), rng, n_lesions=config.n_lesions,
                           hot_node_probability=get_tracer(config.tracer).hot_node_probability)
    acquisition = Acquisition(projector, phantom.mu_map, config.acquisition, rng)
    return Patient(phantom, acquisition, smooth_texture(phantom.grid, rng, config.texture))


def _image_patient(config: SimulationConfig, rng: np.random.Generator) -> Patient:
    """A patient from the image phantom: the first tracer's uptake table turns the activity into a texture."""
    region = config.anatomies[0]
    projector = projector_for(config, region)
    tracer = get_tracer(config.tracer)
    uptake = {name: kinetics.suv for name, kinetics in tracer.uptake.items()}
    phantom, texture = image_phantom(config.image_source, projector_grid(projector), rng, region, uptake,
                                     float(np.mean(tracer.hot_contrast)), float(np.mean(tracer.cold_contrast)))
    return Patient(phantom, Acquisition(projector, phantom.mu_map, config.acquisition, rng), texture)


def region_kinetics(phantom: Phantom, tracer: Tracer, rng: np.random.Generator, variability: float
                    ) -> dict[str, RegionKinetics]:
    """Per-sample kinetics of every region and lesion of ``phantom`` for ``tracer``.

    Organ values are the tracer's table with log-normal jitter (rate
    constants: relative spread ``variability``; uptake: half of it). A hot
    lesion takes the tracer's lesion template and ``contrast`` times its
    host's uptake (contrast uniform in ``tracer.hot_contrast``); a cold lesion
    keeps its host's template with a contrast in ``tracer.cold_contrast``. A
    hot lymph node (a hot lesion hosted by a node station) looks like its
    station with a tracer whose ``hot_node_probability`` is 0.
    """
    out: dict[str, RegionKinetics] = {}
    lesion_names = {lesion.name for lesion in phantom.lesions}
    for name in phantom.names:
        if name in lesion_names:
            continue
        base = tracer.uptake[name]
        out[name] = base.scaled(float(rng.lognormal(0.0, variability / 2.0)),
                                tuple(rng.lognormal(0.0, variability, size=3)))
    for lesion in phantom.lesions:
        host = out[lesion.host]
        if lesion.kind == "hot":
            contrast = rng.uniform(*tracer.hot_contrast)
            avid = tracer.hot_node_probability > 0.0 or not lesion.host.startswith(LYMPH_NODE_PREFIX)
            out[lesion.name] = RegionKinetics(host.suv * contrast, *tracer.hot_lesion) if avid else host
        else:
            contrast = rng.uniform(*tracer.cold_contrast)
            out[lesion.name] = replace(host, suv=host.suv * contrast)
    return out


def frame_images(phantom: Phantom, tracer: Tracer, kinetics: dict[str, RegionKinetics],
                 frames_min: list[tuple[float, float]], texture: np.ndarray) -> list[np.ndarray]:
    """Activity x time images of each frame (decayed frame mean times the frame length, SUV-like x min), float64."""
    values = {name: tracer.frame_values(k, frames_min) * (np.diff(frames_min, axis=1)[:, 0])
              for name, k in kinetics.items()}
    return [phantom.region_image({name: v[f] for name, v in values.items()}).astype(np.float64) * texture
            for f in range(len(frames_min))]


def tracer_images(patient: Patient, tracer: Tracer, frames_min: list, config: SimulationConfig,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """Activity x time images (float64, image shape) of ``tracer`` in ``patient`` for each frame of ``frames_min``.

    Draws the patient's per-sample kinetics of this tracer (:func:`region_kinetics`
    with ``config.kinetic_variability``), then integrates each frame (:func:`frame_images`).
    """
    kinetics = region_kinetics(patient.phantom, tracer, rng, config.kinetic_variability)
    return frame_images(patient.phantom, tracer, kinetics, frames_min, patient.texture)
