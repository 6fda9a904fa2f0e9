"""`posterm report daily DATE`: sales, points issued, redeemed, expired, reversed, liability."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from terminal.loyalty.money import yuan
from terminal.tools.ledger_access import add_ledger_arguments, open_ledger


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("daily",))
    parser.add_argument("day", help="YYYY-MM-DD, in the programme's zone")
    add_ledger_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        day = date.fromisoformat(args.day)
    except ValueError:
        print(f"posterm report: {args.day!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    store = open_ledger(args)
    if store is None:
        return 2
    try:
        report = store.daily_report(day)
    finally:
        store.close()
    if args.json:
        json.dump(report, sys.stdout, ensure_ascii=False, indent=1)
        print()
        return 0
    s, p = report["sales"], report["points"]
    print(f"daily report {report['day']}")
    print(f"sales      {s['count']:>6}   list {yuan(s['list_fen'])}  discount "
          f"{yuan(s['discount_fen'])}  points off {yuan(s['deduction_fen'])}  "
          f"paid {yuan(s['paid_fen'])}")
    print(f"refunds    {report['refunds']['count']:>6}   handed back "
          f"{yuan(report['refunds']['refunded_fen'])}")
    for name in ("issued", "redeemed", "expired", "reversed", "restored", "adjusted"):
        print(f"points {name:<9} {p[name]:>8}")
    print(f"liability  {report['liability_points']} points = {yuan(report['liability_fen'])} yuan")
    return 0
