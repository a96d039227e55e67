"""``allpet demo``: simulate, train the tiny LDM for one task, sample, reconstruct, evaluate, write ``report/``.

The default scale (:class:`~tasks.pipeline.PipelineConfig` defaults: 128
training and 16 test brain slices of 32 x 32 pixels, 32 views, 2,300 training
steps) runs in minutes on a 2-core CPU; ``quick`` is the CI size. The
report folder is written atomically (:func:`tasks.outputs.atomic_directory`):
a failed or interrupted run leaves an earlier report untouched.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from .outputs import atomic_directory
from .pipeline import PipelineConfig, TaskResult, run_task

__all__ = ["demo_config", "format_summary", "run_demo"]


def demo_config(task: str = "low_dose", quick: bool = False, **changes: Any) -> PipelineConfig:
    """The demo's settings for ``task`` (``quick``: CI size), with ``changes`` applied."""
    config = PipelineConfig.quick(task) if quick else PipelineConfig(task=task)
    return dataclasses.replace(config, **changes)


def run_demo(config: PipelineConfig, out: Any = "report", progress: bool = True) -> tuple[Path, TaskResult]:
    """Run ``config`` end to end and write the report into ``out``; returns ``(report folder, result)``."""
    start = time.perf_counter()
    with atomic_directory(out) as folder:
        with tempfile.TemporaryDirectory(prefix="allpet-demo-") as work:
            result = run_task(config, work, progress)
        from .report import write_report

        runtime = time.perf_counter() - start
        write_report(result, folder, extra={"total runtime (s)": round(runtime, 1)})
    return Path(out), result


def format_summary(result: TaskResult, runtime_s: Optional[float] = None) -> str:
    """A few lines for the terminal: the metrics table in Markdown."""
    from .report import markdown_table, metrics_table

    header, rows = metrics_table(result, ("psnr", "ssim", "lesion_abs_bias", "contrast_recovery", "sino_psnr"))
    lines = [markdown_table(header, rows)]
    if runtime_s is not None:
        lines.append(f"total runtime {runtime_s:.0f} s")
    return "\n".join(lines)
