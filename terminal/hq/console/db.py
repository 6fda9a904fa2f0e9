"""The console's handle on HQ's database: every call on its one ledger thread (the event loop
never waits on a query), in one transaction: IMMEDIATE on SQLite, so a read that writes its audit
row never has to upgrade its lock; a plain one on PostgreSQL, where reads never wait for the
collectors' ingest lock. Member operations bring their own binding and transaction
(:meth:`ConsoleDb.run_own`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from peewee import Database, SqliteDatabase

from terminal.hq import rollup
from terminal.hq.database import open_hq_database, tune_for_reports
from terminal.loyalty.store.ledger_thread import LedgerThread

T = TypeVar("T")


class ConsoleDb:
    def __init__(self, url: str) -> None:
        self.db: Database = open_hq_database(url)  # its migrations make the console's tables
        self.thread = LedgerThread(self.db, name="console-db")

    def _transaction(self) -> Any:
        if isinstance(self.db, SqliteDatabase):
            return self.db.atomic("IMMEDIATE")
        return self.db.atomic()

    def _in_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        with self._transaction():
            return fn(*args)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on this database in one transaction, here (the CLI, tests)."""
        return self.thread.call(self._in_transaction, fn, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """:meth:`call` on the console's database thread."""
        return await self.thread.run(self._in_transaction, fn, *args)

    def caught_up(self, zone: ZoneInfo, window_months: int = rollup.WINDOW_MONTHS
                  ) -> _CaughtUp:
        """This database, whose ``run`` first catches the reports' roll-ups up (in their own
        transaction, terminal.hq.rollup), then reads as :meth:`run` does."""
        return _CaughtUp(self, zone, window_months)

    async def run_own(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the database thread as it is: for code that binds the models
        and opens its transaction itself (the member operations)."""
        return await self.thread.run(fn, *args)

    def close(self) -> None:
        self.thread.close()
        self.db.close()


class _CaughtUp:
    def __init__(self, console: ConsoleDb, zone: ZoneInfo, window_months: int) -> None:
        self.console, self.zone, self.window_months = console, zone, window_months

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        rollup.catch_up(self.console.db, self.zone, self.window_months)
        return self.console._in_transaction(self._tuned, fn, *args)

    def _tuned(self, fn: Callable[..., T], *args: Any) -> T:
        tune_for_reports(self.console.db)
        return fn(*args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.console.thread.run(self._read, fn, *args)
