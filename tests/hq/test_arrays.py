"""Lists dumped by terminal.hq.arrays read back on a real server exactly as psycopg's own dump of
the same lists does: every element type an ingest batch sends, NULLs, empty lists, any Unicode,
the ints' bounds; a list of another type, or one that does not fit, goes as psycopg dumps it."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.hq import arrays
from terminal.hq.arrays import BinaryArray, array

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
BOUNDS = {"smallint": 2 ** 15, "integer": 2 ** 31, "bigint": 2 ** 63}
KINDS: dict[str, Any] = {
    "text": TEXT, "character varying": TEXT, "boolean": st.booleans(),
    **{kind: st.integers(-bound, bound - 1) for kind, bound in BOUNDS.items()}}


@pytest.fixture(scope="module")
def conn(postgres) -> Any:
    with psycopg.connect(postgres.dsn, autocommit=True) as connection:
        arrays.register(connection.adapters)
        yield connection


def read_back(conn: Any, values: list[Any], kind: str) -> tuple[Any, Any]:
    """The array dumped here and by psycopg, each cast to ``kind[]`` as the batch's statements
    do, as the server returns them."""
    return conn.execute(f"SELECT %b::{kind}[], %b::{kind}[]",
                        (array(values, kind), values)).fetchone()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_reads_back_as_psycopg_dumps_it(conn, kind) -> None:
    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.one_of(st.none(), KINDS[kind]), max_size=40))
    def check(values: list[Any]) -> None:
        ours, theirs = read_back(conn, values, kind)
        assert ours == theirs == values

    check()


def test_bounds_empty_and_nulls(conn) -> None:
    for kind, bound in BOUNDS.items():
        assert read_back(conn, [-bound, bound - 1, None, 0], kind) == ([-bound, bound - 1, None,
                                                                         0],) * 2
    assert isinstance(array([], "text"), BinaryArray)
    assert read_back(conn, [], "text") == ([], [])
    assert read_back(conn, [None], "bigint") == ([None], [None])
    assert read_back(conn, ["伞 'x' \\%s", "", "😀"], "text")[0] == ["伞 'x' \\%s", "", "😀"]


def test_what_does_not_fit_goes_as_the_list_psycopg_dumps(conn) -> None:
    assert array([2 ** 31], "integer") == [2 ** 31]  # past int4: psycopg's dump, the server says
    assert array([1, "a"], "text") == [1, "a"]
    assert array([True], "integer") == [True]
    assert array([1.5], "double precision") == [1.5]  # a kind not dumped here
    assert conn.execute("SELECT %b::float8[]", (array([1.5], "double precision"),)
                        ).fetchone() == ([1.5],)
