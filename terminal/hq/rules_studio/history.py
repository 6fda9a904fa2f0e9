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

import itertools
import operator
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property, reduce
from typing import Any
from zoneinfo import ZoneInfo

from peewee import JOIN, Case, fn

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

TIER_MONTHS_MOST = 120  # tiers.window_months is at most this
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


@dataclass(frozen=True)
class Span:
    """Which members a read takes: ids from ``low`` (inclusive) to ``high`` (exclusive), None
    for no bound; ``nobody`` adds the sales without a member and the refunds of those (or of
    sales HQ does not hold), which count only as skipped. ``Span()`` is the whole chain."""

    low: str | None = None
    high: str | None = None
    nobody: bool = True

    @property
    def whole(self) -> bool:
        return self.low is None and self.high is None and self.nobody

    def of(self, column: Any, nullable: bool = False) -> list[Any]:
        """The conditions (to AND) that keep the rows whose member ``column`` is in the span."""
        if self.whole:
            return []
        within = [column >= self.low] if self.low is not None else []
        if self.high is not None:
            within.append(column < self.high)
        if not nullable:
            return within
        inside = reduce(operator.and_, within) if within else None
        if self.nobody:
            return [column.is_null() if inside is None else (inside | column.is_null())]
        return [inside] if inside is not None else [column.is_null(False)]


@dataclass(frozen=True)
class Window:
    """The window a backtest replays, fixed once: its bounds and its first sequence number;
    its earlier sales count for the tiers from ``spend_since_us`` on."""

    start_us: int
    until_us: int
    first_seq: int
    spend_since_us: int
    earned_since_us: int  # the day caps count what was earned from two days before the start
    earned_from_seq: int  # no entry dated from then on has a lower sequence number


def window(days: int, until: datetime | None = None, tier_months: int = TIER_MONTHS_MOST
           ) -> Window:
    """The last ``days`` days before ``until`` (default: the newest record) (models bound).
    ``tier_months``: the longest ``tiers.window_months`` of the rules it is replayed under.
    A review reckons the spend of that many months before its boundary, and the window's
    first boundary is at most a month before its start: the sales from ``tier_months`` + 1
    months of 31 days before the start on are all a replay can count."""
    if days < 1:
        raise ValueError("--days must be at least 1")
    until_us = to_micros(until) if until is not None else newest_us()
    start_us = until_us - days * 86_400_000_000
    first = min(int(model.select(fn.MIN(model.seq)).where(model.wall_us >= start_us).scalar()
                     or 2**62) for model in (Sale, Refund, Exchange, LedgerEntry))
    earned_since = start_us - 2 * 86_400_000_000
    # Read once: a span's entries then take the (member, seq) index between this and the
    # window (by the members' ids and the date alone, a span read every entry of its members:
    # pg_stat_statements, 1 M members, 24.3 of 190 s in the server)
    earned_from = int(LedgerEntry.select(fn.MIN(LedgerEntry.seq))
                      .where(LedgerEntry.wall_us >= earned_since).scalar() or first)
    return Window(start_us, until_us, first,
                  start_us - (tier_months + 1) * 31 * 86_400_000_000, earned_since,
                  min(earned_from, first))


def newest_us() -> int:
    return max(int(model.select(fn.COALESCE(fn.MAX(model.wall_us), 0)).scalar())
               for model in (Sale, Refund, Exchange, LedgerEntry))


def load_history(days: int, zone: ZoneInfo, until: datetime | None = None, *,
                 past_chunk: int = PAST_CHUNK, tier_months: int = TIER_MONTHS_MOST) -> History:
    """Read the window (run with the models bound to HQ's database); ``zone`` is the
    programme's, in which the day caps of the window's first day are counted; ``past_chunk``
    earlier sales are read a statement; ``tier_months``: as :func:`window`'s."""
    fixed = window(days, until, tier_months)
    return load_part(fixed, zone, Span(), EntryStores(fixed.first_seq),
                     _recorded(fixed.first_seq, fixed.until_us), past_chunk=past_chunk)


NOTHING_RECORDED = Recorded(0, 0, 0, 0, 0, 0)


def load_part(fixed: Window, zone: ZoneInfo, span: Span, stores: EntryStores,
              recorded: Recorded = NOTHING_RECORDED, *, past_chunk: int = PAST_CHUNK
              ) -> History:
    """The window's history of the members in ``span`` only (models bound): their opening
    state and their events. ``recorded`` is the whole chain's (:func:`recorded`), read once."""
    first = fixed.first_seq
    history = History(
        start=from_micros(fixed.start_us), until=from_micros(fixed.until_us), first_seq=first,
        birthdays={}, homes={}, tiers={}, lots=defaultdict(list), debt=defaultdict(int),
        events=[], past_sales={}, spend=defaultdict(list), spend_back=defaultdict(list),
        day_earned=defaultdict(int), recorded=recorded)
    for member_id, birthday, tier in _rows(_where(
            Member.select(Member.id, Member.birthday, Member.tier), span.of(Member.id))):
        history.birthdays[member_id] = date.fromisoformat(birthday) if birthday else None
        history.tiers[member_id] = tier
    history.homes = dict(_rows(_where(MemberHome.select(MemberHome.member, MemberHome.store),
                                      span.of(MemberHome.member))))
    _opening(history, first, span)
    _events(history, first, stores, span)
    _past(history, first, fixed.spend_since_us, past_chunk, span)
    _day_earned(history, first, fixed, zone, span)
    return history


def _rows(query: Any) -> Any:
    """The rows of a query of plain columns (text, integers, booleans) as the driver gives
    them: peewee's per-value conversion (``python_value``, none of which changes such a value
    but a boolean's type on SQLite) was half the reading's CPU (cProfile, a 30-day window of
    20,000 members: 635,598 conversions, 3.4 of 7.6 s spent reading)."""
    return query.model._meta.database.execute(query)


def _where(query: Any, conditions: list[Any]) -> Any:
    return query.where(*conditions) if conditions else query


def recorded(fixed: Window) -> Recorded:
    """What the ledger recorded over the window (models bound)."""
    return _recorded(fixed.first_seq, fixed.until_us)


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


def _opening(history: History, first: int, span: Span) -> None:
    taken: dict[str, int] = defaultdict(int)
    # Through the span's lots (the lot index), not its entries: a member has far fewer lots.
    allocations = Allocation.select(Allocation.lot, Allocation.points).join(LedgerEntry)
    if not span.whole:
        allocations = _where(allocations.switch(Allocation).join(LotRow), span.of(LotRow.member))
    for lot_id, points in _rows(allocations.where(LedgerEntry.seq < first)):
        taken[lot_id] += points
    rows = _rows(LotRow.select(LotRow.id, LotRow.member, LotRow.earned_us, LotRow.expires_us,
                               LotRow.points, LedgerEntry.seq)
                 .join(LedgerEntry, on=(LedgerEntry.id == LotRow.id))
                 .where(LedgerEntry.seq < first, *span.of(LotRow.member))
                 .order_by(LedgerEntry.seq))
    for lot_id, member, earned_us, expires_us, points, seq in rows:
        remaining = points + taken.get(lot_id, 0)
        history.lots[member].append(Lot(
            lot_id, from_micros(earned_us), from_micros(expires_us) if expires_us else None,
            points, remaining, seq))
    for member, debt in _rows(LedgerEntry.select(LedgerEntry.member,
                                                 fn.SUM(LedgerEntry.debt_delta))
                              .where(LedgerEntry.seq < first, *span.of(LedgerEntry.member))
                              .group_by(LedgerEntry.member)):
        if debt:
            history.debt[member] = int(debt)


def _events(history: History, first: int, stores: EntryStores, span: Span) -> None:
    events: list[Event] = []
    lines: dict[str, list[SoldItem]] = defaultdict(list)
    sold = span.of(Sale.member, nullable=True)
    for sale, sku, name, category, qty, price in _rows(
            SaleLine.select(SaleLine.sale, SaleLine.sku, SaleLine.name, SaleLine.category,
                            SaleLine.qty, SaleLine.price_fen)
            .join(Sale).where(Sale.seq >= first, *sold).order_by(SaleLine.sale, SaleLine.line_no)
            ):
        lines[sale].append(SoldItem(sku, name, category, qty, price))
    for seq, us, trusted, sale, member, redeemed in _rows(
            Sale.select(Sale.seq, Sale.wall_us, Sale.trusted, Sale.id, Sale.member,
                        Sale.points_redeemed).where(Sale.seq >= first, *sold)
            ):
        events.append(SaleEvent(seq, from_micros(us), bool(trusted), sale, member, stores.of(seq),
                                tuple(lines[sale]), redeemed))
    # Each refund with its lines in one statement (two, each joining the span's sales, were a
    # third of the server's time: pg_stat_statements, 1 M members, 35.3 + 30.5 s of 190 s)
    refunds = (Refund.select(Refund.seq, Refund.wall_us, Refund.trusted, Refund.sale,
                             RefundLine.line_no, RefundLine.qty)
               .join(RefundLine, JOIN.LEFT_OUTER, on=(RefundLine.refund == Refund.id)))
    if sold:  # a refund is its sale's member's (or nobody's: no member, or no such sale)
        refunds = refunds.switch(Refund).join(Sale, JOIN.LEFT_OUTER).where(*sold)
    for seq, group in itertools.groupby(
            _rows(refunds.where(Refund.seq >= first).order_by(Refund.seq, RefundLine.line_no)),
            key=lambda row: row[0]):
        lines_of = list(group)
        _, us, trusted, sale, _, _ = lines_of[0]
        events.append(RefundEvent(seq, from_micros(us), bool(trusted), sale, stores.of(seq),
                                  tuple((line_no, qty) for *_, line_no, qty in lines_of
                                        if line_no is not None)))  # (outer join: no lines)
    for seq, us, trusted, member, sku, qty in _rows(
            Exchange.select(Exchange.seq, Exchange.wall_us, Exchange.trusted, Exchange.member,
                            Exchange.sku, Exchange.qty)
            .where(Exchange.seq >= first, *span.of(Exchange.member))):
        events.append(ExchangeEvent(seq, from_micros(us), bool(trusted), member,
                                    stores.of(seq), sku, qty))
    for seq, us, trusted, member, kind, points, reason in _rows(
            LedgerEntry.select(LedgerEntry.seq, LedgerEntry.wall_us, LedgerEntry.trusted,
                               LedgerEntry.member, LedgerEntry.kind, LedgerEntry.points,
                               LedgerEntry.reason)
            .where((LedgerEntry.seq >= first) & LedgerEntry.kind.in_([BONUS, ADJUST])
                   & LedgerEntry.sale_id.is_null(), *span.of(LedgerEntry.member))):
        events.append(EntryEvent(seq, from_micros(us), bool(trusted), member, stores.of(seq), kind,
                                 points, reason))
    events.sort(key=lambda event: event.seq)
    history.events = events


def _past(history: History, first: int, since: int, chunk: int, span: Span) -> None:
    """Sales before the window: their spend (from ``since`` on), and what refunds in the
    window need of them."""
    for member, us, paid in _rows(Sale.select(Sale.member, Sale.wall_us, Sale.paid_fen)
                             .where((Sale.seq < first) & Sale.member.is_null(False)
                                    & (Sale.wall_us >= since), *span.of(Sale.member))
                             ):
        history.spend[member].append((from_micros(us), paid))
    for member, us, fen, sale_us in _rows(Refund.select(Sale.member, Refund.wall_us,
                                                   Refund.refunded_fen, Sale.wall_us)
                            .join(Sale).where((Refund.seq < first) & Sale.member.is_null(False)
                                              & (Sale.seq < first) & (Sale.wall_us >= since),
                                              *span.of(Sale.member))
                            ):
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
    for sale_id, line_no, sku, qty, paid, listed in _rows(
            SaleLine.select(SaleLine.sale, SaleLine.line_no, SaleLine.sku, SaleLine.qty,
                            SaleLine.paid_fen, SaleLine.list_fen)
            .where(SaleLine.sale.in_(chunk)).order_by(SaleLine.sale, SaleLine.line_no)
            ):
        lines[sale_id].append((line_no, sku, qty, paid, listed))
    for sale_id, member, us, paid, listed, earned, redeemed, earn_entry in _rows(
            Sale.select(Sale.id, Sale.member, Sale.wall_us, Sale.paid_fen, Sale.list_fen,
                        Sale.points_earned, Sale.points_redeemed, Sale.earn_entry)
            .where(Sale.id.in_(chunk))):
        history.past_sales[sale_id] = SaleState(member, from_micros(us), paid, listed, earned,
                                                redeemed, lines[sale_id], earn_entry)
    handed: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for refund_id, line_no, qty, fen in _rows(
            RefundLine.select(RefundLine.refund, RefundLine.line_no, RefundLine.qty,
                              RefundLine.fen).join(Refund)
            .where(Refund.sale.in_(chunk) & (Refund.seq < first))
            .order_by(RefundLine.refund, RefundLine.line_no)):
        handed[refund_id].append((line_no, qty, fen))
    for refund_id, sale_id, reversed_, restored in _rows(
            Refund.select(Refund.id, Refund.sale, Refund.points_reversed,
                          Refund.points_restored)
            .where(Refund.sale.in_(chunk) & (Refund.seq < first)).order_by(Refund.seq)
            ):
        history.past_sales[sale_id].refunds.append((tuple(handed[refund_id]), reversed_,
                                                    restored))
    for sale_id, lot, points in _rows(Allocation.select(LedgerEntry.sale_id, Allocation.lot,
                                                   Allocation.points).join(LedgerEntry)
                                 .where(LedgerEntry.sale_id.in_(chunk)
                                        & LedgerEntry.kind.in_(["redeem", "restore"])
                                        & (LedgerEntry.seq < first))):
        taken = history.past_sales[sale_id].redeemed_from
        taken[lot] = taken.get(lot, 0) - points


def _day_earned(history: History, first: int, fixed: Window, zone: ZoneInfo, span: Span
                ) -> None:
    """What members earned before the window on the days it reaches back into (the caps per
    member per day count a day's earnings, the window starts mid-day)."""
    for member, us, points in _rows(LedgerEntry.select(LedgerEntry.member, LedgerEntry.wall_us,
                                                       LedgerEntry.points)
                                    .where((LedgerEntry.seq < first)
                                           & (LedgerEntry.seq >= fixed.earned_from_seq)
                                           & (LedgerEntry.kind == EARN)
                                           & (LedgerEntry.wall_us >= fixed.earned_since_us),
                                           *span.of(LedgerEntry.member))):
        history.day_earned[member, local_day(from_micros(us), zone)] += points
