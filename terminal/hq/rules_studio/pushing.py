"""Sign, check and publish a release: the step shared by the console and the command line.

The release is made (signed, recorded, audited) in one transaction on the console's database
thread; each scope's message is then checked as a terminal checks it (signature, the root's
delegation, scope, expiry) against ``root.pub``, and published retained with QoS 1. The
outcome is recorded: ``pushed``, or ``failed`` with the broker's words (the version is spent).

Two steps at once (two admins approving, a stage from the console while the command line
rolls back) may reckon the same next version: on PostgreSQL both read the highest version
before either commits. The version is ``bundle_release``'s primary key, so the second insert
fails (after waiting for the first to commit); :func:`made` then runs the whole step again in a
fresh transaction, which sees the first release: a new version, and the step's own checks
again (an approval already made is refused then). On SQLite the console's IMMEDIATE
transactions take the write lock first, so the second step reads after the first commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peewee import IntegrityError

from terminal.hq.console.audit import now_us
from terminal.hq.console.db import ConsoleDb
from terminal.hq.member_ops.publish import Signer
from terminal.hq.rules_studio.models import BundleRelease
from terminal.hq.rules_studio.releases import (
    ReleaseError,
    check_signer,
    mark_failed,
    mark_pushed,
    messages,
)
from terminal.protocol import bundle
from terminal.protocol.keys import load_public
from terminal.protocol.mqtt import MqttError
from terminal.protocol.topics import Topics

Publish = Callable[[list[tuple[str, bytes]]], Awaitable[None]]
VERSION_TRIES = 8  # each lost race means another release committed: a bound, not a wait


def version_taken(exc: IntegrityError) -> bool:
    """Whether ``exc`` is another release having taken the version (the table's key)."""
    return "bundle_release" in str(exc)


async def made(db: ConsoleDb, step: Callable[..., BundleRelease], *args: Any) -> BundleRelease:
    """``step(*args)`` in one transaction, run again in a fresh one when a release made at the
    same time took its version (the module's doc)."""
    for _ in range(VERSION_TRIES - 1):
        try:
            return await db.run(step, *args)
        except IntegrityError as exc:
            if not version_taken(exc):
                raise
    return await db.run(step, *args)


@dataclass(frozen=True)
class Keys:
    """HQ's signing key with its delegation, and the root's public key to check with."""

    signer: Signer
    trust: bundle.TrustStore

    @classmethod
    def load(cls, directory: Path) -> Keys:
        """From a ``posterm-hq keygen`` directory: ``signing.key``, ``delegation.json``,
        ``root.pub``. ``root.key`` is never read."""
        try:
            signer = Signer.load(directory)
            trust = bundle.TrustStore.of([load_public(directory / "root.pub")])
        except (OSError, ValueError) as exc:
            raise ReleaseError(f"--keys {directory}: {exc}") from None
        check_signer(signer)
        return cls(signer, trust)


def verified(row: BundleRelease, trust: bundle.TrustStore) -> list[tuple[str, bytes]]:
    """Each scope's message, checked as a terminal holding nothing would check it."""
    now = datetime.now(UTC)
    for scope, message in messages(row):
        bundle.verify_bundle(message, trust, {scope}, 0, now, True)
    return messages(row)


async def push(db: ConsoleDb, keys: Keys, topics: Topics, publish: Publish,
               step: Callable[..., BundleRelease], *args: Any) -> BundleRelease:
    """``step(*args, keys.signer)`` (stage, approve, rollback) in one transaction, then publish
    what it signed. Raises ReleaseError (a refused step changes nothing; a failed publish
    leaves the release ``failed``)."""
    return await published(db, keys.trust, topics, publish,
                           await made(db, step, *args, keys.signer))


async def published(db: ConsoleDb, trust: bundle.TrustStore, topics: Topics, publish: Publish,
                    row: BundleRelease) -> BundleRelease:
    """Publish a release made (``row``), recording the outcome."""
    sent_us = now_us()  # before the publish: a refusal may be recorded before it returns
    try:
        found = verified(row, trust)
        await publish([(topics.bundle(scope), message) for scope, message in found])
    except (bundle.BundleRejected, MqttError, TimeoutError, OSError) as exc:
        await db.run(mark_failed, row.version, str(exc) or type(exc).__name__)
        raise ReleaseError(f"v{row.version} was signed but not pushed: {exc}") from None
    await db.run(mark_pushed, row.version, sent_us)
    return await db.run(BundleRelease.get_by_id, row.version)
