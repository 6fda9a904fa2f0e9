"""Members as the console reads them: search, the member page, the statement and its CSV.

Card numbers and phones are stored only as keyed hashes (DESIGN promise 9): a search hashes what
was typed with HQ's card key, exactly as a till does, and never stores or logs it in clear.
A name search is a prefix match (``张`` finds 张伟 and 张三丰). A store manager finds and opens
only the members whose home store is one of its stores; anything else is "not found", the same
answer as a member that does not exist. Every search and every page read is audited.

Run every function here on the console's database thread (:class:`ConsoleDb`).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from peewee import JOIN, Database, PostgresqlDatabase

from terminal.core.pan import is_payment_pan
from terminal.hq.console import audit
from terminal.hq.console.csv_out import guard as _cell
from terminal.hq.console.roles import Principal
from terminal.hq.local_time import shown_micros
from terminal.hq.models import AppliedEvent, MemberHome, MemberOp
from terminal.loyalty.cards import CARD_PATTERN, card_hash, phone_hash
from terminal.loyalty.clock import Moment, from_micros
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import LedgerStore
from terminal.loyalty.store.card_states import ACTIVE
from terminal.loyalty.store.members import PHONE
from terminal.loyalty.store.models import CardState, LedgerEntry, Lot, Member, Sale

SEARCH_LIMIT = 50
STATEMENT_PAGE = 100
HQ_ORIGIN = "HQ"


class QueryError(ValueError):
    """A search the console refuses (the message says why; nothing is looked up); ``kind``
    names why for a person's words (``too_long``, ``payment_card``, ``too_short``)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Reader:
    """What the reading needs besides the database: the rules (tiers, zone), the card key."""

    rules: Rules
    card_key: bytes
    store: LedgerStore  # HQ's view of the ledger (tiers, spend, expiring), outbox off

    # -- search --------------------------------------------------------------------------------

    def search(self, who: Principal, text: str) -> list[dict[str, Any]]:
        text = text.strip()
        if not text:
            return []
        if len(text) > 64:
            raise QueryError("a search is at most 64 characters", "too_long")
        digits = text.lstrip("+")
        if digits.isascii() and digits.isdigit() and is_payment_pan(digits):
            # Never hashed, stored or logged (DESIGN promise 9).
            raise QueryError("this is a payment card number, not a member card", "payment_card")
        matches = []
        how = []
        if CARD_PATTERN.fullmatch(text):
            matches.append(Member.card_hash == card_hash(self.card_key, text))
            how.append(f"card ending {text[-4:]}")
        if PHONE.fullmatch(text):
            matches.append(Member.phone_hash == phone_hash(self.card_key, text))
            how.append(f"phone ending {text[-4:]}")
        if not text.isascii() or not digits.isdigit():
            matches.append(_name_prefix(text, _name_key(self.store.db)))
            how.append(f"name {text}")
        if not matches:
            raise QueryError("type a name, at least 4 characters of a card or 5 digits of a phone",
                             "too_short")
        condition = matches[0]
        for extra in matches[1:]:
            condition |= extra
        query = (Member.select(Member, MemberHome.store.alias("home_store"))
                 .join(MemberHome, JOIN.LEFT_OUTER, on=(MemberHome.member == Member.id))
                 .where(condition).order_by(_name_key(self.store.db), Member.id)
                 .limit(SEARCH_LIMIT))
        if not who.chain_wide:
            query = query.where(MemberHome.store.in_(who.stores))
        rows = [_summary(member) for member in query.objects()]
        audit.record(who, "member.search", "", detail=f"{' or '.join(how)}: {len(rows)} found "
                     + ",".join(row["id"] for row in rows[:20]))
        return rows

    # -- one member ----------------------------------------------------------------------------

    def visible(self, who: Principal, member_id: str) -> tuple[Member, str | None] | None:
        """The member and its home store, or None when absent or outside ``who``'s stores."""
        member = Member.get_or_none(Member.id == member_id)
        if member is None:
            return None
        home = MemberHome.get_or_none(MemberHome.member == member_id)
        store = home.store if home else None
        if not who.sees_store(store):
            return None
        return member, store

    def page(self, who: Principal, member_id: str, before_seq: int | None = None,
             now: datetime | None = None) -> dict[str, Any] | None:
        """Profile, tier, balance, spend to the next tier, points expiring by month and the
        newest page of the statement (older pages: ``before_seq``). None: not found."""
        found = self.visible(who, member_id)
        if found is None:
            return None
        member, home = found
        now = now or datetime.now(UTC)
        view = self.store.member_view(member, Moment(now))
        audit.record(who, "member.view", member.id)
        return {
            "id": member.id, "name": member.name, "card_last4": member.card_last4,
            "phone_last4": member.phone_last4, "birthday": member.birthday,
            "home_store": home, "registered": self._local(member.registered_us),
            "tier": member.tier, "balance": member.balance, "debt": member.debt,
            "qualifying_spend_fen": view.qualifying_spend_fen, "next_tier": view.next_tier,
            "spend_to_next_fen": view.spend_to_next_fen,
            "expiring_by_month": self.expiring_by_month(member.id, now),
            **_card_state(member.card_hash),
            "operations": self.operations(member.id),
            "statement": self.statement(member, before_seq),
        }

    def expiring_by_month(self, member_id: str, now: datetime) -> list[dict[str, Any]]:
        """Points still in lots, by the month (programme zone) they expire in, soonest first."""
        months: dict[str, int] = defaultdict(int)
        lots = (Lot.select(Lot.expires_us, Lot.remaining)
                .where((Lot.member == member_id) & (Lot.remaining > 0)
                       & Lot.expires_us.is_null(False)).order_by(Lot.expires_us).tuples())
        for expires_us, remaining in lots:
            months[from_micros(expires_us).astimezone(self.rules.zone).strftime("%Y-%m")] += \
                remaining
        return [{"month": month, "points": points} for month, points in months.items()]

    def statement(self, member: Member, before_seq: int | None = None,
                  limit: int = STATEMENT_PAGE) -> dict[str, Any]:
        """The newest ``limit`` entries (before ``before_seq``), newest first, each with its
        store and terminal, operator, kind, reason and the balance after it."""
        query = LedgerEntry.select().where(LedgerEntry.member == member.id)
        if before_seq is not None:
            after_page = (LedgerEntry.select(LedgerEntry.points)
                          .where((LedgerEntry.member == member.id)
                                 & (LedgerEntry.seq >= before_seq)))
            running = member.balance - sum(points for (points,) in after_page.tuples())
            query = query.where(LedgerEntry.seq < before_seq)
        else:
            running = member.balance
        entries = list(_with_sale_operator(query).order_by(LedgerEntry.seq.desc())
                       .limit(limit + 1))
        more = len(entries) > limit
        rows = []
        origins = _Origins()
        for entry in entries[:limit]:
            rows.append(self._entry(entry, running, origins.of(entry.seq)))
            running -= entry.points
        return {"entries": rows, "more": more,
                "next_before": rows[-1]["seq"] if more and rows else None}

    def statement_csv(self, who: Principal, member_id: str) -> str | None:
        """The whole statement, oldest first, as CSV (UTF-8 with a BOM, so spreadsheet programs
        on Windows read the Chinese right). None: not found."""
        found = self.visible(who, member_id)
        if found is None:
            return None
        member, _ = found
        out = io.StringIO()
        out.write("\ufeff")
        writer = csv.writer(out)
        writer.writerow(["seq", "time", "store_terminal", "operator", "kind", "points",
                         "reason", "sale", "balance_after"])
        running = 0
        origins = _Origins()
        for entry in _with_sale_operator(LedgerEntry.select().where(
                LedgerEntry.member == member.id)).order_by(LedgerEntry.seq):
            running += entry.points
            row = self._entry(entry, running, origins.of(entry.seq))
            writer.writerow([row["seq"], row["time"], row["origin"], _cell(row["operator"]),
                             row["kind"], row["points"], _cell(row["reason"]), row["sale"] or "",
                             row["balance_after"]])
        audit.record(who, "member.export", member.id)
        return out.getvalue()

    def operations(self, member_id: str) -> list[dict[str, Any]]:
        """The member operations HQ made on this member, newest first, each detail as
        ``(field, value)`` pairs."""
        return [{"seq": op.seq, "kind": op.kind, "actor": op.actor, "reason": op.reason,
                 "detail": sorted((key, value) for key, value in
                                  json.loads(op.detail or "{}").items()
                                  if not key.endswith("_hash")),  # for machines, not people
                 "at": self._local(op.at_us)}
                for op in MemberOp.select().where(MemberOp.member == member_id)
                .order_by(MemberOp.seq.desc()).limit(50)]

    def _entry(self, entry: LedgerEntry, balance_after: int, origin: str) -> dict[str, Any]:
        return {"seq": entry.seq, "time": self._local(entry.wall_us), "kind": entry.kind,
                "points": entry.points, "reason": entry.reason,
                "operator": entry.operator or getattr(entry, "sale_operator", None) or "",
                "sale": entry.sale_id, "reverses": entry.reverses, "origin": origin,
                "balance_after": balance_after, "time_trusted": entry.trusted}

    def _local(self, us: int) -> str:
        return shown_micros(us, self.rules.zone)


class _Origins:
    """The store/terminal whose event wrote a ledger sequence number (``HQ`` when no event did:
    the expiry sweep, HQ's own operations). One indexed lookup per span, cached."""

    def __init__(self) -> None:
        self._spans: list[tuple[int, int, str]] = []

    def of(self, seq: int) -> str:
        for first, last, origin in self._spans:
            if first <= seq <= last:
                return origin
        row = (AppliedEvent.select(AppliedEvent.store, AppliedEvent.terminal,
                                   AppliedEvent.first_seq, AppliedEvent.last_seq)
               .where(AppliedEvent.last_seq >= seq).order_by(AppliedEvent.last_seq)
               .limit(1).tuples().first())
        if row is None or row[2] > seq:
            return HQ_ORIGIN
        store, terminal, first, last = row
        origin = f"{store}/{terminal}"
        self._spans.append((first, last, origin))
        return origin


def _name_key(db: Database) -> Any:
    """The name as searches compare and order it: bytewise (UTF-8, so code point order), which
    is SQLite's own order and, on PostgreSQL, ``COLLATE "C"``, the collation of the index that
    serves a prefix search in name order (a common surname matches tens of thousands of
    members; the index stops after the first 50)."""
    if isinstance(db, PostgresqlDatabase):  # the database itself: the models see a proxy
        return Member.name.collate('"C"')
    return Member.name


def _name_prefix(text: str, name: Any) -> Any:
    """Names that start with ``text``, as a range of the bytewise order (``text`` up to
    ``text`` followed by the highest code point) rather than ``LIKE 'text%'``: a range is an
    index condition even in a prepared statement's generic plan, where PostgreSQL cannot see a
    LIKE pattern's prefix (psycopg 3 prepares a query run five times; the surname search then
    scanned and sorted a million names). Case matters, as in Chinese it cannot."""
    return (name >= text) & (name < text + "\U0010ffff")


def _card_state(card_hash: str) -> dict[str, Any]:
    """The card's state as HQ set it (active unless an operation froze it)."""
    row = CardState.get_or_none(CardState.card_hash == card_hash)
    return {"state": row.state if row else ACTIVE, "state_reason": row.reason if row else ""}


def _with_sale_operator(query: Any) -> Any:
    """Entries with their sale's cashier: an earn entry names no operator, its sale does."""
    return (query.select_extend(Sale.operator.alias("sale_operator"))
            .join(Sale, JOIN.LEFT_OUTER, on=(Sale.id == LedgerEntry.sale_id)).objects())


def _summary(member: Member) -> dict[str, Any]:
    return {"id": member.id, "name": member.name, "card_last4": member.card_last4,
            "phone_last4": member.phone_last4, "tier": member.tier, "balance": member.balance,
            "home_store": getattr(member, "home_store", None)}
