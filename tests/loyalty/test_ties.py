"""Lots expiring at the same instant go in credit order (the entry sequence), never by their
random ids: debits, give-backs, the sweep and reports (issue 15 bug 3)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from terminal.loyalty import ids
from terminal.loyalty.store import LedgerStore

from .conftest import at, register

CARD = "8000000001"


class _FallingRandom:
    """Random bits that fall with each call: each new id sorts before the one minted before it,
    as a later credit's id does about half the time within one millisecond."""

    def __init__(self) -> None:
        self._next = itertools.count()

    def urandom(self, size: int) -> bytes:
        return (2 ** (8 * size) - 1 - next(self._next)).to_bytes(size, "big")


@pytest.fixture
def falling_ids(same_millisecond: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(ids, "_random_bytes", _FallingRandom().urandom)
    yield


def _two_lots_expiring_together(store: LedgerStore) -> tuple[str, str]:
    """Two adjustments in one instant: two lots with the same expiry, credited in that order."""
    moment = store.moment(at("2026-03-02 10:00"))
    store.adjust(CARD, 500, "first", "manager", moment)
    store.adjust(CARD, 700, "second", "manager", moment)
    rows = store.db.execute_sql(
        "SELECT e.id FROM ledger_entry e WHERE e.kind = 'adjust' ORDER BY e.seq").fetchall()
    assert rows[0][0] > rows[1][0]  # the later credit's id sorts first
    return rows[0][0], rows[1][0]


def test_debits_take_equal_expiry_lots_in_credit_order(store: LedgerStore, falling_ids: None
                                                       ) -> None:
    register(store, CARD, when="2026-03-01 10:00")
    first, second = _two_lots_expiring_together(store)
    store.adjust(CARD, -600, "take", "manager", store.moment(at("2026-03-03 10:00")))
    left = dict(store.db.execute_sql("SELECT id, remaining FROM lot").fetchall())
    # The registration bonus expires first, then "first" (credited before "second").
    assert (left[first], left[second]) == (0, 700)


def test_the_sweep_expires_equal_expiry_lots_in_credit_order(store: LedgerStore,
                                                             falling_ids: None) -> None:
    register(store, CARD, when="2026-03-01 10:00")
    first, second = _two_lots_expiring_together(store)
    store.expire(store.moment(at("2027-03-03 00:00")))
    taken = [row[0] for row in store.db.execute_sql(
        "SELECT a.lot_id FROM allocation a JOIN ledger_entry e ON e.id = a.entry_id "
        "WHERE e.kind = 'expire' ORDER BY a.id").fetchall()]
    assert taken[-2:] == [first, second]


def test_the_statement_lists_lots_in_credit_order(store: LedgerStore, falling_ids: None) -> None:
    register(store, CARD, when="2026-03-01 10:00")
    first, second = _two_lots_expiring_together(store)
    lots = store.statement(CARD, store.moment(at("2026-03-03 10:00")))["lots"]
    assert [lot["lot"] for lot in lots][-2:] == [first, second]
