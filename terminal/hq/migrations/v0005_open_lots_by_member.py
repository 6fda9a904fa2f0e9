"""Version 5: a member's lots with points left, by expiry (the store's schema 4 on SQLite): read
before every operation for the member, so old, spent lots cost nothing."""

from __future__ import annotations

from peewee import Database

from terminal.loyalty.store.models import Lot


def sqlite(db: Database) -> None:
    """Made by the store's history before HQ's runs."""


def postgresql(db: Database) -> None:
    db.execute_sql(f"CREATE INDEX IF NOT EXISTS lot_open_by_member ON {Lot._meta.table_name} "
                   "(member_id, expires_us) WHERE remaining > 0")
