"""Version 4: each applied event's span of the chain ledger's sequence (``first_seq``,
``last_seq``: a statement names the store and terminal behind each entry), on a database made
before the console's statement needed it."""

from __future__ import annotations

from peewee import Database
from playhouse.migrate import PostgresqlMigrator, SchemaMigrator, SqliteMigrator, migrate

from terminal.hq.models import AppliedEvent


def _add(db: Database, migrator: SchemaMigrator) -> None:
    table = AppliedEvent._meta.table_name
    if "first_seq" in {column.name for column in db.get_columns(table)}:
        return  # made by version 1 from today's models
    migrate(
        migrator.add_column(table, "first_seq", AppliedEvent.first_seq),
        migrator.add_column(table, "last_seq", AppliedEvent.last_seq),
    )


def sqlite(db: Database) -> None:
    _add(db, SqliteMigrator(db))


def postgresql(db: Database) -> None:
    _add(db, PostgresqlMigrator(db))
