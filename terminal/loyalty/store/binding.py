"""Binding the models to one database for a call, when a process holds several ledgers.

The Peewee models are bound late through ``db_proxy``, and a binding is global to the model
classes. A terminal process has one ledger, but a test, a bench or an HQ process may hold several
(two tills, a collector), each touched from its own thread. Every ledger thread therefore binds
the models to its own database for the duration of each call (``Database.bind_ctx``), under one
process-wide lock, so no call ever runs against another ledger's database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from peewee import Database, Model

T = TypeVar("T")

_BINDING = threading.Lock()


@contextmanager
def bound(db: Database, models: Iterable[type[Model]]) -> Iterator[None]:
    """``models`` bound to ``db`` for the block, other ledgers' calls waiting meanwhile."""
    with _BINDING, db.bind_ctx(list(models)):
        yield


def bound_call(db: Database, models: Iterable[type[Model]], fn: Callable[..., T],
               *args: Any) -> T:
    with bound(db, models):
        return fn(*args)
