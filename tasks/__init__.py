"""ALL-PET tasks end to end: low-dose, attenuation correction, delayed frame, tracer separation and conversion.

Each task module (:mod:`.low_dose`, :mod:`.attenuation_correction`,
:mod:`.delayed_frame`, :mod:`.tracer_separation`, :mod:`.tracer_conversion`)
defines the task's data, conditioning and reconstruction (:class:`~.task.PETTask`;
:func:`~.registry.get_task` by name). :mod:`.pipeline` runs one task as a
straight line: samples (:mod:`.sources`), model examples (:mod:`.examples`,
:mod:`.model_inputs`), the sinogram LDM (:mod:`.ldm_runs`), the baselines
(:mod:`.baselines`, :mod:`.classical_baselines`), OSEM and metrics
(:mod:`.scoring`, :mod:`.metrics`), under a :class:`~.pipeline_config.PipelineConfig`,
into a :class:`~.results.TaskResult`; :mod:`.report` writes the
Markdown/HTML page, figures and tables; :mod:`.ablations` and :mod:`.demo`
drive it (``allpet demo``, ``allpet ablate``). Needs the ``ldm`` extra
(torch, diffusers) and scikit-image.
"""

from .pipeline import run_task
from .pipeline_config import PipelineConfig
from .registry import get_task
from .results import TaskResult
from .task import PETTask

__all__ = ["PETTask", "PipelineConfig", "TaskResult", "get_task", "run_task"]
