"""A member's account: the card that names them, their open lots, the entries that move points
and the day's counters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from terminal.loyalty import ledger
from terminal.loyalty.calendar import local_day, lot_expiry
from terminal.loyalty.cards import card_hash, check_card
from terminal.loyalty.clock import Moment, from_micros, to_micros
from terminal.loyalty.errors import InvalidInput, UnknownCard
from terminal.loyalty.ids import new_id
from terminal.loyalty.store import hotpath
from terminal.loyalty.store.hotpath import DayCounts, MemberRow
from terminal.loyalty.store.models import Member
from terminal.loyalty.store.writer import LedgerCore, Writer

_CARD_HASH = re.compile(r"[0-9a-f]{64}")  # compiled once: a CardRef is made for every sale at HQ


@dataclass(frozen=True)
class CardRef:
    """A member card known only by its keyed hash: how HQ names a member (terminals send card
    hashes, never card numbers). Accepted wherever a card number is."""

    hash: str
    last4: str = ""

    def __post_init__(self) -> None:
        if not _CARD_HASH.fullmatch(self.hash or ""):
            raise InvalidInput("a card hash is 64 lower-case hex digits", "card_hash")


def member_ref(key: bytes, card: str | CardRef) -> CardRef:
    """The card as its hash: a card number is checked (payment cards refused) and hashed."""
    if isinstance(card, CardRef):
        return card
    number = check_card(card)
    return CardRef(card_hash(key, number), number[-4:])


# A number this short cannot be a payment card (PANs are 12 to 19 digits): a message may repeat
# it whole, as the shared scenario's refusals do; a longer one shows its last four digits only.
_SHOWN_WHOLE = 12


def shown_card(card: str | CardRef, ref: CardRef) -> str:
    """A card number as a message may show it."""
    if isinstance(card, str) and len(card) < _SHOWN_WHOLE:
        return card
    return f"ending {ref.last4 or '?'}"


def shown_card_values(card: str | CardRef, ref: CardRef) -> dict[str, str]:
    """The card as :func:`shown_card` shows it, by name: its ``card`` or its ``last4``."""
    if isinstance(card, str) and len(card) < _SHOWN_WHOLE:
        return {"card": card}
    return {"last4": ref.last4 or "?"}


class Accounts(LedgerCore):
    """Finding a member by card and moving their points by ledger entries."""

    _last_ref: tuple[str | CardRef, CardRef] | None = None
    _last_day: tuple[Moment | None, str] = (None, "")

    def _ref(self, card: str | CardRef) -> CardRef:
        """The card's hash; the last card's is kept (a till looks a member up, quotes and sells
        with the same card: one HMAC instead of three)."""
        last = self._last_ref
        if last is not None and last[0] == card and type(last[0]) is type(card):
            return last[1]
        ref = member_ref(self.card_key, card)
        self._last_ref = (card, ref)
        return ref

    def _member(self, card: str | CardRef) -> MemberRow:
        ref = self._ref(card)
        member = self.sql.member(ref.hash)
        if member is None:
            raise self._unknown(card, ref)
        return member

    def _member_today(self, card: str | CardRef, moment: Moment) -> tuple[MemberRow, DayCounts]:
        """The member and their counters for the moment's day (see :meth:`_today`), in one
        query."""
        ref = self._ref(card)
        found = self.sql.member_today(ref.hash, self._day(moment))
        if found is None:
            raise self._unknown(card, ref)
        return found

    @staticmethod
    def _unknown(card: str | CardRef, ref: CardRef) -> UnknownCard:
        return UnknownCard(f"card {shown_card(card, ref)} belongs to no member", "card",
                           why="card.unknown", **shown_card_values(card, ref))

    def _account(self, member: Member | MemberRow,
                 also: list[str] | tuple[str, ...] = ()) -> ledger.Account:
        """The member's open lots (and the lots in ``also``), each with its credit's sequence
        number: the order of lots that expire together."""
        rows = self.sql.run(hotpath.OPEN_LOTS, (member.id,)).fetchall()
        if also:  # lots the caller may give back to that have no points left (one each)
            have = {row[0] for row in rows}
            for lot_id in dict.fromkeys(also):
                if lot_id and lot_id not in have:
                    rows += self.sql.run(hotpath.EMPTIED_LOT, (member.id, lot_id)).fetchall()
        return ledger.Account(
            (
                ledger.Lot(
                    lot_id,
                    from_micros(earned_us),
                    from_micros(expires_us) if expires_us is not None else None,
                    points,
                    remaining,
                    credit_seq,
                )
                for lot_id, earned_us, expires_us, points, remaining, credit_seq in rows
            ),
            member.debt,
        )

    def _expire_due(self, w: Writer, member: Member | MemberRow) -> None:
        """Record the member's expiries due at the moment before acting for them, so every
        operation sees the ledger the sweep would leave: a lot's points are gone from its
        expiry instant on, swept or not (rules.toml [expiry])."""
        as_of = w.moment.expiry_as_of
        if as_of is None:
            return
        due = self.sql.run(hotpath.DUE_LOTS_OF_MEMBER, (member.id, to_micros(as_of))).fetchall()
        if due:
            self._record_expiries(w, due)
            member.balance -= sum(remaining for *_, remaining in due)
            # The whole balance rather than a subtraction: HQ's batches keep member rows and
            # follow this statement (terminal.hq.batch).
            self.sql.run(hotpath.SAVE_BALANCE, (member.balance, member.debt, member.id))

    def _record_expiries(self, w: Writer, due: list[tuple[str, str, int]]) -> list[tuple[int, str]]:
        return record_expiries(self.sql, w, due)

    def _due_unswept(self, member: Member | MemberRow, moment: Moment) -> int:
        """Points in the member's lots expired by the moment that no entry has recorded yet."""
        as_of = moment.expiry_as_of
        if as_of is None:
            return 0
        row = self.sql.one(hotpath.DUE_POINTS_OF_MEMBER,
                           (member.id, to_micros(as_of), not moment.trusted))
        return int(row[0]) if row and row[0] else 0

    def _save_account(self, member: Member, account: ledger.Account) -> None:
        member.balance, member.debt = account.balance, account.debt
        self.sql.run(hotpath.SAVE_BALANCE, (account.balance, account.debt, member.id))

    def _write_entry(self, w: Writer, member: Member, entry: ledger.Entry) -> None:
        self.sql.run(hotpath.INSERT_ENTRY, (
            entry.id, w.next_seq(), member.id, entry.kind, entry.points, entry.debt_delta,
            entry.sale_id, entry.reverses, entry.reason, entry.operator, w.us, w.moment.trusted,
        ))
        if entry.new_lot is not None:
            lot = entry.new_lot
            self.sql.run(hotpath.INSERT_LOT, (
                lot.id, member.id,
                w.us if lot.earned_at is w.moment.at else to_micros(lot.earned_at),
                to_micros(lot.expires_at) if lot.expires_at else None, lot.points, lot.remaining,
                w.moment.trusted,
            ))
            w.undated = w.undated or not w.moment.trusted
        if entry.allocations:
            self.sql.many(hotpath.INSERT_ALLOCATION,
                          [(entry.id, lot_id, delta) for lot_id, delta in entry.allocations])
            self.sql.many(hotpath.MOVE_LOT,
                          [(delta, lot_id) for lot_id, delta in entry.allocations])

    def _credit_entry(
        self, account: ledger.Account, entry: ledger.Entry, moment: Moment
    ) -> ledger.Entry:
        """Apply a credit in memory; its lot expires by the rules from the moment's earn time."""
        earned = moment.earn_time
        expires = lot_expiry(earned, self.rules.expiry, self.rules.zone)
        return account.credit(entry, earned, expires)

    def _credit(
        self, w: Writer, member: Member, account: ledger.Account, kind: str, points: int, **kw: Any
    ) -> ledger.Entry:
        entry = self._credit_entry(account, ledger.Entry(kind=kind, points=points, **kw), w.moment)
        self._write_entry(w, member, entry)
        return entry

    def _count_day(
        self, w: Writer, member: Member, earned: int = 0, redeemed: int = 0,
        offline_redeemed: int = 0,
    ) -> None:
        day = self._day(w.moment)
        self.sql.run(hotpath.COUNT_DAY, (member.id, day, earned, redeemed, offline_redeemed))

    def _day(self, moment: Moment) -> str:
        """The programme-zone day the day counters count the moment in (the last moment's
        kept: a sale asks it for the member's counters and again to count in them)."""
        last = self._last_day
        if last[0] is moment:  # a Moment is immutable: the same object, the same day
            return last[1]
        day = local_day(moment.earn_time, self.rules.zone).isoformat()
        self._last_day = (moment, day)
        return day

    def _today(self, member: Member | MemberRow, moment: Moment) -> DayCounts:
        return hotpath.day_counts(self.sql.one(hotpath.DAY_COUNTS,
                                               (member.id, self._day(moment))))


def record_expiries(sql: hotpath.Statements, w: Writer,
                    due: list[tuple[str, str, int]]) -> list[tuple[int, str]]:
    """One ``expire`` entry per member for the due lots (lot id, member id, remaining),
    given soonest-expiring first and in credit order: members in the order of their first
    due lot, so the same ledger gets the same entries. Returns (points, member id) to take
    from each member's balance. Written through ``sql`` (HQ's parallel sweep passes each
    worker's own)."""
    by_member: dict[str, list[tuple[str, int]]] = {}
    for lot_id, member_id, remaining in due:
        by_member.setdefault(member_id, []).append((lot_id, remaining))
    entry_rows, alloc_rows, member_rows = [], [], []
    for member_id, member_lots in by_member.items():
        entry_id = new_id()
        total = sum(r for _, r in member_lots)
        entry_rows.append((entry_id, w.next_seq(), member_id, ledger.EXPIRE, -total, 0, None,
                           None, "", "", w.us, w.moment.trusted))
        alloc_rows.extend((entry_id, lot_id, -r) for lot_id, r in member_lots)
        member_rows.append((total, member_id))
    sql.many(hotpath.INSERT_ENTRY, entry_rows)
    sql.many(hotpath.INSERT_ALLOCATION, alloc_rows)
    sql.many(hotpath.EMPTY_LOT, sorted((lot_id,) for lot_id, *_ in due))
    return member_rows
