"""Scoring a task run: the post-filter tuning of the classical baseline, then OSEM and metrics per test example.

Every method's sinograms are reconstructed with the same OSEM settings on the
task's target system model and compared with the ground truth (metrics:
:mod:`tasks.metrics`): sinograms against the noise-free target ``A x + b``,
images against the true target image ``x``. The image-domain baselines'
sinograms are the forward model ``A x + b`` of their image (the input-OSEM
row uses the input sinogram itself, at the target's count scale).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from pet_projection.simulation import TaskSample

from .attention_inputs import attention_for
from .baselines import forward_sinogram, osem_image, post_filter, tune_post_filter
from .classical_baselines import ClassicalBaseline
from .examples import Examples
from .metrics import image_metrics, similarity_metrics
from .pipeline_config import PipelineConfig
from .results import IN_DISTRIBUTION, METHOD_ORDER, METHOD_TARGET
from .task import PETTask, sample_projector

__all__ = ["score_test_set", "tune_post_filter_fwhm"]

# training samples the post-filter is tuned on (the first ones)
N_TUNING_SAMPLES = 16


def tune_post_filter_fwhm(baseline: ClassicalBaseline, train: Sequence[TaskSample], config: PipelineConfig) -> float:
    """FWHM (mm) of the classical baseline's post-filter: the best of ``config.post_filter_fwhm_voxels``.

    Best mean image PSNR of the baseline's images of the first
    :data:`N_TUNING_SAMPLES` training samples (:func:`tasks.baselines.tune_post_filter`);
    the FWHMs are in voxels of the samples' image grid.
    """
    voxel_mm = float(sample_projector(train[0]).geometry.grid.voxel_size_mm[-1])
    fwhm_grid = [f * voxel_mm for f in config.post_filter_fwhm_voxels]
    tune = list(train[:min(len(train), N_TUNING_SAMPLES)])
    images, references, systems = baseline.tuning_set(tune, config.osem_subsets, config.osem_iterations)
    return tune_post_filter(images, references, systems, fwhm_grid)


def score_test_set(task: PETTask, baseline: ClassicalBaseline, test: Sequence[TaskSample], test_ex: Examples,
                   sinograms: dict[str, np.ndarray], config: PipelineConfig, fwhm_mm: float,
                   progress: bool = True, test_set: str = IN_DISTRIBUTION
                   ) -> tuple[list[dict], list[str], dict[str, Any]]:
    """OSEM and metrics of every method on every example of one test set (module docstring).

    Parameters
    ----------
    task, baseline : PETTask, ClassicalBaseline
    test : sequence of TaskSample
    test_ex : Examples
        The test samples' examples (``measured``, ``target``, ``sample_index``, ``channel``).
    sinograms : dict of str to ndarray ``(N, n_views, n_bins)``
        Each model's (and sinogram baseline's) output per test example, by method.
    config : PipelineConfig
        OSEM settings; ``baselines`` adds the classical baseline's input rows;
        ``attention``: the attention mode of the example's figure.
    fwhm_mm : float
        The classical baseline's tuned post-filter FWHM.
    progress : bool
    test_set : str
        The test set's name, kept in every record.

    Returns
    -------
    records : list of dict
        One per (test example, method): ``test_set``, ``method``, ``sample``, ``channel`` and the metrics.
    methods : list of str
        The methods seen, in table order (:data:`tasks.results.METHOD_ORDER`).
    example : dict
        Test example 0's arrays for the report (:class:`tasks.results.TaskResult`).
    """
    from tqdm.auto import tqdm

    osem_args = (config.osem_subsets, config.osem_iterations)
    records: list[dict] = []
    example: dict[str, Any] = {"sinograms": {}, "images": {}}
    methods: list[str] = []
    for k in tqdm(range(len(test_ex)), desc=f"OSEM + metrics ({test_set})", disable=not progress, unit="image"):
        sample, channel = test[int(test_ex.sample_index[k])], int(test_ex.channel[k])
        system = task.target_system(sample, channel)
        reference_image = task.reference_image(sample, channel)
        reference_sinogram = task.reference_sinogram(sample, channel)
        hosts = {lesion["name"]: lesion["host"] for lesion in sample.metadata.get("lesions", [])}
        results = (baseline.input_rows(sample, test_ex.measured[k], system, *osem_args, fwhm_mm)
                   if config.baselines else {})
        for method, values in sinograms.items():
            image = osem_image(values[k], system, *osem_args)
            results[method] = (values[k], image)
            if method == baseline.method:  # a sinogram baseline (linear unmixing): and its post-filtered image
                filtered = post_filter(image, system, fwhm_mm)
                results[baseline.filtered_method] = (forward_sinogram(system, filtered), filtered)
        results[METHOD_TARGET] = (test_ex.target[k], osem_image(test_ex.target[k], system, *osem_args))
        for method, (sinogram, image) in results.items():
            if method not in methods:
                methods.append(method)
            record = {"test_set": test_set, "method": method, "sample": int(test_ex.sample_index[k]),
                      "channel": channel,
                      **similarity_metrics(reference_sinogram, sinogram, "sino_"),
                      **image_metrics(reference_image, image, sample.labels, sample.names, hosts)}
            records.append(record)
            if k == 0:
                example["sinograms"][method], example["images"][method] = np.asarray(sinogram), np.asarray(image)
        if k == 0:
            attention = attention_for(sample, None, config.attention)
            example.update(input=test_ex.measured[k], reference_sinogram=reference_sinogram,
                           reference_image=reference_image, labels=sample.labels, attention_image=attention.image,
                           attention_sinogram=attention.sinogram, names=sample.names)
    return records, [m for m in METHOD_ORDER if m in methods], example
