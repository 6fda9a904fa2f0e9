"""Publishing member states: every card whose state HQ changed, signed, to every till.

A collector started with ``--keys`` runs a :class:`MemberStatePublisher`: every ``interval`` it
reads the cards whose ``card_state.version`` is above the version last published
(``published_state``), from the watermark up to which every state is published on (HQ's
``meta``, :func:`watermark`), builds each one's snapshot (:func:`snapshot`), signs it with HQ's
signing key and records it with the signed message. A round of a few (``live``) publishes each
on ``{root}/members/state/{card_hash}`` (not retained); a bigger one (a campaign's bonus)
publishes one signed notice on ``{root}/members/states`` instead, and the tills take the states
by their catch-up: one message a state would fill each till's queue at the broker (at most
``max_queued_messages``, 1,000, past the 100 in flight; the rest dropped), its acks and HQ's
answers to its holds behind them. Whatever process made the operation (the console,
``posterm-hq member``), the collectors carry it to the tills; several collectors may publish the
same state twice, which tills ignore (the version is not newer).

The live messages are not enough on their own (a till offline, or reading slower than they
come): each till also asks for what it lacks, by version, at its own pace (``states`` member
requests, terminal.sync.member_states): :func:`catch_up` answers with the published messages
above the till's version, in version order. A version is HQ's operation sequence
(``member_op.seq``, taken as the highest committed plus one, and unique), so a version becomes
visible only once every lower one has committed; the page stops before the first state not yet
published, and ``through`` tells the till up to which version it now holds them all. HQ retains
nothing there: a new till takes every state by its catch-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from peewee import JOIN, Database, fn

from terminal.core.executor import DeviceExecutor
from terminal.hq.database import writing
from terminal.hq.models import MemberOp, PublishedState
from terminal.loyalty.clock import to_micros
from terminal.loyalty.store.card_states import RETIRED
from terminal.loyalty.store.ledger_thread import LedgerThread
from terminal.loyalty.store.models import CardState, Member, Meta
from terminal.protocol import canonical
from terminal.protocol.keys import load_private
from terminal.protocol.member_state import (
    MemberState,
    Profile,
    StatesNotice,
    signed,
    signed_notice,
)
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

    def sign_page(self, states: list[MemberState]) -> list[tuple[MemberState, bytes]]:
        """Each of ``states`` with its wire message, in their order."""
        return [(state, self.sign(state)) for state in states]


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


WATERMARK_KEY = "member_states_published_through"  # HQ's meta: every state up to it is published
REISSUE = -1  # the watermark while every state is to be signed and taken again


def watermark() -> int:
    """The version up to which every card's state is published (so a round reads only the
    states above it: its work grows with what changed, not with the cards), or
    :data:`REISSUE` (models bound by the caller)."""
    row = Meta.get_or_none(Meta.key == WATERMARK_KEY)
    return int(row.value) if row is not None else 0


def move_watermark(was: int, to: int) -> None:
    """Set the watermark to ``to`` if it is still ``was`` (another collector may have moved
    it, or a reissue set it back meanwhile: then it stays)."""
    if was == 0 and Meta.get_or_none(Meta.key == WATERMARK_KEY) is None:
        Meta.insert(key=WATERMARK_KEY, value=str(to)).on_conflict_ignore().execute()
        return
    (Meta.update(value=str(to))
     .where((Meta.key == WATERMARK_KEY) & (Meta.value == str(was))).execute())


def highest() -> int:
    """The highest card-state version (models bound by the caller)."""
    return int(CardState.select(fn.COALESCE(fn.MAX(CardState.version), 0)).scalar())


def forget_published(db: Database) -> int:
    """Every card's state is signed again by the collectors' publishers (with the key they
    hold now) and every till takes every state again, whatever it holds (a notice with
    ``since`` 0; ``posterm-hq member republish``). Returns how many cards have a state
    (models bound by the caller)."""
    with writing(db):
        PublishedState.delete().execute()
        (Meta.insert(key=WATERMARK_KEY, value=str(REISSUE))
         .on_conflict(conflict_target=[Meta.key], update={Meta.value: str(REISSUE)})
         .execute())
    return CardState.select().count()


class MemberStatePublisher:
    """Publishes pending member states on ``client`` (run beside a collector).

    A round of at most ``live`` states sends each on its card's topic; a bigger one (a
    campaign's bonus) signs and records them all for the tills' catch-up and sends a notice
    (``StatesNotice``) after its first page, at most every ``notice_every`` seconds after that
    and at its end: the broker queues at most 1,000 messages for a till, and a till's acks and
    HQ's answers to its holds share that queue with them."""

    def __init__(self, client: MqttClient, thread: LedgerThread, topics: Topics,
                 signer: Signer, interval: float = 0.5, live: int = 20,
                 notice_every: float = 1.0) -> None:
        self.client, self.thread, self.topics = client, thread, topics
        self.signer, self.interval = signer, interval
        self.live, self.notice_every = live, notice_every
        self.published = 0  # states published (sent live or recorded for the catch-up)
        self.notices = 0
        # A page's 200 signatures, off the loop that reads the tills' events and answers them:
        # on it a page held the loop 23 ms of CPU (bench/bench_state_signing.py, session 14).
        self._signing = DeviceExecutor("hq-state-signing")

    def close(self) -> None:
        """Stop the signing thread (after :meth:`run` is cancelled; a page being signed ends
        first)."""
        self._signing.shutdown()

    async def run(self) -> None:
        while True:
            if self.client.connected:
                with contextlib.suppress(MqttError, TimeoutError):
                    await self.publish_pending()
            await asyncio.sleep(self.interval)

    async def publish_pending(self) -> int:
        """Publish what is pending now; returns how many states went out.

        A round reads from the watermark on (:func:`watermark`), a page of states
        (:func:`pending`) at a time; each page after the first reads from the last one's
        version on: a version is visible only once every lower one is (:func:`catch_up`), so
        nothing below it is left behind, and once nothing is pending the watermark moves to
        the highest version of the round (or of the table when the round began). A live page
        goes out at once, paho keeping up to its window in flight, and is recorded once every
        PUBACK is in, in one statement (one at a time, each awaited to its PUBACK and
        recorded by a write of its own, a 5,000-member bonus took 8.7 ms a state:
        bench/bench_states.py, load 7-8). A page cut off by a lost connection is not
        recorded and goes again (a till ignores a version it holds)."""
        was, top = await self.thread.run(lambda: (watermark(), highest()))
        reissue = was == REISSUE
        count, after, notice, told_through = 0, max(was, 0), None, None
        told = time.monotonic()
        while True:
            states = await self.thread.run(pending, PAGE, after)
            if not states:
                break
            if notice is None:
                notice = reissue or len(states) > self.live
            sent = await self._signing.run(self.signer.sign_page, states)  # in order
            if not notice:
                await self._send(sent)
            await self.thread.run(mark_published, sent)
            after = states[-1].version
            count += len(sent)
            self.published += len(sent)
            log.info("%d member states published%s, up to v%d", len(sent),
                     " for the tills' catch-up" if notice else "", after)
            if notice and (count == len(sent) or time.monotonic() - told >= self.notice_every):
                await self._notice(after, None)
                told, told_through = time.monotonic(), after
        # Every version up to ``top`` was visible when the round began, so it is published now.
        after = max(after, top)
        if reissue:
            await self._notice(after, 0)  # every till takes every state again
        elif notice and told_through != after:
            await self._notice(after, None)
        if after != was:
            await self.thread.run(move_watermark, was, after)
        return count

    async def _send(self, sent: list[tuple[MemberState, bytes]]) -> None:
        acked: list[asyncio.Future[None]] = []
        try:
            for state, wire in sent:
                acked.append(self.client.publish_nowait(
                    self.topics.member_state(state.card_hash), wire, 1, False))
            failed = [outcome for outcome in await asyncio.gather(
                *acked, return_exceptions=True) if isinstance(outcome, BaseException)]
        finally:
            for future in acked:
                future.cancel()  # a cancelled or failed page leaves nothing waiting
        if failed:
            raise failed[0]

    async def _notice(self, through: int, since: int | None) -> None:
        issued = datetime.now(UTC).replace(microsecond=0)
        wire = signed_notice(StatesNotice(through, issued, since), self.signer.key,
                             self.signer.delegation)
        await self.client.publish(self.topics.states_notice(), wire, 1, False)
        self.notices += 1
