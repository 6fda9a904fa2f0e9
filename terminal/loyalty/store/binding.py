"""Which ledger database the Peewee models use, when a process holds more than one.

Every model is bound late through ``db_proxy``; pointing the proxy at a database binds them all.
Each ledger database is used on its threads
(:class:`~terminal.loyalty.store.ledger_thread.LedgerThread`), whose every call points the proxy
at its database under :data:`LOCK` if another database had it last. A terminal process holds one
ledger: its models are bound once, when the ledger opens, and the lock is never contended. A
test with two tills, a bench or HQ (collector and console) holds several: their threads take
turns under the lock, so no call ever runs against another ledger's database.

Calls on the *same* database share the lock (:func:`bound_call`): HQ's collector runs ingest on
one thread and member requests on another, each on its own connection, and a member's lookup
must not wait for a batch's transaction in Python either (issue 11). Pointing the models at
another database, opening one or binding models for a block (``with LOCK``, :func:`bound`) waits
until no call uses them and excludes every other. A thread already inside goes on inside (as
the re-entrant lock this replaced let it), and while one waits for another database, new calls
on the current one wait behind it, so a busy database cannot starve another.

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


class Binding:
    """Shared by the calls on one database, exclusive otherwise; re-entrant per thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._local = threading.local()
        self._db: Database | None = None  # what the sharing calls use (None: exclusive)
        self._users = 0  # threads inside
        self._waiting = 0  # threads waiting for another database or for all of it

    def _depth(self) -> int:
        return getattr(self._local, "depth", 0)

    @contextmanager
    def _held(self, db: Database | None) -> Iterator[None]:
        """Inside for ``db`` (shared) or ``None`` (exclusive)."""
        depth = self._depth()
        if depth == 0:
            with self._cond:
                if not self._free_for(db):
                    self._waiting += 1
                    try:
                        self._cond.wait_for(lambda: self._free_for(db, waited=True))
                    finally:
                        self._waiting -= 1
                self._users += 1
                self._db = db
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                with self._cond:
                    self._users -= 1
                    if self._users == 0:
                        self._cond.notify_all()

    def _free_for(self, db: Database | None, waited: bool = False) -> bool:
        if self._users == 0:
            return True
        # Share with the calls inside on the same database, unless someone waits for another.
        return db is not None and db is self._db and (waited or self._waiting == 0)

    def __enter__(self) -> None:
        self._exclusive = self._held(None)
        self._stack().append(self._exclusive)
        self._exclusive.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._stack().pop().__exit__(*exc)

    def _stack(self) -> list[Any]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    @contextmanager
    def sharing(self, db: Database) -> Iterator[None]:
        """Inside with the models on ``db``, beside other calls on ``db``."""
        with self._held(db):
            use(db)
            yield


LOCK = Binding()  # held while the models are pointed at a database and used


def use(db: Database) -> None:
    """Point the models at ``db``; the caller holds :data:`LOCK`."""
    if db_proxy.obj is not db:
        db_proxy.initialize(db)


def bound_call(db: Database, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` with the models on ``db`` (beside other calls on ``db``)."""
    with LOCK.sharing(db):
        return fn(*args)


@contextmanager
def bound(db: Database, models: Iterable[type[Model]]) -> Iterator[None]:
    """``models`` bound to ``db`` for the block, other ledgers' calls waiting meanwhile."""
    # Once each: peewee's bind_ctx puts each listed model back in order, so a model listed
    # twice would be put back to ``db`` by its second entry and stay bound to it after the block.
    with LOCK, db.bind_ctx(list(dict.fromkeys(models))):
        yield
