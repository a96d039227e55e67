"""Acquisition model: projector, attenuation, normalisation, resolution, randoms, scatter, Poisson counts, dose.

The expected prompts of an activity image ``x`` are (see
:class:`~pet_projection.physics.PETSystemModel`)::

    ybar = n a P R (c x) + s + r

``c`` converts the image to expected counts (chosen so that ``sum(ybar)``
equals the requested total), ``P`` the projector, ``R`` a Gaussian
resolution model, ``a = exp(-P mu)`` the attenuation factors, ``n`` the
normalisation, ``s`` scatter and ``r`` randoms:

- **normalisation**: product of the two detectors' efficiencies
  (component-based normalisation, Casey & Hoffman, J Comput Assist Tomogr
  10:845, 1986); crystal efficiencies are log-normal with a relative spread
  (default 5 %). For parallel-beam sinograms the detectors are a virtual ring
  of ``2 n_views`` crystals around the field of view (each ray meets the ring
  in two crystals); for :class:`~pet_projection.PETSinogramProjector` they
  are the scanner's crystals (ring pairs of a plane averaged).
- **scatter**: a smooth estimate, the attenuated emission sinogram blurred
  along the radial axis by a wide Gaussian (default FWHM 150 mm), times the
  normalisation, scaled so that ``S / (S + T)`` equals the scatter fraction
  (NEMA NU 2 definition; default 0.35, typical of current 3D scanners).
- **randoms**: flat apart from the detector efficiencies (``r ~ e_i e_j``,
  as for singles-based randoms ``2 tau S_i S_j``), scaled so that
  ``R / (T + S + R)`` equals the randoms fraction (default 0.15). The
  fraction is the same in every acquisition of a sample, also after
  thinning (a simplification: randoms grow with the square of the activity).

Low-dose data are binomial thinnings of the full-dose prompts
(:func:`thin_counts`), so every low-dose sinogram is consistent with its
full-dose partner (the thinned counts are Poisson with mean ``ybar / f``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any, Optional, Union

import numpy as np
from scipy import ndimage

from ..geometry import ParallelBeamGeometry
from ..validation import check_finite_real, positive_int
from ..grid import ImageGrid
from ..operators import LinearOperator
from ..physics import FWHM_PER_SIGMA, GaussianResolution, PETSystemModel, attenuation_factors
from ..projectors import ParallelBeamProjector, PETSinogramProjector
from ..scanner import RingScannerGeometry, SinogramLayout

# The virtual detector ring of parallel-beam sinograms lies this far outside the field of view.
VIRTUAL_RING_MARGIN = 1.2
# Reduced clinical layout of 3D samples (see reduced_clinical_projector): every 4th view, direct
# planes only (a 2D-mode acquisition; span 3 with ring difference 1 adds the 79 cross planes at
# twice the cost).
CLINICAL_VIEW_STEP = 4
CLINICAL_SPAN = 1
CLINICAL_MAX_RING_DIFFERENCE = 0

Projector = Union[ParallelBeamProjector, PETSinogramProjector]


@dataclass(frozen=True)
class AcquisitionSettings:
    """Physics of the acquisition (see the module notes).

    Attributes
    ----------
    fwhm_mm : float
        Resolution FWHM in mm (isotropic; about 4-5 mm in the centre of clinical
        whole-body scanners, NEMA NU 2: e.g. van Sluis et al., J Nucl Med 60:1031, 2019).
    scatter_fraction : float
        ``S / (S + T)`` in [0, 1).
    randoms_fraction : float
        ``R / (T + S + R)`` in [0, 1).
    efficiency_spread : float
        Relative standard deviation of the crystal efficiencies (log-normal), >= 0.
    scatter_fwhm_mm : float
        Radial FWHM of the scatter blur in mm, > 0.
    """

    fwhm_mm: float = 4.5
    scatter_fraction: float = 0.35
    randoms_fraction: float = 0.15
    efficiency_spread: float = 0.05
    scatter_fwhm_mm: float = 150.0

    def __post_init__(self) -> None:
        check_finite_real("scatter_fraction", self.scatter_fraction, 0.0, 1.0, high_open=True)
        check_finite_real("randoms_fraction", self.randoms_fraction, 0.0, 1.0, high_open=True)
        check_finite_real("efficiency_spread", self.efficiency_spread, 0.0)
        check_finite_real("fwhm_mm", self.fwhm_mm, 0.0)
        if check_finite_real("scatter_fwhm_mm", self.scatter_fwhm_mm, 0.0) == 0.0:
            raise ValueError("scatter_fwhm_mm must be positive")

    def to_dict(self) -> dict:
        return asdict(self)


def check_total_counts(total_counts: Any) -> float:
    """``total_counts`` as a positive finite float (``ValueError`` / ``TypeError`` otherwise)."""
    if isinstance(total_counts, bool) or not isinstance(total_counts, numbers.Real):
        raise TypeError(f"total counts must be a real number, got {total_counts!r}")
    if not math.isfinite(total_counts) or total_counts <= 0:
        raise ValueError(f"total counts must be positive and finite, got {total_counts}")
    return float(total_counts)


def check_dose_reduction_factor(factor: Any) -> float:
    """A dose reduction factor ``>= 1`` (1 = full dose)."""
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not math.isfinite(factor):
        raise TypeError(f"dose reduction factor must be a finite real number, got {factor!r}")
    if factor < 1:
        raise ValueError(f"dose reduction factor must be at least 1 (1 = full dose), got {factor}")
    return float(factor)


# --- projectors ----------------------------------------------------------------------------------

def parallel_beam_projector(grid: ImageGrid, n_views: int, n_bins: Optional[int] = None) -> ParallelBeamProjector:
    """Parallel-beam projector of a 2D grid (or a stack of slices): ``n_bins`` (default ``nx``) bins of width ``dx``.

    The radial range ``n_bins * dx`` equals the grid width, so the sinogram
    covers the circle inscribed in the grid (phantoms stay inside it).
    """
    n_views = positive_int("n_views", n_views)
    n_bins = grid.shape[-1] if n_bins is None else positive_int("n_bins", n_bins)
    return ParallelBeamProjector(ParallelBeamGeometry(grid, n_views, n_bins, grid.voxel_size_mm[-1]))


def clinical_layout(grid: ImageGrid, span: int = CLINICAL_SPAN,
                    max_ring_difference: int = CLINICAL_MAX_RING_DIFFERENCE) -> SinogramLayout:
    """:meth:`~pet_projection.RingScannerGeometry.clinical_whole_body` layout cut to the grid's field of view.

    The radial bins kept are those whose LORs pass within the circle
    inscribed in the grid (bin spacing about ``pi R / N`` = 1.7 mm at the
    centre); the Michelogram has the given span and largest ring difference
    (default span 1, ring difference 0: the 80 direct planes, 3.29 mm apart;
    span 3 with ring difference 1 gives 159 direct and cross planes 1.645 mm apart).
    """
    scanner = RingScannerGeometry.clinical_whole_body()
    radius = min(grid.extent_mm[-2:]) / 2.0
    spacing = math.pi * scanner.radius_mm / scanner.n_crystals_per_ring
    n_radial = min(2 * math.ceil(radius / spacing) + 1, scanner.n_crystals_per_ring - 1)
    return SinogramLayout(scanner, span=span, max_ring_difference=max_ring_difference, n_radial=n_radial)


def reduced_clinical_projector(grid: ImageGrid, view_step: int = CLINICAL_VIEW_STEP, span: int = CLINICAL_SPAN,
                               max_ring_difference: int = CLINICAL_MAX_RING_DIFFERENCE) -> PETSinogramProjector:
    """3D projector of a clinical-size scanner, reduced so that a sample takes under a minute on 2 cores.

    The full :meth:`~pet_projection.RingScannerGeometry.clinical_whole_body`
    geometry (760 crystals per ring, 80 rings), :func:`clinical_layout` (field
    of view cut radially; default direct planes only) and every
    ``view_step``-th of its 380 views (default 4: 95 views, 1.9 degrees apart).
    The full layout (all 6400 ring pairs, every view) has about 300 times
    more bins than the default.
    """
    if not isinstance(grid, ImageGrid) or grid.ndim != 3:
        raise ValueError(f"grid must be a 3D ImageGrid, got {grid!r}")
    layout = clinical_layout(grid, span, max_ring_difference)
    view_step = positive_int("view_step", view_step)
    return PETSinogramProjector(layout, grid, views=np.arange(0, layout.n_views, view_step))


def describe_projector(projector: Projector) -> dict:
    """JSON-ready description of a projector made by this module (rebuilt by :func:`projector_from_description`)."""
    grid = projector.grid if isinstance(projector, PETSinogramProjector) else projector.geometry.grid
    out: dict = {"grid_shape": list(grid.shape), "voxel_size_mm": list(grid.voxel_size_mm),
                 "origin_mm": list(grid.origin_mm)}
    if isinstance(projector, ParallelBeamProjector):
        g = projector.geometry
        out.update(kind="parallel_beam", n_views=g.n_views, n_bins=g.n_bins, bin_width_mm=g.bin_width_mm,
                   sinogram_axes=["plane", "view", "radial"][3 - len(projector.out_shape):])
    else:
        layout = projector.layout
        out.update(kind="pet_sinogram", scanner="clinical_whole_body", span=layout.span,
                   max_ring_difference=layout.max_ring_difference, n_radial=layout.n_radial,
                   views=projector.views.tolist(), sinogram_axes=list(layout.axis_order))
    out["sinogram_shape"] = list(projector.out_shape)
    return out


def projector_from_description(description: dict) -> Projector:
    """The projector described by :func:`describe_projector` (as stored in sample metadata)."""
    grid = ImageGrid(description["grid_shape"], description["voxel_size_mm"], description["origin_mm"])
    if description["kind"] == "parallel_beam":
        return ParallelBeamProjector(ParallelBeamGeometry(grid, description["n_views"], description["n_bins"],
                                                          description["bin_width_mm"]))
    if description["kind"] == "pet_sinogram":
        layout = SinogramLayout(RingScannerGeometry.clinical_whole_body(), span=description["span"],
                                max_ring_difference=description["max_ring_difference"],
                                n_radial=description["n_radial"])
        return PETSinogramProjector(layout, grid, views=np.array(description["views"]))
    raise ValueError(f"unknown projector kind {description['kind']!r}")


# --- detectors -----------------------------------------------------------------------------------

def projector_grid(projector: Projector) -> ImageGrid:
    """The image grid of a parallel-beam or PET sinogram projector."""
    return projector.grid if isinstance(projector, PETSinogramProjector) else projector.geometry.grid


def detector_shape(projector: Projector) -> tuple[int, int]:
    """``(n_rings, n_crystals_per_ring)`` of the (real or virtual) detectors of ``projector``."""
    if isinstance(projector, PETSinogramProjector):
        scanner = projector.layout.scanner
        return scanner.n_rings, scanner.n_crystals_per_ring
    g = projector.geometry
    return (g.grid.shape[0] if g.grid.ndim == 3 else 1), 2 * g.n_views


def crystal_pair_product(projector: Projector, crystal_values: np.ndarray) -> np.ndarray:
    """``v[ring1, c1] * v[ring2, c2]`` of the two detectors of every sinogram bin, shape ``projector.out_shape``.

    Parameters
    ----------
    projector : ParallelBeamProjector or PETSinogramProjector
    crystal_values : ndarray, shape ``detector_shape(projector)``

    Notes
    -----
    Parallel beam: ray ``(theta, s)`` meets the virtual ring of radius ``R``
    (``VIRTUAL_RING_MARGIN`` times the largest ``|s|`` or grid radius) at the
    polar angles ``theta +- arccos(s / R)``; each is rounded to the nearest of
    the ``2 n_views`` crystals. Slice ``k`` of a stack uses ring ``k``. PET
    sinograms: the bin's crystal pair (:meth:`~pet_projection.SinogramLayout.crystal_pairs`),
    averaged over the ring pairs of its plane.
    """
    crystal_values = np.asarray(crystal_values, dtype=np.float64)
    if crystal_values.shape != detector_shape(projector):
        raise ValueError(f"crystal_values must have shape {detector_shape(projector)}, got {crystal_values.shape}")
    if isinstance(projector, PETSinogramProjector):
        layout = projector.layout
        c1, c2 = (c[projector.views] for c in layout.crystal_pairs())  # (views, radial)
        planes = np.stack([np.mean([crystal_values[r1, c1] * crystal_values[r2, c2] for r1, r2 in pairs], axis=0)
                           for pairs in layout.plane_ring_pairs()], axis=-1)  # (views, radial, planes)
        order = [("view", "radial", "plane").index(name) for name in layout.axis_order]
        return np.ascontiguousarray(planes.transpose(order))
    g = projector.geometry
    n_crystals = crystal_values.shape[1]
    s = g.radial_positions_mm()
    radius = VIRTUAL_RING_MARGIN * max(np.abs(s).max(), g.grid.bounding_radius_mm())
    theta = g.angles_rad[:, None]
    half = np.arccos(s / radius)[None, :]
    index = [np.rint((theta + sign * half) / (2.0 * math.pi / n_crystals)).astype(np.int64) % n_crystals
             for sign in (1.0, -1.0)]
    pairs = crystal_values[:, index[0]] * crystal_values[:, index[1]]  # (rings, views, bins)
    return np.ascontiguousarray(pairs.reshape(projector.out_shape))


def radial_axis(projector: Projector) -> int:
    """Index of the radial axis in ``projector.out_shape``."""
    if isinstance(projector, PETSinogramProjector):
        return projector.layout.axis_order.index("radial")
    return len(projector.out_shape) - 1


def bin_width_mm(projector: Projector) -> float:
    """Radial bin spacing in mm (at the centre of the field of view for PET sinograms)."""
    if isinstance(projector, PETSinogramProjector):
        scanner = projector.layout.scanner
        return math.pi * scanner.radius_mm / scanner.n_crystals_per_ring
    return projector.geometry.bin_width_mm


# --- expected counts -----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ExpectedCounts:
    """Expected trues, scatter and randoms of one acquisition, each of the sinogram shape (float64).

    All three are proportional to the image, so :meth:`scaled` gives the
    expected counts of the image times a factor without projecting again.
    """

    trues: np.ndarray
    scatter: np.ndarray
    randoms: np.ndarray
    count_scale: float
    """Expected counts per unit of the image (``c`` of the module notes)."""

    @property
    def background(self) -> np.ndarray:
        """``scatter + randoms``: the additive term ``b`` of the system model."""
        return self.scatter + self.randoms

    @property
    def prompts(self) -> np.ndarray:
        return self.trues + self.scatter + self.randoms

    def scaled(self, factor: float) -> "ExpectedCounts":
        """The expected counts of ``factor`` times the image."""
        factor = float(factor)
        return ExpectedCounts(self.trues * factor, self.scatter * factor, self.randoms * factor,
                              self.count_scale * factor)

    def scale_for(self, total_counts: float) -> float:
        """The factor that makes the expected prompts sum to ``total_counts``."""
        total = float(self.prompts.sum())
        if total <= 0:
            raise ValueError("the image gives no counts (it is zero on every line of response)")
        return check_total_counts(total_counts) / total


class Acquisition:
    """One patient on the scanner: projector, resolution, attenuation, normalisation and background model.

    Parameters
    ----------
    projector : ParallelBeamProjector or PETSinogramProjector
    mu_map_per_mm : ndarray, shape ``projector.in_shape``
        Attenuation map at 511 keV (1/mm).
    settings : AcquisitionSettings
    rng : numpy.random.Generator
        Draws the crystal efficiencies (unless ``normalisation`` is given).
    normalisation : ndarray, shape ``projector.out_shape``, optional
        The scanner's normalisation factors ``n`` (> 0), e.g. those of an
        earlier acquisition on the same scanner; default: the product of
        log-normal crystal efficiencies drawn from ``rng``.

    Attributes
    ----------
    system : PETSystemModel
        ``diag(a n) P R`` (no background; see :meth:`expected`).
    attenuation, normalisation : ndarray, shape ``projector.out_shape``
    """

    def __init__(self, projector: Projector, mu_map_per_mm: np.ndarray, settings: AcquisitionSettings,
                 rng: np.random.Generator, normalisation: Optional[np.ndarray] = None) -> None:
        if not isinstance(projector, (ParallelBeamProjector, PETSinogramProjector)):
            raise TypeError(f"projector must be a ParallelBeamProjector or PETSinogramProjector, got "
                            f"{type(projector).__name__}")
        if not isinstance(settings, AcquisitionSettings):
            raise TypeError(f"settings must be AcquisitionSettings, got {type(settings).__name__}")
        self.projector = projector
        self.settings = settings
        grid = projector_grid(projector)
        self.resolution: Optional[LinearOperator] = (GaussianResolution(grid, settings.fwhm_mm)
                                                     if settings.fwhm_mm > 0 else None)
        self.attenuation = attenuation_factors(projector, np.asarray(mu_map_per_mm, dtype=np.float64))
        if normalisation is None:
            sigma = math.sqrt(math.log1p(settings.efficiency_spread**2))  # log-normal with that relative spread
            efficiencies = rng.lognormal(-0.5 * sigma**2, sigma, size=detector_shape(projector))
            self.normalisation = crystal_pair_product(projector, efficiencies)
        else:
            self.normalisation = np.asarray(normalisation, dtype=np.float64)
            if self.normalisation.shape != tuple(projector.out_shape):
                raise ValueError(f"normalisation has shape {self.normalisation.shape}, the projector's sinograms "
                                 f"{tuple(projector.out_shape)}")
            if not (self.normalisation > 0).all():
                raise ValueError("normalisation factors must be positive (and not NaN)")
        self.system = PETSystemModel(projector, attenuation=self.attenuation, normalisation=self.normalisation,
                                     resolution=self.resolution)
        self._randoms_shape = self.normalisation / self.normalisation.sum()
        self._scatter_sigma_bins = settings.scatter_fwhm_mm / FWHM_PER_SIGMA / bin_width_mm(projector)

    def expected(self, image: np.ndarray) -> ExpectedCounts:
        """Expected trues, scatter and randoms of ``image`` (shape ``projector.in_shape``, >= 0, counts per unit).

        Use :meth:`ExpectedCounts.scale_for` and :meth:`ExpectedCounts.scaled`
        for a given total number of counts.
        """
        trues = self.system.linear(np.asarray(image, dtype=np.float64))
        total_trues = float(trues.sum())
        sf, rf = self.settings.scatter_fraction, self.settings.randoms_fraction
        if sf > 0 and total_trues > 0:
            blurred = ndimage.gaussian_filter1d(trues / self.normalisation, self._scatter_sigma_bins,
                                                axis=radial_axis(self.projector), mode="constant")
            scatter = self.normalisation * blurred
            scatter *= sf / (1.0 - sf) * total_trues / scatter.sum()
        else:
            scatter = np.zeros_like(trues)
        randoms = self._randoms_shape * (rf / (1.0 - rf) * (total_trues + float(scatter.sum())))
        return ExpectedCounts(trues, scatter, randoms, 1.0)

    def attenuation_free(self, image: np.ndarray, count_scale: float) -> np.ndarray:
        """``P R (c x)``: expected trues with neither attenuation nor normalisation (the corrected sinogram)."""
        return PETSystemModel(self.projector, resolution=self.resolution).linear(
            np.asarray(image, dtype=np.float64) * count_scale)


def poisson_counts(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson counts of the expected sinogram ``expected`` (>= 0), as float32."""
    return rng.poisson(expected).astype(np.float32)


def thin_counts(counts: np.ndarray, dose_reduction_factor: float, rng: np.random.Generator) -> np.ndarray:
    """Binomial thinning: keep each count with probability ``1 / dose_reduction_factor`` (float32 result).

    If ``counts ~ Poisson(ybar)`` the result is ``Poisson(ybar / f)`` (mean and
    variance ``ybar / f``) and never exceeds ``counts``.
    """
    factor = check_dose_reduction_factor(dose_reduction_factor)
    counts = np.asarray(counts)
    if counts.size and (not np.all(np.isfinite(counts)) or counts.min() < 0 or np.any(counts != np.rint(counts))):
        raise ValueError("counts must be non-negative integers (possibly stored as floats)")
    return rng.binomial(counts.astype(np.int64), 1.0 / factor).astype(np.float32)
