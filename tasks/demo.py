"""``allpet demo``: simulate, adapt the LDM to one task, sample, reconstruct, evaluate, write ``report/``.

By default the shipped foundation model is fine-tuned on 16 brain slices of
64 x 64 pixels (64 views) and compared, on 16 test slices and 16 slices of
each unseen test set (the STIR-exercises thorax and the left-out trunk
family), with the same architecture trained from scratch on the same
examples, the supervised UNet and the classical baselines
(:func:`demo_config`); ``model="tiny"`` trains the tiny LDM from scratch on
128 slices of 32 x 32 pixels instead. Either runs in minutes on a 2-core
CPU; ``quick`` is the CI size. The
report folder is written atomically (:func:`pet_projection.io.files.atomic_directory`):
a failed or interrupted run leaves an earlier report untouched.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from pet_projection.io.files import atomic_directory

from .pipeline import run_task
from .pipeline_config import PipelineConfig
from .results import TaskResult

__all__ = ["MODEL_DIR", "demo_config", "format_summary", "run_demo"]


def demo_config(task: str = "low_dose", quick: bool = False, model: str = "foundation",
                **changes: Any) -> PipelineConfig:
    """The demo's settings for ``task`` (``quick``: CI size) and ``model``, with ``changes`` applied.

    ``model``: ``"foundation"`` (the shipped pretrained model), a weights,
    run or checkpoint folder of one (``PipelineConfig.ldm_init``): fine-tuned
    on 16 examples of 64 x 64 pixels and views for 300 diffusion steps (plus
    ``finetune_autoencoder_steps`` where the task asks for them), beside the
    same architecture trained from scratch on the same examples (300 + 300
    steps, ``scratch_steps``); or ``"tiny"``: the tiny LDM trained from
    scratch on 128 slices of 32 x 32 pixels (:class:`PipelineConfig` defaults).
    """
    if not isinstance(model, str) or not model:
        raise TypeError(f"model must be 'tiny', 'foundation' or a weights folder, got {model!r}")
    config = PipelineConfig.quick(task) if quick else PipelineConfig(task=task)
    if model != "tiny":
        scale = {"scratch_steps": config.diffusion_steps} if quick else {
            "size": 64, "n_views": 64, "n_train": 16, "diffusion_steps": 300, "scratch_steps": 300}
        config = dataclasses.replace(config, ldm_init=model, **scale)
    return dataclasses.replace(config, **changes)


MODEL_DIR = "model"


def run_demo(config: PipelineConfig, out: Any = "report", progress: bool = True,
             keep_model: bool = False) -> tuple[Path, TaskResult]:
    """Run ``config`` end to end and write the report into ``out``; returns ``(report folder, result)``.

    With ``keep_model`` the trained LDM's checkpoint is kept in
    ``out/model`` (raw and EMA weights and the optimiser state: about 21 MB
    for the foundation model, under 15 MB for the tiny one), with ``config.yaml``
    (:func:`tasks.ldm_runs.ldm_data_config`) and, for tracer separation,
    ``unmixing_weights.npy``, so ``allpet sample --checkpoint out/model
    --input FOLDER`` applies it to an ``allpet simulate`` folder of the same
    task and geometry. The demo samples with the weights of the last training
    step; ``allpet sample --raw-weights`` reproduces its sinograms (its
    default, the EMA weights, scores about the same; measurements:
    docs/results/tasks.md).
    """
    start = time.perf_counter()
    with atomic_directory(out) as folder:
        with tempfile.TemporaryDirectory(prefix="allpet-demo-") as work:
            result = run_task(config, work, progress)
            if keep_model:
                _keep_model(Path(work), Path(folder) / MODEL_DIR)
        from .report import write_report

        runtime = time.perf_counter() - start
        write_report(result, folder, extra={"total runtime (s)": round(runtime, 1)})
    return Path(out), result


def _keep_model(work: Path, model_dir: Path) -> None:
    """Copy the newest LDM checkpoint of ``run_task``'s ``work`` folder (and its unmixing weights) to ``model_dir``."""
    from ldm.checkpoints import find_checkpoint

    checkpoint = find_checkpoint(work / "ldm")
    if checkpoint is None:
        raise ValueError(f"the LDM run in {work} left no checkpoint to keep")
    shutil.copytree(checkpoint, model_dir)
    for extra in work.glob("*.npy"):  # unmixing_weights.npy (tracer separation)
        shutil.copy2(extra, model_dir / extra.name)


def format_summary(result: TaskResult, runtime_s: Optional[float] = None) -> str:
    """A few lines for the terminal in Markdown: the in-distribution metrics, then PSNR and SSIM per test set."""
    from .report import markdown_table, metrics_table, side_by_side_table

    header, rows = metrics_table(result, ("psnr", "ssim", "lesion_abs_bias", "contrast_recovery", "sino_psnr"))
    lines = [markdown_table(header, rows)]
    if len(result.test_sets) > 1:
        lines += ["", markdown_table(*side_by_side_table(result, ("psnr", "ssim")))]
    if runtime_s is not None:
        lines.append(f"total runtime {runtime_s:.0f} s")
    return "\n".join(lines)
