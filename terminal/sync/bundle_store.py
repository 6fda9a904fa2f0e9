"""Signed bundles on the terminal: verified, applied in one transaction, kept (DESIGN promise 5).

Each scope's held bundle (version, times and the wire message as received) is a row of
``held_bundle``, written in the same SQLite transaction that loads its catalogue, so neither a
reboot nor a restored older copy of the program rolls the version back. The version check is
made again inside that transaction. The rules in force come from the store's bundle when one is
held, else from the chain's: a store bundle replaces the chain's rules, catalogue and settings.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peewee import Database

from terminal.loyalty.errors import Refused, RulesError
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import LedgerStore, held_bundles
from terminal.loyalty.store.database import write_transaction
from terminal.loyalty.store.held_bundles import held
from terminal.loyalty.store.models import Product
from terminal.loyalty.store.people import load_catalogue
from terminal.protocol import canonical
from terminal.protocol.bundle import (
    Bundle,
    BundleMalformed,
    BundleRejected,
    StaleVersion,
    TrustStore,
    WrongScope,
    verify_bundle,
)
from terminal.protocol.keys import load_public


class BadPayload(BundleRejected):
    """Signed and current, but its rules or catalogue do not pass the terminal's own checks."""

    reason_code = "bad_payload"


@dataclass(frozen=True)
class Effective:
    """What is in force: the bundle's scope and version, and its parsed payload."""

    scope: str
    version: int
    rules: Rules
    catalogue: list[Any]
    settings: dict[str, Any]


__all__ = ["BadPayload", "Effective", "effective", "held", "parse_rules", "receive", "rejection",
           "restore_catalogue", "seed_catalogue", "trust_store"]


def _payload(wire: str) -> dict[str, Any]:
    # The held message was verified when applied; decode its inner bundle's payload again.
    outer = canonical.loads(wire)
    return canonical.loads(base64.b64decode(outer["bundle"]))["payload"]


def parse_rules(bundle_payload: dict[str, Any]) -> Rules:
    try:
        return Rules.from_mapping(bundle_payload["rules"])
    except RulesError as exc:
        raise BadPayload(f"rules: {exc}") from None


def effective(scopes: tuple[str, ...]) -> Effective | None:
    """The held bundle in force: the narrowest scope held (``scopes`` broadest first)."""
    rows = held()
    for scope in reversed(scopes):
        row = rows.get(scope)
        if row is not None:
            payload = _payload(row.wire)
            return Effective(scope, row.version, parse_rules(payload), payload["catalogue"],
                             payload["settings"])
    return None


def seed_catalogue(db: Database, items: list[Any]) -> int | None:
    """Load a config's catalogue file into a till that has never held a bundle and has no
    catalogue yet: the file is only the first boot's seed; once HQ's signed catalogue is held, a
    restart must not put the file back over it. Returns how many products were loaded, or None
    when the file was left alone."""
    with write_transaction(db):
        if Product.select().exists() or held_bundles.any_held(db):
            return None
    return load_catalogue(db, items)


def restore_catalogue(store: LedgerStore, found: Effective) -> None:
    """Put the held bundle's catalogue in force again (at start: whatever an older version of
    the program loaded over it, the held bundle's catalogue wins)."""
    try:
        load_catalogue(store.db, found.catalogue)
    except Refused as exc:
        raise BadPayload(f"catalogue: {exc}") from None


def trust_store(root_keys: Sequence[Path], revoked_keys: Sequence[str]) -> TrustStore:
    """What bundles are verified against: HQ's root public keys (files) and the revoked ones."""
    return TrustStore.of([load_public(path) for path in root_keys], revoked_keys)


def receive(store: LedgerStore, wire: bytes, topic_scope: str, trust: TrustStore,
            scopes: tuple[str, ...], clock_trusted: bool) -> Effective | None:
    """Verify and apply one bundle message (on the ledger thread). Returns what is now in force
    if it changed, None if the bundle was stored without changing it (a chain bundle while a
    store bundle is held); raises BundleRejected, having changed nothing."""
    rows = held()
    row = rows.get(topic_scope)
    # The floor is the latest time HQ's acks and answers vouched for; a bundle's issue time is
    # its signer's word and is no floor (terminal.protocol.bundle).
    bundle = verify_bundle(wire, trust, set(scopes), row.version if row else 0,
                           datetime.now(UTC), clock_trusted, time_floor=store.floor)
    if bundle.scope != topic_scope:
        raise WrongScope(f"a {bundle.scope!r} bundle arrived on the {topic_scope!r} topic")
    return _apply(store, bundle, wire, scopes)


def _apply(store: LedgerStore, bundle: Bundle, wire: bytes,
           scopes: tuple[str, ...]) -> Effective | None:
    rules = parse_rules(bundle.payload)
    narrower = scopes[scopes.index(bundle.scope) + 1:]
    with write_transaction(store.db):
        current = held_bundles.version_held(bundle.scope)
        if current is not None and current >= bundle.version:  # raced with another copy
            raise StaleVersion(f"version {bundle.version} is not above the held {current}")
        in_force = not held_bundles.any_scope_held(narrower)
        if in_force:
            try:
                load_catalogue(store.db, bundle.payload["catalogue"])
            except Refused as exc:
                raise BadPayload(f"catalogue: {exc}") from None
        held_bundles.hold(bundle.scope, bundle.version, bundle.issued_at, bundle.expires_at,
                          bytes(wire).decode("utf-8"))
    if not in_force:
        return None
    return Effective(bundle.scope, bundle.version, rules, bundle.payload["catalogue"],
                     bundle.payload["settings"])


def rejection(exc: BundleRejected | Exception) -> tuple[str, str]:
    """(reason code, detail) for the status report."""
    if isinstance(exc, BundleRejected):
        return exc.reason_code, exc.message
    return BundleMalformed.reason_code, str(exc)

