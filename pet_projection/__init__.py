"""pet_projection: exact, fast tomographic projectors for PET and parallel-beam data.

Imports need only NumPy, SciPy and Numba; torch is used by
:mod:`pet_projection.autograd` only when that module is imported.

Conventions (lengths in mm, angles in radians): images have shape
``(..., [nz,] ny, nx)``, voxel ``(k, i, j)`` sits at
``x = (j - (nx-1)/2) dx + ox`` (likewise ``y``, ``z``), points are ``(x, y, z)``.

The package exports the projector library only. Above it, in their own
subpackages: :mod:`pet_projection.attention` (TMA and clinician ROI edits),
:mod:`pet_projection.masks` (RMAS/DMM and the positive/negative constraints)
and :mod:`pet_projection.simulation` (the PET simulator).
"""

from .geometry import ParallelBeamGeometry
from .grid import ImageGrid
from .operators import AdjointOperator, ComposedOperator, DiagonalOperator, LinearOperator
from .physics import BroadcastDiagonalOperator, GaussianResolution, PETSystemModel, attenuation_factors
from .projdata import CylindricalScanner, ProjDataLayout
from .projectors import ListmodeProjector, LORProjector, ParallelBeamProjector, PETSinogramProjector
from .scanner import RingScannerGeometry, SinogramLayout, lor_endpoints
from .recon import fbp, map_tv, mlem, osem
from .tof import TOFParameters

__version__ = "0.1.0"

__all__ = [
    # geometry and operators
    "AdjointOperator",
    "ComposedOperator",
    "DiagonalOperator",
    "ImageGrid",
    "LinearOperator",
    "LORProjector",
    "ParallelBeamGeometry",
    "ParallelBeamProjector",
    "PETSinogramProjector",
    "ListmodeProjector",
    "TOFParameters",
    # system model and reconstruction
    "BroadcastDiagonalOperator",
    "GaussianResolution",
    "PETSystemModel",
    "attenuation_factors",
    "fbp",
    "map_tv",
    "mlem",
    "osem",
    # PET ring scanners and Michelogram sinogram layouts
    "RingScannerGeometry",
    "SinogramLayout",
    "lor_endpoints",
    # STIR's cylindrical projection data (read by pet_projection.io)
    "CylindricalScanner",
    "ProjDataLayout",
]
