"""Experiment configs from presets and YAML files, with dotted command-line overrides.

:func:`load_config` reads a preset name (:data:`PRESETS`: the YAML files in
``ldm/configs/``, package data read through :mod:`importlib.resources`) or a
YAML file; a file may start from a preset or another file with
``base: NAME_OR_PATH`` and change only some keys. Command-line overrides use
the configs' dotted names, ``train.batch_size=16`` (:func:`apply_overrides`;
values are parsed as YAML). The result is checked key by key
(:func:`ldm.experiment.config_from_dict`).
"""

from __future__ import annotations

import copy
import importlib.resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from .experiment import ExperimentConfig, config_from_dict, config_to_dict

__all__ = ["PRESETS", "apply_overrides", "load_config", "load_config_dict", "preset_path", "read_config_file"]

PRESETS = ("tiny", "paper", "foundation")


def preset_path(name: str) -> Traversable:
    """The YAML resource of preset ``name`` (one of :data:`PRESETS`); a :class:`~pathlib.Path` for files on disk."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets are {', '.join(PRESETS)}")
    return importlib.resources.files(__package__) / "configs" / f"{name}.yaml"


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_config_file(path: Union[Path, Traversable], where: Optional[str] = None) -> dict[str, Any]:
    """The mapping in a YAML config file (empty file: ``{}``); a broken file raises one line naming it.

    ``ValueError`` for text that is not UTF-8 or not YAML, ``TypeError`` for
    YAML that is not a mapping, ``OSError`` (with the file name) for a file
    that cannot be read. ``where`` names the file in messages (default: its path).
    """
    import yaml

    where = str(path) if where is None else where
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"config {where} is not a YAML file (not UTF-8 text)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"config {where} is not valid YAML: {' '.join(str(error).split())}") from None
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise TypeError(f"config {where} must hold a mapping at the top level, got {type(data).__name__}")
    return dict(data)


def load_config_dict(source: Union[str, Path], _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The raw mapping of a preset name or YAML file, with ``base:`` files merged in (base first).

    A relative ``base`` path is relative to the file that names it; a
    preset's ``base`` must be another preset.
    """
    if str(source) in PRESETS:
        path: Union[Path, Traversable] = preset_path(str(source))
        where = f"preset {source}"
    else:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"config {str(source)!r} is neither a preset ({', '.join(PRESETS)}) nor a YAML file")
        path = path.resolve()
        where = str(path)
    if where in _seen:
        raise ValueError(f"config {where} includes itself through 'base'")
    data = read_config_file(path, where)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise TypeError(f"base in {where} must be a preset name or a path, got {base!r}")
    if base in PRESETS:
        return _deep_merge(load_config_dict(base, _seen + (where,)), data)
    if not isinstance(path, Path):
        raise ValueError(f"base in {where} must name a preset ({', '.join(PRESETS)}), got {base!r}")
    return _deep_merge(load_config_dict(str(path.parent / base), _seen + (where,)), data)


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Copy of a raw config mapping with ``"dotted.key=value"`` overrides applied (values parsed as YAML)."""
    import yaml

    data = copy.deepcopy(dict(data))
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {override!r} must look like section.key=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"override {override!r}: the value is not valid YAML: {error}") from None
        *parents, leaf = key.strip().split(".")
        node = data
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"override {override!r}: {part!r} is not a section")
            node = child
        node[leaf] = value
    return data


def load_config(source: Union[str, Path, ExperimentConfig], overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Experiment config from a preset name, a YAML path or a config object, with dotted overrides.

    Parameters
    ----------
    source : str, Path or ExperimentConfig
        ``"tiny"``, ``"paper"``, a YAML file, or a config (returned with the
        overrides applied).
    overrides : sequence of str
        ``"section.key=value"`` items, e.g. ``"train.stages.diffusion.steps=50"``.
    """
    if isinstance(source, ExperimentConfig):
        data = config_to_dict(source)
    elif isinstance(source, (str, Path)):
        data = load_config_dict(source)
    else:
        raise TypeError(f"config source must be a preset name, a path or an ExperimentConfig, got {source!r}")
    return config_from_dict(apply_overrides(data, overrides))
