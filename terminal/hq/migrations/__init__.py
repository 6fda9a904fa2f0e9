"""HQ's schema history: one numbered migration per file, on SQLite and on PostgreSQL.

A migration is a module ``vNNNN_what.py`` in this package with two functions, ``sqlite(db)`` and
``postgresql(db)``, each taking the schema of its kind of database from version NNNN - 1 to NNNN
(either may do nothing), or with one function ``both(db)`` when the step is the same on both.
Adding one is adding that file: it is found by its name, run once, in order, each in its own
transaction, and the version is stored in ``meta`` under ``hq_schema_version``. Write each step
so it also passes over a database that already has what it makes (``CREATE ... IF NOT EXISTS``,
``safe=True``): version 1 creates today's tables, and a database made by a release before this
history (no version stored) is brought in by the same steps. docs/hq.md says how, with an example.

On SQLite the loyalty store's own history (terminal.loyalty.store.database, ``schema_version``
and ``schema_applied``) runs first, as on every terminal; on PostgreSQL the store's tables are
HQ's to create, here.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import ModuleType

from peewee import Database, Field, Model, PostgresqlDatabase, SqliteDatabase
from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

from terminal.loyalty.store import hotpath

VERSION_KEY = "hq_schema_version"
_NAME = re.compile(r"v(\d{4})_\w+")


class SchemaMismatch(ValueError):
    """The database's schema is not the one this software was built for."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sqlite: Callable[[Database], None]
    postgresql: Callable[[Database], None]

    def run(self, db: Database) -> None:
        (self.postgresql if isinstance(db, PostgresqlDatabase) else self.sqlite)(db)


def _load(module: ModuleType, version: int, name: str) -> Migration:
    """A migration is ``both(db)``, the same step on either kind, or ``sqlite(db)`` and
    ``postgresql(db)``: one of the two forms, never a mix."""
    both = getattr(module, "both", None)
    kinds = [kind for kind in ("sqlite", "postgresql") if hasattr(module, kind)]
    if callable(both) and not kinds:
        return Migration(version, name, both, both)
    missing = [kind for kind in ("sqlite", "postgresql")
               if not callable(getattr(module, kind, None))]
    if both is not None or missing:
        raise TypeError(f"migration {module.__name__} must define both(db), or sqlite(db) and "
                        "postgresql(db)")
    return Migration(version, name, module.sqlite, module.postgresql)


def history() -> list[Migration]:
    """Every migration in this package, by version; the versions run 1, 2, ... without a gap."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        match = _NAME.fullmatch(info.name)
        if match:
            module = importlib.import_module(f"{__name__}.{info.name}")
            found.append(_load(module, int(match.group(1)), info.name))
    found.sort(key=lambda m: m.version)
    numbers = [m.version for m in found]
    if numbers != list(range(1, len(found) + 1)):
        raise RuntimeError(f"HQ's migrations must be numbered 1, 2, ... once each: {numbers}")
    return found


def latest() -> int:
    """The schema version this software writes and expects."""
    return len(history())


def stored_version(db: Database) -> int | None:
    """The version stored in the database; 0 for a database made before this history (HQ's
    tables there, no version), None for an empty one."""
    tables = set(db.get_tables())
    if "meta" in tables:
        row = db.execute_sql(_sql(hotpath.GET_META, db), (VERSION_KEY,)).fetchone()
        if row is not None:
            return int(row[0])
    return 0 if "applied_event" in tables else None


def upgrade(db: Database) -> int:
    """Run every migration above the stored version, each in its own transaction; return the
    version the database is at. Refuses a database newer than this software.

    Several processes may upgrade one database at once (a collector and its member-request
    process starting on a new SQLite file): each migration's transaction takes the write lock
    first (IMMEDIATE on SQLite; PostgreSQL's callers hold the schema advisory lock) and reads the
    version again under it, so a migration another process applied meanwhile is passed over,
    never run twice."""
    current = stored_version(db) or 0
    migrations = history()
    if current > len(migrations):
        raise SchemaMismatch(_newer(current, len(migrations)))
    for migration in migrations[current:]:
        with _migrating(db):
            if (stored_version(db) or 0) >= migration.version:
                continue
            migration.run(db)
            db.execute_sql(_sql(hotpath.SET_META, db), (VERSION_KEY, str(migration.version)))
    return len(migrations)


def _migrating(db: Database) -> AbstractContextManager[object]:
    """A migration's transaction, holding the write lock from its first statement on SQLite."""
    if isinstance(db, SqliteDatabase):
        return db.atomic("IMMEDIATE")
    return db.atomic()


def check(db: Database) -> int:
    """Refuse (naming both versions) a database whose schema is not exactly this software's."""
    current, expected = stored_version(db) or 0, latest()
    if current > expected:
        raise SchemaMismatch(_newer(current, expected))
    if current < expected:
        raise SchemaMismatch(
            f"the database's schema is version {current}, older than this posterm-hq's "
            f"{expected}: run `posterm-hq db upgrade --db URL` first")
    return current


def _sql(statement: str, db: Database) -> str:
    """One of the store's statements (written with ``?``) in ``db``'s parameter style."""
    return statement.replace("?", db.param)


def _newer(current: int, expected: int) -> str:
    return (f"the database's schema is version {current}, newer than this posterm-hq's "
            f"{expected}: install the release that made it")


def add_columns(db: Database, model: type[Model], *fields: Field) -> None:
    """Add ``fields`` of ``model`` to its table unless the first is there already (a table made
    from today's model by an earlier migration has them all)."""
    table = model._meta.table_name
    if fields[0].column_name in {column.name for column in db.get_columns(table)}:
        return
    migrator = (PostgresqlMigrator if isinstance(db, PostgresqlDatabase) else SqliteMigrator)(db)
    migrate(*(migrator.add_column(table, field.column_name, field) for field in fields))


def add_table_columns(db: Database, columns: tuple[tuple[str, str, str], ...]) -> None:
    """Add each (table, column, SQL type) the table lacks: for tables without a model (the
    roll-ups'), and so a run beside this one that added them is passed over (ALTER TABLE ...
    ADD COLUMN has no IF NOT EXISTS on SQLite)."""
    for table, column, kind in columns:
        if column not in {found.name for found in db.get_columns(table)}:
            db.execute_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def apply(db: Database, columns: tuple[tuple[str, str, str], ...] = (),
          statements: tuple[str, ...] = ()) -> None:
    """The columns a table lacks (:func:`add_table_columns`), then each statement, in order:
    what a migration's two database kinds share."""
    add_table_columns(db, columns)
    for statement in statements:
        db.execute_sql(statement)


def queue_on_update(db: Database, *, trigger: str, function: str, table: str, columns: str,
                    when: str, insert: str) -> None:
    """A row trigger on ``table`` running ``insert`` (a queue's INSERT naming ``OLD``/``NEW``)
    after an UPDATE OF ``columns`` for which ``when`` (written with ``IS DISTINCT FROM``) holds;
    on PostgreSQL through the plpgsql ``function`` (triggers there run functions only)."""
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql(f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger "
                       f"LANGUAGE plpgsql AS $$ BEGIN {insert}; RETURN NULL; END $$")
        db.execute_sql(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        db.execute_sql(f"CREATE TRIGGER {trigger} AFTER UPDATE OF {columns} ON {table} "
                       f"FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION {function}()")
    else:
        db.execute_sql(f"CREATE TRIGGER IF NOT EXISTS {trigger} AFTER UPDATE OF {columns} "
                       f"ON {table} FOR EACH ROW "
                       f"WHEN {when.replace('IS DISTINCT FROM', 'IS NOT')} BEGIN {insert}; END")
