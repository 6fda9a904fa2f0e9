"""`posterm-hq receipt NUMBER --db URL`: a till's refund or void at HQ, found by the number on
its receipt (``S001-T01-R0001``).

The till numbers its refunds and voids in its own series and the event carries the number;
HQ records the refund under an id derived from store, terminal and that number
(:func:`terminal.protocol.ids.chain_sale_id`), and keeps the number at the head of the applied
event's detail, which is how it is found again here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from terminal.hq.db import open_or_say
from terminal.hq.models import HQ_MODELS, AppliedEvent
from terminal.loyalty.clock import from_micros
from terminal.loyalty.store.models import MODELS, Refund
from terminal.protocol.ids import chain_sale_id

RECEIPT_NUMBER = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,39}")


def refund_by_number(number: str) -> Refund | None:
    """The chain ledger's refund or void printed as ``number``, or None (on HQ's ledger thread).

    A number that is not one (wildcards, spaces) finds nothing, by a clear error."""
    if not RECEIPT_NUMBER.fullmatch(number):
        raise ValueError(f"{number!r} is not a receipt number such as S001-T01-R0001")
    applied = (AppliedEvent.select(AppliedEvent.store, AppliedEvent.terminal)
               .where(AppliedEvent.kind.in_(("refund", "void")),
                      AppliedEvent.outcome != "refused",
                      AppliedEvent.detail.startswith(f"{number}:"))
               .first())
    if applied is None:
        return None
    return Refund.get_or_none(
        Refund.id == chain_sale_id(applied.store, applied.terminal, f"refund:{number}"))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("number", help="the number on the receipt, e.g. S001-T01-R0001")
    parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")


def describe(number: str) -> dict[str, Any] | None:
    """Run with the models bound: the refund or void as HQ recorded it, or None."""
    refund = refund_by_number(number)
    if refund is None:
        return None
    return {"number": number, "kind": refund.kind, "at": from_micros(refund.wall_us).isoformat(),
            "refunded_fen": refund.refunded_fen, "points_reversed": refund.points_reversed,
            "points_restored": refund.points_restored, "operator": refund.operator}


def run(args: argparse.Namespace) -> int:
    db = open_or_say(args.db, "receipt")
    if db is None:  # a schema of another version, not UTF8
        return 1
    try:
        with db.bind_ctx(MODELS + HQ_MODELS):
            found = describe(args.number)
    except ValueError as exc:
        print(f"posterm-hq receipt: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()
    if found is None:
        print(f"posterm-hq receipt: HQ has no refund or void {args.number}", file=sys.stderr)
        return 1
    print(json.dumps(found, ensure_ascii=False, indent=2))
    return 0
