"""`posterm-hq report analytics`: what the chain learns about its members over a period.

    posterm-hq report analytics --db URL --from 2026-10-01 --to 2026-11-01 [--store S001]
        [--rules rules.toml] [--dormant-days 90] [--recency-days 7,30,90,180]
        [--frequency-days 2,3,5,8] [--monetary-fen 10000,30000,100000,300000] [--json]

Definitions (issue 13), over member sales in [from, to), days counted in the programme's zone:

- a sale counts for its member unless it was wholly refunded (every unit brought back, by
  refunds or a void, whenever recorded); a partly refunded sale counts for what was kept;
- ``purchasers``: members with a counted sale in the period; ``repeat_purchasers``: those with
  counted sales on two days or more; ``repeat_rate`` = repeat / purchasers (4 decimals, 0 for none);
- ``new_members``: members registered in the period; ``new_purchasers``: purchasers whose first
  counted sale ever is in the period;
- ``dormant``: members with a counted sale before ``to`` whose last one is ``--dormant-days`` days
  or more before ``to``; ``churn_rate`` = dormant / members with a counted sale before ``to``;
- ``rfm``: each purchaser's recency (days from the day of its last sale to ``to``), frequency
  (days with a sale) and monetary value (paid fen less refunds) scored 1-5 by the thresholds, and
  the number of purchasers per segment ``R<r>F<f>M<m>``;
- ``top_products`` / ``top_categories``: the ten with the most paid fen (less refunds) among the
  period's counted member sales, with their quantities (less units brought back);
- ``tiers``: members per tier; ``near_next_tier``: members whose qualifying spend (the rules'
  window ending at ``to``, chain-wide) is at least 90% of the next tier's and below it.

With ``--store``, sales are those rung up at that store (applied_event's span of the chain
ledger's sequence names it) and members (new, tiers, near the next tier) those whose home it is.

The database computes them (:mod:`terminal.hq.analytics_sql`): one pass over the counted sales
grouped by member and then by RFM segment (the period's sales only), members with a sale before
``to`` and since the dormancy cut, the top products and categories, the members near the next
tier, counts for the rest; no sale is carried into Python
(``bench/bench_analytics.py`` times them at a million members).
"""

from __future__ import annotations

import argparse
import bisect
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from peewee import SQL, fn

from terminal.daemon.sim.demo import demo_rules
from terminal.hq import analytics_sql, rollup
from terminal.hq.bundles import read_toml
from terminal.hq.database import open_hq_database
from terminal.hq.db import print_json, read_once
from terminal.hq.models import MemberHome
from terminal.loyalty.calendar import add_months, local_day
from terminal.loyalty.clock import from_micros, to_micros
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import Member, Sale

TOP = 10
EPOCH_DAY = date(1970, 1, 1)
NEAR_TIER = (9, 10)  # within 10% of the next tier: spend * 10 >= threshold * 9
# The figures the text output shows, zh-CN first.
LABELS = {"purchasers": "购买会员 purchasers", "repeat_purchasers": "回购会员 repeat",
          "repeat_rate": "回购率 repeat rate", "new_members": "新会员 new members",
          "new_purchasers": "首购会员 new purchasers", "dormant": "沉睡会员 dormant",
          "churn_rate": "流失率 churn rate", "near_next_tier": "临近升级 near next tier"}


@dataclass(frozen=True)
class Thresholds:
    """Four ascending bounds per RFM dimension. Recency scores 5 at or under the first bound
    down to 1 above the last; frequency and monetary score 1 under the first up to 5 at or above
    the last."""

    recency_days: tuple[int, ...] = (7, 30, 90, 180)
    frequency_days: tuple[int, ...] = (2, 3, 5, 8)
    monetary_fen: tuple[int, ...] = (10_000, 30_000, 100_000, 300_000)

    def score(self, recency: int, frequency: int, monetary: int) -> str:
        r = 5 - bisect.bisect_left(self.recency_days, recency)
        f = 1 + bisect.bisect_right(self.frequency_days, frequency)
        m = 1 + bisect.bisect_right(self.monetary_fen, monetary)
        return f"R{r}F{f}M{m}"


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # exclusive
    zone: ZoneInfo

    @property
    def start_us(self) -> int:
        return to_micros(datetime.combine(self.start, time(), self.zone))

    @property
    def end_us(self) -> int:
        return to_micros(datetime.combine(self.end, time(), self.zone))

    def day(self, us: int) -> date:
        return local_day(from_micros(us), self.zone)

    @property
    def month_days(self) -> list[tuple[int, int]]:
        """The calendar months the period overlaps, each as the roll-ups' day numbers of its
        first day and of the day after its last."""
        months = []
        first = self.start.replace(day=1)
        while first < self.end:
            following = (first + timedelta(days=32)).replace(day=1)
            months.append((day_number(first), day_number(following)))
            first = following
        return months

    @property
    def start_day(self) -> int:
        """The first day as the roll-ups number days (local days since 1970-01-01)."""
        return day_number(self.start)

    @property
    def end_day(self) -> int:
        return day_number(self.end)


def day_number(day: date) -> int:
    return (day - EPOCH_DAY).days


def parse_thresholds(text: str, what: str) -> tuple[int, ...]:
    try:
        bounds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{what} {text!r}: four whole numbers separated by commas") from None
    if len(bounds) != 4 or bounds[0] < 0 or any(a >= b for a, b in pairwise(bounds)):
        raise ValueError(f"{what} {text!r}: four rising numbers, none negative")
    return bounds


def parse_period(start: str, end: str, zone: ZoneInfo) -> Period:
    try:
        first, until = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        raise ValueError(f"--from/--to: a date YYYY-MM-DD ({exc})") from None
    if first >= until:
        raise ValueError(f"--from {start} must be before --to {end} (to is exclusive)")
    return Period(first, until, zone)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _members(store: str | None) -> Any:
    """The members counted: all, or those at home in ``store`` (a query)."""
    query = Member.select()
    if store is not None:
        query = (query.join(MemberHome, on=(MemberHome.member == Member.id))
                 .where(MemberHome.store == store))
    return query


def tiers(rules: Rules, store: str | None) -> dict[str, int]:
    """Members per tier: the rules' tiers in order, then any they no longer have."""
    # COUNT(*): counted from the index on tier alone (HQ migration 21), not every member's row.
    counts = dict(_members(store).select(Member.tier, fn.COUNT(SQL("*")))
                  .group_by(Member.tier).tuples())
    found = {level.name: int(counts.pop(level.name, 0)) for level in rules.tiers}
    found.update(sorted((tier, int(count)) for tier, count in counts.items()))
    return found


def near_tier(rules: Rules, period: Period, store: str | None, rolled: bool = True
              ) -> list[tuple[str, str, int]]:
    """(member, next tier, qualifying spend) of the members within 10% of the next tier's
    spend (the rules' window ending at ``to``, chain-wide), by member id: from the roll-ups
    (caught up by the caller), or with ``rolled=False`` from the ledger itself."""
    return [(member, following, int(fen))
            for member, following, fen in _near_tier(rules, period, store, rolled)]


def near_tier_counts(rules: Rules, period: Period, store: str | None, rolled: bool = True
                     ) -> dict[str, int]:
    """How many of :func:`near_tier`'s members each next tier has (every tier above the
    lowest, 0 when none)."""
    found = dict(_near_tier(rules, period, store, rolled, count=True))
    return {level.name: int(found.get(level.name, 0)) for level in rules.tiers[1:]}


def _near_tier(rules: Rules, period: Period, store: str | None, rolled: bool,
               count: bool = False) -> list[tuple[Any, ...]]:
    since = add_months(datetime.combine(period.end, time(), period.zone),
                       -rules.tier_window_months)
    db = Sale._meta.database
    days = None
    if rolled:
        today = rollup.stored_window(db)
        kept = []
        if today is not None and today.months == rules.tier_window_months:
            kept = [analytics_sql.Kept(today.since, today.end, False),
                    *(analytics_sql.Kept(month.since, month.end, True)
                      for month in rollup.month_windows(today))]
        wanted = (day_number(since.date()), period.end_day)
        # A ``to`` whose window is kept (today's, a month start's) reads its one row a member;
        # any other, the members' runs (HQ migration 28) rather than a kept window moved.
        if rollup.spans_kept(db) == rules.tier_window_months and not any(
                (window.since, window.end) == wanted for window in kept):
            kept = [analytics_sql.Kept(*wanted, False, True)]
        days = (*wanted, kept)
    return analytics_sql.near_tier(
        db, to_micros(since), period.end_us, store,
        [(level.name, level.qualify_spend_fen) for level in rules.tiers], NEAR_TIER, days,
        count)


def dormancy_cut(period: Period, dormant_days: int) -> int:
    """The start of the day ``dormant_days - 1`` before ``to``: a member with a counted sale
    before ``to`` and none from then on is dormant."""
    return to_micros(datetime.combine(period.end - timedelta(days=dormant_days - 1), time(),
                                      period.zone))


def dormant_members(period: Period, store: str | None, dormant_days: int,
                    rolled: bool = True, limit: int | None = None,
                    after: tuple[int, str] | None = None) -> list[tuple[str, int]]:
    """(member, last counted sale µs) of the dormant members, longest gone first: from the
    roll-ups (caught up by the caller), a page of ``limit`` after the (µs, member) ``after``
    when given, or with ``rolled=False`` from the ledger itself (the whole list)."""
    db = Sale._meta.database
    if rolled:
        found = analytics_sql.rolled_dormant(db, store, dormancy_cut(period, dormant_days),
                                             period.end_day, limit, after)
    else:
        found = analytics_sql.dormant(db, period.end_us, dormancy_cut(period, dormant_days),
                                      store)
    return [(member, int(at)) for member, at in found]


def dormant_count(period: Period, store: str | None, dormant_days: int) -> int:
    """How many members :func:`dormant_members` lists (from the roll-ups, caught up)."""
    return analytics_sql.rolled_dormancy(
        Sale._meta.database, store, period.end_day - (dormant_days - 1),
        dormancy_cut(period, dormant_days), period.end_day)[1]


@dataclass(frozen=True)
class Buyers:
    """The member figures of a period: purchasers (repeat, new), RFM segments, dormancy."""

    purchasers: int
    repeat: int
    new: int
    segments: dict[str, int]
    with_sale: int  # members with a counted sale before ``to``
    dormant: int


def buyers(period: Period, store: str | None = None, dormant_days: int = 90,
           thresholds: Thresholds = Thresholds(), rolled: bool = True) -> Buyers:
    """The period's member figures (models bound): what the dashboard's months read too. From
    the roll-ups (caught up by the caller: terminal.hq.rollup), or with ``rolled=False`` from the
    ledger itself (the reference the roll-ups are tested against)."""
    if rolled:
        return _rolled_buyers(period, store, dormant_days, thresholds)
    db = Sale._meta.database
    purchasers = repeat = new_purchasers = 0
    segments: dict[str, int] = {}
    for r, f, m, buying, repeating, new in analytics_sql.segments(
            db, period.zone, period.start_us, period.end_us, store,
            (thresholds.recency_days, thresholds.frequency_days, thresholds.monetary_fen)):
        purchasers += int(buying)
        repeat += int(repeating)
        new_purchasers += int(new)
        segments[f"R{r}F{f}M{m}"] = int(buying)
    # Dormant: a counted sale before ``to``, none from the day dormant_days - 1 before it on.
    with_sale = analytics_sql.with_sales(db, period.end_us, store)
    dormant = with_sale - analytics_sql.with_sales(db, period.end_us, store,
                                                   dormancy_cut(period, dormant_days))
    return Buyers(purchasers, repeat, new_purchasers, dict(sorted(segments.items())), with_sale,
                  dormant)


def _rolled_buyers(period: Period, store: str | None, dormant_days: int,
                   thresholds: Thresholds) -> Buyers:
    db = Sale._meta.database
    purchasers = repeat = 0
    segments: dict[str, int] = {}
    for r, f, m, buying, repeating in analytics_sql.rolled_segments(
            db, period.start_day, period.end_day, store,
            (thresholds.recency_days, thresholds.frequency_days, thresholds.monetary_fen),
            period.month_days, period.start_us):
        purchasers += int(buying)
        repeat += int(repeating)
        segments[f"R{r}F{f}M{m}"] = int(buying)
    # A member whose first counted sale ever is in the period is one of its purchasers.
    new = analytics_sql.rolled_first_between(db, store, period.start_day, period.end_day)
    kept = rollup.stored_window(db)
    with_sale, dormant = analytics_sql.rolled_dormancy(
        db, store, period.end_day - (dormant_days - 1), dormancy_cut(period, dormant_days),
        period.end_day, kept.end if kept is not None else None)
    return Buyers(purchasers, repeat, new, dict(sorted(segments.items())), with_sale, dormant)


def rates(period: Period, store: str | None = None, dormant_days: int = 90) -> dict[str, float]:
    """The period's repeat and churn rates alone (models bound)."""
    found = buyers(period, store, dormant_days)
    return {"repeat_rate": _rate(found.repeat, found.purchasers),
            "churn_rate": _rate(found.dormant, found.with_sale)}


def analytics(rules: Rules, period: Period, store: str | None = None, dormant_days: int = 90,
              thresholds: Thresholds = Thresholds(), rolled: bool = True) -> dict[str, Any]:
    """The analytics of the period (run with the models bound to HQ's database): a few
    aggregate queries of the roll-ups (caught up by the caller: terminal.hq.rollup), or with
    ``rolled=False`` of the ledger itself (:mod:`terminal.hq.analytics_sql`); nothing per sale
    in Python."""
    db = Sale._meta.database
    found = buyers(period, store, dormant_days, thresholds, rolled)
    near = near_tier_counts(rules, period, store, rolled)

    def top(by: str) -> list[tuple[Any, ...]]:
        if rolled:
            return analytics_sql.rolled_top_sold(db, period.start_day, period.end_day, store,
                                                  by, TOP)
        return analytics_sql.top_sold(db, period.start_us, period.end_us, store, by, TOP)

    top_products = [{"sku": sku, "name": name, "qty": int(qty), "paid_fen": int(fen)}
                    for sku, name, qty, fen in top("sku")]
    top_categories = [{"category": category, "qty": int(qty), "paid_fen": int(fen)}
                      for category, qty, fen in top("category")]
    return {
        "from": period.start.isoformat(), "to": period.end.isoformat(), "store": store,
        "zone": period.zone.key, "dormant_days": dormant_days,
        "purchasers": found.purchasers, "repeat_purchasers": found.repeat,
        "repeat_rate": _rate(found.repeat, found.purchasers),
        "new_members": _members(store).where((Member.registered_us >= period.start_us)
                                             & (Member.registered_us < period.end_us)).count(),
        "new_purchasers": found.new,
        "dormant": found.dormant, "churn_rate": _rate(found.dormant, found.with_sale),
        "rfm": {"thresholds": {"recency_days": list(thresholds.recency_days),
                               "frequency_days": list(thresholds.frequency_days),
                               "monetary_fen": list(thresholds.monetary_fen)},
                "segments": found.segments},
        "top_products": top_products, "top_categories": top_categories,
        "tiers": tiers(rules, store), "near_next_tier": sum(near.values()),
        "near_next_tier_by_tier": near,
    }


def period_arguments(parser: argparse.ArgumentParser, store_help: str) -> None:
    """--db, --from, --to, --store and --rules: a report over a period of HQ's database."""
    parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="end", required=True, help="day after the last, YYYY-MM-DD")
    parser.add_argument("--store", help=store_help)
    parser.add_argument("--rules", type=Path, default=None,
                        help="the chain's rules TOML (default: the example rules)")


def configure(parser: argparse.ArgumentParser) -> None:
    defaults = Thresholds()
    period_arguments(parser, "only this store's sales and home members")
    parser.add_argument("--dormant-days", type=int, default=90)
    for name, bounds in (("recency-days", defaults.recency_days),
                         ("frequency-days", defaults.frequency_days),
                         ("monetary-fen", defaults.monetary_fen)):
        parser.add_argument(f"--{name}", default=",".join(map(str, bounds)),
                            help="RFM score bounds, four rising numbers")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    try:
        rules = Rules.from_mapping(read_toml(args.rules or demo_rules()))
        period = parse_period(args.start, args.end, rules.zone)
        if args.dormant_days < 1:
            raise ValueError(f"--dormant-days {args.dormant_days}: at least 1")
        thresholds = Thresholds(parse_thresholds(args.recency_days, "--recency-days"),
                                parse_thresholds(args.frequency_days, "--frequency-days"),
                                parse_thresholds(args.monetary_fen, "--monetary-fen"))
        db = open_hq_database(args.db, migrate=False)
    except (ValueError, OSError) as exc:  # RulesError and BuildError are ValueErrors
        print(f"posterm-hq report analytics: {exc}", file=sys.stderr)
        return 2
    data = read_once(db, lambda: analytics(rules, period, args.store, args.dormant_days,
                                           thresholds), rules.zone, rules.tier_window_months)
    if args.json:
        print_json(data)
        return 0
    print(f"{data['from']} .. {data['to']} ({data['zone']}), 门店 store "
          f"{data['store'] or '全部 all'}")
    for key, label in LABELS.items():
        print(f"  {label:<24} {data[key]}")
    print("  等级 tiers: " + ", ".join(f"{name} {count}" for name, count in data["tiers"].items()))
    return 0
