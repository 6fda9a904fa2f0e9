"""The one thread that touches the ledger database, so the asyncio loop never waits on a commit.

SQLite commits fsync (``synchronous=FULL``): tens of milliseconds on an SD card. Every ledger
call from the sync side runs here, one at a time, and the loop awaits the result (STYLE.md: one
named single-thread executor per device).

The Peewee models are bound late through ``db_proxy``. A terminal process has one ledger, but a
test or an HQ bench may hold several in one process (two terminals, a collector), so each call
binds the models to its own database for its duration, under the process-wide lock that the
cashier app's ledger executor takes too (:mod:`terminal.loyalty.store.binding`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from peewee import Database, Model

from terminal.loyalty.store.binding import bound_call
from terminal.loyalty.store.models import MODELS

T = TypeVar("T")


class LedgerThread:
    """Run ledger work on one named thread with the models bound to ``db``."""

    def __init__(self, db: Database, extra_models: Iterable[type[Model]] = (),
                 name: str = "ledger") -> None:
        self.db = db
        self.models: tuple[type[Model], ...] = (*MODELS, *extra_models)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` here and now with the models bound (for this thread's own callers)."""
        return bound_call(self.db, self.models, fn, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.call, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
