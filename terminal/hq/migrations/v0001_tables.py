"""Version 1: the tables, as today's models define them; a database made by a release before this
history keeps the ones it has (and their indexes: the steps after bring those up to date).

On SQLite the loyalty store's tables come from its own history; HQ adds its own. On PostgreSQL
both are created here.
"""

from __future__ import annotations

from collections.abc import Sequence

from peewee import Database, Model

from terminal.hq.models import HQ_MODELS
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.models import MODELS


def _create_missing(db: Database, models: Sequence[type[Model]]) -> None:
    # Not create_tables(safe=True) over all: it would also add today's indexes to an old table,
    # on columns it does not have yet (SQLite even takes the unknown name for a string).
    existing = set(db.get_tables())
    missing = [model for model in models if model._meta.table_name not in existing]
    with bound(db, missing):
        db.create_tables(missing)


def sqlite(db: Database) -> None:
    _create_missing(db, HQ_MODELS)


def postgresql(db: Database) -> None:
    _create_missing(db, MODELS + HQ_MODELS)
