"""Dataclass configs to and from plain dicts (as read from YAML or JSON), with every key and value checked.

:func:`dataclass_from_dict` builds a (nested) dataclass from a mapping,
converting each value to its field's type hint and raising ``ValueError`` /
``TypeError`` that name the dotted key (e.g. ``train.stages.diffusion.lr``)
and suggest the closest known key for a misspelt one. :func:`as_plain` and
:func:`dataclass_to_dict` go the other way (tuples become lists).
:func:`config_from_mapping` is the shallow form for a config given either as
an instance or as a mapping of its fields.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
import types
import typing
from typing import Any, Literal, Mapping, Optional, Union

__all__ = ["as_plain", "config_from_mapping", "dataclass_from_dict", "dataclass_to_dict"]


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, key: str, localns: Optional[Mapping[str, Any]]) -> Any:
    """``value`` (from YAML) converted to type ``tp``; TypeError/ValueError naming ``key`` if it does not fit."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else dataclass_from_dict(tp, value, key, localns)
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (arg for arg in args if arg is not type(None)):
            try:
                return _convert(option, value, key, localns)
            except (TypeError, ValueError) as error:
                errors.append(str(error))
        raise TypeError(f"{key} does not fit {_type_name(tp)}: " + "; ".join(errors))
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{key} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{key} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, str):  # PyYAML reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise TypeError(f"{key} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"{key} must be a string, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{key} must be a list, got {value!r}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ValueError(f"{key} must have {len(args)} entries, got {len(value)}")
            return tuple(_convert(arg, item, f"{key}[{i}]", localns)
                         for i, (arg, item) in enumerate(zip(args, value)))
        converted = [_convert(args[0] if args else Any, item, f"{key}[{i}]", localns) for i, item in enumerate(value)]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        if not isinstance(value, Mapping):
            raise TypeError(f"{key} must be a mapping, got {value!r}")
        key_type, value_type = args or (Any, Any)
        return {_convert(key_type, name, f"{key} key", localns): _convert(value_type, item, f"{key}.{name}", localns)
                for name, item in value.items()}
    if isinstance(tp, type):
        if not isinstance(value, tp):
            raise TypeError(f"{key} must be a {tp.__name__}, got {value!r}")
        return value
    raise TypeError(f"{key}: cannot read values of type {_type_name(tp)} from a config")


def _default(item: dataclasses.Field) -> Any:
    if item.default is not dataclasses.MISSING:
        return item.default
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return None


def _init_values(instance: Any) -> dict[str, Any]:
    return {item.name: getattr(instance, item.name) for item in dataclasses.fields(instance) if item.init}


def dataclass_from_dict(cls: type, data: Any, key: str = "", localns: Optional[Mapping[str, Any]] = None) -> Any:
    """Build dataclass ``cls`` from a mapping, recursively; missing keys take the defaults.

    A nested dataclass field given as a mapping starts from the field's
    default instance (keys left out keep the parent's default, not the
    nested class's).

    Parameters
    ----------
    cls : dataclass type
    data : mapping
        Field names to values of plain types (lists for tuples).
    key : str
        Dotted name of ``data`` in the whole config, for messages (``""`` at the top).
    localns : mapping, optional
        Names that resolve string annotations not defined in the modules of
        the dataclasses (passed to :func:`typing.get_type_hints`).

    Raises
    ------
    ValueError
        For an unknown key (with close matches) or a value out of range.
    TypeError
        For a value of the wrong type. Messages name the dotted key.
    """
    where = key or cls.__name__
    if not isinstance(data, Mapping):
        raise TypeError(f"{where} must be a mapping of keys to values, got {data!r}")
    fields = {item.name: item for item in dataclasses.fields(cls) if item.init}
    for name in data:
        if name not in fields:
            close = difflib.get_close_matches(str(name), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(fields)}"
            raise ValueError(f"unknown config key {(key + '.' if key else '') + str(name)!r}{hint}")
    hints = typing.get_type_hints(cls, localns=None if localns is None else dict(localns))
    kwargs = {}
    for name, value in data.items():
        default = _default(fields[name])
        if isinstance(value, Mapping) and dataclasses.is_dataclass(hints[name]) and isinstance(default, hints[name]):
            value = {**_init_values(default), **value}  # keys left out keep the parent's default (not the class's)
        kwargs[name] = _convert(hints[name], value, f"{key}.{name}" if key else name, localns)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{where}: {error}") from error


def as_plain(value: Any) -> Any:
    """``value`` with every mapping a dict and every list or tuple a list, recursively (YAML/JSON-ready)."""
    if isinstance(value, Mapping):
        return {key: as_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_plain(item) for item in value]
    return value


def dataclass_to_dict(instance: Any) -> dict[str, Any]:
    """Nested dict of plain types of a dataclass instance; :func:`dataclass_from_dict` inverts it."""
    return as_plain(dataclasses.asdict(instance))


def config_from_mapping(cls: type, value: Any, name: str) -> Any:
    """``cls(**value)`` for a mapping (e.g. parsed YAML), ``value`` if already a ``cls``; unknown keys are errors.

    Raises
    ------
    TypeError
        When ``value`` is neither a ``cls`` nor a mapping.
    ValueError
        Naming the first unknown key, as ``name.key``.
    """
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a {cls.__name__} or a mapping of its fields, got {type(value).__name__}")
    fields = {field.name for field in dataclasses.fields(cls)}
    for key in value:
        if key not in fields:
            raise ValueError(f"unknown key {name}.{key}; {cls.__name__} has {sorted(fields)}")
    return cls(**value)
