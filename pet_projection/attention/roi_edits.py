"""Clinician ROI edits: declarative add / remove / scale operations on weighted regions, with an exact JSON form."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from ..grid import ImageGrid
from ..validation import check_keys, check_real
from .regions import AttentionRegions, region_name
from .shapes import SHAPES, ArrayMask, DrawnRegion, drawn_from_dict

__all__ = ["OPS", "SPEC_VERSION", "RoiEdit", "RoiEditSpec"]

OPS = ("add", "remove", "scale")
SPEC_VERSION = 1


@dataclass(frozen=True)
class RoiEdit:
    """One clinician edit of the attention regions.

    Parameters
    ----------
    op : {"add", "remove", "scale"}
        ``add``: set region ``region``'s weight to ``weight`` (default 1); with
        ``drawn``, its voxels are first added to the region (a new region if
        the name is new). Without ``drawn`` the region must exist (e.g. a label
        of the table such as ``"brainstem"``, whose default weight is 0).
        ``remove``: set the region's weight to 0 (a later ``add`` by name
        brings it back). ``scale``: multiply its weight by ``factor`` (at least
        0); weights saturate at 1.
    region : str
        Region name.
    weight : float in [0, 1], optional
        Only for ``add``.
    factor : float, optional
        Only for ``scale``; finite and non-negative.
    drawn : Circle, Ellipse, Polygon, ArrayMask or bool array, optional
        Only for ``add``. A bool array of the grid's shape becomes an :class:`ArrayMask`.

    Use the constructors :meth:`add`, :meth:`remove` and :meth:`scale` for brevity.
    """

    op: str
    region: str
    weight: Optional[float] = None
    factor: Optional[float] = None
    drawn: Optional[DrawnRegion] = None

    def __post_init__(self) -> None:
        if not isinstance(self.op, str) or self.op not in OPS:
            raise ValueError(f"op must be one of {OPS}, got {self.op!r}")
        region_name(self.region)
        if self.op != "add" and (self.weight is not None or self.drawn is not None):
            raise ValueError(f"{self.op!r} takes no weight or drawn region (only 'add' does)")
        if self.op != "scale" and self.factor is not None:
            raise ValueError(f"{self.op!r} takes no factor (only 'scale' does)")
        if self.op == "add":
            weight = 1.0 if self.weight is None else self.weight
            object.__setattr__(self, "weight", check_real("weight", weight, 0.0, 1.0))
            if isinstance(self.drawn, np.ndarray):
                object.__setattr__(self, "drawn", ArrayMask(self.drawn))
            elif self.drawn is not None and not isinstance(self.drawn, tuple(SHAPES.values())):
                raise TypeError(f"drawn must be a Circle, Ellipse, Polygon, ArrayMask or bool array, "
                                f"got {type(self.drawn).__name__}")
        if self.op == "scale":
            if self.factor is None:
                raise ValueError("'scale' needs a factor")
            object.__setattr__(self, "factor", check_real("factor", self.factor, 0.0, math.inf))

    @classmethod
    def add(cls, region: str, weight: float = 1.0, drawn: Optional[Union[DrawnRegion, np.ndarray]] = None) -> "RoiEdit":
        return cls("add", region, weight=weight, drawn=drawn)  # type: ignore[arg-type]

    @classmethod
    def remove(cls, region: str) -> "RoiEdit":
        return cls("remove", region)

    @classmethod
    def scale(cls, region: str, factor: float) -> "RoiEdit":
        return cls("scale", region, factor=factor)

    def to_dict(self) -> dict:
        """JSON-ready dict: ``op``, ``region``, then ``weight`` and ``drawn`` (add) or ``factor`` (scale)."""
        data: dict[str, Any] = {"op": self.op, "region": self.region}
        if self.op == "add":
            data["weight"] = self.weight
        if self.op == "scale":
            data["factor"] = self.factor
        if self.drawn is not None:
            data["drawn"] = self.drawn.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Any) -> "RoiEdit":
        check_keys("edit", data, ("op", "region"), ("weight", "factor", "drawn"))
        op = data["op"]
        if not isinstance(op, str) or op not in OPS:
            raise ValueError(f"edit 'op' must be one of {OPS}, got {op!r}")
        allowed = {"add": ("weight", "drawn"), "remove": (), "scale": ("factor",)}[op]
        check_keys(f"{op!r} edit", data, ("op", "region") + (("factor",) if op == "scale" else ()), allowed)
        drawn = drawn_from_dict(data["drawn"]) if "drawn" in data else None
        return cls(op, data["region"], weight=data.get("weight"), factor=data.get("factor"), drawn=drawn)

    def _apply(self, masks: dict[str, np.ndarray], weights: dict[str, float], grid: ImageGrid) -> None:
        """Apply this edit in place to region ``masks`` and ``weights`` on ``grid``."""
        if self.drawn is not None:
            drawn = self.drawn.rasterize(grid)
            masks[self.region] = masks[self.region] | drawn if self.region in masks else drawn
        elif self.region not in masks:
            hint = "; draw a shape or mask to add a new region" if self.op == "add" else ""
            raise ValueError(f"{self.op!r} edit names unknown region {self.region!r}; known regions: "
                             f"{sorted(masks)}{hint}")
        if self.op == "add":
            weights[self.region] = self.weight  # type: ignore[assignment]
        elif self.op == "remove":
            weights[self.region] = 0.0
        else:
            weights[self.region] = min(1.0, weights[self.region] * self.factor)  # type: ignore[operator]


@dataclass(frozen=True)
class RoiEditSpec:
    """An ordered list of :class:`RoiEdit`, applied first to last.

    JSON form (``to_json`` / ``from_json`` round-trip exactly)::

        {"version": 1, "edits": [
            {"op": "add", "region": "brainstem", "weight": 0.5},
            {"op": "add", "region": "node_4r", "weight": 1.0,
             "drawn": {"shape": "circle", "center_mm": [12.0, -30.0], "radius_mm": 8.0}},
            {"op": "add", "region": "liver", "weight": 0.3,
             "drawn": {"shape": "polygon", "vertices_mm": [[0, 0], [40, 0], [40, 30]]}},
            {"op": "remove", "region": "hypo"},
            {"op": "scale", "region": "hyper", "factor": 0.5}]}

    Drawn shapes: ``circle`` (``center_mm``, ``radius_mm``), ``ellipse``
    (``center_mm``, ``semi_axes_mm``, optional ``angle_rad``), ``polygon``
    (``vertices_mm``) and ``mask`` (``values``: nested 0/1 lists of the grid
    shape). Coordinates are ``(x, y)`` in mm. Bad specs raise ``TypeError`` or
    ``ValueError`` naming the problem; unknown region names and masks of the
    wrong shape are found when the spec is applied to regions on a grid.
    ``version`` may be omitted (it defaults to 1).
    """

    edits: tuple[RoiEdit, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.edits, (str, bytes, Mapping)) or not isinstance(self.edits, Sequence):
            raise TypeError(f"edits must be a sequence of RoiEdit, got {type(self.edits).__name__}")
        for edit in self.edits:
            if not isinstance(edit, RoiEdit):
                raise TypeError(f"edits must contain RoiEdit objects, got {type(edit).__name__}")
        object.__setattr__(self, "edits", tuple(self.edits))

    def to_dict(self) -> dict:
        return {"version": SPEC_VERSION, "edits": [edit.to_dict() for edit in self.edits]}

    @classmethod
    def from_dict(cls, data: Any) -> "RoiEditSpec":
        check_keys("spec", data, ("edits",), ("version",))
        version = data.get("version", SPEC_VERSION)
        if isinstance(version, bool) or version != SPEC_VERSION:
            raise ValueError(f"spec version must be {SPEC_VERSION}, got {version!r}")
        if not isinstance(data["edits"], list):
            raise TypeError(f"spec 'edits' must be a list, got {type(data['edits']).__name__}")
        return cls(tuple(RoiEdit.from_dict(edit) for edit in data["edits"]))

    def to_json(self, indent: Optional[int] = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: Union[str, bytes]) -> "RoiEditSpec":
        if not isinstance(text, (str, bytes, bytearray)):
            raise TypeError(f"spec JSON must be str or bytes, got {type(text).__name__}")
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except UnicodeDecodeError:
            raise ValueError("spec bytes are not UTF-8/16/32 encoded JSON") from None
        except RecursionError:
            raise ValueError("spec JSON is nested too deeply") from None
        except ValueError as error:  # JSONDecodeError, NaN/Infinity, integers of more than 4300 digits
            raise ValueError(f"spec is not valid JSON: {error}") from None
        return cls.from_dict(data)

    def apply(self, regions: AttentionRegions, grid: ImageGrid) -> AttentionRegions:
        """The regions after all edits, drawn shapes rasterised on ``grid``."""
        if not isinstance(regions, AttentionRegions):
            raise TypeError(f"regions must be AttentionRegions, got {type(regions).__name__}")
        if not isinstance(grid, ImageGrid):
            raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
        masks, weights = dict(regions.masks), dict(regions.weights)
        for edit in self.edits:
            edit._apply(masks, weights, grid)
        return AttentionRegions(masks, weights)


def _reject_constant(name: str) -> None:
    raise ValueError(f"spec JSON contains {name}; numbers must be finite")
