"""Opening the ledger database: pragmas said and checked, schema created or migrated.

The pragmas are what promise 1 rests on: WAL so readers never block the till, and
``synchronous=FULL`` so a committed sale survives power loss (in WAL mode NORMAL would not).

Two schema numbers are stored in ``meta``: ``schema_version``, the lowest software schema that
may run on the ledger (what every release, the shipped ones too, compares its own against and
refuses to run above), and ``schema_applied``, the last migration applied (a ledger without it
has applied its ``schema_version``). An additive migration raises the second only, so a release
rolled back to after it still opens the ledger (docs/field.md section 5).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import peewee
from peewee import Database, IntegerField, OperationalError, SqliteDatabase
from playhouse.migrate import SchemaMigrator, SqliteMigrator, migrate

from terminal.loyalty.errors import StorageFull
from terminal.loyalty.store.binding import LOCK
from terminal.loyalty.store.models import (
    APPEND_ONLY,
    MODELS,
    CardState,
    HeldBundle,
    Lot,
    Meta,
    Operator,
    OperatorName,
    db_proxy,
)

PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": 2,  # FULL
    "foreign_keys": 1,
    "busy_timeout": 5000,
}

VERSION_KEY = "schema_version"  # in meta: the lowest software schema that may run on it
APPLIED_KEY = "schema_applied"  # in meta: the last migration applied

_log = logging.getLogger(__name__)


class StorageError(RuntimeError):
    """The database cannot be opened safely: wrong pragmas, newer schema, damaged file."""


@dataclass(frozen=True)
class Migration:
    """Migration N takes the schema from N - 1 to N. ``additive``: software of schema N - 1 may
    still run on the result (see the rule above :data:`MIGRATIONS`); otherwise it is breaking
    and the ledger then needs software of schema N or newer."""

    run: Callable[[SqliteDatabase, SqliteMigrator], None]
    additive: bool


class StoredSchema(NamedTuple):
    applied: int  # the last migration applied
    compatible: int  # the lowest software schema that may run on the ledger


def _create_v1(db: SqliteDatabase, migrator: SqliteMigrator) -> None:
    db.create_tables(MODELS)
    # The expiry sweep scans only lots with points left, in expiry order.
    db.execute_sql(
        f"CREATE INDEX IF NOT EXISTS lot_open_by_expiry ON {Lot._meta.table_name} "
        "(expires_us) WHERE remaining > 0"
    )
    for model in APPEND_ONLY:
        table = model._meta.table_name
        for action in ("UPDATE", "DELETE"):
            db.execute_sql(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} BEFORE {action} "
                f"ON {table} BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def _add_card_state_v2(db: SqliteDatabase, migrator: SqliteMigrator) -> None:
    # HQ's member operations (freeze, lost-card replacement, merge) reach the till as card
    # states; a database made at version 1 before this table existed gets it here.
    db.create_tables([CardState], safe=True)


def operators_sign_in(db: Database, migrator: SchemaMigrator) -> None:
    """Schema 3: operators sign in with number + PIN (``store.operators``): a number for each
    operator (1, 2, ... in name order), the keyed hash, the lockout; the scrypt hash stays until
    the operator's first sign-in replaces it. HQ's PostgreSQL history runs it too (models
    bound by the caller)."""
    table = Operator._meta.table_name
    if "number" in {column.name for column in db.get_columns(table)}:
        return  # made by _create_v1 from today's models
    fields = Operator._meta.fields
    migrate(
        migrator.add_column(table, "number", IntegerField(default=0)),
        migrator.add_column(table, "pin_mac", fields["pin_mac"]),
        migrator.add_column(table, "failures", fields["failures"]),
        migrator.add_column(table, "locked_until_us", fields["locked_until_us"]),
        migrator.drop_not_null(table, "pin_salt"),
        migrator.drop_not_null(table, "pin_hash"),
    )
    for number, (name,) in enumerate(
            Operator.select(Operator.name).order_by(Operator.name).tuples(), 1):
        Operator.update(number=number).where(Operator.name == name).execute()
    migrate(migrator.add_index(table, ("number",), unique=True))


def _held_bundle_v5(db: SqliteDatabase, migrator: SqliteMigrator) -> None:
    # The terminal's held bundles, created by the sync link at start until this version.
    db.create_tables([HeldBundle], safe=True)


def _operator_names_v6(db: SqliteDatabase, migrator: SqliteMigrator) -> None:
    # The names operators are greeted by (a table of its own: the operator table is HQ's too,
    # and a column there would need HQ's schema to follow).
    db.create_tables([OperatorName], safe=True)


def _operator_names_follow_v7(db: SqliteDatabase, migrator: SqliteMigrator) -> None:
    # A release from before schema 6 (rolled back to, migration 6 being additive) sets an
    # operator without their greeted name; the greeting set before would then be the wrong
    # person's, so whoever (re)writes an operator row drops it: greeted by their id until set
    # again. INSERT covers every writer: set_operator, old or new, REPLACEs the row (today's
    # writes the name after it), and sign-in's UPDATEs keep the person.
    db.execute_sql(
        f"CREATE TRIGGER IF NOT EXISTS operator_name_follows_operator AFTER INSERT ON "
        f"{Operator._meta.table_name} BEGIN DELETE FROM {OperatorName._meta.table_name} "
        "WHERE name = NEW.name; END"
    )


@contextmanager
def _full_is_refused() -> Iterator[None]:
    try:
        yield
    except (OperationalError, sqlite3.OperationalError) as exc:
        cause = exc.__cause__ or exc.__context__ or exc
        if getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL \
                or "database or disk is full" in str(exc):
            raise StorageFull() from exc
        raise


class LedgerDatabase(SqliteDatabase):
    """SQLite for the ledger: a full disk (SQLITE_FULL) is a :class:`StorageFull` refusal.

    On SQLITE_FULL SQLite may roll the transaction back by itself; the ROLLBACK that Peewee then
    sends would fail with "no transaction is active" and hide the real error, so a rollback with
    no transaction open is a no-op here.
    """

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        with _full_is_refused():
            return super().execute_sql(sql, params)

    def execute_plain(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """``execute_sql`` without its per-statement Python (a context manager, logging, cursor
        checks: about 5 us, more than a sale's statement costs SQLite): straight to this
        thread's connection, raising the same errors (Peewee's classes, :class:`StorageFull`).
        With query hooks installed every statement goes through ``execute_sql`` for them."""
        if self.query_hooks:
            return self.execute_sql(sql, params)
        try:
            return self.connection().execute(sql, params)
        except sqlite3.Error as exc:
            # Translated only when raised, as Peewee's execute_sql does it: its class of the
            # same name, the driver's error as the cause.
            error = getattr(peewee, type(exc).__name__, peewee.DatabaseError)
            with _full_is_refused():
                raise error(exc, *exc.args) from exc

    def commit(self) -> None:
        with _full_is_refused():
            super().commit()

    def rollback(self) -> None:
        connection = self._state.conn
        if connection is not None and not connection.in_transaction:
            return
        super().rollback()


def _index_open_lots_by_member_v4(db: SqliteDatabase, migrator: SqliteMigrator) -> None:
    """A member's expired but unrecorded lots are read before every operation for them (and
    for the balance shown): only lots with points left, by expiry, so old lots cost nothing."""
    db.execute_sql(
        f"CREATE INDEX IF NOT EXISTS lot_open_by_member ON {Lot._meta.table_name} "
        "(member_id, expires_us) WHERE remaining > 0"
    )


# Migration N takes the schema from version N - 1 to N. Devices in the field upgrade with data
# on them, so a new column is a new function here (playhouse.migrate), never an edit of models
# alone.
#
# A migration may be additive only if software of the schema before it runs correctly on the
# result: it adds a table or an index that older software never reads, or a trigger (on any
# table) that writes only such tables; and newer software is right when those tables' rows are
# missing or stale after older software ran (where they derive from rows older software
# writes, a trigger keeps them in step, as 7 does for 6). A release rolled back to after an
# additive step opens the ledger. Anything else (a column, a changed meaning, a NOT NULL, a
# dropped table) is breaking: the ledger then refuses every older release, and the update agent
# refuses a rollback to one (the opener's ``record`` tells it the level before the step runs;
# docs/field.md section 5).
# 1-5 were written before this rule and count as breaking (ledgers in the field say 5).
MIGRATIONS: dict[int, Migration] = {
    1: Migration(_create_v1, additive=False),
    2: Migration(_add_card_state_v2, additive=False),
    3: Migration(operators_sign_in, additive=False),
    4: Migration(_index_open_lots_by_member_v4, additive=False),
    5: Migration(_held_bundle_v5, additive=False),
    6: Migration(_operator_names_v6, additive=True),
    7: Migration(_operator_names_follow_v7, additive=True),
}


Record = Callable[[StoredSchema], None]


def open_database(path: str | Path, record: Record | None = None) -> SqliteDatabase:
    """Open (creating if needed) the ledger at ``path``, bind the models, migrate, check.
    ``record`` is told the numbers the ledger will have once open, before any step runs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = LedgerDatabase(str(path), pragmas=PRAGMAS, lock_type="IMMEDIATE")
    # The models point at this database under the process-wide lock: another ledger's thread
    # using them meanwhile would otherwise get this database's tables created in its own (seen:
    # a till opened while a collector's thread ran in the same process), or run on this one.
    with LOCK:
        db_proxy.initialize(db)
        db.connect(reuse_if_open=True)
        check_pragmas(db)
        upgrade(db, MIGRATIONS, record)
    return db


def write_transaction(db: Database) -> Any:
    """A writer's transaction: BEGIN IMMEDIATE on SQLite, so two writers never deadlock on the
    upgrade from a read lock; a plain transaction elsewhere (HQ's PostgreSQL)."""
    return db.atomic("IMMEDIATE") if isinstance(db, SqliteDatabase) else db.atomic()


def check_pragmas(db: SqliteDatabase) -> None:
    journal = db.execute_sql("PRAGMA journal_mode").fetchone()[0]
    synchronous = db.execute_sql("PRAGMA synchronous").fetchone()[0]
    foreign = db.execute_sql("PRAGMA foreign_keys").fetchone()[0]
    if journal.lower() != "wal" or synchronous != 2 or foreign != 1:
        raise StorageError(
            f"{db.database}: unsafe pragmas (journal_mode={journal}, synchronous={synchronous},"
            f" foreign_keys={foreign}); need wal, 2 (FULL), 1"
        )


def stored_schema(db: SqliteDatabase) -> StoredSchema:
    """The ledger's two schema numbers; (0, 0) for a new file."""
    if not db.table_exists(Meta._meta.table_name):
        return StoredSchema(0, 0)
    values = dict(Meta.select(Meta.key, Meta.value).where(
        Meta.key.in_((VERSION_KEY, APPLIED_KEY))).tuples())
    compatible = int(values.get(VERSION_KEY, 0))
    return StoredSchema(int(values.get(APPLIED_KEY, compatible)), compatible)


def compatible_from(migrations: Mapping[int, Migration], applied: int) -> int:
    """The lowest software schema that may run on a ledger with migrations 1..``applied``: the
    last breaking one's."""
    return max((version for version, step in migrations.items()
                if version <= applied and not step.additive), default=0)


def _openable(db: SqliteDatabase, target: int) -> StoredSchema:
    stored = stored_schema(db)
    if stored.compatible > target:
        raise StorageError(
            f"{db.database}: schema version {stored.compatible} is newer than this software "
            f"({target}): a release of schema {stored.applied} migrated the ledger so that "
            f"only software of schema {stored.compatible} or newer runs on it; install that "
            "release or restore its database"
        )
    return stored


def upgrade(db: SqliteDatabase, migrations: Mapping[int, Migration],
            record: Record | None = None) -> int:
    """Apply every migration above the applied one, each in its own transaction; return the
    ledger's applied schema. The numbers are read again under each transaction's write lock: a
    migration another process applied meanwhile (two processes opening one new file) is passed
    over, never run twice. A ledger needing newer software is refused; one that a newer release
    migrated only additively is opened as it is. ``record`` (when given) is told the numbers
    the ledger will have after this, before any step runs: an error there runs no breaking
    step."""
    target = max(migrations)
    stored = _openable(db, target)
    applied = stored.applied
    if record is not None:
        _record(db, record, stored, StoredSchema(
            max(applied, target), max(stored.compatible, compatible_from(migrations, target))))
    if applied > target:
        _log.warning(
            "%s: ledger schema %d, applied by a newer release, is above this software's (%d); "
            "its steps above %d are additive: opened without migrating", db.database, applied,
            target, target)
        return applied
    migrator = SqliteMigrator(db)
    for version in range(applied + 1, target + 1):
        with write_transaction(db):
            if _openable(db, target).applied >= version:
                continue
            migrations[version].run(db, migrator)
            Meta.replace_many([
                {"key": APPLIED_KEY, "value": str(version)},
                {"key": VERSION_KEY, "value": str(compatible_from(migrations, version))},
            ]).execute()
    return target


def _record(db: SqliteDatabase, record: Record, stored: StoredSchema,
            schema: StoredSchema) -> None:
    """Unrecorded, a breaking step is not run (the update agent would not know the ledger then
    refuses the previous release); anything else goes on, said in the log."""
    try:
        record(schema)
    except OSError as exc:
        if schema.compatible > stored.compatible:
            raise StorageError(
                f"{db.database}: cannot record for the update agent that the ledger will need "
                f"schema {schema.compatible} ({exc}); not migrated") from exc
        _log.warning("%s: cannot record its schema for the update agent: %s", db.database, exc)
