"""Named regions on an image grid: integer label maps, weighted region masks, and their connected components.

Conventions: masks and label maps live on an :class:`~pet_projection.grid.ImageGrid`
``([nz,] ny, nx)`` and may carry leading batch axes.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np
from scipy import ndimage

from ..arrays import as_host_array
from ..grid import ImageGrid
from ..validation import check_real

__all__ = ["HYPER", "HYPO", "LESION_PREFIX", "AttentionRegions", "RegionTable", "default_weight"]

HYPER = "hyper"
HYPO = "hypo"
LESION_PREFIX = "lesion"


def region_name(name: Any, what: str = "region name") -> str:
    """``name`` if it is a non-empty string; ``TypeError`` / ``ValueError`` naming ``what`` otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {type(name).__name__} {name!r}")
    if not name:
        raise ValueError(f"{what} must not be empty")
    return name


def bool_mask(name: str, mask: Any) -> np.ndarray:
    """``mask`` as a bool array; bool or 0/1 integer input (array_like or torch CPU tensor)."""
    array = as_host_array(mask, name)
    if array.dtype == bool:
        return array
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must be a bool (or 0/1 integer) mask, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() > 1):
        raise ValueError(f"{name} must hold only 0 and 1 (a mask), got values in [{array.min()}, {array.max()}]")
    return array.astype(bool)


def batch_shape(name: str, shape: tuple[int, ...], grid: ImageGrid) -> tuple[int, ...]:
    """Leading batch axes of an array ``(..., *grid.shape)``; ``ValueError`` naming ``name`` otherwise."""
    n = grid.ndim
    if len(shape) < n or tuple(shape[len(shape) - n:]) != grid.shape:
        raise ValueError(f"{name} has shape {tuple(shape)}, expected (..., {', '.join(map(str, grid.shape))}) "
                         f"(any leading batch axes, then the grid shape {grid.shape})")
    return tuple(shape[:len(shape) - n])


def connected_components(mask: np.ndarray, core_ndim: int) -> tuple[np.ndarray, int]:
    """Connected components of ``mask (..., *core)``, never joined across leading batch axes.

    Voxels touching by a face, edge or corner are connected (8-connectivity in
    2D, 26 in 3D). Labels run ``1..n`` over the whole array; 0 is background.
    """
    structure = np.zeros((3,) * mask.ndim, dtype=bool)
    centre = (1,) * (mask.ndim - core_ndim)
    structure[centre] = ndimage.generate_binary_structure(core_ndim, core_ndim)
    labels, n = ndimage.label(mask, structure=structure)
    return labels, int(n)


@dataclass(frozen=True, eq=False, init=False)
class RegionTable:
    """An integer label map on an image grid and the names of its labels.

    This is the format in which segmentations, atlases and the simulator hand
    regions to TMA.

    Parameters
    ----------
    labels : array_like of int, shape ``(..., [nz,] ny, nx)``
        One label per voxel of the image grid, with any leading batch axes.
        0 conventionally means "no region".
    names : mapping of str to int
        Region name to label value, for example ``{"lesion": 10, "brainstem": 3,
        "liver": 5}``. Values are unique. A name whose value does not occur in
        ``labels`` is an empty region.

    Notes
    -----
    Naming convention (not enforced): ``"lesion"`` or ``"lesion_<k>"`` for
    lesions (default weight 1, see :func:`default_weight`), ``"hyper"`` and
    ``"hypo"`` from :func:`~pet_projection.attention.segment_metabolic`, and
    lower-case snake_case organ names such as ``"brainstem"``, ``"liver"``,
    ``"spleen"``, ``"lymph_node_4r"`` (IASLC station) or ``"frontal_lobe"``.
    """

    labels: np.ndarray
    names: Mapping[str, int]

    def __init__(self, labels: Any, names: Mapping[str, int]) -> None:
        array = as_host_array(labels, "labels")
        if array.dtype.kind not in "iu":
            raise TypeError(f"labels must be an integer label map, got dtype {array.dtype}")
        if not isinstance(names, Mapping):
            raise TypeError(f"names must be a mapping of region name to label value, got {type(names).__name__}")
        table: dict[str, int] = {}
        for name, value in names.items():
            region_name(name, "names key")
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"names[{name!r}] must be an integer label value, got {value!r}")
            table[name] = int(value)
        values = list(table.values())
        if len(set(values)) != len(values):
            raise ValueError(f"names must give each region its own label value, got {table}")
        array = np.array(array)
        array.setflags(write=False)
        object.__setattr__(self, "labels", array)
        object.__setattr__(self, "names", table)

    def mask(self, name: str) -> np.ndarray:
        """Bool mask of region ``name``, same shape as ``labels``."""
        if name not in self.names:
            raise ValueError(f"unknown region {name!r}; the table has {sorted(self.names)}")
        return self.labels == self.names[name]


def default_weight(name: str) -> float:
    """1 for lesions (``"hyper"``, ``"hypo"`` and names starting with ``"lesion"``), else 0."""
    return 1.0 if name in (HYPER, HYPO) or name.startswith(LESION_PREFIX) else 0.0


@dataclass(frozen=True, eq=False, init=False)
class AttentionRegions:
    """Named region masks (they may overlap) with a weight in ``[0, 1]`` each.

    Parameters
    ----------
    masks : mapping of str to bool array, each ``(..., [nz,] ny, nx)``
        Masks on the image grid; leading batch axes broadcast against each other.
    weights : mapping of str to float, optional
        Weight per region in ``[0, 1]``; regions not named get
        :func:`default_weight` (1 for lesions, 0 otherwise).
    """

    masks: Mapping[str, np.ndarray]
    weights: Mapping[str, float]

    def __init__(self, masks: Mapping[str, Any], weights: Optional[Mapping[str, float]] = None) -> None:
        if not isinstance(masks, Mapping):
            raise TypeError(f"masks must be a mapping of region name to mask, got {type(masks).__name__}")
        weights = {} if weights is None else weights
        if not isinstance(weights, Mapping):
            raise TypeError(f"weights must be a mapping of region name to weight, got {type(weights).__name__}")
        unknown = sorted(set(weights) - set(masks), key=str)
        if unknown:
            raise ValueError(f"weights name unknown region(s) {unknown}; regions: {sorted(masks, key=str)}")
        checked: dict[str, np.ndarray] = {}
        for name, mask in masks.items():
            array = np.array(bool_mask(f"mask of {region_name(name)!r}", mask))
            array.setflags(write=False)
            checked[name] = array
        object.__setattr__(self, "masks", checked)
        object.__setattr__(self, "weights", {
            name: check_real(f"weight of {name!r}", weights.get(name, default_weight(name)), 0.0, 1.0)
            for name in checked})

    @classmethod
    def from_table(cls, table: RegionTable, weights: Optional[Mapping[str, float]] = None) -> "AttentionRegions":
        """One region per name of ``table``; weights default to :func:`default_weight`."""
        if not isinstance(table, RegionTable):
            raise TypeError(f"table must be a RegionTable, got {type(table).__name__}")
        return cls({name: table.mask(name) for name in table.names}, weights)
