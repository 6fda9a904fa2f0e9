"""The terminal's ledger on SQLite: every business operation in one IMMEDIATE transaction.

Each method checks its request with the pure engine (``terminal.loyalty``), raising a
:class:`~terminal.loyalty.errors.Refused` before anything is written, then writes the sale or
refund, its ledger entries and lot changes, the member's materialised balance, the day counters,
an audit row where a person's authority was used, and the outbox event for HQ, all in one
transaction (DESIGN promises 1 and 2).

:class:`LedgerStore` is assembled from one module per kind of operation, each a layer over the
one below it:

- :mod:`.writer`: the write transaction, meta counters, outbox events and audit rows;
- :mod:`.accounts`: members by card, their lots, entries and day counters;
- :mod:`.redeeming`: what a redemption is checked against and the entries that take it;
- :mod:`.member_tiers` and :mod:`.members`: tiers, registration, import and lookups;
- :mod:`.sales`, :mod:`.refunds`, :mod:`.exchange` (with adjustments) and :mod:`.sweep`;
- :mod:`.card_states`: frozen and retired cards, and what HQ's member operations change;
- :mod:`.operators`: signing in.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from terminal.loyalty.clock import Moment
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import reports
from terminal.loyalty.store.accounts import CardRef, member_ref
from terminal.loyalty.store.card_states import CardStates
from terminal.loyalty.store.database import Record, open_database, write_transaction
from terminal.loyalty.store.exchange import MAX_ADJUST, Exchanges
from terminal.loyalty.store.members import PHONE
from terminal.loyalty.store.redeeming import HeldAtHq
from terminal.loyalty.store.refunds import Refunds
from terminal.loyalty.store.sales import Sales
from terminal.loyalty.store.staff import Staff
from terminal.loyalty.store.sweep import SWEEP_CHUNK, Sweep
from terminal.loyalty.store.writer import ID, Identity

__all__ = [
    "ID",
    "MAX_ADJUST",
    "PHONE",
    "SWEEP_CHUNK",
    "CardRef",
    "HeldAtHq",
    "Identity",
    "LedgerStore",
    "member_ref",
]


class LedgerStore(Sales, Refunds, Exchanges, Sweep, CardStates, Staff):
    """One terminal's ledger. Open with :meth:`open`; every write is one transaction."""

    @classmethod
    def open(
        cls,
        path: str | Path,
        rules: Rules,
        card_key: bytes,
        identity: Identity,
        new_session: bool = True,
        record: Record | None = None,
    ) -> LedgerStore:
        """``record``: told the ledger's schema numbers before it migrates (open_database)."""
        store = cls(open_database(path, record), rules, card_key, identity)
        if new_session:
            with write_transaction(store.db):
                store._set_meta("epoch", str(store.epoch + 1))
        store._epoch = store.epoch
        return store

    def close(self) -> None:
        self.db.close()

    def moment(self, at: datetime, trusted: bool = True) -> Moment:
        """A Moment for ``at`` with the floor this terminal has seen.

        Only an untrusted moment reads the floor: a trusted one never consults it (its expiry,
        earn and window times are its own clock reading), and the write transaction reads the
        floor it may raise under its own lock, so the operation reads it once."""
        return Moment(at, trusted, None if trusted else self.floor)

    def observe_trusted_time(self, at: datetime) -> None:
        """Raise the floor to a trusted time from elsewhere (NTP, an HQ ack or bundle)."""
        with self._writing(Moment(at, True)):
            pass

    # -- reading ---------------------------------------------------------------------------------

    def statement(self, card: str | CardRef, moment: Moment) -> dict[str, Any]:
        """Every entry with its allocations, and every lot with what is left and its expiry."""
        member = self._member(card)
        return reports.statement(member, self.rules, self.member_view(member, moment))

    def daily_report(self, day: date) -> dict[str, Any]:
        """Sales, points issued, redeemed, expired, reversed, and the outstanding liability."""
        return reports.daily(self.rules, self.identity.store, self.identity.terminal, day)

    def check_invariants(self) -> list[str]:
        """Every way the ledger could disagree with itself; empty when it is sound."""
        return reports.invariant_problems(self.db)
