"""Version 2: operators sign in with number + PIN (the store's schema 3, made on SQLite by the
store's own history): a release's PostgreSQL database gets the columns and numbers here."""

from __future__ import annotations

from peewee import Database
from playhouse.migrate import PostgresqlMigrator

from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.database import operators_sign_in
from terminal.loyalty.store.models import Operator


def sqlite(db: Database) -> None:
    """Done by the store's history before HQ's runs."""


def postgresql(db: Database) -> None:
    with bound(db, [Operator]):
        operators_sign_in(db, PostgresqlMigrator(db))
