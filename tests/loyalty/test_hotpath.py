"""The sale path's statements below the ORM: plain records that match the schema, and the errors
and hooks of Peewee's own path."""

from __future__ import annotations

from typing import Any

import peewee
import pytest

from terminal.loyalty.store import LedgerStore
from terminal.loyalty.store.hotpath import MEMBER_COLUMNS, DayCounts, MemberRow

from .conftest import at, register, sell

CARD = "8000000001"


def test_member_rows_carry_every_column_of_the_member_table(store: LedgerStore) -> None:
    assert list(MEMBER_COLUMNS) == [c.name for c in store.db.get_columns("member")]
    register(store, CARD, name="li")
    member = store._member(CARD)
    assert isinstance(member, MemberRow) and (member.name, member.balance) == ("li", 100)


def test_day_counts_are_zero_before_the_first_sale_of_the_day(store: LedgerStore) -> None:
    register(store, CARD)
    sell(store, "S1", [("A", "fresh", 1, 1000)], card=CARD)  # at 2026-03-02 12:00
    member, today = store._member_today(CARD, store.moment(at("2026-03-02 13:00")))
    assert isinstance(member, MemberRow) and today.earned > 0
    _, tomorrow = store._member_today(CARD, store.moment(at("2026-03-03 09:00")))
    assert tomorrow == DayCounts(0, 0, 0)


def test_plain_statements_raise_peewees_errors(store: LedgerStore) -> None:
    store.sql.run("INSERT INTO meta (key, value) VALUES (?, ?)", ("probe", "1"))
    with pytest.raises(peewee.IntegrityError, match="UNIQUE") as raised:
        store.sql.run("INSERT INTO meta (key, value) VALUES (?, ?)", ("probe", "2"))
    assert raised.value.__cause__ is not None  # the driver's error, kept as the cause


def test_query_hooks_see_every_statement(store: LedgerStore) -> None:
    seen: list[Any] = []
    store.db.query_hooks.append(lambda event: seen.append(event.sql))
    try:
        register(store, CARD)
        sell(store, "S1", [("A", "fresh", 1, 1000)], card=CARD)
    finally:
        store.db.query_hooks.clear()
    assert any(sql.startswith("INSERT INTO sale ") for sql in seen)
    assert any(sql.startswith("INSERT INTO ledger_entry ") for sql in seen)
