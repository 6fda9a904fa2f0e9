"""The held-bundle table's queries: the signed bundle a terminal holds for each scope.

The table (``models.HeldBundle``) is written in the same transaction that loads the bundle's
catalogue; :mod:`terminal.sync.bundle_store` verifies bundles and decides what is in force.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from peewee import Database

from terminal.loyalty.clock import to_micros
from terminal.loyalty.store.models import HeldBundle


def held() -> dict[str, HeldBundle]:
    """Every scope's held bundle, by scope."""
    return {row.scope: row for row in HeldBundle.select()}


def versions() -> dict[str, int]:
    """The version held per scope (what the status reports to HQ)."""
    return {scope: version for scope, version in
            HeldBundle.select(HeldBundle.scope, HeldBundle.version).tuples()}


def any_held(db: Database) -> bool:
    """Whether the terminal has ever held a bundle (the table may not exist yet)."""
    return db.table_exists(HeldBundle._meta.table_name) and HeldBundle.select().exists()


def version_held(scope: str) -> int | None:
    return HeldBundle.select(HeldBundle.version).where(HeldBundle.scope == scope).scalar()


def any_scope_held(scopes: Iterable[str]) -> bool:
    scopes = list(scopes)
    return bool(scopes) and HeldBundle.select().where(HeldBundle.scope.in_(scopes)).exists()


def hold(scope: str, version: int, issued: datetime, expires: datetime, wire: str) -> None:
    """Keep ``wire`` as the scope's bundle, replacing what was held (inside the caller's write
    transaction, which has checked that the version is higher)."""
    row = {HeldBundle.version: version, HeldBundle.issued_us: to_micros(issued),
           HeldBundle.expires_us: to_micros(expires), HeldBundle.wire: wire,
           HeldBundle.applied_us: to_micros(datetime.now(UTC))}
    HeldBundle.insert({HeldBundle.scope: scope, **row}).on_conflict(
        conflict_target=[HeldBundle.scope], update=row).execute()
