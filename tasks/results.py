"""What a task run measured: the names of its methods (the rows of its tables) and :class:`TaskResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .metrics import summarise

__all__ = ["IN_DISTRIBUTION", "METHOD_INPUT", "METHOD_INPUT_FILTERED", "METHOD_LDM", "METHOD_ORDER", "METHOD_TARGET",
           "METHOD_UNET", "METHOD_UNMIXING", "METHOD_UNMIXING_FILTERED", "METHOD_SCRATCH", "METHOD_UNSUPERVISED",
           "TaskResult"]

# the test set of the training distribution (the unseen ones: tasks.pipeline_config.UNSEEN_TEST_SETS)
IN_DISTRIBUTION = "in_distribution"
METHOD_LDM = "LDM (ALL-PET)"
METHOD_UNSUPERVISED = "ALL-PET pretrained, unsupervised (no pairs)"
METHOD_SCRATCH = "same LDM from scratch"
METHOD_INPUT = "OSEM of input"
METHOD_INPUT_FILTERED = "OSEM of input + post-filter"
METHOD_UNET = "UNet regression (supervised)"
METHOD_UNMIXING = "Linear unmixing + OSEM"
METHOD_UNMIXING_FILTERED = "Linear unmixing + OSEM + post-filter"
METHOD_TARGET = "reference: OSEM of target data"
# the rows' order in tables: classical baselines, learnt baselines, the LDM, the reference
METHOD_ORDER = (METHOD_INPUT, METHOD_INPUT_FILTERED, METHOD_UNMIXING, METHOD_UNMIXING_FILTERED, METHOD_UNET,
                METHOD_SCRATCH, METHOD_LDM, METHOD_UNSUPERVISED, METHOD_TARGET)


@dataclass
class TaskResult:
    """What :func:`tasks.pipeline.run_task` measured.

    Attributes
    ----------
    config : tasks.pipeline_config.PipelineConfig
    records : list of dict
        One per (test set, method, test sample, channel): ``test_set``,
        ``method``, ``sample``, ``channel`` and every metric of :mod:`tasks.metrics`.
    methods : list of str
        In table order (:data:`METHOD_ORDER`).
    example : dict
        Arrays of in-distribution test sample 0 for figures: ``input`` sinogram, ``reference_sinogram``,
        ``reference_image``, ``labels``, ``attention_image``, ``attention_sinogram`` and
        per method ``sinograms[method]``, ``images[method]`` (channel 0).
    logs : dict of str to dict of str to list of float
        Training curves: ``"LDM autoencoder"``, ``"LDM diffusion"`` (step, loss), ``"UNet"``.
    timings_s : dict of str to float
    info : dict
        Parameter counts, device, post-filter FWHM, task summary, unseen
        test sets skipped (``skipped_test_sets``: name to reason).
    test_sets : dict of str to str
        The test sets scored, in table order, each with one line saying what
        it is: :data:`IN_DISTRIBUTION` first, then the
        unseen ones (:func:`tasks.sources.unseen_test_sets`).
    unseen_examples : dict of str to dict
        Per unseen test set, the arrays of its sample 0 (as ``example``).
    """

    config: Any
    records: list
    methods: list
    example: dict
    logs: dict
    timings_s: dict
    info: dict
    test_sets: dict = field(default_factory=lambda: {IN_DISTRIBUTION: "the test samples"})
    unseen_examples: dict = field(default_factory=dict)

    def _records(self, test_set: str, method: str) -> list:
        if test_set not in self.test_sets:
            raise ValueError(f"unknown test set {test_set!r}; this result has {', '.join(self.test_sets)}")
        return [r for r in self.records if r.get("test_set", IN_DISTRIBUTION) == test_set and r["method"] == method]

    def summary(self, metric: str, method: str, test_set: str = IN_DISTRIBUTION):
        """:func:`tasks.metrics.summarise` of ``metric`` over ``test_set`` for ``method``."""
        return summarise([r[metric] for r in self._records(test_set, method)])

    def paired_difference(self, metric: str, method: str, baseline: str, test_set: str = IN_DISTRIBUTION):
        """Summary of ``metric(method) - metric(baseline)`` per (sample, channel) of ``test_set``."""
        values = {(r["sample"], r["channel"]): r[metric] for r in self._records(test_set, baseline)}
        return summarise([r[metric] - values[(r["sample"], r["channel"])] for r in self._records(test_set, method)
                          if (r["sample"], r["channel"]) in values])
