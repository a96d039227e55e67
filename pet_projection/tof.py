"""Time-of-flight (TOF) parameters of PET projectors."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .validation import positive_int
from .grid import length_mm

# Speed of light in mm per picosecond (CODATA exact value 299 792 458 m/s).
SPEED_OF_LIGHT_MM_PER_PS = 0.299792458


@dataclass(frozen=True)
class TOFParameters:
    """TOF binning and resolution of a PET scanner, in mm along the line of response.

    Parameters
    ----------
    n_bins : int
        Number of TOF bins per LOR (the last sinogram axis of a TOF projector).
    bin_width_mm : float
        Width of a TOF bin along the LOR in mm.
    fwhm_mm : float
        FWHM of the Gaussian TOF kernel along the LOR in mm
        (``timing_resolution_ps * c / 2``, see :meth:`from_timing`).
    n_sigmas : float, optional
        Truncation of the Gaussian at ``n_sigmas`` standard deviations (default 3).

    Notes
    -----
    Bin ``b`` covers the distances ``[(b - (n_bins-1)/2 - 1/2) w, (b - (n_bins-1)/2 + 1/2) w]`` from the
    LOR midpoint, positive towards the LOR's end point (``xend_mm``). A point at distance ``d`` is
    smeared by the Gaussian centred at ``d``, truncated at ``n_sigmas`` and renormalised to total 1; the
    Gaussian is integrated over each bin exactly with ``erf``. So wherever the TOF bins cover
    ``d +- n_sigmas * sigma``, the bins of a ray sum to its non-TOF value.
    """

    n_bins: int
    bin_width_mm: float
    fwhm_mm: float
    n_sigmas: float = 3.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_bins", positive_int("n_bins", self.n_bins))
        object.__setattr__(self, "bin_width_mm", length_mm("bin_width_mm", self.bin_width_mm, positive=True))
        object.__setattr__(self, "fwhm_mm", length_mm("fwhm_mm", self.fwhm_mm, positive=True))
        n_sigmas = float(self.n_sigmas)
        if not 0.5 <= n_sigmas <= 10.0:
            raise ValueError(f"n_sigmas must lie in [0.5, 10], got {self.n_sigmas!r}")
        object.__setattr__(self, "n_sigmas", n_sigmas)

    @classmethod
    def from_timing(cls, timing_resolution_ps: float, n_bins: int, bin_width_ps: float,
                    n_sigmas: float = 3.0) -> "TOFParameters":
        """TOF parameters from a coincidence timing resolution and a bin width in picoseconds.

        A time difference ``dt`` moves the annihilation point by ``c dt / 2`` along the LOR.
        """
        to_mm = SPEED_OF_LIGHT_MM_PER_PS / 2.0
        return cls(n_bins, bin_width_ps * to_mm, timing_resolution_ps * to_mm, n_sigmas)

    @property
    def sigma_mm(self) -> float:
        """Standard deviation of the TOF Gaussian in mm: ``fwhm_mm / (2 sqrt(2 ln 2))``."""
        return self.fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))

    @property
    def limit_mm(self) -> float:
        """Truncation half-width ``n_sigmas * sigma_mm`` in mm."""
        return self.n_sigmas * self.sigma_mm

    @property
    def coverage_mm(self) -> float:
        """Half-length of the LOR that the bins cover: ``n_bins * bin_width_mm / 2`` (mm)."""
        return self.n_bins * self.bin_width_mm / 2.0
