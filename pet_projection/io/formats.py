"""What a data file is, and images in any of the supported formats (for ``allpet convert`` and ``allpet info``).

A PET DICOM series is a folder (:mod:`.dicom`); every other format is one regular file.
"""

from __future__ import annotations

import os
import pathlib
from typing import Optional, Sequence, Union

import numpy as np

from ..grid import ImageGrid
from .dicom import holds_dicom_files, is_dicom_file, read_dicom_series
from .header import InterfileError, read_header
from .interfile import read_image, write_image
from .numpy_files import load_npy, open_npz
from .reading import regular_file_size

PathLike = Union[str, os.PathLike]

KINDS = ("image", "projdata", "listmode", "nifti", "numpy", "dicom")


def file_kind(path: PathLike) -> str:
    """One of :data:`KINDS`: NIfTI and NumPy by suffix; Interfile headers by content (``PET data type``, listmode keys);
    ``"dicom"`` for a folder holding DICOM files (a PET series, :mod:`.dicom`).

    Apart from such folders only regular files are accepted (a FIFO or device
    named ``x.npy`` would make a later read wait for ever):
    ``FileNotFoundError`` for a missing file, ``ValueError`` for anything else
    that is not a file allpet reads, naming the suffixes understood.
    """
    path = pathlib.Path(path)
    name = path.name.lower()
    if path.is_dir():
        if holds_dicom_files(path):
            return "dicom"
        raise ValueError(f"{path} is a folder, not a regular file, and holds no DICOM files (a PET series): allpet "
                         f"reads folders of DICOM files and single files of the other formats")
    regular_file_size(path)
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith((".npy", ".npz")):
        return "numpy"
    try:
        header = read_header(path)
    except InterfileError as error:
        if is_dicom_file(path):
            raise ValueError(f"{path} is one DICOM file: give the folder of its series ({path.parent})") from None
        raise ValueError(f"{path} is not a file allpet reads (Interfile .hv/.hs/.l.hdr, NIfTI .nii/.nii.gz, "
                         f"NumPy .npy/.npz, or a folder of PET DICOM files): {error}") from None
    if "lm event and tag words format (bits)" in header or "coincidencelist" in header.lowercase("data format", ""):
        return "listmode"
    return "image" if header.lowercase("pet data type", "emission") == "image" else "projdata"


def load_image(path: PathLike, voxel_size_mm: Optional[Sequence[float]] = None,
               origin_mm: Optional[Sequence[float]] = None) -> tuple[np.ndarray, ImageGrid]:
    """An image and its grid from Interfile, NIfTI, NumPy or a PET DICOM series folder (in Bq/ml).

    ``.npz`` files hold ``image`` plus ``voxel_size_mm`` and ``origin_mm`` (as
    :func:`save_image` writes them); a bare ``.npy`` array needs
    ``voxel_size_mm`` (and optionally ``origin_mm``), in array-axis order.
    """
    path = pathlib.Path(path)
    kind = file_kind(path)
    if kind == "image":
        return read_image(path)
    if kind == "nifti":
        from .nifti import read_nifti
        return read_nifti(path)
    if kind == "dicom":
        return read_dicom_series(path)
    if kind != "numpy":
        raise ValueError(f"{path} holds {kind} data, not an image")
    if path.suffix == ".npz":
        with open_npz(path) as archive:
            missing = {"image", "voxel_size_mm", "origin_mm"} - set(archive.files)
            if missing:
                raise ValueError(f"{path} lacks the arrays {sorted(missing)} of an allpet image archive "
                                 f"(image, voxel_size_mm, origin_mm)")
            image = archive["image"]
            voxel_size, origin = archive["voxel_size_mm"], archive["origin_mm"]
        if image.dtype.kind not in "biuf" or voxel_size.dtype.kind not in "iuf" or origin.dtype.kind not in "iuf":
            raise ValueError(f"{path}: image, voxel_size_mm and origin_mm must hold real numbers, got dtypes "
                             f"{image.dtype}, {voxel_size.dtype} and {origin.dtype}")
        try:
            return image, ImageGrid(image.shape, voxel_size.tolist(), origin.tolist())
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path} holds no valid image grid: {error}") from None
    image = load_npy(path)
    if voxel_size_mm is None:
        raise ValueError(f"{path} is a bare array: give its voxel size in mm (--voxel-size-mm), one per axis "
                         f"of its shape {image.shape}")
    try:
        return image, ImageGrid(image.shape, list(voxel_size_mm), 0.0 if origin_mm is None else list(origin_mm))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path} (shape {image.shape}) with the voxel size {list(voxel_size_mm)} mm gives no valid "
                         f"image grid: {error}") from None


def save_image(path: PathLike, image: np.ndarray, grid: ImageGrid) -> pathlib.Path:
    """Write an image as Interfile (``.hv``), NIfTI (``.nii``, ``.nii.gz``) or NumPy (``.npz`` with its grid,
    ``.npy`` the array alone), chosen by the suffix."""
    path = pathlib.Path(path)
    name = path.name.lower()
    if name.endswith(".hv"):
        return write_image(path, image, grid)
    if name.endswith((".nii", ".nii.gz")):
        from .nifti import write_nifti
        return write_nifti(path, image, grid)
    from .files import atomic_write
    if name.endswith(".npz"):
        atomic_write(path, lambda handle: np.savez(handle, image=image, voxel_size_mm=np.array(grid.voxel_size_mm),
                                                    origin_mm=np.array(grid.origin_mm)))
        return path
    if name.endswith(".npy"):
        atomic_write(path, lambda handle: np.save(handle, image))
        return path
    raise ValueError(f"cannot write an image to {path}: use .hv, .nii, .nii.gz, .npz or .npy")
