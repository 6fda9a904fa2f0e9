"""Publishing member states: every card whose state HQ changed, signed, retained, to every till.

A collector started with ``--keys`` runs a :class:`MemberStatePublisher`: every ``interval`` it
reads the cards whose ``card_state.version`` is above the version last published
(``published_state``), builds each one's snapshot (:func:`snapshot`), signs it with HQ's signing
key and publishes it retained on ``{root}/members/state/{card_hash}``, then records the version
once the broker has it. Whatever process made the operation (the console, ``posterm-hq
member``), the collectors carry it to the tills; several collectors may publish the same state
twice, which tills ignore (the version is not newer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from peewee import JOIN, Database

from terminal.hq.database import writing
from terminal.hq.models import MemberOp, PublishedState
from terminal.loyalty.clock import to_micros
from terminal.loyalty.store.card_states import RETIRED
from terminal.loyalty.store.ledger_thread import LedgerThread
from terminal.loyalty.store.models import CardState, Member
from terminal.protocol import canonical
from terminal.protocol.keys import load_private
from terminal.protocol.member_state import MemberState, Profile, signed
from terminal.protocol.mqtt import MqttClient, MqttError
from terminal.protocol.topics import Topics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Signer:
    """HQ's signing key and the root's delegation vouching for it (never the root key)."""

    key: Ed25519PrivateKey
    delegation: dict[str, str]

    @classmethod
    def load(cls, keys: Path) -> Signer:
        """From a directory made by ``posterm-hq keygen``: ``signing.key``, ``delegation.json``."""
        delegation = canonical.loads((keys / "delegation.json").read_bytes())
        if not isinstance(delegation, dict):
            raise ValueError(f"{keys / 'delegation.json'}: not a delegation")
        return cls(load_private(keys / "signing.key"), delegation)

    def sign(self, state: MemberState) -> bytes:
        return signed(state, self.key, self.delegation)


def snapshot(row: CardState, issued_at: datetime) -> MemberState:
    """The card's state as tills receive it (models bound by the caller)."""
    if row.state == RETIRED:
        successor = Member.get_or_none(Member.card_hash == row.replaced_by)
        return MemberState(row.card_hash, row.version, issued_at, RETIRED, row.reason,
                           replaced_by=row.replaced_by,
                           replaced_by_last4=successor.card_last4 if successor else "")
    member = Member.get(Member.card_hash == row.card_hash)
    last = (MemberOp.select(MemberOp.kind).where(
        (MemberOp.member == member.id) & MemberOp.kind.in_(("edit", "erase")))
        .order_by(MemberOp.seq.desc()).first())
    erased = last is not None and last.kind == "erase"
    profile = Profile(erased=True) if erased else Profile(
        member.name, member.birthday, member.phone_hash, member.phone_last4)
    return MemberState(row.card_hash, row.version, issued_at, row.state, row.reason,
                       card_last4=member.card_last4, tier=member.tier, profile=profile)


def pending(limit: int = 200) -> list[MemberState]:
    """Snapshots of the cards whose newest state is not published yet, oldest change first."""
    rows = (CardState.select(CardState)
            .join(PublishedState, JOIN.LEFT_OUTER,
                  on=(PublishedState.card_hash == CardState.card_hash))
            .where(PublishedState.version.is_null() | (PublishedState.version < CardState.version))
            .order_by(CardState.version).limit(limit))
    now = datetime.now(UTC).replace(microsecond=0)
    return [snapshot(row, now) for row in rows]


def mark_published(card_hash: str, version: int) -> None:
    now = to_micros(datetime.now(UTC))
    (PublishedState.insert(card_hash=card_hash, version=version, published_us=now)
     .on_conflict(conflict_target=[PublishedState.card_hash],
                  update={PublishedState.version: version, PublishedState.published_us: now})
     .execute())


def forget_published(db: Database) -> int:
    """Every card's state becomes pending again (a broker that lost its retained messages, a
    new one): the publishers send them all. Returns how many cards have a state (models bound
    by the caller)."""
    with writing(db):
        PublishedState.delete().execute()
    return CardState.select().count()


class MemberStatePublisher:
    """Publishes pending member states on ``client`` (run beside a collector)."""

    def __init__(self, client: MqttClient, thread: LedgerThread, topics: Topics,
                 signer: Signer, interval: float = 0.5) -> None:
        self.client, self.thread, self.topics = client, thread, topics
        self.signer, self.interval = signer, interval
        self.published = 0

    async def run(self) -> None:
        while True:
            if self.client.connected:
                with contextlib.suppress(MqttError, TimeoutError):
                    await self.publish_pending()
            await asyncio.sleep(self.interval)

    async def publish_pending(self) -> int:
        """Publish what is pending now; returns how many states went out."""
        count = 0
        while True:
            states = await self.thread.run(pending)
            if not states:
                return count
            for state in states:
                await self.client.publish(self.topics.member_state(state.card_hash),
                                          self.signer.sign(state), qos=1, retain=True)
                await self.thread.run(mark_published, state.card_hash, state.version)
                count += 1
                self.published += 1
                log.info("member state of card %s… v%d published (%s)", state.card_hash[:12],
                         state.version, state.state)
