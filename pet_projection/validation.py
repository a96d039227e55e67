"""Checks of user input, one home for all packages: each returns the clean value or raises naming the input.

Every check raises ``TypeError`` for a value of the wrong kind and
``ValueError`` for one out of range; the message starts with ``name`` (the
parameter, config key or file field) and shows the offending value, so a
caller never writes its own message for these cases.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Optional, Sequence

import numpy as np

__all__ = ["check_bool", "check_choice", "check_finite_array", "check_finite_real", "check_int_tuple", "check_keys",
           "check_non_negative", "check_pair", "check_real", "int_range", "positive_int"]


def positive_int(name: str, value: Any, minimum: int = 1, maximum: Optional[int] = None) -> int:
    """``value`` as an int in ``[minimum, maximum]`` (bools are not integers)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}")
    return int(value)


def check_real(name: str, value: Any, low: float = -math.inf, high: float = math.inf, *, low_open: bool = False,
               high_open: bool = False) -> float:
    """``value`` as a finite float in the interval from ``low`` to ``high`` (each end closed unless ``*_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        result = float(value)
    except OverflowError:  # an integer beyond the float range
        raise ValueError(f"{name} is too large for a float, got {value!r}") from None
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    below = result <= low if low_open else result < low
    above = result >= high if high_open else result > high
    if below or above:
        opening, closing = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must lie in {opening}{low:g}, {high:g}{closing}, got {result!r}")
    return result


def check_non_negative(name: str, value: Any) -> float:
    """``value`` as a finite float ``>= 0``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        result = float(value)
    except OverflowError:  # an integer beyond the float range
        raise ValueError(f"{name} is too large for a float, got {value!r}") from None
    if not math.isfinite(result) or result < 0.0:
        raise ValueError(f"{name} must be non-negative (a finite number >= 0), got {value!r}")
    return result


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be true or false, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_int_tuple(name: str, value: Any, minimum: int) -> tuple[int, ...]:
    """A non-empty sequence of integers ``>= minimum`` as a tuple (YAML lists become tuples)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) == 0:
        raise TypeError(f"{name} must be a non-empty sequence of integers, got {value!r}")
    return tuple(positive_int(f"{name}[{i}]", item, minimum) for i, item in enumerate(value))


def check_pair(name: str, value: Any) -> tuple[Any, Any]:
    """The two items of a ``(low, high)`` sequence (unchecked); ``TypeError`` for anything but a pair."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise TypeError(f"{name} must be a (low, high) pair, got {value!r}")
    return value[0], value[1]


def int_range(name: str, value: Any, minimum: int, maximum: Optional[int] = None) -> tuple[int, int]:
    """``(low, high)`` integers with ``minimum <= low <= high [<= maximum]``."""
    low, high = check_pair(name, value)
    for item in (low, high):
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{name} must hold integers, got {value!r}")
    if not minimum <= low <= high or (maximum is not None and high > maximum):
        upper = "" if maximum is None else f" <= {maximum}"
        raise ValueError(f"{name} must satisfy {minimum} <= low <= high{upper}, got {value!r}")
    return int(low), int(high)


def check_keys(what: str, data: Any, required: Sequence[str], optional: Sequence[str] = ()) -> Mapping:
    """``data`` if it is a mapping (a JSON object) with string keys, all of ``required`` and others from ``optional``.

    ``what`` names the object in the messages (e.g. ``"spec"``, ``"'add' edit"``).
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"{what} must be a JSON object (dict), got {type(data).__name__}")
    keys = set(data)
    for key in keys:
        if not isinstance(key, str):
            raise TypeError(f"{what} keys must be strings, got {key!r}")
    missing = [k for k in required if k not in keys]
    if missing:
        raise ValueError(f"{what} is missing {', '.join(map(repr, missing))}")
    unknown = sorted(keys - set(required) - set(optional))
    if unknown:
        raise ValueError(f"{what} has unknown key(s) {', '.join(map(repr, unknown))}; allowed: "
                         f"{', '.join(map(repr, list(required) + list(optional)))}")
    return data


def check_finite_real(name: str, value: Any, low: float = -math.inf, high: float = math.inf, *,
                      low_open: bool = False, high_open: bool = False) -> float:
    """:func:`check_real`, except that a NaN or an infinity is a ``TypeError`` (not a finite real number)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    return check_real(name, value, low, high, low_open=low_open, high_open=high_open)


def check_finite_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array of any shape; ``ValueError`` if an entry is NaN or infinite."""
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    return array
