from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminal.protocol import canonical

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def test_sorted_compact_utf8() -> None:
    expected = '{"a":["积分",null,true],"b":1}'.encode()
    assert canonical.dumps({"b": 1, "a": ["积分", None, True]}) == expected


@pytest.mark.parametrize("value", [1.5, {"x": [2.0]}, float("nan")])
def test_floats_refused_naming_the_field(value: object) -> None:
    with pytest.raises(canonical.CanonicalError, match="float"):
        canonical.dumps(value)


def test_error_names_the_path() -> None:
    with pytest.raises(canonical.CanonicalError, match=r"earn\.rate\[1\]"):
        canonical.dumps({"earn": {"rate": [1, 0.5]}})


def test_non_json_types_and_keys_refused() -> None:
    with pytest.raises(canonical.CanonicalError, match="datetime"):
        import datetime

        canonical.dumps({"t": datetime.datetime(2026, 1, 1)})
    with pytest.raises(canonical.CanonicalError, match="key 1"):
        canonical.dumps({1: "x"})
    with pytest.raises(canonical.CanonicalError, match="encoded"):
        canonical.dumps("\ud800")


@pytest.mark.parametrize("raw", [b'{"a":1.0}', b'{"a":NaN}', b'{"a":1,"a":2}', b"\xff", b"{"])
def test_loads_strict(raw: bytes) -> None:
    with pytest.raises(canonical.CanonicalError):
        canonical.loads(raw)


@given(json_values)
def test_round_trip_is_stable(value: object) -> None:
    raw = canonical.dumps(value)
    assert canonical.loads(raw) == value
    assert canonical.is_canonical(raw)
    assert not canonical.is_canonical(raw + b" ")
