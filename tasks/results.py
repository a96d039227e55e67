"""What a task run measured: the names of its methods (the rows of its tables) and :class:`TaskResult`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .metrics import summarise

__all__ = ["METHOD_INPUT", "METHOD_INPUT_FILTERED", "METHOD_LDM", "METHOD_ORDER", "METHOD_TARGET", "METHOD_UNET",
           "METHOD_UNMIXING", "METHOD_UNMIXING_FILTERED", "TaskResult"]

METHOD_LDM = "LDM (ALL-PET)"
METHOD_INPUT = "OSEM of input"
METHOD_INPUT_FILTERED = "OSEM of input + post-filter"
METHOD_UNET = "UNet regression (supervised)"
METHOD_UNMIXING = "Linear unmixing + OSEM"
METHOD_UNMIXING_FILTERED = "Linear unmixing + OSEM + post-filter"
METHOD_TARGET = "reference: OSEM of target data"
# the rows' order in tables: classical baselines, learnt baseline, the LDM, the reference
METHOD_ORDER = (METHOD_INPUT, METHOD_INPUT_FILTERED, METHOD_UNMIXING, METHOD_UNMIXING_FILTERED, METHOD_UNET,
                METHOD_LDM, METHOD_TARGET)


@dataclass
class TaskResult:
    """What :func:`tasks.pipeline.run_task` measured.

    Attributes
    ----------
    config : tasks.pipeline_config.PipelineConfig
    records : list of dict
        One per (method, test sample, channel): ``method``, ``sample``,
        ``channel`` and every metric of :mod:`tasks.metrics`.
    methods : list of str
        In table order (:data:`METHOD_ORDER`).
    example : dict
        Arrays of test sample 0 for figures: ``input`` sinogram, ``reference_sinogram``,
        ``reference_image``, ``labels``, ``attention_image``, ``attention_sinogram`` and
        per method ``sinograms[method]``, ``images[method]`` (channel 0).
    logs : dict of str to dict of str to list of float
        Training curves: ``"LDM autoencoder"``, ``"LDM diffusion"`` (step, loss), ``"UNet"``.
    timings_s : dict of str to float
    info : dict
        Parameter counts, device, post-filter FWHM, task summary.
    """

    config: Any
    records: list
    methods: list
    example: dict
    logs: dict
    timings_s: dict
    info: dict

    def summary(self, metric: str, method: str):
        """:func:`tasks.metrics.summarise` of ``metric`` over the test set for ``method``."""
        return summarise([r[metric] for r in self.records if r["method"] == method])

    def paired_difference(self, metric: str, method: str, baseline: str):
        """Summary of ``metric(method) - metric(baseline)`` per test (sample, channel)."""
        values = {(r["sample"], r["channel"]): r[metric] for r in self.records if r["method"] == baseline}
        return summarise([r[metric] - values[(r["sample"], r["channel"])] for r in self.records
                          if r["method"] == method and (r["sample"], r["channel"]) in values])
