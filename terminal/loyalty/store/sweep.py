"""The expiry sweep: every lot due, expired in chunks on the one bulk path below the ORM."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from peewee import SqliteDatabase

from terminal.loyalty.clock import Moment, to_micros
from terminal.loyalty.operations import ExpiryResult
from terminal.loyalty.store import hotpath
from terminal.loyalty.store.accounts import Accounts

SWEEP_CHUNK = 10_000


class Sweep(Accounts):
    """Expiring lots."""

    def expire(self, moment: Moment, chunk: int = SWEEP_CHUNK,
               around: Callable[[], AbstractContextManager[object]] = nullcontext,
               ) -> ExpiryResult:
        """Expire every lot due at the moment's expiry time, in transactions of ``chunk`` lots,
        each inside ``around()`` (HQ's writers' transaction: each chunk commits on its own, so
        the sweep holds the write lock one chunk at a time and a kill keeps what it committed).

        This is the one bulk path: it writes through the cursor with executemany because at a
        million lots the ORM's per-row cost dominates (see bench/bench_ledger.py), and lends
        SQLite a larger page cache while it runs. Lots come due in the order DUE_LOTS gives
        every copy of the ledger, and each chunk's members get their entries in the order of
        their first lot due (:meth:`_record_expiries`; not by member id: ids are random, so two
        databases holding the same events would number the entries differently); balances are
        updated in key order.
        """
        as_of = moment.expiry_as_of
        if as_of is None:
            return ExpiryResult(0, 0, 0, None, "the clock is not trusted and no trusted time "
                                               "has been seen: nothing expires")
        as_of_us = to_micros(as_of)
        lots = points = 0
        members: set[str] = set()
        with self._sweep_cache():
            while True:
                with around(), self._writing(moment) as w:
                    due = self.sql.run(hotpath.DUE_LOTS, (as_of_us, chunk)).fetchall()
                    if not due:
                        break
                    self.sql.many(hotpath.TAKE_FROM_BALANCE,
                                  sorted(self._record_expiries(w, due), key=lambda row: row[1]))
                    lots += len(due)
                    points += sum(r for *_, r in due)
                    members.update(member_id for _, member_id, _ in due)
        return ExpiryResult(lots, points, len(members), as_of)

    @contextmanager
    def _sweep_cache(self) -> Iterator[None]:
        """64 MiB of page cache for the sweep only; the till's own footprint stays small."""
        if not isinstance(self.db, SqliteDatabase):
            yield
            return
        before = self.db.execute_sql("PRAGMA cache_size").fetchone()[0]
        self.db.execute_sql("PRAGMA cache_size = -65536")
        try:
            yield
        finally:
            self.db.execute_sql(f"PRAGMA cache_size = {int(before)}")
