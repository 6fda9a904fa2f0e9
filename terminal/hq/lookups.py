"""A till's member lookup in one statement: the member, the card's state at HQ, the member's
pending holds and the points of lots expired but not yet swept, read together.

A lookup was about six round trips (a snapshot's BEGIN and COMMIT, the card's state, the member,
the pending holds, the unswept points); at a million members on the loaded bench machine their
round trips put its p99 above 2 ms. One statement is one snapshot by itself, so it needs no
transaction. When the member's monthly tier review is due and not yet recorded (their first
lookup or sale of a month), the tier needs the spend of the window and the sales since: those
lookups go the full way (:meth:`ChainLedger._lookup`), and so does anything this statement does
not cover.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from peewee import Database

from terminal.loyalty import tiers
from terminal.loyalty.clock import from_micros, to_micros
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import hotpath
from terminal.loyalty.store.card_states import RETIRED
from terminal.protocol.hq_refusals import Refusal, refusal

_MEMBER = ", ".join(f"m.{column}" for column in hotpath.MEMBER_COLUMNS)
# The member's pending points: their holds found by card hash alone, "pending, not timed out"
# tested in the CASE, as hq_hold_ask's counts since migration 34. With it in the WHERE, on
# statistics that said member_hold was empty the planner added the pending holds' expiry index
# (a BitmapAnd with the card hash's), reading every pending hold's entry a lookup (10,018 with
# a backlog's 10,000 pending: docs/hq.md, session 19 (c)).
LOOKUP = (
    f"SELECT {_MEMBER}, c.state, c.reason, "
    "(SELECT COALESCE(SUM(CASE WHEN h.state = 'pending' AND h.expires_us > ? THEN h.points END), "
    "0) FROM member_hold h WHERE h.card_hash = q.card_hash), "
    "(SELECT COALESCE(SUM(l.remaining), 0) FROM lot l WHERE l.member_id = m.id "
    "AND l.remaining > 0 AND l.expires_us <= ? AND l.dated_trusted) "
    "FROM (SELECT CAST(? AS TEXT) AS card_hash) q LEFT JOIN member m ON m.card_hash = q.card_hash "
    "LEFT JOIN card_state c ON c.card_hash = q.card_hash"
)
_WIDTH = len(hotpath.MEMBER_COLUMNS)
_ID, _TIER = hotpath.MEMBER_COLUMNS.index("id"), hotpath.MEMBER_COLUMNS.index("tier")
_REVIEWED = hotpath.MEMBER_COLUMNS.index("tier_reviewed_us")
_BALANCE = hotpath.MEMBER_COLUMNS.index("balance")


class Found:
    """What the lookup statement found: refused (``error``, HQ's refusal), or the tier and the
    points the member may redeem now."""

    __slots__ = ("available", "error", "tier")

    def __init__(self, error: Refusal | None = None, tier: str | None = None,
                 available: int | None = None) -> None:
        self.error, self.tier, self.available = error, tier, available


def lookup(db: Database, rules: Rules, card_hash: str, now: datetime) -> Found | None:
    """The lookup of ``card_hash`` at ``now`` (a trusted moment: HQ's clock), or None when it
    needs the full way (a tier review due). ``now`` bounds both the holds still pending and the
    lots already expired, as the full way's standing does."""
    now_us = to_micros(now)
    sql = LOOKUP.replace("?", db.param)
    row: Any = db.execute_sql(sql, (now_us, now_us, card_hash)).fetchone()
    state, reason = row[_WIDTH], row[_WIDTH + 1]
    if state == RETIRED:
        return Found(error=refusal("card.retired", reason=reason or ""))
    if row[_ID] is None:
        return Found(error=refusal("member.unknown"))
    reviewed = row[_REVIEWED]
    if tiers.due_review(rules, from_micros(reviewed) if reviewed else None, now) is not None:
        return None
    pending, unswept = int(row[_WIDTH + 2]), int(row[_WIDTH + 3])
    return Found(tier=row[_TIER], available=row[_BALANCE] - unswept - pending)
