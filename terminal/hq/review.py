"""`posterm-hq review --db URL`: the events HQ refused or flagged, for a person to look at.

    posterm-hq review --db hq.db [--store S001] [--limit 100] [--json]

Newest first: when HQ applied (or refused) it, the terminal, the kind, the outcome and why, e.g.
``refused adjust.manager: HQ's register names no manager 'ann' at S001`` or ``flagged
redeem.offline_allowance: 4000 points redeemed without an HQ hold ...`` (docs/hq-trust.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from terminal.hq.db import open_or_say
from terminal.hq.models import HQ_MODELS, AppliedEvent
from terminal.loyalty.clock import from_micros
from terminal.loyalty.store.models import MODELS

FOR_REVIEW = ("refused", "flagged")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    parser.add_argument("--store", help="only this store's terminals")
    parser.add_argument("--limit", type=int, default=100, help="at most this many (newest)")
    parser.add_argument("--json", action="store_true")


def for_review(store: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Run with the models bound: refused and flagged events, newest first."""
    query = AppliedEvent.select().where(AppliedEvent.outcome.in_(FOR_REVIEW))
    if store is not None:
        query = query.where(AppliedEvent.store == store)
    rows = query.order_by(AppliedEvent.applied_us.desc(), AppliedEvent.id).limit(limit)
    return [{"at": from_micros(row.applied_us).isoformat(), "event": row.id,
             "terminal": f"{row.store}/{row.terminal}", "kind": row.kind,
             "outcome": row.outcome, "detail": row.detail} for row in rows]


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        print("posterm-hq review: --limit must be at least 1", file=sys.stderr)
        return 2
    db = open_or_say(args.db, "review")
    if db is None:  # a schema of another version, not UTF8
        return 1
    with db.bind_ctx(MODELS + HQ_MODELS):
        rows = for_review(args.store, args.limit)
    db.close()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for row in rows:
        print(f"{row['at'][:19]}  {row['terminal']:<12} {row['kind']:<8} {row['outcome']:<8} "
              f"{row['detail']}")
    print(f"{len(rows)} event(s) for review")
    return 0
