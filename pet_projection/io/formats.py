"""What a data file is, and images in any of the supported formats (for ``allpet convert`` and ``allpet info``)."""

from __future__ import annotations

import os
import pathlib
from typing import Optional, Sequence, Union

import numpy as np

from ..grid import ImageGrid
from .header import InterfileError, read_header
from .interfile import read_image, write_image

PathLike = Union[str, os.PathLike]

KINDS = ("image", "projdata", "listmode", "nifti", "numpy")


def file_kind(path: PathLike) -> str:
    """One of :data:`KINDS`: NIfTI and NumPy by suffix; Interfile headers by content (``PET data type``, listmode keys).

    Raises ``ValueError`` for anything else, naming the suffixes understood.
    """
    path = pathlib.Path(path)
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith((".npy", ".npz")):
        return "numpy"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        header = read_header(path)
    except InterfileError as error:
        raise ValueError(f"{path} is not a file allpet reads (Interfile .hv/.hs/.l.hdr, NIfTI .nii/.nii.gz, "
                         f"NumPy .npy/.npz): {error}") from None
    if "lm event and tag words format (bits)" in header or "coincidencelist" in header.lowercase("data format", ""):
        return "listmode"
    return "image" if header.lowercase("pet data type", "emission") == "image" else "projdata"


def load_image(path: PathLike, voxel_size_mm: Optional[Sequence[float]] = None,
               origin_mm: Optional[Sequence[float]] = None) -> tuple[np.ndarray, ImageGrid]:
    """An image and its grid from Interfile, NIfTI or NumPy.

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
    if kind != "numpy":
        raise ValueError(f"{path} holds {kind} data, not an image")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            missing = {"image", "voxel_size_mm", "origin_mm"} - set(archive.files)
            if missing:
                raise ValueError(f"{path} lacks the arrays {sorted(missing)} of an allpet image archive "
                                 f"(image, voxel_size_mm, origin_mm)")
            image = archive["image"]
            return image, ImageGrid(image.shape, archive["voxel_size_mm"].tolist(), archive["origin_mm"].tolist())
    image = np.load(path, allow_pickle=False)
    if voxel_size_mm is None:
        raise ValueError(f"{path} is a bare array: give its voxel size in mm (--voxel-size-mm), one per axis "
                         f"of its shape {image.shape}")
    return image, ImageGrid(image.shape, list(voxel_size_mm), 0.0 if origin_mm is None else list(origin_mm))


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
