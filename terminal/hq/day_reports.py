"""The terminals' X and Z reports at HQ, and `posterm-hq report z`.

A till prints an X report (a reading, any number a day) or a Z report (closes its day, once) and
sends it to HQ as a ``day_report`` event in the same transaction (loyalty/store/eod.py). The
collector records it in ``hq_day_report`` as printed: the till's own figures. HQ trusts no till:
a second Z for one terminal's day, or a report id already collected, is refused; and the day's
figures put beside each terminal's report what HQ itself applied of that terminal's sales that
day (``hq_sales``), so a report that disagrees shows.

    posterm-hq report z --db URL --from 2026-11-01 --to 2026-12-01 [--store S001] [--json]

A terminal's figures for a day are those of its Z report, or while the day is open its latest X
(``closed`` says which); the chain's day sums them: sales, paid, the points redeemed and their
value in fen (``deduction_fen``: what points paid), refunds, points issued.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from terminal.daemon.sim.demo import demo_rules
from terminal.hq.analytics import Period, parse_period, period_arguments
from terminal.hq.bundles import read_toml
from terminal.hq.database import open_hq_database
from terminal.hq.db import print_json, read_once
from terminal.hq.models import AppliedEvent, DayReport
from terminal.loyalty.clock import Moment, to_micros
from terminal.loyalty.errors import Refused
from terminal.loyalty.rules import Rules

FIGURES = ("sales_count", "paid_fen", "deduction_fen", "points_redeemed", "points_issued",
           "refunds_count", "refunded_fen")


def record(store: str, terminal: str, body: dict[str, Any], moment: Moment) -> str:
    """Record a validated ``day_report`` event's report (run in the collector's transaction)."""
    if DayReport.get_or_none(DayReport.id == body["report"]) is not None:
        raise Refused(f"report {body['report']} was collected already", "day_report.repeat")
    if body["kind"] == "Z" and DayReport.select().where(
            (DayReport.store == store) & (DayReport.terminal == terminal)
            & (DayReport.day == body["day"]) & (DayReport.kind == "Z")).exists():
        raise Refused(f"{store}/{terminal} sent a second Z report for {body['day']}",
                      "day_report.second_z")
    sales, refunds, points = body["sales"], body["refunds"], body["points"]
    DayReport.insert(
        id=body["report"], store=store, terminal=terminal, kind=body["kind"], day=body["day"],
        wall_us=to_micros(moment.at), operator=body.get("operator") or "",
        sales_count=sales["count"], paid_fen=sales["paid_fen"],
        deduction_fen=sales["deduction_fen"], refunds_count=refunds["count"],
        refunded_fen=refunds["refunded_fen"], points_issued=points["issued"],
        points_redeemed=points["redeemed"],
        body=json.dumps(body, ensure_ascii=False, sort_keys=True)).execute()
    return f"{body['kind']} report for {body['day']} collected"


def _day_bounds(day: str, zone: ZoneInfo) -> tuple[int, int]:
    start = datetime.combine(date.fromisoformat(day), time(), zone)
    return to_micros(start), to_micros(start + timedelta(days=1))


def _hq_sales(store: str, terminal: str, day: str, zone: ZoneInfo) -> int:
    """The sales HQ applied from that terminal on that day (by the till's clock, as reckoned)."""
    lo, hi = _day_bounds(day, zone)
    return AppliedEvent.select().where(
        (AppliedEvent.store == store) & (AppliedEvent.terminal == terminal)
        & (AppliedEvent.kind == "sale") & (AppliedEvent.outcome != "refused")
        & (AppliedEvent.wall_us >= lo) & (AppliedEvent.wall_us < hi)).count()


def day_reports(period: Period, store: str | None = None) -> dict[str, Any]:
    """Each terminal's figures per day of the period and the day's sums (models bound)."""
    query = (DayReport.select().where((DayReport.day >= period.start.isoformat())
                                      & (DayReport.day < period.end.isoformat()))
             .order_by(DayReport.day, DayReport.store, DayReport.terminal, DayReport.wall_us))
    if store is not None:
        query = query.where(DayReport.store == store)
    latest: dict[tuple[str, str, str], DayReport] = {}
    printed: dict[tuple[str, str, str], int] = defaultdict(int)
    for report in query:
        key = (report.day, report.store, report.terminal)
        printed[key] += 1
        held = latest.get(key)
        if held is None or held.kind != "Z":  # a Z closes the day; until then the latest X
            latest[key] = report
    days: dict[str, dict[str, Any]] = {}
    for (day, shop, terminal), report in sorted(latest.items()):
        entry = days.setdefault(day, {"day": day, "terminals": [],
                                      "totals": dict.fromkeys(FIGURES, 0)})
        figures = {name: int(getattr(report, name)) for name in FIGURES}
        entry["terminals"].append({
            "store": shop, "terminal": terminal, "closed": report.kind == "Z",
            "reports": printed[day, shop, terminal], "operator": report.operator, **figures,
            "hq_sales": _hq_sales(shop, terminal, day, period.zone)})
        for name in FIGURES:
            entry["totals"][name] += figures[name]
    return {"from": period.start.isoformat(), "to": period.end.isoformat(), "store": store,
            "zone": period.zone.key, "days": list(days.values())}


def configure(views: Any) -> None:
    parser = views.add_parser("z", help="日结 the terminals' X/Z reports collected at HQ")
    period_arguments(parser, "only this store's terminals")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    try:
        rules = Rules.from_mapping(read_toml(args.rules or demo_rules()))
        period = parse_period(args.start, args.end, rules.zone)
        db = open_hq_database(args.db, migrate=False)
    except (ValueError, OSError) as exc:
        print(f"posterm-hq report z: {exc}", file=sys.stderr)
        return 2
    data = read_once(db, lambda: day_reports(period, args.store))
    if args.json:
        print_json(data)
        return 0
    print(f"日结 X/Z {data['from']} .. {data['to']} ({data['zone']}): 笔数 sales, 实收 paid fen, "
          "积分抵扣 deduction fen, 兑换积分 redeemed points")
    for day in data["days"]:
        for row in day["terminals"]:
            state = "Z" if row["closed"] else "X"
            print(f"  {day['day']} {row['store']}/{row['terminal']} {state}: "
                  f"{row['sales_count']} / {row['paid_fen']} / {row['deduction_fen']} / "
                  f"{row['points_redeemed']} (总部 HQ {row['hq_sales']} sales)")
        totals = day["totals"]
        print(f"  {day['day']} 合计 total: {totals['sales_count']} / {totals['paid_fen']} / "
              f"{totals['deduction_fen']} / {totals['points_redeemed']}")
    return 0
