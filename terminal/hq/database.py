"""HQ's database: SQLite (one shop) or PostgreSQL (a chain), with the loyalty store's schema.

``--db`` is a file path or ``sqlite:///path`` for SQLite, ``postgresql://user@host:port/name``
for PostgreSQL (through Peewee and psycopg2).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from peewee import Database, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import connect

from terminal.hq.models import HQ_MODELS
from terminal.loyalty.store.database import open_database
from terminal.loyalty.store.models import MODELS

# Every HQ writer takes this transaction-scoped lock first: the ledger's sequence counter is one
# row, so chain-wide writes are serial anyway; the lock makes collectors queue instead of failing.
_PG_LOCK = 0x706F7374  # "post"


def open_hq_database(url: str) -> Database:
    if url.startswith(("postgresql://", "postgres://")):
        db = connect(url)
        with db.bind_ctx(MODELS + HQ_MODELS):
            db.create_tables(MODELS + HQ_MODELS, safe=True)
        return db
    db = open_database(url.removeprefix("sqlite:///"))
    with db.bind_ctx(HQ_MODELS):
        db.create_tables(HQ_MODELS, safe=True)
    return db


def writing(db: Database) -> AbstractContextManager[object]:
    """One HQ write transaction: IMMEDIATE on SQLite, advisory-locked on PostgreSQL."""
    if isinstance(db, SqliteDatabase):
        return db.atomic("IMMEDIATE")
    return _LockedAtomic(db)


class _LockedAtomic:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.atomic = db.atomic()

    def __enter__(self) -> object:
        entered = self.atomic.__enter__()
        if isinstance(self.db, PostgresqlDatabase):
            self.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK,))
        return entered

    def __exit__(self, *exc: object) -> None:
        self.atomic.__exit__(*exc)
