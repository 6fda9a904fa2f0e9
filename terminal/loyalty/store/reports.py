"""Reading the ledger for people: a member's statement, the daily report, invariant checks."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from peewee import Database, fn

from terminal.loyalty import ledger
from terminal.loyalty.clock import from_micros, to_micros
from terminal.loyalty.operations import MemberView
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import Allocation, LedgerEntry, Lot, Member, Refund, Sale


def statement(member: Member, rules: Rules, view: MemberView) -> dict[str, Any]:
    zone = rules.zone

    def local(us: int | None) -> str | None:
        return None if us is None else from_micros(us).astimezone(zone).isoformat()

    allocations: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for alloc in Allocation.select().join(LedgerEntry).where(LedgerEntry.member == member.id):
        allocations[alloc.entry_id].append((alloc.lot_id, alloc.points))
    entries = [
        {
            "seq": e.seq,
            "id": e.id,
            "time": local(e.wall_us),
            "time_trusted": e.trusted,
            "kind": e.kind,
            "points": e.points,
            "sale": e.sale_id,
            "reverses": e.reverses,
            "reason": e.reason,
            "operator": e.operator,
            "lots": [{"lot": lot, "points": p} for lot, p in allocations[e.id]],
            "debt_delta": e.debt_delta,
        }
        for e in LedgerEntry.select()
        .where(LedgerEntry.member == member.id)
        .order_by(LedgerEntry.seq)
    ]
    lots = [
        {
            "lot": lot.id,
            "earned": local(lot.earned_us),
            "expires": local(lot.expires_us),
            "points": lot.points,
            "remaining": lot.remaining,
        }
        # Soonest-expiring first, lots expiring together in credit order: the order debits take.
        for lot in Lot.select().join(LedgerEntry, on=(LedgerEntry.id == Lot.id))
        .where(Lot.member == member.id).order_by(Lot.expires_us.is_null(), Lot.expires_us,
                                                 LedgerEntry.seq)
    ]
    return {"member": view, "entries": entries, "lots": lots}


def daily(rules: Rules, store: str, terminal: str, day: date) -> dict[str, Any]:
    start = datetime(day.year, day.month, day.day, tzinfo=rules.zone)
    lo, hi = to_micros(start), to_micros(start + timedelta(days=1))
    sales = (
        Sale.select(
            fn.COUNT(Sale.id),
            fn.COALESCE(fn.SUM(Sale.list_fen), 0),
            fn.COALESCE(fn.SUM(Sale.discount_fen), 0),
            fn.COALESCE(fn.SUM(Sale.deduction_fen), 0),
            fn.COALESCE(fn.SUM(Sale.paid_fen), 0),
        )
        .where((Sale.wall_us >= lo) & (Sale.wall_us < hi))
        .tuples()
        .get()
    )
    back = (
        Refund.select(fn.COUNT(Refund.id), fn.COALESCE(fn.SUM(Refund.refunded_fen), 0))
        .where((Refund.wall_us >= lo) & (Refund.wall_us < hi))
        .tuples()
        .get()
    )
    by_kind = dict(
        LedgerEntry.select(LedgerEntry.kind, fn.SUM(LedgerEntry.points))
        .where((LedgerEntry.wall_us >= lo) & (LedgerEntry.wall_us < hi))
        .group_by(LedgerEntry.kind)
        .tuples()
    )
    liability = int(
        LedgerEntry.select(fn.COALESCE(fn.SUM(LedgerEntry.points), 0))
        .where(LedgerEntry.wall_us < hi)
        .scalar()
    )
    return {
        "day": day.isoformat(),
        "store": store,
        "terminal": terminal,
        "sales": {
            "count": sales[0],
            "list_fen": sales[1],
            "discount_fen": sales[2],
            "deduction_fen": sales[3],
            "paid_fen": sales[4],
        },
        "refunds": {"count": back[0], "refunded_fen": back[1]},
        "points": {
            "issued": sum(by_kind.get(k, 0) for k in (ledger.EARN, ledger.BONUS)),
            "redeemed": -by_kind.get(ledger.REDEEM, 0),
            "expired": -by_kind.get(ledger.EXPIRE, 0),
            "reversed": -by_kind.get(ledger.REVERSE, 0),
            "restored": by_kind.get(ledger.RESTORE, 0),
            "adjusted": by_kind.get(ledger.ADJUST, 0),
        },
        "liability_points": liability,
        "liability_fen": liability * 100 // rules.redeem.points_per_yuan,
    }


_CHECKS = (
    (
        "SELECT m.id FROM member m LEFT JOIN (SELECT member_id, SUM(points) s FROM "
        "ledger_entry GROUP BY member_id) e ON e.member_id = m.id "
        "WHERE m.balance != COALESCE(e.s, 0)",
        "balance differs from the sum of entries",
    ),
    (
        "SELECT m.id FROM member m LEFT JOIN (SELECT member_id, SUM(remaining) s FROM lot "
        "GROUP BY member_id) l ON l.member_id = m.id "
        "WHERE m.balance != COALESCE(l.s, 0) - m.debt",
        "balance differs from lot remainders less debt",
    ),
    ("SELECT id FROM lot WHERE remaining < 0 OR remaining > points", "lot remaining out of range"),
    (
        "SELECT l.id FROM lot l LEFT JOIN (SELECT lot_id, SUM(points) s FROM allocation "
        "GROUP BY lot_id) a ON a.lot_id = l.id "
        "WHERE l.remaining != l.points + COALESCE(a.s, 0)",
        "lot remaining differs from its allocations",
    ),
    ("SELECT id FROM member WHERE debt < 0", "negative debt"),
)


def invariant_problems(db: Database) -> list[str]:
    """Every way the ledger could disagree with itself; empty when it is sound."""
    problems = []
    for sql, what in _CHECKS:
        problems += [f"{what}: {row[0]}" for row in db.execute_sql(sql).fetchall()]
    return problems
