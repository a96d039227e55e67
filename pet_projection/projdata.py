"""STIR's cylindrical projection data: scanners and sinogram layouts as STIR defines them.

STIR (Thielemans et al., Phys Med Biol 57:867, 2012) stores PET sinograms as
segments of ring differences, each a block of (axial position, view,
tangential position) bins, and places every bin's LOR with the formulas of its
``ProjDataInfoCylindrical`` classes. :class:`ProjDataLayout` reproduces those
formulas, so that data read from STIR's Interfile files
(:mod:`pet_projection.io`) are projected and reconstructed with the geometry
STIR gave them, through the same :class:`~pet_projection.PETSinogramProjector`
as every other layout.

STIR's gantry frame is this package's ``(x, y, z)`` frame unchanged: a bin of
view angle ``phi`` and tangential coordinate ``s`` is the line ``x cos(phi) +
y sin(phi) = s`` (as in :class:`~pet_projection.ParallelBeamGeometry`),
detector 0 sits at ``(0, -R)`` with detector numbers increasing towards
``+x``, and ``z = 0`` is the middle of the scanner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .validation import check_real, positive_int
from .grid import length_mm
from .scanner import STIR_ORDER, RingScannerGeometry, SinogramAxes, _order

# STIR's two storage orders of projection data in a file (``matrix axis label [2], [3]``)
STORAGE_ORDERS = ("Segment_AxialPos_View_TangPos", "Segment_View_AxialPos_TangPos")


@dataclass(frozen=True)
class CylindricalScanner:
    """A cylindrical PET scanner as STIR describes it (the ``Scanner parameters`` block of an Interfile header).

    Parameters
    ----------
    name : str
        STIR's scanner name (``Scanner type``), e.g. ``"Siemens mMR"``.
    n_rings, n_detectors_per_ring : int
        Rings, and detectors per ring (even).
    inner_ring_radius_mm, average_doi_mm : float
        Inner radius of the detector ring and average depth of interaction in
        mm; LORs end on the cylinder of the effective radius, their sum.
    ring_spacing_mm : float
        Axial distance between neighbouring rings in mm.
    default_bin_size_mm : float
        STIR's default (arc-corrected) bin size in mm; headers may give -1 for "not set".
    view_offset_rad : float, optional
        STIR's intrinsic azimuthal tilt (``View offset (degrees)``), in radians.
    max_non_arc_corrected_bins, default_arc_corrected_bins : int, optional
        STIR's bin counts (informational; 0 = not set).
    details : tuple of (str, str), optional
        Other scanner keys (blocks, buckets, energy resolution) as written in
        the header, kept so that a file is written back with them.

    Notes
    -----
    Ring ``r`` sits at ``z = (r - (n_rings - 1) / 2) * ring_spacing_mm``;
    detector ``d`` at polar angle ``psi = 2 pi d / n_detectors_per_ring`` (plus
    the tilt), at ``x = R sin(psi)``, ``y = -R cos(psi)`` (STIR's
    ``LORCoordinates``).
    """

    name: str
    n_rings: int
    n_detectors_per_ring: int
    inner_ring_radius_mm: float
    average_doi_mm: float
    ring_spacing_mm: float
    default_bin_size_mm: float
    view_offset_rad: float = 0.0
    max_non_arc_corrected_bins: int = 0
    default_arc_corrected_bins: int = 0
    details: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        positive_int("n_rings", self.n_rings)
        if positive_int("n_detectors_per_ring", self.n_detectors_per_ring, 2) % 2:
            raise ValueError(f"n_detectors_per_ring must be even, got {self.n_detectors_per_ring}")
        length_mm("inner_ring_radius_mm", self.inner_ring_radius_mm, positive=True)
        length_mm("average_doi_mm", self.average_doi_mm)
        length_mm("ring_spacing_mm", self.ring_spacing_mm, positive=True)
        length_mm("default_bin_size_mm", self.default_bin_size_mm)
        check_real("view_offset_rad", self.view_offset_rad)
        if self.effective_radius_mm <= 0:
            raise ValueError(f"the effective ring radius inner_ring_radius_mm + average_doi_mm must be positive, "
                             f"got {self.effective_radius_mm} mm")

    @property
    def effective_radius_mm(self) -> float:
        """``inner_ring_radius_mm + average_doi_mm``: the radius on which STIR places LOR ends."""
        return self.inner_ring_radius_mm + self.average_doi_mm

    def ring_positions_mm(self) -> np.ndarray:
        """``z`` of every ring in mm, centred on the middle of the scanner, shape ``(n_rings,)``."""
        return (np.arange(self.n_rings) - (self.n_rings - 1) / 2.0) * self.ring_spacing_mm

    def ring_geometry(self) -> RingScannerGeometry:
        """The scanner as a :class:`RingScannerGeometry`: one crystal per side of an ``N``-gon, so the crystals sit
        on the circle of the effective radius at STIR's detector angles (crystal ``c`` is STIR's detector ``c``)."""
        radius = self.effective_radius_mm
        n = self.n_detectors_per_ring
        return RingScannerGeometry(radius, n, 1, 2.0 * math.pi * radius / n, self.ring_positions_mm(),
                                   phi0_rad=-math.pi / 2.0 + self.view_offset_rad)

    def detector_positions_mm(self, detector: np.ndarray, ring: np.ndarray) -> np.ndarray:
        """``(x, y, z)`` in mm of detectors ``detector`` in rings ``ring``, shape ``(..., 3)``.

        ``detector`` and ``ring`` are integer arrays of one shape.
        """
        psi = 2.0 * math.pi * np.asarray(detector) / self.n_detectors_per_ring + self.view_offset_rad
        radius = self.effective_radius_mm
        z = self.ring_positions_mm()[np.asarray(ring)]
        return np.stack([radius * np.sin(psi), -radius * np.cos(psi), z], axis=-1)


# Scanners that STIR knows by name, for headers that give only the name (``originating system``).
# Values from STIR's Scanner.cxx (UCL/STIR, ``Scanner::Scanner(Type)``): rings, detectors per ring,
# inner ring radius, average depth of interaction, ring spacing and default bin size in mm,
# max non-arc-corrected bins, default arc-corrected bins.
KNOWN_SCANNERS = {
    "siemens mmr": ("Siemens mMR", 64, 504, 328.0, 7.0, 4.0625, 2.08626, 344, 344),
    "prt-1": ("PRT-1", 16, 384, 373.0, 7.0, 6.75, 3.1088, 128, 128),
    "ecat 931": ("ECAT 931", 8, 512, 510.0, 7.0, 13.5, 3.129, 192, 192),
}
SCANNER_ALIASES = {"mmr": "siemens mmr", "2008": "siemens mmr", "rpt": "prt-1"}


def known_scanner(name: str) -> Optional[CylindricalScanner]:
    """The scanner STIR knows as ``name`` (case and spaces ignored), or ``None``."""
    key = " ".join(name.lower().replace("_", " ").split())
    values = KNOWN_SCANNERS.get(SCANNER_ALIASES.get(key, key))
    if values is None:
        return None
    label, rings, detectors, radius, doi, spacing, bin_size, non_arc, arc = values
    return CylindricalScanner(label, rings, detectors, radius, doi, spacing, bin_size, 0.0, non_arc, arc)


@dataclass(frozen=True, eq=False, init=False)
class ProjDataLayout(SinogramAxes):
    """Sinogram bins of STIR cylindrical projection data (``ProjDataInfoCylindricalArcCorr`` / ``NoArcCorr``).

    Parameters
    ----------
    scanner : CylindricalScanner
    segments : sequence of (int, int)
        ``(min, max)`` ring difference ``ring2 - ring1`` of every segment, in
        the order of the data (the plane axis runs through the segments in
        this order). STIR numbers segments by their average ring difference:
        the one containing 0 is segment 0.
    n_axial : sequence of int
        Axial positions per segment (same order).
    n_views : int
        Views over 180 degrees; ``n_detectors_per_ring / 2`` divided by an
        integer view-mashing factor, or any number for arc-corrected data.
    n_tangential : int
        Tangential positions ``t = -(n // 2) .. n - 1 - n // 2``.
    arc_corrected : bool
        Arc-corrected bins are ``bin_size_mm`` apart; otherwise bin ``t`` is
        the detector pair ``t`` steps off the diameter, at ``s = R sin(t pi / N)``.
    bin_size_mm : float, optional
        Tangential sampling of arc-corrected data (default: the scanner's
        default bin size).
    axis_order : sequence of str, optional
        Axis order of the arrays in memory, default STIR's
        ``("plane", "view", "radial")`` (the radial axis is STIR's tangential one).
    storage_order : str, optional
        Order of the file the layout came from, one of :data:`STORAGE_ORDERS`
        (used when writing it back).

    Notes
    -----
    STIR's formulas (``ProjDataInfoCylindrical``): view ``v`` has angle
    ``phi = v pi / n_views + offset``, where the offset is the scanner's view
    offset plus ``(pi / (N/2)) (mash - 1) / 2`` for mashed views; axial
    position ``a`` of a segment with ring differences ``[d0, d1]`` has its LOR
    midpoint at ``m = (a - (n_axial - 1) / 2) * ring_spacing / k`` (``k = 1`` if
    ``d0 == d1``, else 2); the LOR joins ``(s cos phi + A sin phi, s sin phi -
    A cos phi, m - delta / 2)`` (ring 1, the LOR's start) to ``(s cos phi - A
    sin phi, s sin phi + A cos phi, m + delta / 2)`` with ``A = sqrt(R^2 -
    s^2)``, ``R`` the effective radius and ``delta = ring_spacing (d0 + d1) /
    2``. Like STIR, odd tangential positions of non-arc-corrected data keep
    the view's angle (STIR ignores their half-step interleave).
    """

    scanner: CylindricalScanner
    segments: tuple[tuple[int, int], ...]
    n_axial: tuple[int, ...]
    _n_views: int
    n_radial: int
    arc_corrected: bool
    bin_size_mm: float
    axis_order: tuple[str, str, str]
    storage_order: str

    def __init__(self, scanner: CylindricalScanner, segments: Sequence[tuple[int, int]], n_axial: Sequence[int],
                 n_views: int, n_tangential: int, arc_corrected: bool, bin_size_mm: Optional[float] = None,
                 axis_order: Sequence[str] = STIR_ORDER, storage_order: str = STORAGE_ORDERS[0]) -> None:
        if not isinstance(scanner, CylindricalScanner):
            raise TypeError(f"scanner must be a CylindricalScanner, got {type(scanner).__name__}")
        segments = tuple((int(low), int(high)) for low, high in segments)
        n_axial = tuple(positive_int("n_axial", n) for n in n_axial)
        if not segments or len(segments) != len(n_axial):
            raise ValueError(f"segments and n_axial must be non-empty and of one length, got {len(segments)} "
                             f"segments and {len(n_axial)} axial sizes")
        for (low, high), n in zip(segments, n_axial):
            if low > high or max(abs(low), abs(high)) >= scanner.n_rings:
                raise ValueError(f"segment ring differences ({low}, {high}) must satisfy min <= max and lie within "
                                 f"+-(n_rings - 1) = {scanner.n_rings - 1}")
            nearest = 0 if low <= 0 <= high else min(abs(low), abs(high))
            most = scanner.n_rings - nearest if low == high else 2 * (scanner.n_rings - nearest) - 1
            if n > most:
                raise ValueError(f"segment ({low}, {high}) has {n} axial positions, more than the {most} that "
                                 f"{scanner.n_rings} rings give")
        n_views = positive_int("n_views", n_views)
        n_tangential = positive_int("n_tangential", n_tangential)
        if bin_size_mm is None:
            bin_size_mm = scanner.default_bin_size_mm
        bin_size_mm = length_mm("bin_size_mm", bin_size_mm)
        if arc_corrected and bin_size_mm <= 0:
            raise ValueError(f"arc-corrected data need a positive bin_size_mm, got {bin_size_mm}")
        if storage_order not in STORAGE_ORDERS:
            raise ValueError(f"storage_order must be one of {STORAGE_ORDERS}, got {storage_order!r}")
        object.__setattr__(self, "scanner", scanner)
        object.__setattr__(self, "segments", segments)
        object.__setattr__(self, "n_axial", n_axial)
        object.__setattr__(self, "_n_views", n_views)
        object.__setattr__(self, "n_radial", n_tangential)
        object.__setattr__(self, "arc_corrected", bool(arc_corrected))
        object.__setattr__(self, "bin_size_mm", bin_size_mm)
        object.__setattr__(self, "axis_order", _order("axis_order", axis_order))
        object.__setattr__(self, "storage_order", storage_order)
        s = self.tangential_positions_mm()
        if np.abs(s).max() >= scanner.effective_radius_mm:
            raise ValueError(f"tangential positions reach |s| = {np.abs(s).max():g} mm, beyond the effective ring "
                             f"radius {scanner.effective_radius_mm:g} mm: the bins do not fit in the scanner")

    @property
    def n_views(self) -> int:
        return self._n_views

    @property
    def n_planes(self) -> int:
        return sum(self.n_axial)

    @property
    def view_mashing(self) -> int:
        """``(N / 2) / n_views`` when it is an integer, else 0 (views not made by mashing)."""
        half = self.scanner.n_detectors_per_ring // 2
        return half // self.n_views if half % self.n_views == 0 else 0

    def segment_numbers(self) -> tuple[int, ...]:
        """STIR's segment number of every segment (data order): rank by average ring difference, 0 for the one
        holding ring difference 0."""
        ranked = sorted(range(len(self.segments)), key=lambda i: sum(self.segments[i]))
        zero = next((rank for rank, i in enumerate(ranked) if self.segments[i][0] <= 0 <= self.segments[i][1]), None)
        if zero is None:
            raise ValueError(f"no segment holds ring difference 0: {self.segments}")
        numbers = [0] * len(self.segments)
        for rank, i in enumerate(ranked):
            numbers[i] = rank - zero
        return tuple(numbers)

    def plane_segments(self) -> np.ndarray:
        """Index (into :attr:`segments`) of the segment of every plane, shape ``(n_planes,)``."""
        return np.repeat(np.arange(len(self.segments)), self.n_axial)

    def view_angles_rad(self) -> np.ndarray:
        """``phi`` of every view in radians, shape ``(n_views,)`` (see Notes)."""
        offset = self.scanner.view_offset_rad
        if self.view_mashing > 1:
            offset += math.pi / (self.scanner.n_detectors_per_ring / 2) * (self.view_mashing - 1) / 2.0
        return np.arange(self.n_views) * math.pi / self.n_views + offset

    def tangential_positions_mm(self) -> np.ndarray:
        """``s`` of every tangential position in mm, shape ``(n_radial,)``."""
        t = np.arange(self.n_radial) - self.n_radial // 2
        if self.arc_corrected:
            return t * self.bin_size_mm
        return self.scanner.effective_radius_mm * np.sin(t * math.pi / self.scanner.n_detectors_per_ring)

    def transaxial_endpoints_mm(self) -> np.ndarray:
        """LOR ends ``(x0, y0, x1, y1)`` in mm on the cylinder of the effective radius.

        Shape ``(n_views, n_radial, 4)``.
        """
        phi = self.view_angles_rad()[:, None]
        s = self.tangential_positions_mm()[None, :]
        half_chord = np.sqrt(self.scanner.effective_radius_mm ** 2 - s ** 2)
        c, d = np.cos(phi), np.sin(phi)
        return np.stack([s * c + half_chord * d, s * d - half_chord * c,
                         s * c - half_chord * d, s * d + half_chord * c], axis=-1)

    def plane_endpoints_z_mm(self) -> np.ndarray:
        """``(z of ring 1, z of ring 2)`` of every plane in mm, shape ``(n_planes, 2)`` (see Notes)."""
        spacing = self.scanner.ring_spacing_mm
        ends = []
        for (low, high), n in zip(self.segments, self.n_axial):
            sampling = spacing if low == high else spacing / 2.0
            m = (np.arange(n) - (n - 1) / 2.0) * sampling
            half = spacing * (low + high) / 4.0
            ends.append(np.stack([m - half, m + half], axis=-1))
        return np.concatenate(ends)

    def detector_pairs(self, plane: np.ndarray, view: np.ndarray,
                       radial: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Detectors and rings ``(detector1, ring1, detector2, ring2)`` of bins ``(plane, view, radial)`` (STIR order).

        STIR's ``get_det_pos_pair_for_bin`` for span-1, unmashed,
        non-arc-corrected data: ``d1 = (v + floor(t / 2)) mod N``, ``d2 = (v -
        floor((t + 1) / 2) + N / 2) mod N``; a segment of ring difference
        ``d`` has ``ring1 = a`` and ``ring2 = a + d`` for ``d >= 0``, ``ring1 = a
        - d``, ``ring2 = a`` otherwise. The inverse of :meth:`bins_of_detector_pairs`.
        """
        if self.arc_corrected or self.view_mashing != 1 or any(low != high for low, high in self.segments):
            raise ValueError("bins have single detector pairs only in span-1, unmashed, non-arc-corrected layouts")
        plane, view = np.asarray(plane, dtype=np.int64), np.asarray(view, dtype=np.int64)
        t = np.asarray(radial, dtype=np.int64) - self.n_radial // 2
        n = self.scanner.n_detectors_per_ring
        detector1 = (view + (t >> 1)) % n
        detector2 = (view - ((t + 1) >> 1) + n // 2) % n
        segment = self.plane_segments()[plane]
        difference = np.array([low for low, _ in self.segments], dtype=np.int64)[segment]
        axial = plane - np.concatenate([[0], np.cumsum(self.n_axial)[:-1]])[segment]
        ring1 = np.where(difference >= 0, axial, axial - difference)
        return detector1, ring1, detector2, ring1 + difference

    def bins_of_detector_pairs(self, detector1: np.ndarray, ring1: np.ndarray, detector2: np.ndarray,
                               ring2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The bins ``(plane, view, radial)`` of detector pairs, with STIR's mapping, and which pairs have a bin.

        Parameters
        ----------
        detector1, ring1, detector2, ring2 : array_like of int, one shape
            Detector (``0 .. N-1``) and ring of both ends of each LOR.

        Returns
        -------
        plane, view, radial : ndarray of int64
            Indices into arrays of :meth:`shape` in STIR order ``(plane, view, radial)``.
        valid : ndarray of bool
            ``False`` where the pair lies outside the layout (ring difference
            in no segment, axial or tangential position out of range); the
            indices there are 0.

        Notes
        -----
        STIR's ``ProjDataInfoCylindricalNoArcCorr``: ``t = (d1 - d2 + 3N/2) mod
        N`` and ``v = (d1 - floor(t / 2)) mod N``, folded into ``v < N/2`` with
        the detectors (and rings) swapped where STIR swaps them; then ``v`` is
        divided by the view mashing. Only non-arc-corrected layouts have
        detector pairs.
        """
        if self.arc_corrected or self.view_mashing == 0:
            raise ValueError("detector pairs map to bins only in non-arc-corrected layouts with n_views = N / 2 / "
                             "(integer mashing)")
        n = self.scanner.n_detectors_per_ring
        half = n // 2
        d1, d2 = np.asarray(detector1, dtype=np.int64), np.asarray(detector2, dtype=np.int64)
        r1, r2 = np.asarray(ring1, dtype=np.int64), np.asarray(ring2, dtype=np.int64)
        tang = (d1 - d2 + 3 * half) % n
        view = (d1 - (tang >> 1) + n) % n
        upper = view >= half
        view = np.where(upper, view - half, view)
        far = tang >= half
        swap = np.where(upper, ~far, far)
        tang = np.where(upper, np.where(far, tang - n, -tang), np.where(far, n - tang, tang))
        ring_a, ring_b = np.where(swap, r2, r1), np.where(swap, r1, r2)
        view = view // self.view_mashing
        radial = tang + self.n_radial // 2
        valid = (radial >= 0) & (radial < self.n_radial)
        plane = np.zeros_like(radial)
        difference, ring_sum = ring_b - ring_a, ring_a + ring_b
        first_plane = np.concatenate([[0], np.cumsum(self.n_axial)[:-1]])
        in_segment = np.zeros(radial.shape, dtype=bool)
        for (low, high), n_ax, first in zip(self.segments, self.n_axial, first_plane):
            per_ring = 1 if low == high else 2
            # m / sampling + (n_ax - 1) / 2 with m = (ring_sum - (n_rings - 1)) * spacing / 2
            twice = (ring_sum - (self.scanner.n_rings - 1)) * per_ring + (n_ax - 1)
            member = (difference >= low) & (difference <= high) & (twice % 2 == 0)
            axial = twice // 2
            member &= (axial >= 0) & (axial < n_ax)
            plane = np.where(member, first + axial, plane)
            in_segment |= member
        valid &= in_segment
        zero = np.zeros_like(radial)
        return (np.where(valid, plane, zero), np.where(valid, view, zero), np.where(valid, radial, zero), valid)

    def __repr__(self) -> str:
        kind = "arc-corrected" if self.arc_corrected else "non-arc-corrected"
        return (f"ProjDataLayout(scanner={self.scanner.name!r} ({self.scanner.n_rings} rings x "
                f"{self.scanner.n_detectors_per_ring} detectors, R = {self.scanner.effective_radius_mm:g} mm), "
                f"segments={self.segments}, n_axial={self.n_axial}, n_views={self.n_views}, "
                f"n_tangential={self.n_radial}, {kind}, shape={self.shape} in {self.axis_order})")
