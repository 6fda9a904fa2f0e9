"""The one thread that touches a ledger database, so the asyncio loop never waits on a commit.

SQLite commits fsync (``synchronous=FULL``): tens of milliseconds on an SD card. Every call on a
ledger runs on its thread, one at a time, and the loop awaits the result (STYLE.md: one named
single-thread executor per device). The composition root makes one per ledger database and hands
it to everything that uses that ledger: in a terminal, the till and the HQ link share it, so
their writes are strictly ordered on one SQLite connection. Each call runs with the models on
this thread's database (:mod:`terminal.loyalty.store.binding`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from peewee import Database

from terminal.core.executor import DeviceExecutor
from terminal.loyalty.store.binding import LOCK, bound_call

T = TypeVar("T")


class _HoldsDatabase(Protocol):
    db: Database


Opened = TypeVar("Opened", bound=_HoldsDatabase)


class LedgerThread(DeviceExecutor):
    """Runs ledger work in order on one named thread, with the models on its database."""

    def __init__(self, db: Database | None = None, *, name: str = "ledger") -> None:
        super().__init__(name)
        self.db = db
        self.pending = 0  # calls awaited through run() and not yet done (running or queued)

    async def open(self, opener: Callable[[], Opened]) -> Opened:
        """Open the ledger here (``opener`` returns what holds it, e.g. a ``LedgerStore``), so
        its connection lives on this thread; its database is this thread's from then on."""
        opened = await super().run(self._locked, opener)
        self.db = opened.db
        return opened

    @staticmethod
    def _locked(opener: Callable[[], Opened]) -> Opened:
        with LOCK:  # opening points the models at the new database
            return opener()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` here and now with the models on this database (for this thread's own
        callers, and a CLI's)."""
        if self.db is None:
            raise RuntimeError(f"ledger thread {self.name!r}: no database opened yet")
        return bound_call(self.db, fn, *args)

    async def run(self, function: Callable[..., T], *args: object) -> T:
        self.pending += 1
        try:
            return await super().run(self.call, function, *args)
        finally:
            self.pending -= 1

    def close(self) -> None:
        self.shutdown()
