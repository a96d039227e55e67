"""Prompts of the foundation model: task, tracer and body region, as words or as fields.

A :class:`Prompt` names what the model should produce: a task of
:data:`PROMPT_TASKS` (``"synthesis"``: a new sinogram from nothing;
``"inpainting"``: complete the rays outside a mask; the five PET tasks of
:data:`pet_projection.simulation.TASKS`), a tracer of the simulator's table
(:data:`pet_projection.simulation.TRACERS`, user-extendable) and a body region
(:data:`pet_projection.simulation.anatomy.ANATOMIES`). Tracer and region may
be left out ("unspecified", an embedding of its own).

:func:`parse_prompt` reads words such as ``"low-dose FDG brain"`` or
``"68Ga-PSMA chest synthesis"``: case-insensitive, any order, hyphens,
underscores and spaces alike, with the usual names of the tracers
(:data:`TRACER_WORDS`). An unknown word is a ``ValueError`` listing the
known ones. The class ids (:meth:`Prompt.label_ids`) are the model's
``task``, ``tracer`` and ``region`` labels (:mod:`ldm.batches`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from pet_projection.simulation import TASKS, TRACERS
from pet_projection.simulation.anatomy import ANATOMIES

__all__ = ["PROMPT_TASKS", "Prompt", "REGION_WORDS", "TASK_WORDS", "TRACER_WORDS", "parse_prompt"]

PROMPT_TASKS = ("synthesis", "inpainting") + TASKS

# Words for each task (after lower-casing; "-" and "_" read as spaces). Multi-word phrases match first.
TASK_WORDS = {
    "synthesis": ("synthesis", "synthesize", "synthesise", "generate"),
    "inpainting": ("inpainting", "inpaint", "completion"),
    "low_dose": ("low dose", "lowdose", "denoise", "denoising"),
    "attenuation_correction": ("attenuation correction", "ac"),
    "delayed_frame": ("delayed frame", "delayed"),
    "tracer_separation": ("tracer separation", "dual tracer", "separation"),
    "tracer_conversion": ("tracer conversion", "conversion"),
}
# Usual names of the simulator's tracers (Huang et al.'s figures use 18F-FDG, 18F-DOPA, 68Ga-PSMA).
TRACER_WORDS = {
    "fdg": ("fdg", "18f fdg", "f18 fdg", "fluorodeoxyglucose"),
    "met": ("met", "methionine", "11c met", "c11 met", "11c methionine"),
    "fdopa": ("fdopa", "dopa", "f dopa", "18f dopa", "18f fdopa", "fluorodopa"),
    "psma": ("psma", "68ga psma", "ga psma", "psma 11", "68ga psma 11", "ga68 psma"),
}
REGION_WORDS = {
    "brain": ("brain", "head"),
    "chest": ("chest", "thorax", "thoracic", "lung", "lungs"),
    "abdomen": ("abdomen", "abdominal"),
    "trunk": ("trunk", "whole body", "torso"),
}


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[-_,;/]+", " ", text.lower()).split())


@dataclass(frozen=True)
class Prompt:
    """What the model should produce.

    Attributes
    ----------
    task : str
        One of :data:`PROMPT_TASKS` (hyphens accepted: ``"low-dose"``).
    tracer : str, optional
        A key of :data:`pet_projection.simulation.TRACERS`; ``None``: unspecified.
    region : str, optional
        One of :data:`~pet_projection.simulation.anatomy.ANATOMIES`; ``None``: unspecified.
    """

    task: str = "synthesis"
    tracer: Optional[str] = None
    region: Optional[str] = None

    def __post_init__(self) -> None:
        task = self.task.replace("-", "_") if isinstance(self.task, str) else self.task
        if task not in PROMPT_TASKS:
            raise ValueError(f"unknown task {self.task!r}; tasks: {', '.join(PROMPT_TASKS)}")
        object.__setattr__(self, "task", task)
        if self.tracer is not None and self.tracer not in TRACERS:
            raise ValueError(f"unknown tracer {self.tracer!r}; tracers: {', '.join(TRACERS)}")
        if self.region is not None and self.region not in ANATOMIES:
            raise ValueError(f"unknown region {self.region!r}; regions: {', '.join(ANATOMIES)}")

    def label_ids(self) -> dict[str, int]:
        """Class ids ``{"task", "tracer", "region"}``: indices in the tables above, ``-1`` for unspecified."""
        return {"task": PROMPT_TASKS.index(self.task),
                "tracer": -1 if self.tracer is None else list(TRACERS).index(self.tracer),
                "region": -1 if self.region is None else ANATOMIES.index(self.region)}

    def text(self) -> str:
        """The prompt as words that :func:`parse_prompt` reads back."""
        return " ".join(word for word in (self.task.replace("_", "-"), self.tracer, self.region) if word)


def _phrases() -> list[tuple[str, str, str]]:
    """(phrase, field, value) for every known word, longest phrase first."""
    tracer_words = {**{name: (name,) for name in TRACERS}, **TRACER_WORDS}
    table = [(_normalise(word), "task", task) for task, words in TASK_WORDS.items() for word in words + (task,)]
    table += [(_normalise(word), "tracer", tracer) for tracer, words in tracer_words.items() if tracer in TRACERS
              for word in words]
    table += [(_normalise(word), "region", region) for region, words in REGION_WORDS.items() for word in words]
    return sorted(set(table), key=lambda item: -len(item[0].split()))


def parse_prompt(text: str, default_task: str = "synthesis") -> Prompt:
    """The :class:`Prompt` of words such as ``"low-dose FDG brain"`` (task ``default_task`` when none is named).

    ``ValueError`` for an unknown word (the message lists the known words
    of each field) or for two words of the same field that disagree.
    """
    if not isinstance(text, str):
        raise TypeError(f"prompt must be a string of words, got {type(text).__name__}")
    words = _normalise(text).split()
    fields: dict[str, str] = {}
    phrases = _phrases()
    position = 0
    while position < len(words):
        for phrase, name, value in phrases:
            length = len(phrase.split())
            if words[position:position + length] == phrase.split():
                if fields.get(name, value) != value:
                    raise ValueError(f"prompt {text!r} names two {name}s: {fields[name]} and {value}")
                fields[name] = value
                position += length
                break
        else:
            raise ValueError(f"prompt {text!r}: unknown word {words[position]!r}; tasks: "
                             f"{', '.join(t.replace('_', '-') for t in PROMPT_TASKS)}; tracers: {', '.join(TRACERS)} "
                             f"(or their usual names, e.g. 18F-FDG, 68Ga-PSMA); regions: {', '.join(ANATOMIES)} "
                             "(or thorax, head, whole body)")
    return Prompt(fields.get("task", default_task), fields.get("tracer"), fields.get("region"))
