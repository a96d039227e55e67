"""PET ring scanners and their sinogram (Michelogram) layout: which crystal pairs make up each sinogram bin.

Conventions: points are ``(x, y, z)`` in mm, angles in radians, the scanner
axis is ``z``. The design mirrors parallelproj's
``RegularPolygonPETScannerGeometry`` / ``RegularPolygonPETLORDescriptor``
(radial, view, plane axes; its bins in another order, see
:meth:`SinogramLayout.parallelproj_bins`) and STIR's segment / span convention for the planes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .validation import check_finite_real, positive_int
from .grid import MAX_LENGTH_MM, length_mm

AXIS_NAMES = ("radial", "view", "plane")
PARALLELPROJ_ORDER = ("radial", "view", "plane")
STIR_ORDER = ("plane", "view", "radial")


@dataclass(frozen=True, eq=False, init=False)
class RingScannerGeometry:
    """A cylindrical PET scanner whose rings are regular polygons of flat detector modules.

    Parameters
    ----------
    radius_mm : float
        Distance in mm from the scanner axis to the centre of each polygon side
        (the inner face of a module).
    n_sides : int
        Modules (polygon sides) per ring, at least 3.
    crystals_per_side : int
        Crystals along each side (tangentially). ``n_sides * crystals_per_side``
        must be even, so that a ring has ``N / 2`` sinogram views.
    crystal_spacing_mm : float
        Tangential crystal pitch along a side in mm. The crystals of one side
        must fit on it: ``crystals_per_side * crystal_spacing_mm <= 2 radius tan(pi / n_sides)``.
    ring_positions_mm : sequence of float
        ``z`` of every ring in mm, shape ``(n_rings,)``, strictly increasing.
    phi0_rad : float, optional
        Polar angle of the centre of the first side in radians (default 0).

    Notes
    -----
    Side ``i`` has its centre at ``radius (cos t_i, sin t_i)`` with
    ``t_i = phi0 + 2 pi i / n_sides``; its crystal ``j`` sits at that centre
    plus ``(j - (crystals_per_side - 1) / 2) * crystal_spacing_mm`` along the
    counter-clockwise tangent ``(-sin t_i, cos t_i)``. Crystal ``c = i *
    crystals_per_side + j`` of a ring therefore lies at increasing polar angle
    with ``c``, close to the nominal angle ``phi0 + 2 pi (c - (crystals_per_side - 1) / 2) / N``.
    """

    radius_mm: float
    n_sides: int
    crystals_per_side: int
    crystal_spacing_mm: float
    ring_positions_mm: np.ndarray
    phi0_rad: float

    def __init__(self, radius_mm: float, n_sides: int, crystals_per_side: int, crystal_spacing_mm: float,
                 ring_positions_mm: Sequence[float], phi0_rad: float = 0.0) -> None:
        radius_mm = length_mm("radius_mm", radius_mm, positive=True)
        n_sides = positive_int("n_sides", n_sides)
        if n_sides < 3:
            raise ValueError(f"n_sides must be at least 3 for a polygon ring, got {n_sides}")
        crystals_per_side = positive_int("crystals_per_side", crystals_per_side)
        if (n_sides * crystals_per_side) % 2:
            raise ValueError(f"n_sides * crystals_per_side must be even (N / 2 sinogram views), got "
                             f"{n_sides} * {crystals_per_side} = {n_sides * crystals_per_side}")
        crystal_spacing_mm = length_mm("crystal_spacing_mm", crystal_spacing_mm, positive=True)
        side_mm = 2.0 * radius_mm * math.tan(math.pi / n_sides)
        if crystals_per_side * crystal_spacing_mm > side_mm * (1.0 + 1e-9):
            raise ValueError(f"crystals_per_side * crystal_spacing_mm = {crystals_per_side * crystal_spacing_mm:g} mm "
                             f"does not fit on a side of {side_mm:g} mm (radius_mm={radius_mm}, n_sides={n_sides})")
        rings = _ring_positions(ring_positions_mm)
        phi0_rad = check_finite_real("phi0_rad", phi0_rad)
        object.__setattr__(self, "radius_mm", radius_mm)
        object.__setattr__(self, "n_sides", n_sides)
        object.__setattr__(self, "crystals_per_side", crystals_per_side)
        object.__setattr__(self, "crystal_spacing_mm", crystal_spacing_mm)
        object.__setattr__(self, "ring_positions_mm", rings)
        object.__setattr__(self, "phi0_rad", phi0_rad)

    @classmethod
    def small_research(cls) -> "RingScannerGeometry":
        """A preclinical-size scanner, approximating the Siemens Inveon.

        Approximate, from the published performance evaluation (Bao et al.,
        J Nucl Med 50:401, 2009): 16 detector blocks per ring of 20 x 20 LSO
        crystals at 1.59 mm pitch, 80 crystal rings (127 mm axial field of view),
        ring diameter 161 mm. Here: 16 sides x 20 crystals (320 per ring) at
        1.59 mm, radius 80 mm (a 16-gon of 31.8 mm sides closes at 79.9 mm),
        80 rings at 1.59 mm pitch centred on ``z = 0``.
        """
        return cls(80.0, 16, 20, 1.59, _centred_rings(80, 1.59))

    @classmethod
    def clinical_whole_body(cls) -> "RingScannerGeometry":
        """A clinical whole-body scanner, approximating the Siemens Biograph Vision 600.

        Approximate, from the vendor's published specifications and van Sluis
        et al., J Nucl Med 60:1031, 2019 (not verified here): ring diameter 82 cm,
        38 blocks per ring of 20 (transaxial) 3.2 mm LSO crystals (760 per ring),
        80 crystal rings over a 26.3 cm axial field of view. Here: radius 410 mm,
        38 sides x 20 crystals, tangential pitch 3.39 mm (3.2 mm crystals plus
        gaps, chosen so that 20 crystals fill a side of the 38-gon), 80 rings at
        3.29 mm pitch centred on ``z = 0``. For scale: parallelproj's own
        projector benchmark uses a 215 x 215 x 71 grid of 2.78 mm voxels with a
        clinical-size scanner.
        """
        return cls(410.0, 38, 20, 3.39, _centred_rings(80, 3.29))

    @property
    def n_crystals_per_ring(self) -> int:
        """``N = n_sides * crystals_per_side`` (even)."""
        return self.n_sides * self.crystals_per_side

    @property
    def n_rings(self) -> int:
        return int(self.ring_positions_mm.size)

    def crystal_positions_mm(self) -> np.ndarray:
        """Centres of the crystals' inner faces, shape ``(n_rings, n_crystals_per_ring, 3)``, ``(x, y, z)`` in mm."""
        side_angle = self.phi0_rad + 2.0 * math.pi * np.arange(self.n_sides) / self.n_sides
        tangential = (np.arange(self.crystals_per_side) - (self.crystals_per_side - 1) / 2.0) * self.crystal_spacing_mm
        cos_t, sin_t = np.cos(side_angle)[:, None], np.sin(side_angle)[:, None]
        x = (self.radius_mm * cos_t - tangential * sin_t).reshape(-1)
        y = (self.radius_mm * sin_t + tangential * cos_t).reshape(-1)
        shape = (self.n_rings, self.n_crystals_per_ring)
        z = np.broadcast_to(self.ring_positions_mm[:, None], shape)
        return np.stack([np.broadcast_to(x, shape), np.broadcast_to(y, shape), z], axis=-1)

    def __repr__(self) -> str:
        z = self.ring_positions_mm
        return (f"RingScannerGeometry(radius_mm={self.radius_mm}, n_sides={self.n_sides}, "
                f"crystals_per_side={self.crystals_per_side}, crystal_spacing_mm={self.crystal_spacing_mm}, "
                f"n_rings={self.n_rings} (z {z[0]:.4g} .. {z[-1]:.4g} mm), phi0_rad={self.phi0_rad})")


def _centred_rings(n_rings: int, pitch_mm: float) -> np.ndarray:
    return (np.arange(n_rings) - (n_rings - 1) / 2.0) * pitch_mm


def _ring_positions(values: Sequence[float]) -> np.ndarray:
    try:
        rings = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"ring_positions_mm must be a sequence of numbers in mm, got {values!r}") from None
    if rings.ndim != 1 or rings.size < 1:
        raise ValueError(f"ring_positions_mm must be a non-empty 1D sequence, got shape {rings.shape}")
    if not np.all(np.isfinite(rings)) or np.abs(rings).max() > MAX_LENGTH_MM:
        raise ValueError(f"ring_positions_mm must be finite and within +-{MAX_LENGTH_MM:g} mm")
    if np.any(np.diff(rings) <= 0):
        raise ValueError(f"ring_positions_mm must be strictly increasing, got {rings.tolist()}")
    rings.setflags(write=False)
    return rings


def _segments(span: int, max_ring_difference: int) -> tuple[tuple[int, tuple[int, int]], ...]:
    """``(segment_number, (min_diff, max_diff))`` in the storage order 0, -1, +1, -2, +2, ..."""
    half = (span - 1) // 2
    out = [(0, (-min(half, max_ring_difference), min(half, max_ring_difference)))]
    number = 1
    while number * span - half <= max_ring_difference:
        low, high = number * span - half, min(number * span + half, max_ring_difference)
        out += [(-number, (-high, -low)), (number, (low, high))]
        number += 1
    return tuple(out)


def _order(name: str, order: Sequence[str]) -> tuple[str, str, str]:
    items = tuple(order) if not isinstance(order, str) else (order,)
    if sorted(items) != sorted(AXIS_NAMES):
        raise ValueError(f"{name} must be a permutation of {AXIS_NAMES}, got {order!r}")
    return items  # type: ignore[return-value]


def _permute(data: Any, axes: tuple[int, ...]) -> Any:
    """Transpose NumPy / CuPy arrays (``transpose``) and torch tensors (``permute``) alike; returns a view."""
    return data.permute(axes) if hasattr(data, "permute") else data.transpose(axes)


class SinogramAxes:
    """What every sinogram layout shares: radial, view and plane axes in :attr:`axis_order`, and LOR tables.

    A layout (:class:`SinogramLayout`, :class:`~pet_projection.projdata.ProjDataLayout`)
    sets ``axis_order``, ``n_radial``, ``n_views`` and ``n_planes`` and
    implements :meth:`transaxial_endpoints_mm` and :meth:`plane_endpoints_z_mm`;
    a bin's LOR joins ``(x0, y0, z0)`` to ``(x1, y1, z1)`` with ``(x0, y0,
    x1, y1)`` from its (view, radial) entry and ``(z0, z1)`` from its plane.
    :class:`~pet_projection.PETSinogramProjector` projects any such layout.
    """

    axis_order: tuple[str, str, str]
    n_radial: int

    @property
    def n_views(self) -> int:
        raise NotImplementedError

    @property
    def n_planes(self) -> int:
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, int, int]:
        """Sinogram shape in :attr:`axis_order`."""
        return self._shape(self.axis_order)

    def _shape(self, order: Sequence[str]) -> tuple[int, int, int]:
        sizes = {"radial": self.n_radial, "view": self.n_views, "plane": self.n_planes}
        return tuple(sizes[name] for name in order)  # type: ignore[return-value]

    def transaxial_endpoints_mm(self) -> np.ndarray:
        """``(x0, y0, x1, y1)`` in mm of every (view, radial) bin, shape ``(n_views, n_radial, 4)``."""
        raise NotImplementedError

    def plane_endpoints_z_mm(self) -> np.ndarray:
        """``(z0, z1)`` in mm of both LOR ends in every plane, shape ``(n_planes, 2)``."""
        raise NotImplementedError

    def lor_endpoints(self) -> tuple[np.ndarray, np.ndarray]:
        """``(xstart_mm, xend_mm)`` of every bin, each of shape ``shape + (3,)``, ``(x, y, z)`` in mm.

        The arrays are C-contiguous and feed ``LORProjector(grid, xstart_mm,
        xend_mm)``; they are as large as the sinogram (times 3), so prefer
        :class:`~pet_projection.PETSinogramProjector`, which reads the two
        small tables instead.
        """
        xy = self.transaxial_endpoints_mm().transpose(1, 0, 2)  # (radial, view, 4)
        z = self.plane_endpoints_z_mm()
        full = (self.n_radial, self.n_views, self.n_planes, 1)
        axes = tuple(PARALLELPROJ_ORDER.index(name) for name in self.axis_order) + (3,)
        ends = []
        for end in (0, 1):
            rvp = np.concatenate([np.broadcast_to(xy[:, :, None, 2 * end:2 * end + 2], full[:3] + (2,)),
                                  np.broadcast_to(z[None, None, :, end:end + 1], full)], axis=-1)
            ends.append(np.ascontiguousarray(rvp.transpose(axes)))
        return ends[0], ends[1]

    def view_subsets(self, n_subsets: int) -> list[np.ndarray]:
        """Interleaved view indices for OSEM: subset ``k`` holds views ``k, k + n_subsets, ...``."""
        n_subsets = positive_int("n_subsets", n_subsets)
        if n_subsets > self.n_views:
            raise ValueError(f"n_subsets must be at most n_views = {self.n_views}, got {n_subsets}")
        return [np.arange(k, self.n_views, n_subsets) for k in range(n_subsets)]

    def convert_axis_order(self, data: Any, source: Sequence[str], target: Sequence[str]) -> Any:
        """Transpose sinograms ``(..., *shape in source order)`` to ``target`` order (a view, not a copy).

        Works on NumPy and CuPy arrays and torch tensors; leading batch axes
        are kept. Call ``np.ascontiguousarray`` (or ``.contiguous()``) before
        projecting, as the operators require C-contiguous data.
        """
        source, target = _order("source", source), _order("target", target)
        expected = self._shape(source)
        shape = tuple(getattr(data, "shape", ()))
        if shape[len(shape) - 3:] != expected or len(shape) < 3:
            raise ValueError(f"data must have shape (..., {', '.join(map(str, expected))}) for axis order {source}, "
                             f"got {shape}")
        batch = len(shape) - 3
        return _permute(data, tuple(range(batch)) + tuple(batch + source.index(name) for name in target))

    def to_axis_order(self, data: Any, order: Sequence[str]) -> Any:
        """Sinograms in :attr:`axis_order` to ``order``; see :meth:`convert_axis_order`."""
        return self.convert_axis_order(data, self.axis_order, order)

    def from_axis_order(self, data: Any, order: Sequence[str]) -> Any:
        """Sinograms in ``order`` to :attr:`axis_order`; see :meth:`convert_axis_order`."""
        return self.convert_axis_order(data, order, self.axis_order)

    def to_parallelproj(self, data: Any) -> Any:
        """To parallelproj's RVP axis order ``(radial, view, plane)``.

        Axis order only: parallelproj's own sinogram of the same scanner holds the bins in another radial,
        view and plane order (:meth:`SinogramLayout.parallelproj_bins`).
        """
        return self.to_axis_order(data, PARALLELPROJ_ORDER)

    def from_parallelproj(self, data: Any) -> Any:
        """From parallelproj's RVP order to :attr:`axis_order`."""
        return self.from_axis_order(data, PARALLELPROJ_ORDER)

    def to_stir(self, data: Any) -> Any:
        """To STIR's Interfile storage order ``Segment_AxialPos_View_TangPos``.

        The result has shape ``(..., n_planes, n_views, n_radial)``.

        The plane axis runs segment by segment in the sequence 0, -1, +1, ...
        with increasing axial position, so the segments' blocks ``(axial_pos,
        view, tang_pos)`` follow each other along it. For a
        :class:`~pet_projection.projdata.ProjDataLayout` (read from a STIR
        file) this is STIR's own order; for a :class:`SinogramLayout` only the
        axis and segment order are handled: STIR's view origin and direction,
        its sign of the tangential axis and ring differences, and arc
        correction are not (write such data with
        :func:`pet_projection.io.write_projdata` through a ``ProjDataLayout``).
        """
        return self.to_axis_order(data, STIR_ORDER)

    def from_stir(self, data: Any) -> Any:
        """From STIR's ``(plane, view, radial)`` storage order to :attr:`axis_order`; see :meth:`to_stir`."""
        return self.from_axis_order(data, STIR_ORDER)


@dataclass(frozen=True, eq=False, init=False)
class SinogramLayout(SinogramAxes):
    """Sinogram bins of a ring scanner: radial bins, views and Michelogram planes, and their order in memory.

    Parameters
    ----------
    scanner : RingScannerGeometry
    span : int, optional
        Odd, at least 1 (default 1). Span 1: every ring pair ``(r1, r2)`` with
        ``|r2 - r1| <= max_ring_difference`` is its own plane. Span ``s > 1``
        (STIR convention): segment 0 holds ring differences ``d = r2 - r1`` in
        ``[-(s-1)/2, (s-1)/2]``, segment ``+-k`` those in ``+-[k s - (s-1)/2,
        k s + (s-1)/2]`` (cut at ``max_ring_difference``); within a segment,
        ring pairs with the same ``r1 + r2`` are summed into one plane.
    max_ring_difference : int, optional
        Largest ``|r2 - r1|``, ``0 .. n_rings - 1`` (default ``n_rings - 1``).
    n_radial : int, optional
        Radial bins kept, odd, at most ``N - 1`` (default ``N - 1``, all); a
        smaller number keeps the central bins (LORs through the axis).
    axis_order : sequence of str, optional
        Order of the three sinogram axes in memory, a permutation of
        ``("radial", "view", "plane")``; default ``("radial", "view", "plane")``,
        parallelproj's RVP.

    Notes
    -----
    **Bins of a ring** (``N`` crystals, ``N`` even; ``N / 2`` views, ``N - 1``
    radial bins before trimming, every unordered crystal pair exactly once).
    Full radial bin ``r`` has offset ``i = r - (N/2 - 1)`` in ``-(N/2-1) .. N/2-1``.
    The pair ``(c1, c2)`` of view ``v`` and offset ``i`` has ccw index
    difference ``d = c2 - c1 = N/2 - i`` (1 .. N-1) and index sum
    ``S = c1 + c2 = 2 v + p``, with ``p = d mod 2`` so that
    ``c1 = (S - d) / 2`` and ``c2 = (S + d) / 2`` are integers (taken mod ``N``).
    On a circle (one crystal per side) the LOR is exactly the line
    ``x cos(phi) + y sin(phi) = R sin(pi i / N)`` with ``phi = phi0 + pi (S -
    (crystals_per_side - 1)) / N``: radial coordinate increasing with ``r``, and
    within a view the even-``d`` and odd-``d`` bins interleave at the two angles
    ``phi_v`` and ``phi_v + pi / N`` (the usual interleaved sinogram, as in
    parallelproj and STIR; the view angle step is ``2 pi / N``). On a polygon
    with several crystals per side the LORs of a view deviate from these angles
    by the faceting (each crystal sits off the circle of nominal angles).
    ``xstart`` is crystal ``c1`` in ring ``r1``, ``xend`` is ``c2`` in ring ``r2``.

    **Planes** are stored segment by segment in the order 0, -1, +1, -2, +2, ...
    (Siemens / ECAT7, as STIR reads them), each segment's planes by increasing
    ``r1 + r2`` (increasing ``z``); :meth:`plane_ring_pairs` lists the ring
    pairs summed in each plane, in increasing ``r1``.
    """

    scanner: RingScannerGeometry
    span: int
    max_ring_difference: int
    n_radial: int
    axis_order: tuple[str, str, str]
    segment_numbers: tuple[int, ...]
    segments: tuple[tuple[int, int], ...]
    _planes: tuple[tuple[tuple[int, int], ...], ...]
    _plane_segments: tuple[int, ...]

    def __init__(self, scanner: RingScannerGeometry, span: int = 1, max_ring_difference: Optional[int] = None,
                 n_radial: Optional[int] = None, axis_order: Sequence[str] = PARALLELPROJ_ORDER) -> None:
        if not isinstance(scanner, RingScannerGeometry):
            raise TypeError(f"scanner must be a RingScannerGeometry, got {type(scanner).__name__}")
        span = positive_int("span", span)
        if span % 2 == 0:
            raise ValueError(f"span must be odd (1, 3, 5, ...), got {span}")
        n_rings = scanner.n_rings
        if max_ring_difference is None:
            max_ring_difference = n_rings - 1
        max_ring_difference = positive_int("max_ring_difference", max_ring_difference, 0, n_rings - 1)
        full = scanner.n_crystals_per_ring - 1
        n_radial = full if n_radial is None else positive_int("n_radial", n_radial)
        if n_radial > full or n_radial % 2 == 0:
            raise ValueError(f"n_radial must be odd and at most N - 1 = {full} (central bins kept), got {n_radial}")
        numbered = _segments(span, int(max_ring_difference))
        planes, plane_segments = [], []
        for number, (low, high) in numbered:
            pairs = [(r1, r1 + d) for d in range(low, high + 1) for r1 in range(n_rings) if 0 <= r1 + d < n_rings]
            for ring_sum in sorted({r1 + r2 for r1, r2 in pairs}):
                planes.append(tuple(sorted(p for p in pairs if sum(p) == ring_sum)))
                plane_segments.append(number)
        object.__setattr__(self, "scanner", scanner)
        object.__setattr__(self, "span", span)
        object.__setattr__(self, "max_ring_difference", int(max_ring_difference))
        object.__setattr__(self, "n_radial", n_radial)
        object.__setattr__(self, "axis_order", _order("axis_order", axis_order))
        object.__setattr__(self, "segment_numbers", tuple(number for number, _ in numbered))
        object.__setattr__(self, "segments", tuple(limits for _, limits in numbered))
        object.__setattr__(self, "_planes", tuple(planes))
        object.__setattr__(self, "_plane_segments", tuple(plane_segments))

    @property
    def n_views(self) -> int:
        return self.scanner.n_crystals_per_ring // 2

    @property
    def n_planes(self) -> int:
        return len(self._planes)

    def plane_ring_pairs(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """Per plane, the ring pairs ``(r1, r2)`` summed in it (one pair for span 1)."""
        return self._planes

    def plane_segment_numbers(self) -> np.ndarray:
        """Segment number of every plane, shape ``(n_planes,)``."""
        return np.array(self._plane_segments, dtype=np.int64)

    def crystal_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """In-ring crystal indices ``(c1, c2)`` of every bin, each of shape ``(n_views, n_radial)`` (see Notes)."""
        n = self.scanner.n_crystals_per_ring
        first = (n - 1 - self.n_radial) // 2
        offset = np.arange(first, first + self.n_radial) - (n // 2 - 1)
        difference = n // 2 - offset
        index_sum = 2 * np.arange(self.n_views)[:, None] + difference % 2
        return (index_sum - difference) // 2 % n, (index_sum + difference) // 2 % n

    def transaxial_endpoints_mm(self) -> np.ndarray:
        """Crystal centres ``(x0, y0, x1, y1)`` (mm) of crystals ``c1`` and ``c2`` of every (view, radial) bin,
        shape ``(n_views, n_radial, 4)``."""
        ring_xy = self.scanner.crystal_positions_mm()[0, :, :2]
        c1, c2 = self.crystal_pairs()
        return np.concatenate([ring_xy[c1], ring_xy[c2]], axis=-1)

    def plane_endpoints_z_mm(self) -> np.ndarray:
        """``(z of ring r1, z of ring r2)`` per plane, shape ``(n_planes, 2)``; a merged plane (span > 1) takes the
        mean over its ring pairs (``x``, ``y`` are the same in every ring)."""
        z = self.scanner.ring_positions_mm
        return np.array([[np.mean([z[pair[end]] for pair in pairs]) for end in (0, 1)] for pairs in self._planes])

    def parallelproj_bins(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where this layout's bins sit in parallelproj's sinogram of the same scanner: ``(radial, view, plane)``.

        parallelproj's ``RegularPolygonPETLORDescriptor(scanner, radial_trim=(N + 1 - n_radial) // 2,
        max_ring_difference)`` of its ``RegularPolygonPETScannerGeometry`` built with the same radius, sides,
        crystals per side, spacing and rings (``symmetry_axis=0``: its points are ``(z, y, x)``) has the same
        number of radial bins, views and (span 1) planes, with the same start and end crystal and ring of every
        LOR it shares, in another order:

        - radial: its axis is shifted by one bin; our bin ``q`` is its bin ``q - 1`` (``radial[0] = -1``: our
          first bin, crystals ``N - t`` apart counter-clockwise with ``t = (N + 1 - n_radial) / 2``, is not in
          its sinogram, whose last bin holds crystals ``t - 1`` apart instead; ``t = 1`` makes those the same
          crystal twice);
        - view: reversed, our view ``v`` is its view ``N / 2 - 1 - v``;
        - plane: it stores ring difference 0, then for ``i = 1, 2, ...`` the pairs (start ring ``r``, end ring
          ``r + i``) and then (``r + i``, ``r``), each by increasing ``r``; we store segment ``-i`` (the end ring
          below the start ring) before ``+i``.

        Returns
        -------
        radial : ndarray of int, shape ``(n_radial,)``
            Its radial index of each of our radial bins, ``-1`` where it has none.
        view : ndarray of int, shape ``(n_views,)``
            Its view index of each of our views.
        plane : ndarray of int, shape ``(n_planes, k)``
            Its plane index of every ring pair of each of our planes (:meth:`plane_ring_pairs`), ``k`` the most
            ring pairs of a plane (1 for span 1), padded with ``-1``. A merged plane (span > 1) is the mean of
            these LORs' ``z``, not one of its planes.
        """
        n_rings = self.scanner.n_rings
        radial = np.arange(self.n_radial) - 1
        view = self.n_views - 1 - np.arange(self.n_views)
        plane = np.full((self.n_planes, max(len(pairs) for pairs in self._planes)), -1, dtype=np.int64)
        for p, pairs in enumerate(self._planes):
            for k, (r1, r2) in enumerate(pairs):
                i = abs(r2 - r1)
                first = n_rings + 2 * (i - 1) * n_rings - i * (i - 1)  # blocks of ring differences below i
                plane[p, k] = r1 if i == 0 else (first + r1 if r2 > r1 else first + n_rings - i + r2)
        return radial, view, plane

    def __repr__(self) -> str:
        return (f"SinogramLayout(scanner={self.scanner!r}, span={self.span}, "
                f"max_ring_difference={self.max_ring_difference}, n_radial={self.n_radial}, "
                f"axis_order={self.axis_order}, shape={self.shape}, segments={len(self.segments)})")


def lor_endpoints(layout: SinogramAxes) -> tuple[np.ndarray, np.ndarray]:
    """``layout.lor_endpoints()``: LOR ends ``(xstart_mm, xend_mm)``, each ``layout.shape + (3,)`` in mm."""
    if not isinstance(layout, SinogramAxes):
        raise TypeError(f"layout must be a SinogramLayout or ProjDataLayout, got {type(layout).__name__}")
    return layout.lor_endpoints()
