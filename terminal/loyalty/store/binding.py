"""Which ledger database the Peewee models use, when a process holds more than one.

Every model is bound late through ``db_proxy``; pointing the proxy at a database binds them all.
Each ledger database is used on its one thread
(:class:`~terminal.loyalty.store.ledger_thread.LedgerThread`), whose every call points the proxy
at its database under :data:`LOCK` if another database had it last. A terminal process holds one
ledger: its models are bound once, when the ledger opens, and the lock is never contended. A
test with two tills, a bench or HQ (collector and console) holds several: their threads take
turns under the lock, so no call ever runs against another ledger's database.

``bound`` binds models to a database for a block on any thread (``Database.bind_ctx``), for
tests and HQ services that hold several ledgers and work outside a ledger thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from peewee import Database, Model

from terminal.loyalty.store.models import db_proxy

T = TypeVar("T")

LOCK = threading.RLock()  # held while the models are pointed at a database and used


def use(db: Database) -> None:
    """Point the models at ``db``; the caller holds :data:`LOCK`."""
    if db_proxy.obj is not db:
        db_proxy.initialize(db)


def bound_call(db: Database, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` with the models on ``db``."""
    with LOCK:
        use(db)
        return fn(*args)


@contextmanager
def bound(db: Database, models: Iterable[type[Model]]) -> Iterator[None]:
    """``models`` bound to ``db`` for the block, other ledgers' calls waiting meanwhile."""
    with LOCK, db.bind_ctx(list(models)):
        yield
