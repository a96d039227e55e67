"""The tracer registry: the built-in tracers (FDG, methionine, FDOPA, PSMA) and a user's own.

:data:`TRACERS` maps a tracer's name to its :class:`~.tracer_model.Tracer`
(in registration order, which is also the tracer label's index for the
models: ``fdg`` 0, ``met`` 1, ``fdopa`` 2, ``psma`` 3). :func:`get_tracer`
looks a name up; :func:`register_tracer` adds a tracer, for example a copy of
a built-in one with other values::

    from dataclasses import replace
    from pet_projection.simulation import get_tracer, register_tracer

    fdg = get_tracer("fdg")
    register_tracer(replace(fdg, name="fdg_hyperglycaemia", description="FDG, raised blood glucose",
                            uptake={**fdg.uptake, "frontal_lobe": replace(fdg.uptake["frontal_lobe"], suv=5.0)}))

A registered tracer must give every region of :data:`~.phantoms.REGION_LABELS`
an uptake. The registry lives in the process: ``write_dataset`` with several
workers starts fresh processes, which see the built-in tracers only (register
in a module the workers import, or write with one worker).
"""

from __future__ import annotations

from .phantoms import REGION_LABELS
from .tracer_model import RegionKinetics, Tracer
from .tracer_tables import FDG, FDOPA, MET, PSMA

__all__ = ["TRACERS", "RegionKinetics", "Tracer", "get_tracer", "register_tracer"]

TRACERS: dict[str, Tracer] = {}


def register_tracer(tracer: Tracer, *, replace: bool = False) -> Tracer:
    """Add ``tracer`` to :data:`TRACERS` under its name; returns it.

    ``ValueError`` when a region of :data:`~.phantoms.REGION_LABELS` has no
    uptake (naming them), or the name is taken and ``replace`` is false.
    """
    if not isinstance(tracer, Tracer):
        raise TypeError(f"tracer must be a Tracer, got {type(tracer).__name__}")
    missing = sorted(set(REGION_LABELS) - set(tracer.uptake))
    if missing:
        raise ValueError(f"tracer {tracer.name!r} has no uptake for the regions {missing}")
    if tracer.name in TRACERS and not replace:
        raise ValueError(f"a tracer named {tracer.name!r} is registered already (replace=True to replace it)")
    TRACERS[tracer.name] = tracer
    return tracer


def get_tracer(name: str) -> Tracer:
    """The tracer called ``name`` (``ValueError`` naming the known tracers otherwise)."""
    if not isinstance(name, str) or name not in TRACERS:
        raise ValueError(f"unknown tracer {name!r}; known tracers: {', '.join(sorted(TRACERS))}")
    return TRACERS[name]


for _tracer in (FDG, MET, FDOPA, PSMA):
    register_tracer(_tracer)
