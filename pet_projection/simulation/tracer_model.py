"""The tracer model: a region's uptake and two-tissue kinetics, and a tracer (half-life, frame, uptake table).

Every region of a phantom has, per tracer, a target uptake in SUV-like units
(activity concentration relative to the injected activity per body mass) in
the tracer's *reference frame* (the usual static scan) and the shape
parameters ``k2, k3, k4`` (1/min) and blood volume fraction ``vB`` of the
two-tissue compartment model. ``K1`` is solved so that the decay-corrected
frame mean equals the target uptake (:meth:`Tracer.rate_constants`): the cited
uptake ratios hold in the reference frame, and the kinetics decide how the
regions diverge in other frames (a delayed scan, an early dual-tracer frame).

The input function is Feng's FDG model (:func:`~.kinetics.feng_input`) scaled
so that the plasma (= blood pool) frame mean in the reference frame equals
the table's ``blood_pool`` uptake. For the other tracers the Feng shape is an
assumption (no fitted input model of theirs is used); their scale,
half-life, uptake table and kinetics differ. The tables themselves are in
:mod:`.tracer_tables`, the registry in :mod:`.tracers`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Mapping, Sequence

import numpy as np

from ..validation import check_real
from .kinetics import ExponentialInput, RateConstants, check_frame, feng_input, frame_means, pet_curve

__all__ = ["RegionKinetics", "Tracer"]


@dataclass(frozen=True)
class RegionKinetics:
    """Uptake and two-tissue shape parameters of one region for one tracer.

    Attributes
    ----------
    suv : float
        Target decay-corrected frame-mean uptake in the reference frame (SUV-like units).
    k2, k3, k4 : float
        Rate constants in 1/min (``K1`` follows from ``suv``).
    blood_fraction : float
        Blood volume fraction ``vB`` in [0, 1]; 1 makes the region pure blood
        (its curve is the input function and ``suv`` is not used).
    """

    suv: float
    k2: float
    k3: float
    k4: float
    blood_fraction: float

    def __post_init__(self) -> None:
        for name in ("suv", "k2", "k3", "k4", "blood_fraction"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be finite and non-negative, got {value!r}")
        if self.blood_fraction > 1:
            raise ValueError(f"blood_fraction must lie in [0, 1], got {self.blood_fraction}")

    def scaled(self, suv_factor: float, rate_factors: tuple[float, float, float]) -> "RegionKinetics":
        """A copy with ``suv`` and ``(k2, k3, k4)`` multiplied by the given factors."""
        return RegionKinetics(self.suv * suv_factor, self.k2 * rate_factors[0], self.k3 * rate_factors[1],
                              self.k4 * rate_factors[2], self.blood_fraction)


@dataclass(frozen=True, eq=False)
class Tracer:
    """A PET tracer: isotope half-life, reference (static) frame, input function scale, region kinetics.

    Attributes
    ----------
    name : str
        Short name (``"fdg"``, ``"met"``, ``"fdopa"``, ``"psma"``), the key of the registry.
    description : str
    half_life_min : float
        Physical half-life of the radionuclide in min.
    reference_frame_min : (float, float)
        Start and end of the usual static scan in min after injection.
    uptake : mapping of str to RegionKinetics
        Per region name (every name of :data:`~.phantoms.REGION_LABELS`).
    hot_lesion : (k2, k3, k4, vB)
        Kinetic template of hot lesions (cold lesions keep their host's).
    hot_contrast, cold_contrast : (float, float)
        Ranges of lesion-to-host uptake ratios in the reference frame.
    hot_node_probability : float in [0, 1]
        Probability that a lymph node of a patient scanned with this tracer
        is a hot (metastatic) node; with 0, nodes that another tracer shows
        as hot look like normal nodes with this one.
    """

    name: str
    description: str
    half_life_min: float
    reference_frame_min: tuple[float, float]
    uptake: Mapping[str, RegionKinetics]
    hot_lesion: tuple[float, float, float, float]
    hot_contrast: tuple[float, float]
    cold_contrast: tuple[float, float]
    hot_node_probability: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"a tracer name must be a lower-case identifier, got {self.name!r}")
        check_real("half_life_min", self.half_life_min, 0.0, math.inf, low_open=True)
        object.__setattr__(self, "reference_frame_min", check_frame(self.reference_frame_min, "reference_frame_min"))
        bad = sorted(name for name, value in self.uptake.items() if not isinstance(value, RegionKinetics))
        if bad:
            raise TypeError(f"uptake values must be RegionKinetics; not for {bad}")
        if "blood_pool" not in self.uptake:
            raise ValueError("the uptake table needs 'blood_pool' (it scales the input function)")
        RegionKinetics(1.0, *self.hot_lesion)
        for name in ("hot_contrast", "cold_contrast"):
            low, high = getattr(self, name)
            if not 0.0 <= check_real(f"{name} low", low) <= check_real(f"{name} high", high):
                raise ValueError(f"{name} must be a range 0 <= low <= high, got {getattr(self, name)!r}")
        check_real("hot_node_probability", self.hot_node_probability, 0.0, 1.0)

    @cached_property
    def input_function(self) -> ExponentialInput:
        """Feng's input shape scaled so that its reference-frame mean equals the blood-pool uptake."""
        shape = feng_input()
        mean = float(frame_means(shape, [self.reference_frame_min])[0])
        return shape.scaled(self.uptake["blood_pool"].suv / mean)

    def rate_constants(self, kinetics: RegionKinetics) -> RateConstants:
        """``(K1, k2, k3, k4)`` whose reference-frame mean (decay-corrected) equals ``kinetics.suv``.

        With ``vB`` the blood fraction, ``M`` the target and ``H``, ``P`` the
        frame means of the tissue curve for ``K1 = 1`` and of the plasma:
        ``K1 = (M - vB P) / ((1 - vB) H)``, clipped at 0 (the region then
        holds only its blood, above the target).
        """
        if kinetics.blood_fraction >= 1.0:
            return RateConstants(0.0, kinetics.k2, kinetics.k3, kinetics.k4)
        cp = self.input_function
        unit = RateConstants(1.0, kinetics.k2, kinetics.k3, kinetics.k4)
        tissue, plasma = frame_means(lambda t: np.stack([pet_curve(cp, unit, 0.0, t), cp(t)], axis=-1),
                                     [self.reference_frame_min])[0]
        k1 = (kinetics.suv - kinetics.blood_fraction * plasma) / ((1.0 - kinetics.blood_fraction) * tissue)
        return RateConstants(max(k1, 0.0), kinetics.k2, kinetics.k3, kinetics.k4)

    def frame_values(self, kinetics: RegionKinetics, frames_min: Sequence[tuple[float, float]],
                     decay: bool = True) -> np.ndarray:
        """Frame means of the region's PET curve, shape ``(n_frames,)``; with the physical decay if ``decay``."""
        cp = self.input_function
        rates = self.rate_constants(kinetics)
        return frame_means(lambda t: pet_curve(cp, rates, kinetics.blood_fraction, t), frames_min,
                           self.half_life_min if decay else None)
