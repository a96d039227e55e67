"""The shared input checks: clean values back, TypeError for the wrong kind, ValueError out of range, named."""

from __future__ import annotations

import math

import pytest

from pet_projection.validation import check_keys, check_non_negative, check_pair, check_real, int_range


def test_check_real_returns_floats_and_names_the_interval() -> None:
    assert check_real("x", 3, 0.0, 5.0) == 3.0 and isinstance(check_real("x", 3), float)
    with pytest.raises(ValueError, match=r"weight must lie in \[0, 1\], got 1.5"):
        check_real("weight", 1.5, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"radius_mm must lie in \(0, 1e\+06\], got 0.0"):
        check_real("radius_mm", 0, 0.0, 1e6, low_open=True)
    with pytest.raises(ValueError, match="x must be finite"):
        check_real("x", math.nan)
    with pytest.raises(TypeError, match="x must be a real number"):
        check_real("x", True)


@pytest.mark.parametrize("check", [check_real, check_non_negative])
def test_integers_beyond_the_float_range_are_value_errors(check) -> None:
    with pytest.raises(ValueError, match="x is too large for a float"):
        check("x", 10**400)


def test_check_non_negative() -> None:
    assert check_non_negative("x", 0) == 0.0
    with pytest.raises(ValueError, match="threshold_mm must be non-negative"):
        check_non_negative("threshold_mm", -1.0)


def test_pairs_and_integer_ranges() -> None:
    assert check_pair("p", (1, "a")) == (1, "a")
    assert int_range("n", [2, 5], 0, 5) == (2, 5)
    with pytest.raises(TypeError, match=r"p must be a \(low, high\) pair"):
        check_pair("p", "ab")
    with pytest.raises(ValueError, match="n must satisfy 3 <= low <= high <= 5"):
        int_range("n", (2, 5), 3, 5)
    with pytest.raises(TypeError, match="n must hold integers"):
        int_range("n", (1.0, 2), 0)


def test_check_keys_names_missing_and_unknown_keys() -> None:
    data = {"op": "add", "region": "liver"}
    assert check_keys("edit", data, ("op", "region"), ("weight",)) is data
    with pytest.raises(ValueError, match="edit is missing 'region'"):
        check_keys("edit", {"op": "add"}, ("op", "region"))
    with pytest.raises(ValueError, match=r"edit has unknown key\(s\) 'colour'; allowed: 'op', 'weight'"):
        check_keys("edit", {"op": "add", "colour": 1}, ("op",), ("weight",))
    with pytest.raises(TypeError, match="edit keys must be strings"):
        check_keys("edit", {1: 2}, ())
    with pytest.raises(TypeError, match="edit must be a JSON object"):
        check_keys("edit", [], ())
