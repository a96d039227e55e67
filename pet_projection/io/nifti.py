"""NIfTI-1 images in and out through nibabel, placed in the right spot in common viewers.

This package's ``(x, y, z)`` frame (STIR's gantry frame, mm) is taken as
DICOM's patient frame LPS for a head-first supine patient: ``x`` towards the
patient's left, ``y`` towards the back (down), ``z`` towards the head. NIfTI
stores world coordinates in RAS (``-x, -y, z``), so the affine of an image
written here maps voxel ``(i, j, k)`` (NIfTI order: ``x`` index first) to
``(-x_i, -y_j, z_k)``; both qform and sform carry it (code 1, scanner).
Reading accepts any axis-aligned affine (any axis order and flips, as from
other tools) and returns the image in this package's ``(nz, ny, nx)`` order;
oblique affines are refused, as an :class:`~pet_projection.ImageGrid` is
axis-aligned.

Needs nibabel (``pip install allpet[io]``), imported when a function runs.
"""

from __future__ import annotations

import os
import pathlib
import struct
import zlib
from typing import Any, Union

import numpy as np

from ..grid import ImageGrid
from .reading import DEFLATE_MAX_RATIO, check_elements, regular_file_size

PathLike = Union[str, os.PathLike]

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# a rotation or shear below this (relative to the voxel size) counts as axis-aligned
OBLIQUE_TOLERANCE = 1e-6
# NIfTI affines are float32: voxel sizes and origins read back are rounded to 1e-5 mm (float32 noise of ~100 mm)
READ_DECIMALS = 5


def _nibabel() -> Any:
    try:
        import nibabel
    except ImportError as error:
        raise ImportError("NIfTI needs nibabel: pip install nibabel (or allpet[io])") from error
    return nibabel


def nifti_affine(grid: ImageGrid) -> np.ndarray:
    """4 x 4 affine from NIfTI voxel indices ``(i, j, k)`` (``x``, ``y``, ``z`` index) to RAS mm (see the module notes).

    A 2D grid is one slice (``k = 0``) at ``z = 0`` with a nominal thickness of ``dx``.
    """
    (nz, ny, nx), (dz, dy, dx), (oz, oy, ox) = grid.shape3d, grid.voxel_size3d_mm, grid.origin3d_mm
    if grid.ndim == 2:
        dz = dx
    lps = np.diag([dx, dy, dz, 1.0])
    lps[:3, 3] = [ox - (nx - 1) / 2.0 * dx, oy - (ny - 1) / 2.0 * dy, oz - (nz - 1) / 2.0 * dz]
    return LPS_TO_RAS @ lps


def write_nifti(path: PathLike, image: np.ndarray, grid: ImageGrid) -> pathlib.Path:
    """Write ``image`` (shape ``grid.shape``, 2D or 3D) as NIfTI-1 (``.nii`` or ``.nii.gz``); returns the path.

    The file is written under a temporary name and renamed into place.
    """
    nibabel = _nibabel()
    from .files import atomic_paths

    path = pathlib.Path(path)
    image = np.asarray(image)
    if not isinstance(grid, ImageGrid):
        raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
    if image.shape != grid.shape:
        raise ValueError(f"image has shape {image.shape}, expected the grid shape {grid.shape}")
    volume = np.ascontiguousarray(image.reshape(grid.shape3d).transpose(2, 1, 0))
    affine = nifti_affine(grid)
    nifti = nibabel.Nifti1Image(volume, affine)
    nifti.set_qform(affine, code=1)
    nifti.set_sform(affine, code=1)
    nifti.header.set_xyzt_units("mm")
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    with atomic_paths(path) as (temporary,):
        # nibabel picks the format (and compression) from the name, so keep the suffix on the temporary file
        named = temporary.with_name(temporary.name + suffix)
        nibabel.save(nifti, str(named))
        os.replace(named, temporary)
    return path


def _content_errors(nibabel: Any) -> tuple[type, ...]:
    """What nibabel raises for a damaged or truncated file (its own errors, and those of gzip, zlib and struct)."""
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError
    from nibabel.wrapstruct import WrapStructError

    return (ImageFileError, HeaderDataError, WrapStructError, EOFError, OSError, ValueError, OverflowError,
            struct.error, zlib.error)


def read_nifti(path: PathLike) -> tuple[np.ndarray, ImageGrid]:
    """Read a NIfTI-1/2 image.

    Only a regular file is read. The header's sizes are checked against the
    file's size (for ``.gz`` files against the most that many compressed
    bytes can hold, :data:`~pet_projection.io.reading.DEFLATE_MAX_RATIO`)
    and :data:`~pet_projection.io.reading.MAX_ELEMENTS` before the data are
    read; a damaged, empty or truncated file raises ``ValueError`` naming it.

    Returns
    -------
    image : ndarray, shape ``(nz, ny, nx)``
        float32 (float64 if stored so), with the file's scaling applied,
        reoriented so that array axes run along ``+z``, ``+y``, ``+x`` of this
        package's frame (LPS).
    grid : ImageGrid
        Voxel sizes and the grid centre in mm (LPS), rounded to 1e-5 mm
        (NIfTI stores its affine in float32).
    """
    nibabel = _nibabel()
    path = pathlib.Path(path)
    size = regular_file_size(path)
    errors = _content_errors(nibabel)
    try:
        nifti = nibabel.load(str(path))
    except errors as error:
        raise ValueError(f"{path} is not a readable NIfTI file: {error}") from None
    if not isinstance(nifti, (nibabel.Nifti1Image, nibabel.Nifti2Image)):
        raise ValueError(f"{path} is a {type(nifti).__name__}, not a NIfTI-1/2 image")
    shape = nifti.shape
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3:
        raise ValueError(f"{path}: only single 3D volumes are read, got shape {nifti.shape}")
    if min(shape) < 1:
        raise ValueError(f"{path}: the header's 'dim' gives the shape {nifti.shape}; every size must be positive")
    try:
        stored = np.dtype(nifti.get_data_dtype())
        offset = int(nifti.header.get_data_offset())
    except errors as error:
        raise ValueError(f"{path}: the header's data type or offset cannot be read: {error}") from None
    compressed = path.name.lower().endswith(".gz")
    check_elements(path, "the header's 'dim'", nifti.shape, stored.itemsize,
                   size * DEFLATE_MAX_RATIO if compressed else size, offset)
    if stored.kind not in "biuf":
        raise ValueError(f"{path}: the image holds {stored} values; only real numbers are read")
    dtype = np.float64 if stored == np.float64 else np.float32
    try:
        data = np.asarray(nifti.get_fdata(dtype=dtype)).reshape(shape)
    except errors as error:
        raise ValueError(f"{path}: the image data cannot be read (the file is truncated or damaged): {error}") from None
    affine = np.asarray(nifti.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)):
        raise ValueError(f"{path}: the affine holds values that are not finite:\n{affine}")
    lps_affine = LPS_TO_RAS @ affine  # voxel -> LPS mm
    # reorient so that voxel axis a runs along +LPS axis a
    orientation = nibabel.orientations.io_orientation(lps_affine)
    if np.isnan(orientation).any():
        raise ValueError(f"{path}: the affine is singular (a voxel size of 0), so the image has no orientation:"
                         f"\n{affine}")
    target = nibabel.orientations.axcodes2ornt(("R", "A", "S"))  # in the LPS-flipped frame R/A/S mean +x/+y/+z
    transform = nibabel.orientations.ornt_transform(orientation, target)
    data = nibabel.orientations.apply_orientation(data, transform)
    lps_affine = lps_affine @ nibabel.orientations.inv_ornt_aff(transform, shape)
    linear = lps_affine[:3, :3]
    voxel = np.diag(linear).copy()
    if np.any(voxel <= 0) or np.abs(linear - np.diag(voxel)).max() > OBLIQUE_TOLERANCE * voxel.min():
        raise ValueError(f"{path}: the affine is oblique (rotated or sheared), which an axis-aligned ImageGrid cannot "
                         f"hold; resample it to an axis-aligned grid first. Affine:\n{nifti.affine}")
    nx, ny, nz = data.shape
    first = lps_affine[:3, 3]
    centre = first + (np.array([nx, ny, nz]) - 1) / 2.0 * voxel
    voxel, centre = np.round(voxel, READ_DECIMALS) + 0.0, np.round(centre, READ_DECIMALS) + 0.0  # + 0.0: no -0.0
    try:
        grid = ImageGrid((nz, ny, nx), (voxel[2], voxel[1], voxel[0]), (centre[2], centre[1], centre[0]))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: the affine gives no valid image grid: {error}") from None
    return np.ascontiguousarray(data.transpose(2, 1, 0)), grid
