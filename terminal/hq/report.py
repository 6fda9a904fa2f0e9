"""`posterm-hq report --db URL`: points liability and activity per store and chain-wide.

`posterm-hq report analytics ...`: a period's member analytics (:mod:`terminal.hq.analytics`).
`posterm-hq report points | expiring | settlement ...`: points flow and liability per period,
points expiring, inter-store settlement (:mod:`terminal.hq.points_reports`).
`posterm-hq report z ...`: the terminals' X/Z reports collected at HQ
(:mod:`terminal.hq.day_reports`).

Per store: events applied by kind, points the store's events added and took, events refused
for review. Chain-wide: members, the outstanding liability (the sum of balances), overdrafts
(debt from offline redemptions beyond the chain balance) and pending holds.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from typing import Any

from peewee import fn

from terminal.hq import analytics, day_reports, points_reports
from terminal.hq.db import open_or_say, read_once
from terminal.hq.models import AppliedEvent, MemberHold
from terminal.loyalty.store.models import LedgerEntry, Member


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLite path or postgresql:// URL")
    parser.add_argument("--json", action="store_true")
    views = parser.add_subparsers(dest="view", metavar="VIEW")
    analytics.configure(views.add_parser(
        "analytics", help="members: purchasers, repeat, churn, RFM, top products, tiers"))
    points_reports.configure(views)
    day_reports.configure(views)


def report() -> dict[str, Any]:
    """Run with the models bound."""
    stores: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "events": {}, "points_in": 0, "points_out": 0, "refused": 0, "flagged": 0})
    query = (AppliedEvent.select(AppliedEvent.store, AppliedEvent.kind, AppliedEvent.outcome,
                                 fn.COUNT(AppliedEvent.id), fn.SUM(AppliedEvent.points_in),
                                 fn.SUM(AppliedEvent.points_out))
             .group_by(AppliedEvent.store, AppliedEvent.kind, AppliedEvent.outcome).tuples())
    for store, kind, outcome, count, points_in, points_out in query:
        row = stores[store]
        if outcome == "refused":
            row["refused"] += count
            continue
        if outcome == "flagged":  # applied, with a difference noted for review
            row["flagged"] += count
        row["events"][kind] = row["events"].get(kind, 0) + count
        row["points_in"] += int(points_in or 0)
        row["points_out"] += int(points_out or 0)
    for row in stores.values():
        row["net_points"] = row["points_in"] - row["points_out"]
    overdrafts = (LedgerEntry.select(fn.COUNT(LedgerEntry.id), fn.COALESCE(fn.SUM(
        LedgerEntry.points), 0)).where((LedgerEntry.kind == "adjust")
                                      & LedgerEntry.reason.startswith("overdraft")).tuples().get())
    return {
        "stores": dict(sorted(stores.items())),
        "chain": {
            "members": Member.select().count(),
            "liability_points": int(Member.select(fn.COALESCE(fn.SUM(Member.balance), 0))
                                    .where(Member.balance > 0).scalar()),
            "debt_points": int(Member.select(fn.COALESCE(fn.SUM(Member.debt), 0)).scalar()),
            "overdraft_entries": overdrafts[0],
            "overdraft_points": -int(overdrafts[1]),
            "pending_holds": MemberHold.select().where(MemberHold.state == "pending").count(),
        },
    }


def run(args: argparse.Namespace) -> int:
    if args.view == "analytics":
        return analytics.run(args)
    if args.view in points_reports.TEXT:
        return points_reports.run(args)
    if args.view == "z":
        return day_reports.run(args)
    if args.db is None:
        print("posterm-hq report: --db is required", file=sys.stderr)
        return 2
    db = open_or_say(args.db, "report")
    if db is None:  # a schema of another version, not UTF8
        return 1
    data = read_once(db, report)
    if args.json:
        print(json.dumps(data, sort_keys=True, indent=2))
        return 0
    print(f"{'store':<12} {'events':>7} {'refused':>7} {'points in':>10} {'points out':>10} "
          f"{'net':>10}")
    for store, row in data["stores"].items():
        print(f"{store:<12} {sum(row['events'].values()):>7} {row['refused']:>7} "
              f"{row['points_in']:>10} {row['points_out']:>10} {row['net_points']:>10}")
    chain = data["chain"]
    print(f"chain: {chain['members']} members, liability {chain['liability_points']} points, "
          f"debt {chain['debt_points']} points ({chain['overdraft_entries']} overdraft entries, "
          f"{chain['overdraft_points']} points), {chain['pending_holds']} pending holds")
    return 0
