"""The console's handle on HQ's database: every call on one named thread (the event loop never
waits on a query), models bound, in one transaction: IMMEDIATE on SQLite, so a read that writes
its audit row never has to upgrade its lock; a plain one on PostgreSQL, where reads never wait for
the collectors' ingest lock. Member operations bring their own binding and transaction
(:meth:`ConsoleDb.run_own`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

from peewee import Database, SqliteDatabase

from terminal.hq.console.models import CONSOLE_MODELS
from terminal.hq.console.schema import ensure_schema
from terminal.hq.database import open_hq_database
from terminal.hq.models import HQ_MODELS
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.models import MODELS

T = TypeVar("T")


class ConsoleDb:
    def __init__(self, url: str) -> None:
        self.db: Database = open_hq_database(url)
        ensure_schema(self.db)
        self.models = (*MODELS, *HQ_MODELS, *CONSOLE_MODELS)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="console-db")

    def _transaction(self) -> Any:
        if isinstance(self.db, SqliteDatabase):
            return self.db.atomic("IMMEDIATE")
        return self.db.atomic()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` bound and in one transaction, here (the CLI, tests)."""
        with bound(self.db, self.models), self._transaction():
            return fn(*args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """:meth:`call` on the console's database thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.call, fn, *args)

    async def run_own(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the database thread as it is: for code that binds the models
        and opens its transaction itself (the member operations)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.db.close()
