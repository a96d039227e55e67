"""ALL-PET tasks end to end: low-dose, attenuation correction, delayed frame, tracer separation and conversion.

Each task module (:mod:`.low_dose`, :mod:`.attenuation_correction`,
:mod:`.delayed_frame`, :mod:`.tracer_separation`, :mod:`.tracer_conversion`)
defines the task's data, conditioning and reconstruction (:class:`~.spec.PETTask`);
:mod:`.pipeline` runs one task (simulate or read data, train the sinogram LDM,
sample, reconstruct with OSEM, evaluate against :mod:`.baselines` with
:mod:`.metrics`); :mod:`.report` writes the Markdown/HTML page, figures and
tables; :mod:`.ablations` and :mod:`.demo` drive it (``allpet demo``,
``allpet ablate``). Needs the ``ldm`` extra (torch, diffusers) and scikit-image.
"""

from .pipeline import PipelineConfig, TaskResult, run_task
from .registry import get_task
from .spec import PETTask

__all__ = ["PETTask", "PipelineConfig", "TaskResult", "get_task", "run_task"]
