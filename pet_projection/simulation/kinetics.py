"""Tracer kinetics: plasma input functions, the two-tissue compartment model and frame integration.

Times are in minutes after injection, rate constants in 1/min, concentrations
in the units of the input function (the simulator uses SUV-like units, see
:mod:`pet_projection.simulation.tracers`). Tissue curves are *decay-corrected*
(the input function is); :func:`frame_means` applies the physical decay when
asked to, so frame values are proportional to the detected counts.

The two-tissue compartment model (Phelps et al., Ann Neurol 6:371, 1979;
Huang et al., Am J Physiol 238:E69, 1980)::

    dC1/dt = K1 Cp - (k2 + k3) C1 + k4 C2
    dC2/dt = k3 C1 - k4 C2

has the impulse response ``C_T = C1 + C2 = h (x) Cp`` with

    h(t) = K1 / (a2 - a1) [(k3 + k4 - a1) exp(-a1 t) + (a2 - k3 - k4) exp(-a2 t)],
    a1,2 = (k2 + k3 + k4 -+ sqrt((k2 + k3 + k4)^2 - 4 k2 k4)) / 2,

(``h(t) = K1 exp(-k2 t)`` when ``k3 = 0``, the one-tissue model). Input
functions here are sums of terms ``(a + b u) exp(lambda u)`` of the time ``u``
since the tracer arrives, so the convolution is computed in closed form
(:meth:`ExponentialInput.convolve_exponential`), not numerically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..validation import check_finite_array, check_finite_real

# Feng, Huang and Wang, Int J Biomed Comput 32:95, 1993: model of the FDG plasma
# input function, Cp(u) = (A1 u - A2 - A3) exp(l1 u) + A2 exp(l2 u) + A3 exp(l3 u),
# u = t - tau, in uCi/mL with t in min; the parameter values are the ones quoted
# from that paper in later simulation studies (e.g. Feng, Wang and Yan, Comput
# Methods Programs Biomed 45:175, 1994).
FENG_A1_PER_MIN = 851.1225
FENG_A2 = 21.8798
FENG_A3 = 20.8113
FENG_LAMBDA1_PER_MIN = -4.1339
FENG_LAMBDA2_PER_MIN = -0.0104
FENG_LAMBDA3_PER_MIN = -0.1191

# |beta * u| below this uses five terms of the power series of the exponential moments: the
# closed forms lose about eps / |beta u|^2 to cancellation (2e-12 here), the series' first
# omitted term is |beta u|^5 / 720 (1.4e-13 here), relative.
_SERIES_LIMIT = 0.01
# int_0^u exp(z s / u) ds = u sum_n z^n / (n + 1)!  and  int_0^u s exp(z s / u) ds = u^2 sum_n z^n / (n! (n + 2))
_MOMENT0_SERIES = tuple(1.0 / math.factorial(n + 1) for n in range(5))
_MOMENT1_SERIES = tuple(1.0 / (math.factorial(n) * (n + 2)) for n in range(5))
# Gauss-Legendre nodes and weights on [-1, 1] per sub-interval, and the longest sub-interval (min),
# of frame integrals.
_QUADRATURE = np.polynomial.legendre.leggauss(16)
_MAX_PANEL_MIN = 1.0


@dataclass(frozen=True, eq=False, init=False)
class ExponentialInput:
    """A plasma input function ``Cp(t) = sum_k (a_k + b_k u) exp(lambda_k u)``, ``u = t - delay`` (0 before).

    Parameters
    ----------
    amplitudes : sequence of float
        ``a_k`` (concentration units).
    slopes : sequence of float
        ``b_k`` (concentration units per min).
    rates_per_min : sequence of float
        ``lambda_k`` in 1/min, each ``<= 0`` (0 gives a step or a ramp).
    delay_min : float, optional
        Arrival time of the tracer in min (default 0).
    """

    amplitudes: np.ndarray
    slopes: np.ndarray
    rates_per_min: np.ndarray
    delay_min: float

    def __init__(self, amplitudes: Sequence[float], slopes: Sequence[float], rates_per_min: Sequence[float],
                 delay_min: float = 0.0) -> None:
        arrays = []
        for name, values in (("amplitudes", amplitudes), ("slopes", slopes), ("rates_per_min", rates_per_min)):
            array = np.array(values, dtype=np.float64).reshape(-1)
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{name} must be finite, got {values!r}")
            array.setflags(write=False)
            arrays.append(array)
        if not arrays[0].size or len({a.size for a in arrays}) != 1:
            raise ValueError("amplitudes, slopes and rates_per_min must be non-empty and of one length, got "
                             f"{[a.size for a in arrays]}")
        if np.any(arrays[2] > 0):
            raise ValueError(f"rates_per_min must be <= 0 (decaying or constant terms), got {arrays[2].tolist()}")
        object.__setattr__(self, "amplitudes", arrays[0])
        object.__setattr__(self, "slopes", arrays[1])
        object.__setattr__(self, "rates_per_min", arrays[2])
        object.__setattr__(self, "delay_min", check_finite_real("delay_min", delay_min, 0.0))

    def scaled(self, factor: float) -> "ExponentialInput":
        """The input function times ``factor`` (``>= 0``)."""
        factor = check_finite_real("factor", factor, 0.0)
        return ExponentialInput(self.amplitudes * factor, self.slopes * factor, self.rates_per_min, self.delay_min)

    def __call__(self, t_min: Any) -> np.ndarray:
        """``Cp(t)`` at the times ``t_min`` (any shape)."""
        u = check_finite_array("times t_min", t_min)[..., None] - self.delay_min
        values = (self.amplitudes + self.slopes * u) * np.exp(self.rates_per_min * np.maximum(u, 0.0))
        return np.where(u[..., 0] >= 0, values.sum(axis=-1), 0.0)

    def convolve_exponential(self, alpha_per_min: float, t_min: Any) -> np.ndarray:
        """``int_0^t Cp(s) exp(-alpha (t - s)) ds`` in closed form, at the times ``t_min`` (any shape).

        For a term ``(a + b s) exp(lambda s)`` and ``beta = lambda + alpha``:
        ``exp(-alpha u) int_0^u (a + b s) exp(beta s) ds``, with
        ``int_0^u exp(beta s) ds = (exp(beta u) - 1) / beta`` and
        ``int_0^u s exp(beta s) ds = u exp(beta u) / beta - (exp(beta u) - 1) / beta^2``
        (a power series where ``|beta u| < 0.01``).
        """
        alpha = check_finite_real("alpha_per_min", alpha_per_min, 0.0)
        u = np.maximum(check_finite_array("times t_min", t_min) - self.delay_min, 0.0)[..., None]
        beta = self.rates_per_min + alpha
        z = beta * u
        small = np.abs(z) < _SERIES_LIMIT
        safe_beta = np.where(small, 1.0, beta)
        # exp(lambda u) and exp(-alpha u) never overflow (lambda <= 0, alpha >= 0)
        e_lam, e_alpha = np.exp(self.rates_per_min * u), np.exp(-alpha * u)
        m0 = np.where(small, e_alpha * u * np.polynomial.polynomial.polyval(z, _MOMENT0_SERIES),
                      (e_lam - e_alpha) / safe_beta)
        m1 = np.where(small, e_alpha * u * u * np.polynomial.polynomial.polyval(z, _MOMENT1_SERIES),
                      u * e_lam / safe_beta - (e_lam - e_alpha) / safe_beta**2)
        return (self.amplitudes * m0 + self.slopes * m1).sum(axis=-1)


def feng_input(scale: float = 1.0, delay_min: float = 0.0) -> ExponentialInput:
    """The FDG plasma input function of Feng, Huang and Wang (1993), times ``scale``.

    ``Cp(u) = (A1 u - A2 - A3) exp(l1 u) + A2 exp(l2 u) + A3 exp(l3 u)`` with
    ``A1 = 851.1225 uCi/mL/min``, ``A2 = 21.8798 uCi/mL``, ``A3 = 20.8113 uCi/mL``,
    ``l1 = -4.1339``, ``l2 = -0.0104``, ``l3 = -0.1191`` /min (decay-corrected
    plasma concentration; 0 at the arrival time ``delay_min``).
    """
    return ExponentialInput(amplitudes=(-(FENG_A2 + FENG_A3), FENG_A2, FENG_A3), slopes=(FENG_A1_PER_MIN, 0.0, 0.0),
                            rates_per_min=(FENG_LAMBDA1_PER_MIN, FENG_LAMBDA2_PER_MIN, FENG_LAMBDA3_PER_MIN),
                            delay_min=delay_min).scaled(scale)


@dataclass(frozen=True)
class RateConstants:
    """Rate constants of the two-tissue compartment model.

    Attributes
    ----------
    K1 : float
        Plasma-to-tissue transport in mL/mL/min (written 1/min).
    k2, k3, k4 : float
        Tissue efflux, phosphorylation (binding) and its reverse, in 1/min.
        ``k4 = 0`` is an irreversible tracer; ``k3 = 0`` the one-tissue model.
    """

    K1: float
    k2: float
    k3: float
    k4: float

    def __post_init__(self) -> None:
        for name in ("K1", "k2", "k3", "k4"):
            object.__setattr__(self, name, check_finite_real(name, getattr(self, name), 0.0))

    def impulse_response(self) -> tuple[tuple[float, float], ...]:
        """``((c1, a1), (c2, a2))`` with ``h(t) = sum c_i exp(-a_i t)`` (one term when ``k3 = 0``)."""
        if self.k3 == 0.0:
            return ((self.K1, self.k2),)
        total = self.k2 + self.k3 + self.k4
        root = math.sqrt(total * total - 4.0 * self.k2 * self.k4)  # > 0 when k3 > 0
        a1, a2 = (total - root) / 2.0, (total + root) / 2.0
        scale = self.K1 / (a2 - a1)
        return ((scale * (self.k3 + self.k4 - a1), a1), (scale * (a2 - self.k3 - self.k4), a2))


def tissue_curve(input_function: ExponentialInput, rates: RateConstants, t_min: Any) -> np.ndarray:
    """Tissue concentration ``C_T(t) = (h (x) Cp)(t)`` of the two-tissue model (decay-corrected), any shape."""
    return sum(c * input_function.convolve_exponential(a, t_min) for c, a in rates.impulse_response())


def pet_curve(input_function: ExponentialInput, rates: RateConstants, blood_fraction: float, t_min: Any) -> np.ndarray:
    """What PET sees in a voxel: ``(1 - vB) C_T(t) + vB Cp(t)`` with the blood volume fraction ``vB`` in [0, 1].

    Whole blood is taken equal to plasma (an FDG approximation, Phelps et al. 1979).
    """
    blood_fraction = check_finite_real("blood_fraction", blood_fraction, 0.0, 1.0)
    curve = tissue_curve(input_function, rates, t_min) if blood_fraction < 1.0 else 0.0
    return (1.0 - blood_fraction) * curve + blood_fraction * input_function(t_min)


def decay_constant_per_min(half_life_min: float) -> float:
    """``ln 2 / T_1/2`` in 1/min."""
    half_life_min = check_finite_real("half_life_min", half_life_min, 0.0, low_open=True)
    return math.log(2.0) / half_life_min


def check_frame(frame_min: Any, name: str = "frame_min") -> tuple[float, float]:
    """``(start, end)`` in min with ``0 <= start < end``; ``ValueError``/``TypeError`` naming ``name`` otherwise."""
    try:
        start, end = frame_min
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a (start, end) pair in minutes, got {frame_min!r}") from None
    start, end = check_finite_real(f"{name} start", start), check_finite_real(f"{name} end", end)
    if not 0.0 <= start < end:
        raise ValueError(f"{name} must satisfy 0 <= start < end (minutes after injection), got ({start}, {end})")
    return start, end


def frame_means(curve: Callable[[np.ndarray], np.ndarray], frames_min: Sequence[Any],
                half_life_min: Optional[float] = None) -> np.ndarray:
    """Mean of ``curve(t) * exp(-ln2 t / T_1/2)`` over each frame ``(start, end)`` (no decay if no half-life).

    Parameters
    ----------
    curve : callable
        Vectorised ``curve(t) -> values`` of shape ``t.shape + extra`` or
        ``t.shape``; decay-corrected concentration.
    frames_min : sequence of (float, float)
        Frame start and end times in min after injection.
    half_life_min : float, optional
        Physical half-life; when given the frame mean includes the decay
        during and before the frame (proportional to the counts detected).

    Returns
    -------
    ndarray, shape ``(n_frames, *extra)``

    Notes
    -----
    Composite Gauss-Legendre quadrature with 16 nodes on panels of at most
    1 min (exact to rounding for these smooth sums of exponentials); frames
    should start after the tracer arrives (the curve has a kink there).
    """
    decay = 0.0 if half_life_min is None else decay_constant_per_min(half_life_min)
    nodes, weights = _QUADRATURE
    means = []
    for index, frame in enumerate(frames_min):
        start, end = check_frame(frame, f"frames_min[{index}]")
        n_panels = max(1, math.ceil((end - start) / _MAX_PANEL_MIN))
        edges = np.linspace(start, end, n_panels + 1)
        half = np.diff(edges)[:, None] / 2.0
        t = (edges[:-1, None] + half) + half * nodes  # (panels, nodes)
        t = t.reshape(-1)
        w = (half * weights).reshape(-1) * np.exp(-decay * t)
        values = np.asarray(curve(t), dtype=np.float64)  # (n_nodes, *extra)
        means.append(np.tensordot(w, values, axes=(0, 0)) / (end - start))
    return np.array(means)
