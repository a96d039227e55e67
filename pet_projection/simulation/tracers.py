"""Tracers: half-lives, input functions and region-wise uptake and kinetics.

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
``blood_suv``. For the second tracer the Feng shape is an assumption (no
fitted [11C]methionine input model is used); only its scale, half-life,
uptake table and kinetics differ.

Values marked *illustrative* are plausible choices, not fitted to data; the
others are cited next to them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Mapping, Sequence

import numpy as np

from .kinetics import ExponentialInput, RateConstants, feng_input, frame_means, pet_curve

# Physical half-lives (NNDC / ENSDF evaluated data): 18F 109.77 min, 11C 20.364 min.
HALF_LIFE_F18_MIN = 109.77
HALF_LIFE_C11_MIN = 20.364


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


def _shape(suv: float, template: tuple[float, float, float, float]) -> RegionKinetics:
    return RegionKinetics(suv, *template)


# --- FDG -------------------------------------------------------------------------------------------
# (k2, k3, k4, vB) templates. Grey and white matter: Phelps et al., Ann Neurol 6:371, 1979
# (K1 0.102 / 0.054, k2 0.130 / 0.109, k3 0.062 / 0.045, k4 0.0068 / 0.0058 per min) with blood
# volumes of about 5 % / 3 %. The others are illustrative: muscle-like soft tissue (slow
# phosphorylation), myocardium (trapping), liver (glucose-6-phosphatase: large k2 and k4, uptake
# falling between 1 h and 2 h),
# tumour (high k3, low k4: uptake still rising at 2 h, as in dual-time-point FDG studies,
# Kubota et al., Eur J Nucl Med 28:696, 2001) and urine (k2 = k3 = k4 = 0: the bladder
# integrates the plasma curve).
FDG_GREY = (0.130, 0.062, 0.0068, 0.05)
FDG_WHITE = (0.109, 0.045, 0.0058, 0.03)
FDG_SOFT = (0.30, 0.03, 0.010, 0.02)
FDG_MYOCARDIUM = (0.35, 0.10, 0.0, 0.10)
FDG_LIVER = (0.90, 0.03, 0.010, 0.10)
FDG_TUMOUR = (0.25, 0.15, 0.005, 0.05)
FDG_URINE = (0.0, 0.0, 0.0, 0.0)
FDG_BLOOD = (0.0, 0.0, 0.0, 1.0)

# SUV-like uptake at 60 min. Brain: grey/white matter ratio of about 2.5-3 and lower cerebellar
# and brainstem uptake (Phelps 1979 metabolic rates; typical clinical cortex SUV 7-10). Body: normal
# organ SUVs of Zincirkeser et al., J Int Med Res 35:231, 2007 and Ramos et al., Nucl Med Commun
# 22:1187, 2001 (liver about 2-2.5, spleen about 1.8, blood pool about 1.5-2, muscle about 0.6-1,
# fat about 0.3, lung about 0.5, bone marrow about 1.5-2); heart wall and bladder vary widely
# between patients (moderate values chosen).
FDG_UPTAKE = {
    "scalp": _shape(1.0, FDG_SOFT),
    "skull": _shape(0.8, FDG_SOFT),
    "csf": _shape(0.3, FDG_SOFT),
    "grey_matter": _shape(8.0, FDG_GREY),
    "white_matter": _shape(3.0, FDG_WHITE),
    "deep_grey_matter": _shape(8.5, FDG_GREY),
    "ventricles": _shape(0.2, FDG_SOFT),
    "cerebellum": _shape(6.5, FDG_GREY),
    "brainstem": _shape(4.5, FDG_WHITE),
    "fat": _shape(0.3, FDG_SOFT),
    "soft_tissue": _shape(0.8, FDG_SOFT),
    "lungs": _shape(0.5, FDG_SOFT),
    "heart_wall": _shape(3.0, FDG_MYOCARDIUM),
    "blood_pool": _shape(1.7, FDG_BLOOD),
    "liver": _shape(2.3, FDG_LIVER),
    "spleen": _shape(1.9, FDG_SOFT),
    "kidneys": _shape(3.0, FDG_SOFT),
    "spine": _shape(1.8, FDG_SOFT),
    "bladder": _shape(15.0, FDG_URINE),
}

# --- [11C]methionine ----------------------------------------------------------------------------
# Usually modelled as irreversible (k4 = 0); the templates are illustrative. Brain uptake: low
# cortex-to-white-matter contrast and tumour-to-normal ratios above about 1.5 (Law et al.,
# EANM/EANO/RANO guideline, Eur J Nucl Med Mol Imaging 46:540, 2019); body values are
# illustrative and follow the high normal uptake of liver, pancreas, bone marrow and kidneys.
MET_BRAIN = (0.10, 0.02, 0.0, 0.05)
MET_SOFT = (0.20, 0.03, 0.0, 0.03)
MET_LIVER = (0.50, 0.08, 0.0, 0.10)
MET_TUMOUR = (0.10, 0.08, 0.0, 0.05)
MET_URINE = FDG_URINE
MET_BLOOD = FDG_BLOOD

MET_UPTAKE = {
    "scalp": _shape(1.2, MET_SOFT),
    "skull": _shape(1.8, MET_SOFT),
    "csf": _shape(0.2, MET_SOFT),
    "grey_matter": _shape(1.6, MET_BRAIN),
    "white_matter": _shape(1.1, MET_BRAIN),
    "deep_grey_matter": _shape(1.6, MET_BRAIN),
    "ventricles": _shape(0.2, MET_SOFT),
    "cerebellum": _shape(1.5, MET_BRAIN),
    "brainstem": _shape(1.3, MET_BRAIN),
    "fat": _shape(0.3, MET_SOFT),
    "soft_tissue": _shape(1.0, MET_SOFT),
    "lungs": _shape(0.5, MET_SOFT),
    "heart_wall": _shape(2.0, MET_SOFT),
    "blood_pool": _shape(1.0, MET_BLOOD),
    "liver": _shape(6.0, MET_LIVER),
    "spleen": _shape(3.0, MET_SOFT),
    "kidneys": _shape(4.0, MET_SOFT),
    "spine": _shape(3.5, MET_SOFT),
    "bladder": _shape(6.0, MET_URINE),
}


@dataclass(frozen=True, eq=False)
class Tracer:
    """A PET tracer: isotope half-life, reference (static) frame, input function scale, region kinetics.

    Attributes
    ----------
    name : str
        Short name (``"fdg"``, ``"met"``).
    description : str
    half_life_min : float
        Physical half-life of the isotope in min.
    reference_frame_min : (float, float)
        Start and end of the usual static scan in min after injection.
    uptake : mapping of str to RegionKinetics
        Per region name (see :data:`~.phantoms.REGION_LABELS`).
    hot_lesion, cold_lesion : (k2, k3, k4, vB) or None
        Kinetic templates of lesions (``None``: the host region's template).
    hot_contrast, cold_contrast : (float, float)
        Ranges of lesion-to-host uptake ratios in the reference frame.
    """

    name: str
    description: str
    half_life_min: float
    reference_frame_min: tuple[float, float]
    uptake: Mapping[str, RegionKinetics]
    hot_lesion: tuple[float, float, float, float]
    hot_contrast: tuple[float, float]
    cold_contrast: tuple[float, float]

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


TRACERS: dict[str, Tracer] = {
    # [18F]FDG: static scan 60 min after injection (EANM procedure guideline, Boellaard et al.,
    # Eur J Nucl Med Mol Imaging 42:328, 2015); hot lesions 1.5-6x and cold 0.1-0.6x their host.
    "fdg": Tracer("fdg", "2-[18F]fluoro-2-deoxy-D-glucose (glucose metabolism)", HALF_LIFE_F18_MIN, (60.0, 70.0),
                  FDG_UPTAKE, FDG_TUMOUR, (1.5, 6.0), (0.1, 0.6)),
    # L-[methyl-11C]methionine: static scan from about 20 min (Law et al. 2019); tumour-to-normal
    # ratios from 1.5 upwards.
    "met": Tracer("met", "L-[methyl-11C]methionine (amino-acid transport)", HALF_LIFE_C11_MIN, (20.0, 30.0),
                  MET_UPTAKE, MET_TUMOUR, (1.5, 4.0), (0.2, 0.7)),
}


def get_tracer(name: str) -> Tracer:
    """The tracer called ``name`` (``ValueError`` naming the known tracers otherwise)."""
    if not isinstance(name, str) or name not in TRACERS:
        raise ValueError(f"unknown tracer {name!r}; known tracers: {', '.join(sorted(TRACERS))}")
    return TRACERS[name]
