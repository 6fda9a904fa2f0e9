"""Creating the console's tables (idempotent), the audit log's append-only triggers and the
indexes its searches need, on SQLite and PostgreSQL."""

from __future__ import annotations

from peewee import Database, PostgresqlDatabase

from terminal.hq.console.models import APPEND_ONLY, CONSOLE_MODELS
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.models import Member


def ensure_schema(db: Database) -> None:
    with bound(db, CONSOLE_MODELS), db.atomic():
        db.create_tables(CONSOLE_MODELS, safe=True)
        if isinstance(db, PostgresqlDatabase):
            _postgres_extras(db)
        else:
            _sqlite_extras(db)


def _sqlite_extras(db: Database) -> None:
    for model in APPEND_ONLY:
        table = model._meta.table_name
        for action in ("UPDATE", "DELETE"):
            db.execute_sql(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} BEFORE {action} "
                f"ON {table} BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


def _postgres_extras(db: Database) -> None:
    db.execute_sql(
        "CREATE OR REPLACE FUNCTION posterm_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only'; END $$")
    for model in APPEND_ONLY:
        table = model._meta.table_name
        db.execute_sql(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        db.execute_sql(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION posterm_append_only()")
    # A name search is a prefix match (LIKE 'x%'): text_pattern_ops lets it use an index
    # whatever the database's collation (1M members: a scan is seconds, the index is ms).
    member = Member._meta.table_name
    db.execute_sql(f"CREATE INDEX IF NOT EXISTS {member}_name_prefix "
                   f"ON {member} (name text_pattern_ops)")
