"""Ledger arithmetic for one member's points: lots, debits, restores, expiry, negative carry.

Points move only by new entries (DESIGN promise 2). This module computes the entries an
operation makes and applies them to an in-memory :class:`Account`; the store persists exactly
those entries and the lot remainders they leave, in one transaction.

Invariants (checked by the property tests):
- ``balance == sum(lot.remaining) - debt`` and equals the sum of all entries' points;
- no lot's remaining is below zero or above its points;
- debits take from the soonest-expiring lots first (lots that never expire go last), lots
  expiring at the same instant in the order they were credited (the entry sequence, never the
  random ids), so the same operations give the same ledger;
- ``debt`` (points owed after a refund took back points already spent) is paid off first by
  later earnings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from terminal.loyalty.ids import new_id

EARN, REDEEM, EXPIRE, REVERSE, ADJUST, BONUS, RESTORE = (
    "earn",
    "redeem",
    "expire",
    "reverse",
    "adjust",
    "bonus",
    "restore",
)
KINDS = (EARN, REDEEM, EXPIRE, REVERSE, ADJUST, BONUS, RESTORE)

_FAR = datetime.max.replace(tzinfo=None)
# A lot credited by the operation at hand has no sequence number until it is written; it sorts
# after every stored lot, in the order the operation credited it.
UNWRITTEN_SEQ = 2**62


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


@dataclass
class Lot:
    id: str  # the id of the entry that created it
    earned_at: datetime
    expires_at: datetime | None
    points: int
    remaining: int
    seq: int  # the sequence number of the entry that created it: the credit order

    def sort_key(self) -> tuple[datetime, int]:
        """Soonest-expiring first; lots expiring at the same instant in credit order."""
        expires = _FAR if self.expires_at is None else _naive_utc(self.expires_at)
        return (expires, self.seq)


@dataclass
class Entry:
    """One new ledger entry: its points (signed) and how they touched lots and debt."""

    kind: str
    points: int
    id: str = field(default_factory=new_id)
    sale_id: str | None = None
    reverses: str | None = None  # the entry this one corrects, if any
    reason: str = ""
    operator: str = ""
    allocations: list[tuple[str, int]] = field(default_factory=list)  # (lot id, signed points)
    new_lot: Lot | None = None
    debt_delta: int = 0

    def check(self) -> None:
        lot_points = sum(delta for _, delta in self.allocations)
        made = self.new_lot.points if self.new_lot else 0
        if lot_points + made - self.debt_delta != self.points:
            raise AssertionError(f"entry {self.id} does not balance")


class Account:
    """A member's points as lots and debt. Methods return the entry they applied."""

    def __init__(self, lots: Iterable[Lot] = (), debt: int = 0, unloaded: int = 0) -> None:
        """``unloaded`` counts points in lots the caller did not load: such an account can take
        credits (an earning sale needs no lot history) but refuses debits and expiry."""
        self.lots: dict[str, Lot] = {lot.id: lot for lot in lots}
        self.debt = debt
        self.unloaded = unloaded
        self._credited = 0  # lots credited in memory, not yet written

    @property
    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots.values()) + self.unloaded - self.debt

    def open_lots(self) -> list[Lot]:
        """Lots with points left, soonest-expiring first."""
        return sorted((lot for lot in self.lots.values() if lot.remaining > 0), key=Lot.sort_key)

    def credit(self, entry: Entry, earned_at: datetime, expires_at: datetime | None) -> Entry:
        """Add ``entry.points`` (> 0): pay off any debt first, the rest becomes a new lot."""
        if entry.points <= 0:
            raise ValueError("a credit must be positive")
        paid_off = min(self.debt, entry.points)
        self.debt -= paid_off
        entry.debt_delta = -paid_off
        rest = entry.points - paid_off
        if rest:
            entry.new_lot = Lot(entry.id, earned_at, expires_at, rest, rest,
                                UNWRITTEN_SEQ + self._credited)
            self._credited += 1
            self.lots[entry.id] = entry.new_lot
        entry.check()
        return entry

    def debit(
        self, entry: Entry, allow_debt: bool, first_from: str | None = None, only: Lot | None = None
    ) -> Entry:
        """Take ``-entry.points`` (> 0) from lots, soonest-expiring first.

        ``first_from`` names a lot to drain before the others (a reversal takes back first what is
        left of the lot its sale earned). What the lots cannot cover becomes debt if
        ``allow_debt``; otherwise the debit is refused with ValueError before anything changes.
        """
        wanted = -entry.points
        if wanted <= 0:
            raise ValueError("a debit must be negative")
        if self.unloaded:
            raise ValueError("a debit needs every lot loaded")
        order = [only] if only is not None else self.open_lots()
        if first_from is not None and first_from in self.lots:
            head = self.lots[first_from]
            order = [head] + [lot for lot in order if lot.id != first_from]
        available = sum(lot.remaining for lot in order)
        if wanted > available and not allow_debt:
            raise ValueError(f"{wanted} points asked, {available} available")
        for lot in order:
            if wanted == 0:
                break
            take = min(lot.remaining, wanted)
            if take:
                lot.remaining -= take
                entry.allocations.append((lot.id, -take))
                wanted -= take
        self.debt += wanted
        entry.debt_delta = wanted
        entry.check()
        return entry

    def restore(self, entry: Entry, taken: list[tuple[str, int]]) -> Entry:
        """Give ``entry.points`` (> 0) back to the lots in ``taken`` (lot id, points still
        restorable), latest-expiring first (of lots expiring together, the last credited
        first: the debit undone in reverse), keeping those lots' expiry dates.

        Points the debit took as debt (a redemption HQ held from lots this ledger does not
        have) were in no lot here: what the lots cannot take back cancels debt instead."""
        left = entry.points
        by_expiry = sorted(taken, key=lambda item: self.lots[item[0]].sort_key(), reverse=True)
        for lot_id, room in by_expiry:
            if left == 0:
                break
            give = min(room, left)
            if give:
                self.lots[lot_id].remaining += give
                entry.allocations.append((lot_id, give))
                left -= give
        cancelled = min(left, self.debt)
        self.debt -= cancelled
        entry.debt_delta = -cancelled
        left -= cancelled
        if left:
            raise ValueError(f"{left} points have no lot to return to")
        entry.check()
        return entry

    def expire(self, as_of: datetime) -> Entry | None:
        """One expire entry taking what is left of every lot expired at ``as_of``."""
        due = [
            lot
            for lot in self.lots.values()
            if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= as_of
        ]
        if not due:
            return None
        due.sort(key=Lot.sort_key)  # as open_lots orders them: only the due ones are sorted
        entry = Entry(kind=EXPIRE, points=-sum(lot.remaining for lot in due))
        for lot in due:
            entry.allocations.append((lot.id, -lot.remaining))
            lot.remaining = 0
        entry.check()
        return entry

