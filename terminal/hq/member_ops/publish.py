"""Publishing member states: every card whose state HQ changed, signed, retained, to every till.

A collector started with ``--keys`` runs a :class:`MemberStatePublisher`: every ``interval`` it
reads the cards whose ``card_state.version`` is above the version last published
(``published_state``), builds each one's snapshot (:func:`snapshot`), signs it with HQ's signing
key and publishes it retained on ``{root}/members/state/{card_hash}``, then records the version
once the broker has it, with the signed message. Whatever process made the operation (the
console, ``posterm-hq member``), the collectors carry it to the tills; several collectors may
publish the same state twice, which tills ignore (the version is not newer).

The live messages are not enough on their own: the broker queues at most
``max_queued_messages`` (1,000) for a subscriber past the 100 in flight and drops the rest, so a
till reading slower than a campaign's stream of states (or a slow link), or one subscribing again
to many retained states, loses states for good (tests/sync/test_state_catch_up.py). So each till
also asks for what it lacks, by version, at its own pace (``states`` member requests,
terminal.sync.member_states): :func:`catch_up` answers with the published messages above the
till's version, in version order. A version is HQ's operation sequence (``member_op.seq``,
taken as the highest committed plus one, and unique), so a version becomes visible only once
every lower one has committed; the page stops before the first state not yet published, and
``through`` tells the till up to which version it now holds them all.
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
    return snapshots([row], issued_at)[0]


def snapshots(rows: list[CardState], issued_at: datetime) -> list[MemberState]:
    """The cards' states as tills receive them: their members (a retired card's successor's)
    and those members' profile operations read in one query each, not two a card (models bound
    by the caller)."""
    cards = sorted({row.replaced_by if row.state == RETIRED else row.card_hash
                    for row in rows} - {None})
    members = {member.card_hash: member
               for member in Member.select().where(Member.card_hash.in_(cards))}
    live = [members[row.card_hash].id for row in rows
            if row.state != RETIRED and row.card_hash in members]
    last: dict[str, str] = {}  # member -> its newest edit or erasure
    for member_id, kind in (MemberOp.select(MemberOp.member, MemberOp.kind)
                            .where(MemberOp.member.in_(live)
                                   & MemberOp.kind.in_(("edit", "erase")))
                            .order_by(MemberOp.seq).tuples()):
        last[member_id] = kind
    states = []
    for row in rows:
        if row.state == RETIRED:
            successor = members.get(row.replaced_by)
            states.append(MemberState(
                row.card_hash, row.version, issued_at, RETIRED, row.reason,
                replaced_by=row.replaced_by,
                replaced_by_last4=successor.card_last4 if successor else ""))
            continue
        member = members.get(row.card_hash)
        if member is None:
            raise Member.DoesNotExist(f"no member holds card {row.card_hash[:12]}…")
        profile = Profile(erased=True) if last.get(member.id) == "erase" else Profile(
            member.name, member.birthday, member.phone_hash, member.phone_last4)
        states.append(MemberState(row.card_hash, row.version, issued_at, row.state,
                                  row.reason, card_last4=member.card_last4, tier=member.tier,
                                  profile=profile))
    return states


def pending(limit: int = 200, after: int = 0) -> list[MemberState]:
    """Snapshots of the cards whose newest state is not published yet, oldest change first;
    ``after``: of those above that version only (read by ``card_state_by_version``: the next
    page of a round reads from where the last ended, not the whole table again)."""
    rows = (CardState.select(CardState)
            .join(PublishedState, JOIN.LEFT_OUTER,
                  on=(PublishedState.card_hash == CardState.card_hash))
            .where((CardState.version > after)
                   & (PublishedState.version.is_null()
                      | (PublishedState.version < CardState.version)))
            .order_by(CardState.version).limit(limit))
    return snapshots(list(rows), datetime.now(UTC).replace(microsecond=0))


def mark_published(sent: list[tuple[MemberState, bytes]]) -> None:
    """Each state's version and signed message as published, in one statement."""
    now = to_micros(datetime.now(UTC))
    (PublishedState.insert_many(
        [(state.card_hash, state.version, now, wire.decode()) for state, wire in sent],
        fields=[PublishedState.card_hash, PublishedState.version, PublishedState.published_us,
                PublishedState.payload])
     .on_conflict(conflict_target=[PublishedState.card_hash],
                  preserve=[PublishedState.version, PublishedState.published_us,
                            PublishedState.payload])
     .execute())


PAGE = 200  # states the publisher reads, sends and records at once
CATCH_UP_PAGE = 200  # states a catch-up answer carries at most (about 1.2 KB each)
_CATCH_UP = ("SELECT c.version, p.version, p.payload FROM card_state c LEFT JOIN "
             "published_state p ON p.card_hash = c.card_hash WHERE c.version > {0} "
             "ORDER BY c.version, c.card_hash LIMIT {0}")


@dataclass(frozen=True)
class CatchUp:
    """A page of a till's catch-up: the signed states, the version up to which the till holds
    every published state once it applied them, and whether another page follows."""

    states: list[str]
    through: int
    more: bool


def catch_up(db: Database, since: int, limit: int = CATCH_UP_PAGE) -> CatchUp:
    """The published states of the cards whose version is above ``since``, oldest first, up to
    ``limit`` (at least 3: an operation changes one card, two for a merge or a replacement).

    The page stops before the first card whose newest state is not published yet (it waits for
    the publisher; the till asks again later) and, when it is full, before the last version it
    reached, whose cards may go on into the next page: ``through`` is then that version less
    one, so no card of it is skipped."""
    if limit < 3:
        raise ValueError(f"a catch-up page holds at least 3 states, not {limit}")
    rows = db.execute_sql(_CATCH_UP.format(db.param), (since, limit + 1)).fetchall()
    states: list[str] = []
    for index, (version, published, payload) in enumerate(rows):
        if index == limit or published != version or payload is None:
            stop = version  # nothing of this version in the page: the next asks from it on
            kept = [row[2] for row in rows[:index] if row[0] < stop]
            return CatchUp(kept, stop - 1, index == limit)
        states.append(payload)
    return CatchUp(states, rows[-1][0] if rows else since, False)


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
        """Publish what is pending now; returns how many states went out.

        A page of states (:func:`pending`) goes out at once, paho keeping up to its window in
        flight, and is recorded once every PUBACK is in, in one statement: one at a time, each
        awaited to its PUBACK and recorded by a write of its own, a 5,000-member bonus took
        8.7 ms a state (bench/bench_states.py, load 7-8). A page cut off by a lost connection
        is not recorded and goes again (a till ignores a version it holds). Each page after
        the first reads from the last one's version on: a version is visible only once every
        lower one is (publish.catch_up), so nothing below it is left behind."""
        count, after = 0, 0
        while True:
            states = await self.thread.run(pending, PAGE, after)
            if not states:
                return count
            sent = [(state, self.signer.sign(state)) for state in states]
            acked: list[asyncio.Future[None]] = []
            try:
                for state, wire in sent:
                    acked.append(self.client.publish_nowait(
                        self.topics.member_state(state.card_hash), wire, 1, True))
                failed = [outcome for outcome in await asyncio.gather(
                    *acked, return_exceptions=True) if isinstance(outcome, BaseException)]
            finally:
                for future in acked:
                    future.cancel()  # a cancelled or failed page leaves nothing waiting
            if failed:
                raise failed[0]
            await self.thread.run(mark_published, sent)
            after = states[-1].version
            count += len(sent)
            self.published += len(sent)
            log.info("%d member states published, up to v%d", len(sent), states[-1].version)
