"""Campaigns: made from a segment as a draft, previewed, queued (the outbox filled, the bonus
granted), and their messages' status (models bound by the caller, inside its transaction;
:func:`queue` makes its member operations inside that same transaction).

Queueing mints one message per member of the segment, each with its id and the template's fields
about that member, pending for the sender (:mod:`.dispatch`), or skipped at once for a member
who has not agreed to the channel. A bonus is a signed HQ adjustment per member
(:meth:`MemberOps.adjust`: a ``member_op`` row, a ledger entry, a card state the collectors
publish to every till), granted after the queueing by :func:`grant`, a few hundred members to a
transaction: each message records its member's operation (``bonus_op``) in the transaction that
makes it, so every member gets the bonus exactly once, a grant cut off resumes where it stopped,
and a collector's batch never waits for more than one such transaction's members (a bonus to a
whole segment in the queueing transaction held every member's lock for minutes: 13 at 10,000
members). The sender sends a bonus campaign's message only once its bonus is granted.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from peewee import Database, PostgresqlDatabase, __exception_wrapper__

from terminal.hq import arrays
from terminal.hq.care import consent
from terminal.hq.care.config import CareConfig
from terminal.hq.care.models import CHANNELS, CareCampaign, CareMessage
from terminal.hq.care.refusal import CareRefusal
from terminal.hq.care.segments import SEGMENTS, SegmentError, Target, check_store, select
from terminal.hq.database import lock_members
from terminal.hq.local_time import shown_micros
from terminal.hq.member_ids import among
from terminal.hq.member_ops.bulk import Granted, adjust_many
from terminal.hq.member_ops.errors import MemberOpError, UnknownMember, WrongState
from terminal.hq.member_ops.service import MemberOps
from terminal.hq.models import MemberOp
from terminal.loyalty.clock import to_micros
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.accounts import CardRef
from terminal.loyalty.store.card_states import FROZEN
from terminal.loyalty.store.models import CardState, Member

log = logging.getLogger(__name__)

MAX_BONUS = 100_000
STATES = ("pending", "sending", "sent", "skipped", "failed")


class CampaignError(CareRefusal):
    """A campaign request that cannot be made (nothing was changed): :class:`CareRefusal`."""


def create(name: str, segment: str, days: int | None, channel: str, bonus: int, *,
           actor: str, at: datetime, store: str | None = None) -> int:
    """A draft campaign; its id. ``store``: to that store's members only (segments.py)."""
    name = (name or "").strip()
    if not name or len(name) > 80 or not name.isprintable():
        raise CampaignError("a campaign needs a name of at most 80 printable characters",
                            "bad_name")
    if segment not in SEGMENTS:
        raise CampaignError(f"no segment {segment!r}; known: {', '.join(SEGMENTS)}",
                            "unknown_segment", value=segment)
    if channel not in CHANNELS:
        raise CampaignError(f"no channel {channel!r}; known: {', '.join(CHANNELS)}",
                            "unknown_channel", value=channel)
    if days is not None and not 1 <= days <= 366:
        raise CampaignError(f"days {days}: from 1 to 366", "bad_days", value=days)
    if isinstance(bonus, bool) or not 0 <= bonus <= MAX_BONUS:
        raise CampaignError(f"bonus {bonus}: whole points from 0 to {MAX_BONUS}", "bad_bonus",
                            value=bonus, max=MAX_BONUS)
    try:
        check_store(store)
    except SegmentError as exc:
        raise CampaignError(str(exc), "empty_store", value=store) from None
    params: dict[str, Any] = {} if days is None else {"days": days}
    if store is not None:
        params["store"] = store
    row = CareCampaign.create(name=name, segment=segment, params=json.dumps(params),
                              channel=channel, bonus_points=bonus, created_by=actor,
                              created_us=to_micros(at))
    return int(row.id)


def get(campaign_id: int) -> CareCampaign:
    row = CareCampaign.get_or_none(CareCampaign.id == campaign_id)
    if row is None:
        raise CampaignError(f"no campaign {campaign_id}", "no_campaign", value=campaign_id)
    return row


def _targets(rules: Rules, row: CareCampaign, at: datetime) -> list[Target]:
    params = json.loads(row.params)
    try:
        return select(rules, row.segment, params.get("days"), at, params.get("store"))
    except SegmentError as exc:
        raise CampaignError(str(exc)) from None


def _fields(row: CareCampaign, target: Target) -> dict[str, str]:
    """What the message to ``target`` fills its template with, as queued."""
    return {**target.fields, "bonus": str(row.bonus_points) if row.bonus_points else ""}


def preview(rules: Rules, campaign_id: int, at: datetime,
            config: CareConfig | None = None) -> dict[str, Any]:
    """How many members the segment holds now, how many of them the channel reaches, and the
    message one of them would get (``sample``: the first the channel reaches, else the first of
    the segment; None for an empty segment), rendered by ``config``'s templates (None: the
    defaults)."""
    row = get(campaign_id)
    targets = _targets(rules, row, at)
    reached = consent.reachable([target.member for target in targets], row.channel)
    chosen = next((t for t in targets if t.member in reached), targets[0] if targets else None)
    sample = None
    if chosen is not None:
        fields = _fields(row, chosen)
        subject, text = (config or CareConfig()).render(row.segment, fields)
        member = Member.get_by_id(chosen.member)
        sample = {"member": chosen.member, "name": member.name,
                  "card_last4": member.card_last4, "reachable": chosen.member in reached,
                  "fields": fields, "subject": subject, "text": text}
    return {"campaign": row.id, "segment": len(targets), "reachable": len(reached),
            "sample": sample}


def queue(db: Database, ops: MemberOps | None, rules: Rules, campaign_id: int, *, actor: str,
          at: datetime) -> dict[str, int]:
    """Fill the outbox for a draft campaign, in the caller's transaction on ``db``: the
    segment, its members' consent in a few queries (:func:`consent.addresses`), then every
    message in one bulk insert (COPY on PostgreSQL). A bonus (``ops`` needed) is granted after,
    by :func:`grant`."""
    row = get(campaign_id)
    if row.state != "draft":
        raise CampaignError(f"campaign {row.id} is already queued", "already_queued")
    if row.bonus_points and ops is None:
        raise CampaignError("a campaign with a bonus needs HQ's member operations (rules and "
                            "card key)")
    targets = _targets(rules, row, at)
    reach = consent.addresses([target.member for target in targets], row.channel)
    due = to_micros(at)
    messages = []
    for target in targets:
        reachable = target.member in reach
        fields = json.dumps(_fields(row, target), ensure_ascii=False) if reachable else "{}"
        messages.append((str(uuid.uuid4()), row.id, target.member, row.channel, fields,
                         "pending" if reachable else "skipped",
                         "" if reachable else "no_consent", 0, due, None, None))
    insert_messages(db, messages)
    row.state, row.queued_by, row.queued_us = "queued", actor, due
    row.save()
    counts = Counter(message[5] for message in messages)
    return {"members": len(targets), **counts}


GRANT_CHUNK = 200  # members a grant transaction locks and adjusts
NOT_GRANTED = 0  # bonus_op of a member the bonus could not be granted to (gone since queueing)


@dataclass(frozen=True)
class Chunk:
    """What one grant transaction did: members taken, of them granted the bonus (the others
    refused: gone since the queueing)."""

    taken: int = 0
    granted: int = 0
    points: int = 0  # the campaign's bonus to each member
    last: str = ""  # the last member taken (the next chunk's members come after it)

    def detail(self) -> str:
        """The chunk's audit row: how many members got how many points, how many none."""
        refused = self.taken - self.granted
        return (f"bonus of {self.points} points to {_members(self.granted)}"
                + (f"; {_members(refused)} refused (merged, erased, frozen or retired since "
                   "queueing)"
                   if refused else ""))


def _members(count: int) -> str:
    return f"{count} member" + ("" if count == 1 else "s")


def _waiting(campaign_id: int) -> Any:
    return CareMessage.select(CareMessage.id, CareMessage.member).where(
        (CareMessage.campaign == campaign_id) & CareMessage.bonus_op.is_null())


def bonus_waiting(campaign_id: int) -> bool:
    """Whether a queued campaign has a bonus some member still waits for (a read: no write
    transaction, no lock, for a campaign with no bonus or one granted to the end)."""
    row = get(campaign_id)
    return bool(row.bonus_points) and row.state != "draft" and _waiting(row.id).exists()


def grant(db: Database, ops: MemberOps | None, campaign_id: int, *, actor: str,
          limit: int = GRANT_CHUNK, after: str = "", one_by_one: bool = False) -> Chunk:
    """Grant a queued campaign's bonus to up to ``limit`` of its members still without it, in
    the caller's transaction; say how many were taken (0: none left) and granted. A member
    merged, erased or retired since the queueing, or on a frozen card, gets none: its message
    is skipped (``bonus_refused``). The adjustments are made set-based (:func:`adjust_many`: a few
    statements for the chunk, the rows the members' adjustments one by one would write);
    ``one_by_one`` makes them by :meth:`MemberOps.adjust`, one member at a time (what the
    set-based grant is checked against: tests/hq/test_care_bulk.py). ``after``: the last
    member of the chunk before (each chunk's members in member order, read from there rather
    than from the campaign's first message: one chunk's read no longer grows with the
    segment)."""
    row = get(campaign_id)
    if not row.bonus_points or row.state == "draft":
        return Chunk()
    waiting = list(_waiting(row.id).where(CareMessage.member > after)
                   .order_by(CareMessage.member).limit(limit))
    if not waiting:
        return Chunk()
    if ops is None:
        raise CampaignError(f"campaign {row.id}: {len(waiting)}+ members still wait for its "
                            "bonus, which needs HQ's member operations (rules and card key)")
    condition, param = among(db, "id", (message.member for message in waiting))
    cards = dict(db.execute_sql(f"SELECT id, card_hash FROM {Member._meta.table_name} "
                                f"WHERE {condition}", (param,)).fetchall())
    # The chunk's locks at once, in key order, as the collectors' batches take theirs: one by
    # one, a batch holding one and waiting for another this grant holds would deadlock with it.
    # Taken before the members are read (_blocked, then the adjustments): a till's event for one
    # of them, or a freeze, waits for this transaction. The adjustments take no lock again.
    lock_members(ops.db, cards.values())
    reason = f"会员关怀 campaign {row.id}: {row.name}"[:200]
    blocked = _blocked(db, list(cards))
    eligible = [message for message in waiting if message.member not in blocked]
    refs = [CardRef(cards[message.member]) if message.member in cards else None
            for message in eligible]
    if one_by_one:
        made = [_adjust_one(ops, ref, row.bonus_points, actor, reason) for ref in refs]
    else:
        made = adjust_many(ops, refs, row.bonus_points, actor=actor, reason=reason,
                           locked=True)
    outcome_of: dict[str, Granted | MemberOpError] = dict(
        zip((message.id for message in eligible), made, strict=True))
    outcomes = [outcome_of.get(message.id) or blocked[message.member] for message in waiting]
    granted, refused = [], []
    for message, outcome in zip(waiting, outcomes, strict=True):
        if isinstance(outcome, Granted):
            granted.append((message.id, outcome.seq))
            continue
        refused.append(message.id)
        log.info("care message %s: no bonus (%s)", message.id, outcome.__class__.__name__)
    _record_bonus_ops(db, granted)
    if refused:
        condition, param = among(db, "id", refused)
        db.execute_sql(f"UPDATE {CareMessage._meta.table_name} SET bonus_op = {NOT_GRANTED}, "
                       f"state = 'skipped', why = 'bonus_refused', fields = '{{}}' "
                       f"WHERE {condition}", (param,))
    return Chunk(len(waiting), len(granted), row.bonus_points, waiting[-1].member)


def _blocked(db: Database, members: list[str]) -> dict[str, MemberOpError]:
    """Those of ``members`` a bonus is not for, whatever the segment said at the queueing:
    erased since (their newest profile operation is an erasure: segments.excluded) or on a
    card HQ froze (it neither earns nor redeems at any till), each with why."""
    if not members:
        return {}
    condition, param = among(db, "member", members)
    last: dict[str, str] = {}
    for member, kind in db.execute_sql(
            f"SELECT member, kind FROM {MemberOp._meta.table_name} WHERE {condition} "
            "AND kind IN ('edit', 'erase') ORDER BY seq", (param,)).fetchall():
        last[member] = kind
    blocked: dict[str, MemberOpError] = {
        member: WrongState("the member's personal data was erased", "card")
        for member, kind in last.items() if kind == "erase"}
    condition, param = among(db, "m.id", members)
    for (member,) in db.execute_sql(
            f"SELECT m.id FROM {Member._meta.table_name} m JOIN "
            f"{CardState._meta.table_name} c ON c.card_hash = m.card_hash "
            f"WHERE {condition} AND c.state = {db.param}",
            (param, FROZEN)).fetchall():
        blocked.setdefault(member, WrongState("the member's card is frozen", "card"))
    return blocked


def _adjust_one(ops: MemberOps, ref: CardRef | None, points: int, actor: str,
                reason: str) -> Granted | MemberOpError:
    """One member's bonus by :meth:`MemberOps.adjust` (its own savepoint: a refusal rolls back
    that member's rows only)."""
    try:
        if ref is None:
            raise UnknownMember("the member is gone", "card")
        done = ops.adjust(ref, points, actor=actor, reason=reason)
    except MemberOpError as exc:
        return exc
    return Granted(done.seq, done.member)


def _record_bonus_ops(db: Database, granted: list[tuple[str, int]]) -> None:
    """Each message's bonus operation (message id, its ``member_op`` seq): one statement.

    On PostgreSQL an ``UPDATE ... FROM unnest`` over binary arrays (:func:`arrays.array`, as an
    ingest batch sends its moves), the ids again as ``= ANY`` so the rows are found by the
    primary key. Not through :class:`terminal.hq.buffered.Writes`: it keeps the store's own
    statements (inserts in its tables' order, lot moves, balances) until a flush, and a care
    message is none of them; one statement sent at once needs no keeping."""
    if not granted:
        return
    table = CareMessage._meta.table_name
    if isinstance(db, PostgresqlDatabase):
        ids = arrays.array([message for message, _ in granted], "text")
        db.execute_sql(f"UPDATE {table} c SET bonus_op = v.op FROM unnest(%b::text[], "
                       f"%b::bigint[]) AS v(id, op) WHERE c.id = v.id AND c.id = ANY(%b::text[])",
                       (ids, arrays.array([op for _, op in granted], "bigint"), ids))
        return
    db.cursor().executemany(f"UPDATE {table} SET bonus_op = ? WHERE id = ?",
                            [(op, message) for message, op in granted])


MESSAGE_COLUMNS = ("id", "campaign", "member", "channel", "fields", "state", "why", "attempts",
                   "due_us", "sent_us", "bonus_op")
_INSERT_ROWS = 500  # rows per INSERT on SQLite: 11 parameters each, under its 32,766


def insert_messages(db: Database, rows: list[tuple[Any, ...]]) -> None:
    """``rows`` (:data:`MESSAGE_COLUMNS` in order) into the outbox, in the caller's
    transaction: psycopg's COPY on PostgreSQL (the measured way: bench/bench_care.py), multi-row
    INSERTs on SQLite."""
    table = CareMessage._meta.table_name
    if isinstance(db, PostgresqlDatabase):
        with __exception_wrapper__, db.cursor().copy(
                f"COPY {table} ({', '.join(MESSAGE_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    fields = [getattr(CareMessage, name) for name in MESSAGE_COLUMNS]
    for start in range(0, len(rows), _INSERT_ROWS):
        CareMessage.insert_many(rows[start:start + _INSERT_ROWS], fields=fields).execute()


def summary(row: CareCampaign, zone: ZoneInfo) -> dict[str, Any]:
    counts = Counter(state for (state,) in CareMessage.select(CareMessage.state)
                     .where(CareMessage.campaign == row.id).tuples())
    return {"id": row.id, "name": row.name, "segment": row.segment,
            "params": json.loads(row.params), "channel": row.channel,
            "bonus_points": row.bonus_points, "state": row.state, "created_by": row.created_by,
            "created_at": shown_micros(row.created_us, zone),
            "queued_by": row.queued_by,
            "messages": {state: counts.get(state, 0) for state in STATES}}


def campaigns(zone: ZoneInfo, limit: int = 100) -> list[dict[str, Any]]:
    rows = CareCampaign.select().order_by(CareCampaign.id.desc()).limit(limit)
    return [summary(row, zone) for row in rows]


def messages(campaign_id: int, zone: ZoneInfo) -> list[dict[str, Any]]:
    """Each message's delivery: id, member (id, name, card), state, why, attempts, when sent
    (in ``zone``)."""
    rows = (CareMessage.select(CareMessage.id, CareMessage.member, Member.name,
                               Member.card_last4, CareMessage.state, CareMessage.why,
                               CareMessage.attempts, CareMessage.sent_us, CareMessage.bonus_op)
            .join(Member, on=(Member.id == CareMessage.member))
            .where(CareMessage.campaign == campaign_id).order_by(CareMessage.member).tuples())
    keys = ("id", "member", "name", "card_last4", "state", "why", "attempts", "sent_at",
            "bonus_op")
    return [dict(zip(keys, (*row[:7], shown_micros(row[7], zone) if row[7] else None, row[8]),
                     strict=True)) for row in rows]
