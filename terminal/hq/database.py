"""HQ's database: SQLite (one shop) or PostgreSQL (a chain), with the loyalty store's schema.

``--db`` is a file path or ``sqlite:///path`` for SQLite, ``postgresql://user@host:port/name``
for PostgreSQL (through Peewee and psycopg2).

On PostgreSQL every statement is a round trip to the server, and round trips, not SQL, were what
ingest spent its time on (profiled: about 0.2 ms each on the 2-core bench machine, a dozen per
event). :class:`HqPostgresDatabase` can therefore *pipeline* a batch's writes: statements whose
result nobody reads (the store's inserts and updates, savepoints) wait in memory and travel with
the next statement that must be answered, or with the COMMIT, as one multi-statement string.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from peewee import (
    Database,
    PostgresqlDatabase,
    SqliteDatabase,
    __exception_wrapper__,
    _savepoint,
)
from playhouse.db_url import parse

from terminal.hq.models import HQ_MODELS
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.database import open_database
from terminal.loyalty.store.models import MODELS

# Every HQ writer takes this transaction-scoped lock first: the ledger's sequence counter is one
# row, so chain-wide writes are serial anyway; the lock makes collectors queue instead of failing.
_PG_LOCK = 0x706F7374  # "post"
# Schema creation takes this session-level lock: CREATE TABLE IF NOT EXISTS is not safe against
# itself (two collectors starting on an empty database both pass the check and one fails on
# pg_type's unique index), so collectors create the schema one after the other.
_PG_SCHEMA_LOCK = 0x706F7363  # "posc"


class HqPostgresDatabase(PostgresqlDatabase):
    """PostgreSQL whose writes can wait for the next round trip (see :meth:`pipelined`).

    Used from one thread at a time (the collector's ledger thread), as Peewee's connection is.
    """

    def init(self, database: Any, **kwargs: Any) -> None:
        super().init(database, **kwargs)
        self._pending: list[bytes] = []  # statements not sent yet, in order
        self._savepoints: dict[str, int] = {}  # a pending SAVEPOINT's name -> its index
        self._aliases: dict[str, str] = {}  # a savepoint never set -> the one standing for it
        self._pipelined = False
        self._savepoint_ids = itertools.count(1)
        self._failed = False  # a pipelined send failed: the transaction can only roll back
        # Called before any statement but a SELECT runs (not for deferred ones): what a batch
        # keeps of the rows may be stale after (see terminal.hq.batch).
        self.on_write: Callable[[], None] | None = None

    def savepoint(self) -> _savepoint:
        # Peewee names each savepoint by a uuid4 (a getrandom() call): 6% of a collector's time
        # at two savepoints per event (py-spy). A counter names them as uniquely.
        return _savepoint(self, f"hq{next(self._savepoint_ids)}")

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """Within: savepoints are held back, and so is whatever :meth:`defer` is given, until a
        statement needs an answer or the transaction commits; a savepoint rolled back before it
        was sent costs nothing. Errors of held-back writes surface at that later statement, in
        the same transaction: the batch fails as a whole (nothing the store catches is a
        database error)."""
        self._pipelined = True
        try:
            yield
        finally:
            self._pipelined = False

    @property
    def pipelining(self) -> bool:
        return self._pipelined

    def defer(self, sql: str, params: Any = None) -> None:
        """Send ``sql`` with the next statement that needs an answer (or the COMMIT)."""
        self._pending.append(self._mogrify(sql, params))

    def _mogrify(self, sql: str, params: Any) -> bytes:
        """The statement with its parameters, as psycopg2 would send it.

        The store's parameters are ints, strings, booleans and NULLs; quoting those here takes
        3 us where psycopg2's mogrify takes 17 (measured, a sale's 17 parameters), which was a
        tenth of an event's time. A string literal is its text with quotes doubled, exactly as
        PQescapeStringConn makes it when standard_conforming_strings is on (PostgreSQL's
        default since 9.1, and checked here); anything else goes to psycopg2."""
        if self.is_closed():
            self.connect()
        conn = self._state.conn
        if params and conn.encoding == "UTF8" \
                and conn.get_parameter_status("standard_conforming_strings") == "on":
            literals = [_literal(value) for value in params]
            if None not in literals:
                return (sql % tuple(literals)).encode()
        return conn.cursor().mogrify(sql, params or None)

    def _send(self, statements: list[bytes]) -> Any:
        self._log_query(statements[-1], None)
        try:
            with __exception_wrapper__:
                cursor = self.cursor()
                cursor.execute(b";\n".join(statements))
        except Exception:
            self._failed = True
            raise
        return cursor

    def _take(self) -> list[bytes]:
        pending, self._pending = self._pending, []
        self._savepoints.clear()
        return pending

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        if self._pipelined:
            if sql.startswith("SAVEPOINT "):
                name = _savepoint_name(sql, 1)
                if self._pending and self._pending[-1].startswith(b"SAVEPOINT "):
                    # Nested with nothing between (the store's transaction inside the event's):
                    # the outer one stands for it, rolled back to the same state.
                    self._aliases[name] = _savepoint_name(self._pending[-1].decode(), 1)
                    return None
                self._savepoints[name] = len(self._pending)
                self._pending.append(sql.encode())
                return None
            if sql.startswith("RELEASE SAVEPOINT "):
                if self._aliases.pop(_savepoint_name(sql, 2), None) is None:
                    self._pending.append(sql.encode())
                return None
            if sql.startswith("ROLLBACK TO SAVEPOINT "):
                if self._failed:
                    # Which savepoints the failed string reached is unknown, and the error
                    # fails the batch: leave the transaction to its ROLLBACK, the error intact.
                    return None
                name = _savepoint_name(sql, 3)
                name = self._aliases.pop(name, name)
                sql = f'ROLLBACK TO SAVEPOINT {name}'
                at = self._savepoints.get(name)
                if at is not None:  # never sent: nothing after it need be (it stays, as in SQL)
                    del self._pending[at + 1:]
                    self._savepoints = {n: i for n, i in self._savepoints.items() if i <= at}
                    return None
                # Sent already: everything pending came after it, so it is undone unsent.
                self._take()
        if self.on_write is not None and sql.lstrip()[:6].upper() != "SELECT":
            self.on_write()
        if not self._pending:
            return super().execute_sql(sql, params)
        return self._send([*self._take(), self._mogrify(sql, params)])

    def commit(self) -> None:
        if self._failed:
            raise RuntimeError("a pipelined statement failed: the transaction must roll back")
        self._aliases.clear()
        if self._pending:
            self._send([*self._take(), b"COMMIT"])
            return
        super().commit()

    def rollback(self) -> None:
        self._take()
        self._aliases.clear()
        self._failed = False
        super().rollback()


def _savepoint_name(sql: str, word: int) -> str:
    return sql.split()[word].rstrip(";")


def _literal(value: Any) -> str | None:
    """``value`` as an SQL literal, or None for psycopg2 to quote (see ``_mogrify``)."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is str:
        return None if "\0" in value else "'" + value.replace("'", "''") + "'"
    if value is None:
        return "NULL"
    if kind is bool:
        return "true" if value else "false"
    return None


def pipelined(db: Database) -> AbstractContextManager[None]:
    """:meth:`HqPostgresDatabase.pipelined`, or nothing on a database without round trips."""
    return db.pipelined() if isinstance(db, HqPostgresDatabase) else nullcontext()


def open_hq_database(url: str) -> Database:
    if url.startswith(("postgresql://", "postgres://")):
        db = HqPostgresDatabase(**parse(url))
        db.execute_sql("SELECT pg_advisory_lock(%s)", (_PG_SCHEMA_LOCK,))
        try:
            with bound(db, MODELS + HQ_MODELS):
                db.create_tables(MODELS + HQ_MODELS, safe=True)
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (_PG_SCHEMA_LOCK,))
        return db
    db = open_database(url.removeprefix("sqlite:///"))
    with bound(db, HQ_MODELS):  # see open_database: other ledgers' threads bind these too
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
