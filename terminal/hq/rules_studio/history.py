"""The chain's history a backtest replays, read from HQ's database.

The window is the last ``days`` days before ``until`` (by default the newest record, so the same
database gives the same window whenever it is read). Its events are every sale, refund, exchange,
bonus and adjustment whose sequence number is at least the first one dated inside the window:
the ledger's own order, so an offline till's late events replay where HQ applied them. What came
before is the opening state: each member's lots as they stood (a lot's points less what entries
before the window took from it), debt, and the sales (paid amounts, refunds) that qualifying
spend and later refunds of earlier sales need.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from peewee import Case, fn

from terminal.hq.entry_stores import EntryStores
from terminal.hq.models import MemberHome
from terminal.loyalty.calendar import local_day
from terminal.loyalty.clock import Moment, from_micros, to_micros
from terminal.loyalty.ledger import ADJUST, BONUS, EARN, Lot
from terminal.loyalty.pricing import Line
from terminal.loyalty.store.models import (
    Allocation,
    Exchange,
    LedgerEntry,
    Member,
    Refund,
    RefundLine,
    Sale,
    SaleLine,
)
from terminal.loyalty.store.models import Lot as LotRow

SPEND_LOOKBACK_DAYS = 3700  # qualifying spend looks back at most tiers.window_months <= 120
PAST_CHUNK = 500  # earlier sales read a statement (SQLite allows 999 parameters at the least)


@dataclass(frozen=True)
class SoldItem:
    sku: str
    name: str
    category: str
    qty: int
    price_fen: int


class _Timed:
    """What both replays of a backtest read of an event's time, made once."""

    at: datetime
    trusted: bool

    @cached_property
    def moment(self) -> Moment:
        return Moment(self.at, self.trusted)


@dataclass(frozen=True)
class SaleEvent(_Timed):
    seq: int
    at: datetime
    trusted: bool
    id: str
    member: str | None
    store: str
    lines: tuple[SoldItem, ...]
    redeem_points: int  # what the member asked to redeem: the act the backtest keeps

    @cached_property
    def basket(self) -> tuple[Line, ...]:
        """The engine's basket lines, made once for both replays."""
        return tuple(Line(item.sku, item.qty, item.price_fen, item.name, item.category)
                     for item in self.lines)


@dataclass(frozen=True)
class RefundEvent(_Timed):
    seq: int
    at: datetime
    trusted: bool
    sale: str
    store: str
    units: tuple[tuple[int, int], ...]  # (line_no, qty): the units handed back


@dataclass(frozen=True)
class ExchangeEvent(_Timed):
    seq: int
    at: datetime
    trusted: bool
    member: str
    store: str
    sku: str
    qty: int


@dataclass(frozen=True)
class EntryEvent(_Timed):
    """A bonus or an adjustment: replayed as recorded (a bonus at the rules' amount)."""

    seq: int
    at: datetime
    trusted: bool
    member: str
    store: str
    kind: str
    points: int
    reason: str


Event = SaleEvent | RefundEvent | ExchangeEvent | EntryEvent


@dataclass
class SaleState:
    """A sale as its refunds reckon from it: recorded (before the window) or replayed."""

    member: str | None
    sold_at: datetime
    paid_fen: int
    list_fen: int
    earned: int
    redeemed: int
    lines: list[tuple[int, str, int, int, int]]  # (line_no, sku, qty, paid_fen, list_fen)
    earn_entry: str | None  # the lot its earning made
    refunds: list[tuple[tuple[tuple[int, int, int], ...], int, int]] = field(
        default_factory=list)  # each refund: ((line_no, qty, fen), ...), reversed, restored
    redeemed_from: dict[str, int] = field(default_factory=dict)  # lot -> points restorable


@dataclass(frozen=True)
class Recorded:
    """What the ledger recorded over the window: the figures an in-force replay must give."""

    points_issued: int
    points_redeemed: int
    points_reversed: int
    points_restored: int
    points_adjusted: int
    liability_end: int


@dataclass
class History:
    start: datetime
    until: datetime
    first_seq: int
    birthdays: dict[str, date | None]
    homes: dict[str, str]
    tiers: dict[str, str]  # each member's tier as the ledger holds it now (for the report)
    lots: dict[str, list[Lot]]
    debt: dict[str, int]
    events: list[Event]
    past_sales: dict[str, SaleState]
    spend: dict[str, list[tuple[datetime, int]]]  # sales before the window: (at, paid)
    spend_back: dict[str, list[tuple[datetime, int, datetime]]]  # their refunds: (at, fen
    #                                                                  handed back, sale's at)
    day_earned: dict[tuple[str, date], int]  # earned before the window on its first days
    recorded: Recorded


def newest_us() -> int:
    return max(int(model.select(fn.COALESCE(fn.MAX(model.wall_us), 0)).scalar())
               for model in (Sale, Refund, Exchange, LedgerEntry))


def load_history(days: int, zone: ZoneInfo, until: datetime | None = None, *,
                 past_chunk: int = PAST_CHUNK) -> History:
    """Read the window (run with the models bound to HQ's database); ``zone`` is the
    programme's, in which the day caps of the window's first day are counted; ``past_chunk``
    earlier sales are read a statement."""
    if days < 1:
        raise ValueError("--days must be at least 1")
    until_us = to_micros(until) if until is not None else newest_us()
    start_us = until_us - days * 86_400_000_000
    first = min(int(model.select(fn.MIN(model.seq)).where(model.wall_us >= start_us).scalar()
                     or 2**62) for model in (Sale, Refund, Exchange, LedgerEntry))
    stores = EntryStores()
    history = History(
        start=from_micros(start_us), until=from_micros(until_us), first_seq=first,
        birthdays={}, homes={}, tiers={}, lots=defaultdict(list), debt=defaultdict(int),
        events=[], past_sales={}, spend=defaultdict(list), spend_back=defaultdict(list),
        day_earned=defaultdict(int),
        recorded=_recorded(first, until_us))
    for member_id, birthday, tier in Member.select(Member.id, Member.birthday,
                                                   Member.tier).tuples():
        history.birthdays[member_id] = date.fromisoformat(birthday) if birthday else None
        history.tiers[member_id] = tier
    history.homes = dict(MemberHome.select(MemberHome.member, MemberHome.store).tuples())
    _opening(history, first)
    _events(history, first, stores)
    _past(history, first, start_us, past_chunk)
    _day_earned(history, first, start_us, zone)
    return history


def _recorded(first: int, until_us: int) -> Recorded:
    sums: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    points = LedgerEntry.points
    for kind, positive, negative in (
            LedgerEntry.select(LedgerEntry.kind,
                               fn.SUM(Case(None, [(points > 0, points)], 0)),
                               fn.SUM(Case(None, [(points < 0, points)], 0)))
            .where(LedgerEntry.seq >= first).group_by(LedgerEntry.kind).tuples()):
        sums[kind] = (int(positive or 0), -int(negative or 0))
    lots = int(LotRow.select(fn.COALESCE(fn.SUM(LotRow.remaining), 0)).where(
        LotRow.expires_us.is_null() | (LotRow.expires_us > until_us)).scalar())
    debt = int(Member.select(fn.COALESCE(fn.SUM(Member.debt), 0)).scalar())
    return Recorded(
        points_issued=sums["earn"][0] + sums["bonus"][0],
        points_redeemed=sums["redeem"][1],
        points_reversed=sums["reverse"][1],
        points_restored=sums["restore"][0],
        points_adjusted=sums["adjust"][0] - sums["adjust"][1],
        liability_end=lots - debt)


def _opening(history: History, first: int) -> None:
    taken: dict[str, int] = defaultdict(int)
    for lot_id, points in (Allocation.select(Allocation.lot, Allocation.points)
                           .join(LedgerEntry).where(LedgerEntry.seq < first).tuples().iterator()):
        taken[lot_id] += points
    rows = (LotRow.select(LotRow.id, LotRow.member, LotRow.earned_us, LotRow.expires_us,
                          LotRow.points, LedgerEntry.seq)
            .join(LedgerEntry, on=(LedgerEntry.id == LotRow.id))
            .where(LedgerEntry.seq < first).order_by(LedgerEntry.seq).tuples().iterator())
    for lot_id, member, earned_us, expires_us, points, seq in rows:
        remaining = points + taken.get(lot_id, 0)
        history.lots[member].append(Lot(
            lot_id, from_micros(earned_us), from_micros(expires_us) if expires_us else None,
            points, remaining, seq))
    for member, debt in (LedgerEntry.select(LedgerEntry.member, fn.SUM(LedgerEntry.debt_delta))
                         .where(LedgerEntry.seq < first).group_by(LedgerEntry.member)
                         .tuples().iterator()):
        if debt:
            history.debt[member] = int(debt)


def _events(history: History, first: int, stores: EntryStores) -> None:
    events: list[Event] = []
    lines: dict[str, list[SoldItem]] = defaultdict(list)
    for sale, sku, name, category, qty, price in (
            SaleLine.select(SaleLine.sale, SaleLine.sku, SaleLine.name, SaleLine.category,
                            SaleLine.qty, SaleLine.price_fen)
            .join(Sale).where(Sale.seq >= first).order_by(SaleLine.sale, SaleLine.line_no)
            .tuples().iterator()):
        lines[sale].append(SoldItem(sku, name, category, qty, price))
    for seq, us, trusted, sale, member, redeemed in (
            Sale.select(Sale.seq, Sale.wall_us, Sale.trusted, Sale.id, Sale.member,
                        Sale.points_redeemed).where(Sale.seq >= first).tuples().iterator()):
        events.append(SaleEvent(seq, from_micros(us), trusted, sale, member, stores.of(seq),
                                tuple(lines[sale]), redeemed))
    units: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for refund, line_no, qty in (
            RefundLine.select(RefundLine.refund, RefundLine.line_no, RefundLine.qty)
            .join(Refund).where(Refund.seq >= first).order_by(RefundLine.line_no)
            .tuples().iterator()):
        units[refund].append((line_no, qty))
    for seq, us, trusted, refund, sale in (
            Refund.select(Refund.seq, Refund.wall_us, Refund.trusted, Refund.id, Refund.sale)
            .where(Refund.seq >= first).tuples().iterator()):
        events.append(RefundEvent(seq, from_micros(us), trusted, sale, stores.of(seq),
                                  tuple(units[refund])))
    for seq, us, trusted, member, sku, qty in (
            Exchange.select(Exchange.seq, Exchange.wall_us, Exchange.trusted, Exchange.member,
                            Exchange.sku, Exchange.qty).where(Exchange.seq >= first)
            .tuples().iterator()):
        events.append(ExchangeEvent(seq, from_micros(us), trusted, member, stores.of(seq), sku,
                                    qty))
    for seq, us, trusted, member, kind, points, reason in (
            LedgerEntry.select(LedgerEntry.seq, LedgerEntry.wall_us, LedgerEntry.trusted,
                               LedgerEntry.member, LedgerEntry.kind, LedgerEntry.points,
                               LedgerEntry.reason)
            .where((LedgerEntry.seq >= first) & LedgerEntry.kind.in_([BONUS, ADJUST])
                   & LedgerEntry.sale_id.is_null()).tuples().iterator()):
        events.append(EntryEvent(seq, from_micros(us), trusted, member, stores.of(seq), kind,
                                 points, reason))
    events.sort(key=lambda event: event.seq)
    history.events = events


def _past(history: History, first: int, start_us: int, chunk: int) -> None:
    """Sales before the window: their spend, and what refunds in the window need of them."""
    since = start_us - SPEND_LOOKBACK_DAYS * 86_400_000_000
    for member, us, paid in (Sale.select(Sale.member, Sale.wall_us, Sale.paid_fen)
                             .where((Sale.seq < first) & Sale.member.is_null(False)
                                    & (Sale.wall_us >= since)).tuples()):
        history.spend[member].append((from_micros(us), paid))
    for member, us, fen, sale_us in (Refund.select(Sale.member, Refund.wall_us,
                                                   Refund.refunded_fen, Sale.wall_us)
                            .join(Sale).where((Refund.seq < first) & Sale.member.is_null(False)
                                              & (Sale.seq < first) & (Sale.wall_us >= since))
                            .tuples()):
        history.spend_back[member].append((from_micros(us), fen, from_micros(sale_us)))
    wanted = {event.sale for event in history.events if isinstance(event, RefundEvent)}
    wanted -= {event.id for event in history.events if isinstance(event, SaleEvent)}
    # Set-based, a chunk of sales a statement (not a statement per sale and per refund: a
    # month's window refunds tens of thousands of earlier sales at chain scale), each chunk
    # within SQLite's limit on a statement's parameters.
    ordered = sorted(wanted)
    for start in range(0, len(ordered), chunk):
        _past_sales(history, first, ordered[start:start + chunk])


def _past_sales(history: History, first: int, chunk: list[str]) -> None:
    lines: dict[str, list[tuple[int, str, int, int, int]]] = defaultdict(list)
    for sale_id, line_no, sku, qty, paid, listed in (
            SaleLine.select(SaleLine.sale, SaleLine.line_no, SaleLine.sku, SaleLine.qty,
                            SaleLine.paid_fen, SaleLine.list_fen)
            .where(SaleLine.sale.in_(chunk)).order_by(SaleLine.sale, SaleLine.line_no)
            .tuples().iterator()):
        lines[sale_id].append((line_no, sku, qty, paid, listed))
    for sale_id, member, us, paid, listed, earned, redeemed, earn_entry in (
            Sale.select(Sale.id, Sale.member, Sale.wall_us, Sale.paid_fen, Sale.list_fen,
                        Sale.points_earned, Sale.points_redeemed, Sale.earn_entry)
            .where(Sale.id.in_(chunk)).tuples().iterator()):
        history.past_sales[sale_id] = SaleState(member, from_micros(us), paid, listed, earned,
                                                redeemed, lines[sale_id], earn_entry)
    handed: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for refund_id, line_no, qty, fen in (
            RefundLine.select(RefundLine.refund, RefundLine.line_no, RefundLine.qty,
                              RefundLine.fen).join(Refund)
            .where(Refund.sale.in_(chunk) & (Refund.seq < first))
            .order_by(RefundLine.refund, RefundLine.line_no).tuples().iterator()):
        handed[refund_id].append((line_no, qty, fen))
    for refund_id, sale_id, reversed_, restored in (
            Refund.select(Refund.id, Refund.sale, Refund.points_reversed,
                          Refund.points_restored)
            .where(Refund.sale.in_(chunk) & (Refund.seq < first)).order_by(Refund.seq)
            .tuples().iterator()):
        history.past_sales[sale_id].refunds.append((tuple(handed[refund_id]), reversed_,
                                                    restored))
    for sale_id, lot, points in (Allocation.select(LedgerEntry.sale_id, Allocation.lot,
                                                   Allocation.points).join(LedgerEntry)
                                 .where(LedgerEntry.sale_id.in_(chunk)
                                        & LedgerEntry.kind.in_(["redeem", "restore"])
                                        & (LedgerEntry.seq < first)).tuples().iterator()):
        taken = history.past_sales[sale_id].redeemed_from
        taken[lot] = taken.get(lot, 0) - points


def _day_earned(history: History, first: int, start_us: int, zone: ZoneInfo) -> None:
    """What members earned before the window on the days it reaches back into (the caps per
    member per day count a day's earnings, the window starts mid-day)."""
    since = start_us - 2 * 86_400_000_000
    for member, us, points in (LedgerEntry.select(LedgerEntry.member, LedgerEntry.wall_us,
                                                  LedgerEntry.points)
                               .where((LedgerEntry.seq < first) & (LedgerEntry.kind == EARN)
                                      & (LedgerEntry.wall_us >= since)).tuples()):
        history.day_earned[member, local_day(from_micros(us), zone)] += points
