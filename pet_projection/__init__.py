"""pet_projection: exact, fast tomographic projectors for PET and parallel-beam data.

Imports need only NumPy, SciPy and Numba; torch is used by
:mod:`pet_projection.torch` only when that module is imported.

Conventions (lengths in mm, angles in radians): images have shape
``(..., [nz,] ny, nx)``, voxel ``(k, i, j)`` sits at
``x = (j - (nx-1)/2) dx + ox`` (likewise ``y``, ``z``), points are ``(x, y, z)``.
"""

from .geometry import ParallelBeamGeometry
from .grid import ImageGrid
from .operators import AdjointOperator, ComposedOperator, DiagonalOperator, LinearOperator
from .projectors import LORProjector, ParallelBeamProjector

__version__ = "0.1.0"

__all__ = [
    "AdjointOperator",
    "ComposedOperator",
    "DiagonalOperator",
    "ImageGrid",
    "LinearOperator",
    "LORProjector",
    "ParallelBeamGeometry",
    "ParallelBeamProjector",
]
