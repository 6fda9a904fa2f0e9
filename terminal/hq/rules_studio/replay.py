"""Replay a window of the chain's history under one rule set, with the pure engine.

Each member's points are a :class:`terminal.loyalty.ledger.Account` opened with the lots it held
when the window began; every event of the window is then re-reckoned by the engine's own
functions in the ledger's order: a sale priced with the tier the rules give the member
(:mod:`terminal.loyalty.tiers`), its redemption and earning (:mod:`terminal.loyalty.redemption`,
:mod:`terminal.loyalty.earning`); a refund by the proportional formulas
(:mod:`terminal.loyalty.refunds`); an exchange at the goods' price; bonuses at the rules'
amounts; adjustments as recorded; lots expiring by the rules. What people did stays as it was:
the goods sold and handed back, and the points a member asked to redeem (fewer when the rules
allow fewer). Nothing here reads a clock or a random source, so the same history and rules give
the same numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

from terminal.hq.rules_studio.history import (
    EntryEvent,
    ExchangeEvent,
    History,
    RefundEvent,
    SaleEvent,
    SaleState,
)
from terminal.loyalty import ledger, redemption, refunds, tiers
from terminal.loyalty.calendar import add_months, local_day, lot_expiry, month_start
from terminal.loyalty.clock import Moment
from terminal.loyalty.earning import Earner
from terminal.loyalty.pricing import Pricing, price
from terminal.loyalty.rules import Rules


@dataclass
class Figures:
    points_issued: int = 0
    points_redeemed: int = 0
    points_reversed: int = 0
    points_restored: int = 0
    points_adjusted: int = 0
    points_expired: int = 0
    liability_end: int = 0

    def add(self, what: str, points: int) -> None:
        setattr(self, what, getattr(self, what) + points)

    def add_all(self, row: Figures) -> None:
        """``row``'s figures added to these (written out: a backtest adds a row per member)."""
        self.points_issued += row.points_issued
        self.points_redeemed += row.points_redeemed
        self.points_reversed += row.points_reversed
        self.points_restored += row.points_restored
        self.points_adjusted += row.points_adjusted
        self.points_expired += row.points_expired
        self.liability_end += row.liability_end


@dataclass
class Replayed:
    chain: Figures = field(default_factory=Figures)
    stores: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    members: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    tier_end: dict[str, str] = field(default_factory=dict)  # member -> tier at the window's end
    skipped: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # why -> count
    # event -> points its redemption took beyond the balance (an offline till's overdraft,
    # which HQ posted as debt): found by the in-force run, allowed again to the candidate's
    overdrafts: dict[str, int] = field(default_factory=dict)


TICK = 2_000  # events replayed between two reports of progress
Tick = Callable[[int], None]
NEVER = datetime.max.replace(tzinfo=UTC)  # the expiry floor of a member whose lots never expire


class _Member:
    def __init__(self, lots: list[ledger.Lot], debt: int) -> None:
        self.account = ledger.Account([ledger.Lot(lot.id, lot.earned_at, lot.expires_at,
                                                  lot.points, lot.remaining, lot.seq)
                                       for lot in lots], debt)
        self.spend: list[tuple[datetime, int]] = []  # (at, paid) of every sale
        self.spend_back: list[tuple[datetime, int, datetime]] = []  # (at, fen, sale at)
        self.tier: str | None = None
        self.reviewed: datetime | None = None
        self.review_due: datetime | None = None  # the next review after ``reviewed``
        self.paid = 0  # every sale's paid amount in ``spend``: more than any qualifying spend
        # No lot with points left expires before this (None: not known): expiry is looked for
        # only from then on. Debits keep it true; a credit lowers it; a restore forgets it (it
        # may give points back to a lot already expired).
        self.expiry_floor: datetime | None = None


class Replay:
    """``overdrafts`` None: these are the rules in force, whose run finds each redemption's
    overdraft (:attr:`Replayed.overdrafts`); else the in-force run's, for a candidate."""

    def __init__(self, history: History, rules: Rules,
                 overdrafts: dict[str, int] | None = None) -> None:
        self.history, self.rules = history, rules
        self.overdrafts = overdrafts
        self.earner = Earner(rules)  # what the earning needs of the rules, worked out once
        # the least spend that would lift a member above each tier (none above the top)
        self.upgrade_at = {tier.name: min((above.qualify_spend_fen
                                           for above in rules.tiers[number + 1:]), default=None)
                           for number, tier in enumerate(rules.tiers)}
        self.out = Replayed()
        self.members: dict[str, _Member] = {}
        self.sales: dict[str, SaleState] = {
            sale_id: replace(sale, refunds=list(sale.refunds),
                             redeemed_from=dict(sale.redeemed_from))
            for sale_id, sale in history.past_sales.items()}
        self.day_earned: dict[tuple[str, date], int] = defaultdict(int, history.day_earned)
        self.day_redeemed: dict[tuple[str, date], int] = defaultdict(int)
        # Calendar work memoised by instant (a span's members share their reviews' boundaries
        # and the window's end): the start of the tier window ending then, the review
        # boundary (month start) of then, the month after a boundary. cProfile, 20,000
        # members: add_months and month_start a third of the replay, mostly at the window's end.
        self._spend_from: dict[datetime, datetime] = {}
        self._month_start: dict[datetime, datetime] = {}
        self._next_month: dict[datetime, datetime] = {}

    # -- state -----------------------------------------------------------------------------

    def member(self, member_id: str) -> _Member:
        found = self.members.get(member_id)
        if found is None:
            found = _Member(self.history.lots.get(member_id, []),
                            self.history.debt.get(member_id, 0))
            found.spend = list(self.history.spend.get(member_id, ()))
            paid = 0
            for _, fen in found.spend:
                paid += fen
            found.paid = paid
            found.spend_back = list(self.history.spend_back.get(member_id, ()))
            self.members[member_id] = found
        return found

    def spend_at(self, m: _Member, end: datetime) -> int:
        """Qualifying spend at ``end``: sales in (start, end], less their refunds by ``end``."""
        start = self._spend_from.get(end)
        if start is None:
            start = self._spend_from[end] = add_months(end.astimezone(self.rules.zone),
                                                       -self.rules.tier_window_months)
        # Loops, not sum() over generators: a call per member and review at the window's end
        # made the generators' frames a fifth of the replay (cProfile, 100,000 members).
        paid = 0
        for at, fen in m.spend:
            if start < at <= end:
                paid += fen
        for at, fen, sold in m.spend_back:
            if at <= end and start < sold <= end:
                paid -= fen
        return paid

    def tier_at(self, m: _Member, now: datetime) -> str:
        """The tier every review due by ``now`` decided, with the upgrades since (tiers.py)."""
        if m.tier is not None and m.review_due is not None and now < m.review_due:
            return m.tier  # no review due (tiers.due_review, without its calendar work)
        boundary = self._month_start.get(now)
        if boundary is None:
            boundary = self._month_start[now] = month_start(now, self.rules.zone)
        # tiers.due_review: a review is due when none was made since this boundary
        if m.reviewed is None or m.reviewed < boundary or m.tier is None:
            level = tiers.qualifying_tier(self.rules, self.spend_at(m, boundary))
            lift = self.upgrade_at.get(level.name)
            # an upgrade needs a spend of at least ``lift``, and no spend is above m.paid
            if lift is not None and m.paid >= lift:
                for at, _ in sorted(m.spend):
                    if boundary < at <= now:
                        level = tiers.upgraded(self.rules, level.name,
                                               self.spend_at(m, at)) or level
            m.tier, m.reviewed = level.name, boundary
            due = self._next_month.get(boundary)
            if due is None:  # 00:00 on the next month's 1st
                due = self._next_month[boundary] = add_months(boundary, 1)
            m.review_due = due
        return m.tier

    def expire(self, member_id: str, m: _Member, moment: Moment, store: str) -> None:
        as_of = moment.expiry_as_of
        if as_of is None or (m.expiry_floor is not None and as_of < m.expiry_floor):
            return
        entry = m.account.expire(as_of)
        if entry is not None:
            self.count(member_id, store, "points_expired", -entry.points)
        m.expiry_floor = min((lot.expires_at for lot in m.account.lots.values()
                              if lot.remaining > 0 and lot.expires_at is not None),
                             default=NEVER)

    def count(self, member_id: str, store: str, what: str, points: int) -> None:
        if points:
            self.out.chain.add(what, points)
            self.out.stores[store].add(what, points)
            self.out.members[member_id].add(what, points)

    def credit(self, m: _Member, kind: str, points: int, moment: Moment, seq: int) -> str:
        """A credit by the event ``seq``; its lot is named by the event (a replayed entry is
        never written, so it needs no random id), and that name returned."""
        entry = ledger.Entry(kind=kind, points=points, id=f"replayed:{seq}")
        earned = moment.earn_time
        expires = lot_expiry(earned, self.rules.expiry, self.rules.zone)
        m.account.credit(entry, earned, expires)
        if entry.new_lot is not None:
            entry.new_lot.seq = seq  # credit order: the event's place in the ledger
            if expires is not None and m.expiry_floor is not None:
                m.expiry_floor = min(m.expiry_floor, expires)
        return entry.id

    @staticmethod
    def debit(m: _Member, kind: str, points: int, first_from: str | None = None
              ) -> ledger.Entry:
        """A debit of ``points`` (> 0), into debt beyond the lots (the replay's acts were
        allowed when they happened); its entry unnamed, as it is never written."""
        return m.account.debit(ledger.Entry(kind=kind, points=-points, id=""), allow_debt=True,
                               first_from=first_from)

    # -- events ----------------------------------------------------------------------------

    def run(self, tick: Tick | None = None) -> Replayed:
        """Replay every event; ``tick(n)`` is told of each ``TICK`` events replayed (and of
        the rest at the end), for a job's progress."""
        for number, event in enumerate(self.history.events, 1):
            if tick is not None and number % TICK == 0:
                tick(TICK)
            if isinstance(event, SaleEvent):
                self.sale(event)
            elif isinstance(event, RefundEvent):
                self.refund(event)
            elif isinstance(event, ExchangeEvent):
                self.exchange(event)
            else:
                self.entry(event)
        if tick is not None and len(self.history.events) % TICK:
            tick(len(self.history.events) % TICK)
        self.close()
        return self.out

    def sale(self, event: SaleEvent) -> None:
        moment = event.moment
        lines = event.basket
        if event.member is None:
            self.sales[event.id] = self._state(None, event.at, price(lines, 0, 0), 0, 0, None)
            return
        m = self.member(event.member)
        self.expire(event.member, m, moment, event.store)
        tier = self.rules.tier(self.tier_at(m, moment.expiry_as_of or event.at))
        pricing = price(lines, tier.discount_percent, 0)
        day = local_day(moment.earn_time, self.rules.zone)
        points = self._redeemable(event, m, pricing.due_fen, day)
        if points:
            pricing = price(lines, tier.discount_percent,
                            redemption.deduction_fen(self.rules, points))
        earned = self.earner.points(pricing, tier, moment,
                                    self.history.birthdays.get(event.member),
                                    self.day_earned[event.member, day])
        taken: dict[str, int] = {}
        if points:
            entry = self.debit(m, ledger.REDEEM, points)
            taken = {lot: -delta for lot, delta in entry.allocations}
            self.day_redeemed[event.member, day] += points
            self.count(event.member, event.store, "points_redeemed", points)
        earn_lot = None
        if earned:
            earn_lot = self.credit(m, ledger.EARN, earned, moment, event.seq)
            self.day_earned[event.member, day] += earned
            self.count(event.member, event.store, "points_issued", earned)
        self.sales[event.id] = self._state(event.member, moment.earn_time, pricing,
                                           earned, points, earn_lot, taken)
        m.spend.append((moment.earn_time, pricing.paid_fen))
        m.paid += pricing.paid_fen
        # Upgrades take effect at once, from the next sale (downgrades wait for a review).
        # None when even every sale's paid amount, refunds ignored, is below the next tier's.
        lift = self.upgrade_at.get(tier.name)
        if lift is not None and m.paid >= lift:
            level = tiers.upgraded(self.rules, tier.name, self.spend_at(m, moment.earn_time))
            if level is not None:
                m.tier = level.name

    def _redeemable(self, event: SaleEvent, m: _Member, due_fen: int, day: date) -> int:
        """The points the member asked to redeem, as far as these rules allow: never more than
        asked, in whole steps, within the sale's share, the day's cap and the balance."""
        if not event.redeem_points:
            return 0
        # The balance limits a redemption as the engine's max_redeemable does; beyond it only
        # by what the ledger recorded as the overdraft of that very act (an offline till's,
        # posted by HQ as debt), which a candidate is allowed again.
        room = self._room(event.id, m, event.redeem_points)
        ctx = redemption.RedeemContext(room, self.day_redeemed[event.member or "", day], 0, True)
        most = redemption.max_redeemable(self.rules, ctx, due_fen)
        points = min(event.redeem_points, most)
        if points < event.redeem_points:
            why = "balance" if room < event.redeem_points else "rules"
            self.out.skipped[f"redemption reduced by the {why}"] += 1
        return points

    def _room(self, act: str, m: _Member, asked: int) -> int:
        """The points ``act`` may take: the balance, plus the act's recorded overdraft."""
        balance = max(m.account.balance, 0)
        if self.overdrafts is None:  # the rules in force: the ledger's own acts
            over = max(0, asked - balance)
            if over:
                self.out.overdrafts[act] = over
        else:
            over = self.overdrafts.get(act, 0)
        return balance + over

    @staticmethod
    def _state(member: str | None, at: datetime, pricing: Pricing, earned: int, redeemed: int,
               earn_lot: str | None, taken: dict[str, int] | None = None) -> SaleState:
        return SaleState(member, at, pricing.paid_fen, pricing.list_fen, earned, redeemed,
                         [(no, p.line.sku, p.line.qty, p.paid_fen, p.line.list_fen)
                          for no, p in enumerate(pricing.lines, 1)], earn_lot, [],
                         dict(taken or {}))

    def refund(self, event: RefundEvent) -> None:
        sale = self.sales.get(event.sale)
        if sale is None:
            self.out.skipped["refund of a sale not found"] += 1
            return
        qty_done: dict[int, int] = defaultdict(int)
        fen_done: dict[int, int] = defaultdict(int)
        for lines, _, _ in sale.refunds:
            for line_no, qty, fen in lines:
                qty_done[line_no] += qty
                fen_done[line_no] += fen
        sold = [refunds.SoldLine(no, sku, qty, paid, qty_done[no], fen_done[no])
                for no, sku, qty, paid, _ in sale.lines]
        skus = {no: sku for no, sku, _, _, _ in sale.lines}
        plan = refunds.plan_refund_lines(event.sale, sold,
                                         [(skus[no], qty) for no, qty in event.units])
        refunded_before = sum(fen_done.values())
        refunded_fen = sum(line.fen for line in plan)
        planned = {line.line_no: line.qty for line in plan}
        all_units = all(s.left == planned.get(s.line_no, 0) for s in sold)
        whole, part = sale.paid_fen, refunded_before + refunded_fen
        if whole == 0:  # paid wholly with points: the same formulas on list amounts
            parts = [[(no, qty) for no, qty, _ in lines] for lines, _, _ in sale.refunds]
            parts.append([(line.line_no, line.qty) for line in plan])
            whole = sale.list_fen
            part = refunds.list_refunded([(no, qty, lst) for no, _, qty, _, lst in sale.lines],
                                         parts)
        reverse = restore = 0
        if self.rules.refund.reverse_earned:
            reverse = refunds.proportional_so_far(sale.earned, whole, part, all_units) - sum(
                r for _, r, _ in sale.refunds)
        if self.rules.refund.restore_redeemed:
            restore = refunds.proportional_so_far(sale.redeemed, whole, part, all_units) - sum(
                r for _, _, r in sale.refunds)
        sale.refunds.append((tuple((line.line_no, line.qty, line.fen) for line in plan),
                             reverse, restore))
        if sale.member is None:
            return
        m = self.member(sale.member)
        moment = event.moment
        m.spend_back.append((moment.earn_time, refunded_fen, sale.sold_at))
        self.expire(sale.member, m, moment, event.store)
        if reverse:
            self.debit(m, ledger.REVERSE, reverse, first_from=sale.earn_entry)
            self.count(sale.member, event.store, "points_reversed", reverse)
        if restore:
            entry = m.account.restore(
                ledger.Entry(kind=ledger.RESTORE, points=restore),
                [(lot, room) for lot, room in sale.redeemed_from.items()
                 if room > 0 and lot in m.account.lots])
            for lot, given in entry.allocations:
                sale.redeemed_from[lot] -= given
            m.expiry_floor = None
            self.count(sale.member, event.store, "points_restored", restore)

    def exchange(self, event: ExchangeEvent) -> None:
        goods = self.rules.redeem.goods.get(event.sku)
        if goods is None:
            self.out.skipped["exchange of goods the rules do not offer"] += 1
            return
        m = self.member(event.member)
        moment = event.moment
        self.expire(event.member, m, moment, event.store)
        cost = goods.points * event.qty
        if self._room(f"exchange:{event.seq}", m, cost) < cost:
            self.out.skipped["exchange refused: more points than the balance"] += 1
            return
        self.debit(m, ledger.REDEEM, cost)
        self.day_redeemed[event.member, local_day(moment.earn_time, self.rules.zone)] += cost
        self.count(event.member, event.store, "points_redeemed", cost)

    def entry(self, event: EntryEvent) -> None:
        m = self.member(event.member)
        moment = event.moment
        self.expire(event.member, m, moment, event.store)
        if event.kind == ledger.BONUS:
            points = (self.rules.earn.bonus_referral if event.reason.startswith("referral:")
                      else self.rules.earn.bonus_registration)
            if points:
                self.credit(m, ledger.BONUS, points, moment, event.seq)
                self.count(event.member, event.store, "points_issued", points)
            return
        if event.points > 0:
            self.credit(m, ledger.ADJUST, event.points, moment, event.seq)
        elif event.points < 0:
            self.debit(m, ledger.ADJUST, -event.points)
        self.count(event.member, event.store, "points_adjusted", event.points)

    def close(self) -> None:
        """Lots expired by the window's end, each member's balance and tier then."""
        end = Moment(self.history.until, True)
        for member_id in sorted(set(self.history.birthdays) | set(self.members)):
            m = self.member(member_id)
            home = self.history.homes.get(member_id, "HQ")
            self.expire(member_id, m, end, home)
            balance = m.account.balance
            self.out.tier_end[member_id] = self.tier_at(m, self.history.until)
            self.out.members[member_id].liability_end = balance
            self.out.chain.liability_end += balance
            self.out.stores[home].liability_end += balance
