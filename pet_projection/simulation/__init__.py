"""PET physics simulator: phantoms, attenuation, dose levels, kinetics and dual tracers, written as datasets.

Quick start::

    from pet_projection.simulation import SimulationConfig, simulate_sample, write_dataset, SimulatedDataset

    sample = simulate_sample("low_dose", SimulationConfig(size=128, n_views=128), seed=0)
    write_dataset("data/low_dose", "low_dose", 500, workers=2)   # or: allpet simulate --task low_dose ...
    for sample in SimulatedDataset("data/low_dose"):
        sample.input, sample.target, sample.target_image, sample.region_table()

Modules: :mod:`.anatomy` (the body regions brain, trunk, chest and abdomen:
organ shapes and their random variation), :mod:`.phantoms` (label maps,
lesions, 511 keV mu-maps), :mod:`.image_phantom` (a user's activity image and
mu-map of any grid as the phantom; :mod:`.image_resampling`,
:mod:`.image_segmentation`), :mod:`.tracers` (the tracer registry: FDG,
[11C]methionine, [18F]FDOPA, [68Ga]PSMA-11 and a user's own;
:mod:`.tracer_model`, :mod:`.tracer_tables`), :mod:`.kinetics` (Feng input
function, two-tissue model, frames), :mod:`.acquisition` (projectors,
normalisation, scatter, randoms, Poisson counts, binomial thinning),
:mod:`.config` (the tasks and :class:`SimulationConfig`), :mod:`.patient`
(phantom, acquisition and texture of one sample), :mod:`.scans` (each task's
count drawing), :mod:`.task_samples` (the five tasks' samplers),
:mod:`.sample` (:class:`TaskSample`), :mod:`.dataset_folder` (npz + manifest
writer and reader, NIfTI), :mod:`.deformation` (random anatomy deformations:
new patients from the images of a few) and :mod:`.figures` (PNG montage;
matplotlib). Everything is NumPy and deterministic from a seed.
"""

from .anatomy import ANATOMIES
from .acquisition import (Acquisition, AcquisitionSettings, ExpectedCounts, crystal_pair_product,
                          parallel_beam_projector, poisson_counts, reduced_clinical_projector, thin_counts)
from .config import DOSE_REDUCTION_FACTORS, TASKS, SimulationConfig, check_task
from .dataset_folder import (SimulatedDataset, WriteSummary, count_support, export_sample_nifti, lesion_attention,
                             load_sample, save_sample, system_model, write_dataset)
from .deformation import DeformationSettings, random_deformation, warp_nearest, warp_regions
from .kinetics import ExponentialInput, RateConstants, feng_input, frame_means, pet_curve, tissue_curve
from .phantoms import LESION_LABEL_OFFSET, MU_511KEV_PER_MM, REGION_LABELS, Lesion, Phantom, anatomy_grid, make_phantom
from .sample import TaskSample
from .scans import Scan, scan_attenuation_correction, scan_independent, scan_low_dose, scan_tracer_separation
from .task_samples import sample_rng, simulate_sample
from .tracers import TRACERS, RegionKinetics, Tracer, get_tracer, register_tracer

__all__ = [
    "ANATOMIES", "DOSE_REDUCTION_FACTORS", "LESION_LABEL_OFFSET", "MU_511KEV_PER_MM", "REGION_LABELS", "TASKS",
    "TRACERS", "Acquisition", "AcquisitionSettings", "DeformationSettings", "ExpectedCounts", "ExponentialInput",
    "Lesion", "Phantom", "RateConstants", "RegionKinetics", "Scan", "SimulatedDataset", "SimulationConfig",
    "TaskSample", "Tracer", "WriteSummary", "anatomy_grid", "check_task", "count_support", "crystal_pair_product",
    "export_sample_nifti", "feng_input", "frame_means", "get_tracer", "lesion_attention", "load_sample",
    "make_phantom", "parallel_beam_projector", "pet_curve", "poisson_counts", "random_deformation",
    "reduced_clinical_projector", "register_tracer", "sample_rng", "save_sample", "scan_attenuation_correction",
    "scan_independent", "scan_low_dose", "scan_tracer_separation", "simulate_sample", "system_model", "thin_counts",
    "tissue_curve", "warp_nearest", "warp_regions", "write_dataset",
]
