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
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from peewee import JOIN, fn

from terminal.daemon.sim.demo import demo_rules
from terminal.hq.bundles import read_toml
from terminal.hq.database import open_hq_database, snapshot
from terminal.hq.entry_stores import EntryStores
from terminal.hq.models import HQ_MODELS, MemberHome
from terminal.loyalty.calendar import add_months, local_day
from terminal.loyalty.clock import from_micros, to_micros
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import MODELS, Member, Refund, RefundLine, Sale, SaleLine

TOP = 10
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


@dataclass(frozen=True)
class SaleRow:
    id: str
    seq: int
    member: str
    at_us: int
    paid_fen: int
    refunded_fen: int
    whole: bool  # wholly refunded


@dataclass
class _Buyer:
    days: set[date] = field(default_factory=set)
    fen: int = 0


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


def _sales(end_us: int) -> list[SaleRow]:
    """Every member sale before ``end_us``, with what was refunded of it (run bound)."""
    sold = (SaleLine.select(SaleLine.sale.alias("sale_id"), fn.SUM(SaleLine.qty).alias("qty"))
            .group_by(SaleLine.sale))
    back = (RefundLine.select(Refund.sale.alias("sale_id"), fn.SUM(RefundLine.qty).alias("qty"),
                              fn.SUM(RefundLine.fen).alias("fen"))
            .join(Refund).group_by(Refund.sale))
    query = (Sale.select(Sale.id, Sale.seq, Sale.member, Sale.wall_us, Sale.paid_fen,
                         fn.COALESCE(sold.c.qty, 0), fn.COALESCE(back.c.qty, 0),
                         fn.COALESCE(back.c.fen, 0))
             .join_from(Sale, sold, JOIN.LEFT_OUTER, on=(sold.c.sale_id == Sale.id))
             .join_from(Sale, back, JOIN.LEFT_OUTER, on=(back.c.sale_id == Sale.id))
             .where(Sale.member.is_null(False) & (Sale.wall_us < end_us))
             .order_by(Sale.seq).tuples())
    return [SaleRow(sale_id, int(seq), member, int(at), int(paid), int(fen),
                    int(qty_back) > 0 and int(qty_back) >= int(qty))
            for sale_id, seq, member, at, paid, qty, qty_back, fen in query]


def _products(period: Period, counted: set[str]) -> tuple[list, list]:
    """The top products and categories among the period's ``counted`` sales (their ids), by
    paid fen less refunds."""
    back = (RefundLine.select(Refund.sale.alias("sale_id"), RefundLine.line_no,
                              fn.SUM(RefundLine.qty).alias("qty"),
                              fn.SUM(RefundLine.fen).alias("fen"))
            .join(Refund).group_by(Refund.sale, RefundLine.line_no))
    query = (SaleLine.select(SaleLine.sale, SaleLine.sku, SaleLine.name, SaleLine.category,
                             SaleLine.qty - fn.COALESCE(back.c.qty, 0),
                             SaleLine.paid_fen - fn.COALESCE(back.c.fen, 0))
             .join_from(SaleLine, Sale)
             .join_from(SaleLine, back, JOIN.LEFT_OUTER,
                        on=((back.c.sale_id == SaleLine.sale)
                            & (back.c.line_no == SaleLine.line_no)))
             .where(Sale.member.is_null(False) & (Sale.wall_us >= period.start_us)
                    & (Sale.wall_us < period.end_us)))
    products: dict[str, list[Any]] = {}
    categories: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for sale_id, sku, name, category, qty, fen in query.tuples():
        if sale_id not in counted:
            continue
        row = products.setdefault(sku, [name, 0, 0])
        row[0] = min(row[0], name) if row[0] else name  # one name, whatever the row order
        row[1] += int(qty)
        row[2] += int(fen)
        categories[category][0] += int(qty)
        categories[category][1] += int(fen)
    top_products = sorted(products.items(), key=lambda item: (-item[1][2], item[0]))[:TOP]
    top_categories = sorted(categories.items(), key=lambda item: (-item[1][1], item[0]))[:TOP]
    return ([{"sku": sku, "name": name, "qty": qty, "paid_fen": fen}
             for sku, (name, qty, fen) in top_products],
            [{"category": category, "qty": qty, "paid_fen": fen}
             for category, (qty, fen) in top_categories])


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def members_of(store: str | None) -> list[tuple[str, str, int]]:
    """(id, tier, registered_us) of the members counted: all, or those at home in ``store``."""
    query = Member.select(Member.id, Member.tier, Member.registered_us)
    if store is not None:
        query = (query.join(MemberHome, on=(MemberHome.member == Member.id))
                 .where(MemberHome.store == store))
    return [(member_id, tier, int(at)) for member_id, tier, at in query.order_by(Member.id)
            .tuples()]


def near_next_tier(rules: Rules, period: Period, members: list[tuple[str, str, int]],
                   sales: Iterable[SaleRow]) -> list[tuple[str, str, int]]:
    """(member, next tier, qualifying spend) of the members within 10% of the next tier's
    spend (the rules' window ending at ``to``, chain-wide)."""
    window_us = to_micros(add_months(datetime.combine(period.end, time(), period.zone),
                                     -rules.tier_window_months))
    spend: Counter[str] = Counter()
    for sale in sales:
        if sale.at_us > window_us:
            spend[sale.member] += sale.paid_fen - sale.refunded_fen
    names = [level.name for level in rules.tiers]
    near = []
    for member_id, tier, _ in members:
        index = names.index(tier) if tier in names else 0
        if index + 1 == len(names):
            continue
        following = rules.tiers[index + 1]
        bound = following.qualify_spend_fen
        if spend[member_id] < bound and spend[member_id] * NEAR_TIER[1] >= bound * NEAR_TIER[0]:
            near.append((member_id, following.name, spend[member_id]))
    return near


def _tiers(rules: Rules, period: Period, members: list[tuple[str, str, int]],
           sales: Iterable[SaleRow]) -> tuple[dict[str, int], dict[str, int]]:
    """Members per tier, and per next tier the members within 10% of its qualifying spend."""
    counts = Counter(tier for _, tier, _ in members)
    tiers = {level.name: counts.pop(level.name, 0) for level in rules.tiers}
    tiers.update(sorted(counts.items()))  # tiers the rules no longer have
    near = Counter(following for _, following, _ in near_next_tier(rules, period, members, sales))
    return tiers, {level.name: near[level.name] for level in rules.tiers[1:]}


def store_sales(period: Period, store: str | None) -> tuple[list[SaleRow], list[SaleRow]]:
    """Every member sale before ``to`` chain-wide, and the counted ones (not wholly refunded)
    of ``store`` (None: all), in the ledger's order."""
    everywhere = _sales(period.end_us)
    sales = everywhere
    if store is not None:
        stores = EntryStores()  # the store whose event wrote each sale
        sales = [sale for sale in everywhere if stores.of(sale.seq) == store]
    return everywhere, [sale for sale in sales if not sale.whole]


def last_sales(counted: Iterable[SaleRow]) -> dict[str, int]:
    """Each member's last counted sale (wall micros)."""
    last_us: dict[str, int] = {}
    for sale in counted:
        last_us[sale.member] = max(last_us.get(sale.member, sale.at_us), sale.at_us)
    return last_us


def analytics(rules: Rules, period: Period, store: str | None = None, dormant_days: int = 90,
              thresholds: Thresholds = Thresholds()) -> dict[str, Any]:
    """The analytics of the period (run with the models bound to HQ's database)."""
    everywhere, counted = store_sales(period, store)
    first_us: dict[str, int] = {}
    last_us = last_sales(counted)
    buyers: dict[str, _Buyer] = defaultdict(_Buyer)
    for sale in counted:  # in the ledger's order, not necessarily by time
        first_us[sale.member] = min(first_us.get(sale.member, sale.at_us), sale.at_us)
        if sale.at_us >= period.start_us:
            buyer = buyers[sale.member]
            buyer.days.add(period.day(sale.at_us))
            buyer.fen += sale.paid_fen - sale.refunded_fen
    repeat = sum(1 for buyer in buyers.values() if len(buyer.days) >= 2)
    dormant = sum(1 for at in last_us.values()
                  if (period.end - period.day(at)).days >= dormant_days)
    segments = Counter(thresholds.score((period.end - max(buyer.days)).days, len(buyer.days),
                                        buyer.fen) for buyer in buyers.values())
    members = members_of(store)
    tiers, near = _tiers(rules, period, members, everywhere)
    top_products, top_categories = _products(
        period, {sale.id for sale in counted if sale.at_us >= period.start_us})
    return {
        "from": period.start.isoformat(), "to": period.end.isoformat(), "store": store,
        "zone": period.zone.key, "dormant_days": dormant_days,
        "purchasers": len(buyers), "repeat_purchasers": repeat,
        "repeat_rate": _rate(repeat, len(buyers)),
        "new_members": sum(1 for _, _, at in members
                           if period.start_us <= at < period.end_us),
        "new_purchasers": sum(1 for member in buyers if first_us[member] >= period.start_us),
        "dormant": dormant, "churn_rate": _rate(dormant, len(last_us)),
        "rfm": {"thresholds": {"recency_days": list(thresholds.recency_days),
                               "frequency_days": list(thresholds.frequency_days),
                               "monetary_fen": list(thresholds.monetary_fen)},
                "segments": dict(sorted(segments.items()))},
        "top_products": top_products, "top_categories": top_categories,
        "tiers": tiers, "near_next_tier": sum(near.values()), "near_next_tier_by_tier": near,
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
    try:
        # One snapshot: the sales, refunds and members read agree while collectors write.
        with db.bind_ctx(MODELS + HQ_MODELS), snapshot(db):
            data = analytics(rules, period, args.store, args.dormant_days, thresholds)
    finally:
        db.close()
    if args.json:
        print(json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2))
        return 0
    print(f"{data['from']} .. {data['to']} ({data['zone']}), 门店 store "
          f"{data['store'] or '全部 all'}")
    for key, label in LABELS.items():
        print(f"  {label:<24} {data[key]}")
    print("  等级 tiers: " + ", ".join(f"{name} {count}" for name, count in data["tiers"].items()))
    return 0
