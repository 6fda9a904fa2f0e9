"""A batch's members read at once and kept in memory (terminal.hq.kept) on PostgreSQL: the same
ledger rows as SQLite, which runs every statement, through the cases that move what is kept
(a member registered and buying in one batch, lots expiring before a sale, redemptions posting
HQ's holds, a refund restoring points to an emptied lot, the day's earning cap, tier reviews);
and a batch's reads do not grow with its events."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from peewee import Database

from terminal.hq.chain_ledger import SEND_EVERY, ChainLedger
from terminal.hq.database import HqPostgresDatabase, open_hq_database
from terminal.hq.models import AppliedEvent, MemberHold
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import Lot, Member, MemberDay, Refund, Sale
from terminal.protocol.messages import Event, MemberRequest
from tests.hq.test_ingest_batches import TRUST, bound, snapshot
from tests.hq.test_postgres_collector import fresh_database
from tests.sync.harness import CARD_KEY, rules_data


def card(n: int) -> str:
    return hashlib.sha256(f"kept-{n}".encode()).hexdigest()


def hold(n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kept-hold-{n}"))


class Till:
    """Events as a till of ``store`` publishes them, each a second after the last from
    ``start``."""

    def __init__(self, store: str, start: datetime) -> None:
        self.store, self.at, self.seq = store, start, 0

    def event(self, kind: str, body: dict[str, Any]) -> Event:
        self.seq += 1
        self.at += timedelta(seconds=1)
        return Event.from_json(json.dumps({
            "id": str(uuid.uuid4()), "kind": kind, "store": self.store, "terminal": "T01",
            "seq": self.seq, "epoch": 1, "wall_time": self.at.isoformat(), "time_trusted": True,
            "body": body}))

    def register(self, n: int) -> Event:
        return self.event("register", {"card_hash": card(n), "card_last4": "0000",
                                       "name": f"会员 {n}", "member": None})

    def sale(self, n: int, fen: int, redeem: int = 0, hold_id: str | None = None,
             sale: str | None = None) -> Event:
        return self.event("sale", {
            "sale": sale or f"{self.store}-{self.seq + 1}", "member": None,
            "card_hash": card(n), "tender": "cash", "redeem_points": redeem, "hold": hold_id,
            "online": True, "operator": "ann",
            "lines": [{"sku": "SKU1", "name": "货品", "category": "grocery", "qty": 1,
                       "price_fen": fen, "paid_fen": fen - redeem}],
            "list_fen": fen, "discount_fen": 0, "deduction_fen": redeem,
            "paid_fen": fen - redeem})

    def refund(self, n: int, sale: str, fen: int) -> Event:
        return self.event("refund", {
            "refund": f"R{self.seq + 1}", "sale": sale, "member": None, "card_hash": card(n),
            "lines": [{"line_no": 1, "sku": "SKU1", "qty": 1, "fen": fen}],
            "refunded_fen": fen, "operator": "ann"})


def rows(db: Database) -> tuple[Any, ...]:
    """Every row the cases move, in an order that does not depend on random ids."""
    with bound(db):
        return (
            sorted(Member.select(Member.card_hash, Member.tier, Member.balance, Member.debt)
                   .tuples()),
            sorted((row[0], *row[2:]) for row in MemberDay.select(
                Member.card_hash, MemberDay.member, MemberDay.day, MemberDay.earned,
                MemberDay.redeemed, MemberDay.offline_redeemed).join(Member).tuples()),
            sorted(Lot.select(Member.card_hash, Lot.earned_us, Lot.points, Lot.remaining)
                   .join(Member).tuples()),
            sorted(Sale.select(Sale.id, Sale.points_earned, Sale.points_redeemed, Sale.tier)
                   .tuples()),
            sorted(MemberHold.select(MemberHold.id, MemberHold.state).tuples()),
        )


def batches(now: datetime) -> list[tuple[dict[str, tuple[int, int]], list[Event]]]:
    """Five batches, each with the holds its tills ask HQ for first (id: member, points): a
    year ago members register and buy (one registers and buys in the same batch as others),
    two reach silver and gold; today their lots have expired, they buy again and pass the
    day's earning cap, redeem against holds (member 1 all of a lot, member 2 twice in one
    batch), refund member 1's redemption (points back to the emptied lot) and a new member
    registers and buys."""
    old = Till("S001", now - timedelta(days=400))
    first = [old.register(n) for n in range(4)]
    first += [old.sale(n % 4, 30_000 + n) for n in range(8)]
    first += [old.register(4), old.sale(4, 50_000), old.sale(4, 20_000)]
    second = [old.sale(n, 900_000) for n in (0, 1)]  # silver, then gold by the spend
    new = Till("S002", now - timedelta(hours=2))
    third = [new.sale(1, 50_000), *(new.sale(n, 400_000) for n in (0, 2, 3, 4))]
    third += [new.sale(0, 5_000_000) for _ in range(3)]  # over the day's cap of 8,000
    fourth = [new.sale(1, 60_000, redeem=500, hold_id=hold(1), sale="redeeming-1"),
              new.sale(2, 60_000, redeem=700, hold_id=hold(2), sale="redeeming-2"),
              new.sale(2, 10_000), new.sale(2, 80_000, redeem=3_500, hold_id=hold(4),
                                             sale="redeeming-4")]
    fifth = [new.refund(1, "redeeming-1", 60_000), new.sale(1, 10_000), new.register(5),
             new.sale(5, 30_000), new.sale(2, 70_000, redeem=900, hold_id=hold(3),
                                           sale="redeeming-3")]
    return [({}, first), ({}, second), ({}, third),
            ({hold(1): (1, 500), hold(2): (2, 700), hold(4): (2, 3_500)}, fourth),
            ({hold(3): (2, 900)}, fifth)]


def run(url: str, now: datetime,
        make: Any = None) -> tuple[Any, ...]:
    ledger = ChainLedger(open_hq_database(url), Rules.from_mapping(rules_data()), CARD_KEY,
                         trust=TRUST)
    try:
        outcomes: Counter[str] = Counter()
        for holds, batch in (make or batches)(now):
            for hold_id, (member, points) in holds.items():  # asked before the sale, as tills do
                asked = MemberRequest("hold", card(member), points, hold_id)
                answer = ledger.holding[0].call(ledger.answer, asked, "S002", "T01")
                assert answer.ok, answer.error
            first = ledger.thread.call(ledger.apply, batch)
            outcomes += Counter(o.result for o in first)
            # A second delivery of the batch changes nothing (what was deferred is again).
            again = Counter(o.result for o in ledger.thread.call(ledger.apply, batch))
            assert again == Counter({"duplicate": sum(o.ack for o in first)}) + Counter(
                o.result for o in first if not o.ack)
        assert ledger.thread.call(ledger.store.check_invariants) == []
        return outcomes, snapshot(ledger)[1:3], rows(ledger.db)
    finally:
        ledger.close()


def test_kept_rows_leave_the_ledger_sqlite_leaves(postgres, tmp_path) -> None:
    now = datetime.now(UTC)
    sqlite = run(str(tmp_path / "hq.db"), now)
    pg = run(fresh_database(postgres), now)
    assert sqlite == pg
    outcomes, (entries, _), (members, days, lots, _, holds) = pg
    assert outcomes["refused"] == 0 and outcomes["deferred"] == 0
    kinds = Counter(kind for _, kind, *_ in entries)
    assert kinds["expire"] >= 4 and kinds["redeem"] == 4 and kinds["restore"] == 1
    assert {state for _, state in holds} == {"posted"}
    assert {tier for _, tier, *_ in members} >= {"member", "gold"}
    # The day's cap: member 0 earned 8,000 today however much it bought.
    today = [earned for hashed, _, earned, *_ in days if hashed == card(0)]
    assert 8000 in today
    assert all(remaining <= points for *_, points, remaining in lots)


def failing(now: datetime) -> list[tuple[dict[str, tuple[int, int]], list[Event]]]:
    """A batch whose events fail after the batch's kept writes went out (terminal.hq.buffered):
    a refund reads the database, so the writes of the sales before it are sent inside its
    savepoint, then it is refused (more units than sold) or deferred (its sale unknown) and
    rolled back; the sales before and after it must stay, each once."""
    till = Till("S001", now - timedelta(hours=3))
    first = [till.register(n) for n in (10, 11)]
    second = [till.sale(10, 30_000, sale="kept-1"), till.sale(11, 40_000, sale="kept-2")]
    over = till.refund(10, "kept-1", 30_000)
    over.body["lines"][0]["qty"] = 5  # one unit was sold
    second += [over, till.sale(10, 20_000), till.refund(11, "never-sold", 1_000),
               till.sale(11, 10_000), till.refund(11, "kept-2", 40_000), till.sale(11, 5_000)]
    return [({}, first), ({}, second)]


def test_a_refused_event_after_a_flush_leaves_the_rows_before_it(postgres, tmp_path) -> None:
    now = datetime.now(UTC)
    sqlite = run(str(tmp_path / "hq.db"), now, failing)
    pg = run(fresh_database(postgres), now, failing)
    assert sqlite == pg
    outcomes, (entries, _), (_, _, _, sales, _) = pg
    assert outcomes == {"applied": 8, "refused": 1, "deferred": 1}
    assert len([sale for sale in sales if sale[0]]) == 5
    assert Counter(kind for _, kind, *_ in entries)["reverse"] == 1


def reads_of(ledger: ChainLedger, batch: list[Event]) -> int:
    """How many SELECTs applying ``batch`` sends (PostgreSQL), every event applied."""
    db = ledger.db
    assert isinstance(db, HqPostgresDatabase)
    reads: list[str] = []
    execute = db.execute_sql

    def counting(sql: str, params: Any = None) -> Any:
        if sql.lstrip().upper().startswith("SELECT"):
            reads.append(sql)
        return execute(sql, params)

    db.execute_sql = counting  # type: ignore[method-assign]
    try:
        outcomes = ledger.thread.call(ledger.apply, batch)
    finally:
        db.execute_sql = execute  # type: ignore[method-assign]
    assert Counter(o.result for o in outcomes) == {"applied": len(batch)}
    return len(reads)


def a_chain_of_40(postgres: Any) -> tuple[ChainLedger, Till]:
    """A ledger on a fresh PostgreSQL database with 40 members, and their till."""
    ledger = ChainLedger(open_hq_database(fresh_database(postgres)),
                         Rules.from_mapping(rules_data()), CARD_KEY, trust=TRUST)
    till = Till("S001", datetime.now(UTC) - timedelta(hours=1))
    assert Counter(o.result for o in ledger.thread.call(
        ledger.apply, [till.register(n) for n in range(40)])) == {"applied": 40}
    return ledger, till


def test_a_batch_reads_no_more_for_more_events(postgres) -> None:
    """On PostgreSQL a batch of member sales reads its members, day counters, lots and spend
    in a few queries, not per event: ten times the sales, the same number of reads."""
    ledger, till = a_chain_of_40(postgres)
    try:
        counts = [reads_of(ledger, [till.sale(n % 40, 20_000 + n) for n in range(size)])
                  for size in (4, 40)]
        assert counts[0] == counts[1], counts
    finally:
        ledger.close()


def refunding(now: datetime) -> list[tuple[dict[str, tuple[int, int]], list[Event]]]:
    """Refunds read per batch (terminal.hq.kept, hotpath.REFUND_EXISTS ... EMPTIED_LOT): a sale
    refunded in two parts in one batch, a sale refunded in the batch that records it, a
    redemption refunded whose lot the redemption emptied, the same refund delivered again
    under another event id, a refund of a sale never recorded, and sales of the refunds'
    members between them (their tier window's spend moves with each refund)."""
    till = Till("S001", now - timedelta(hours=3))
    first = [till.register(n) for n in (20, 21, 22)]
    second = [till.sale(20, 40_000, sale="r-1"), till.sale(21, 300_000, sale="r-2"),
              till.sale(22, 50_000, sale="r-3")]
    two = till.sale(20, 60_000, sale="r-4")
    two.body["lines"][0]["qty"] = 2
    second.append(two)
    third = [till.sale(21, 20_000, redeem=500, hold_id=hold(20), sale="r-5")]
    part = till.refund(20, "r-4", 30_000)
    again = till.refund(20, "r-4", 30_000)
    again.body["refund"] = part.body["refund"]  # the same refund, delivered as another event
    fourth = [part, till.sale(20, 9_000), till.refund(20, "r-4", 30_000), again,
              till.sale(22, 7_000, sale="r-6"), till.refund(22, "r-6", 7_000),
              till.refund(21, "r-5", 20_000), till.refund(21, "never-sold", 1_000),
              till.refund(22, "r-3", 50_000), till.sale(21, 3_000), till.sale(22, 4_000)]
    return [({}, first), ({}, second), ({hold(20): (21, 500)}, third), ({}, fourth)]


def refund_rows(db: Database) -> list[tuple[Any, ...]]:
    with bound(db):
        return sorted(Refund.select(Refund.id, Refund.sale, Refund.kind, Refund.refunded_fen,
                                    Refund.points_reversed, Refund.points_restored).tuples())


def test_refunds_read_for_the_batch_leave_the_ledger_sqlite_leaves(postgres, tmp_path) -> None:
    now = datetime.now(UTC)
    url = fresh_database(postgres)
    sqlite = run(str(tmp_path / "hq.db"), now, refunding)
    pg = run(url, now, refunding)
    assert sqlite == pg
    outcomes, (entries, _), _ = pg
    assert outcomes == {"applied": 18, "deferred": 1}
    kinds = Counter(kind for _, kind, *_ in entries)
    assert kinds["reverse"] == 5 and kinds["restore"] == 1
    ledger = ChainLedger(open_hq_database(url), Rules.from_mapping(rules_data()), CARD_KEY,
                         trust=TRUST)
    try:
        refunds = refund_rows(ledger.db)
    finally:
        ledger.close()
    assert len(refunds) == 5  # the refund delivered again recorded nothing more
    assert Counter(sale for _, sale, *_ in refunds).most_common(1)[0][1] == 2  # r-4, twice


def test_a_batch_reads_no_more_for_more_refunds(postgres) -> None:
    """A batch's refunds read their sales, lines, refunds before and lots for the batch at
    once: ten times the refunds, the same number of reads."""
    ledger, till = a_chain_of_40(postgres)
    try:
        sales = [till.sale(n % 40, 20_000 + n, sale=f"refunded-{n}") for n in range(44)]
        assert Counter(o.result for o in ledger.thread.call(
            ledger.apply, sales)) == {"applied": 44}
        counts = [reads_of(ledger, [till.refund(n % 40, f"refunded-{n}", 20_000 + n)
                                    for n in range(first, first + size)])
                  for first, size in ((0, 4), (4, 40))]
        assert counts[0] == counts[1], counts
    finally:
        ledger.close()


def applied_rows(db: Database) -> list[tuple[Any, ...]]:
    with bound(db):
        return sorted(AppliedEvent.select(
            AppliedEvent.id, AppliedEvent.kind, AppliedEvent.outcome, AppliedEvent.detail,
            AppliedEvent.points_in, AppliedEvent.points_out, AppliedEvent.first_seq,
            AppliedEvent.last_seq).tuples())


def counting(send: Any, inserts: list[str]) -> Any:
    """``send`` (HqPostgresDatabase.send), noting the inserts of applied_event rows."""
    def sending(sql: str, params: Any = (), *, writes: bool = True) -> None:
        if sql.startswith("INSERT INTO applied_event"):
            inserts.append(sql)
        send(sql, params, writes=writes)
    return sending


def test_applied_events_go_with_the_flushes_and_count_the_same(postgres, tmp_path) -> None:
    """On PostgreSQL a batch's applied_event rows are sent with its flushes every SEND_EVERY
    events (while the next events are replayed), not all at the COMMIT: a batch of 2.5 times
    SEND_EVERY events sends them in three statements. Their points, spans and details are
    SQLite's, where every row goes at the batch's end, a refused event's record among them."""
    till = Till("S001", datetime.now(UTC) - timedelta(hours=2))
    members = [till.register(n) for n in range(10)]
    size = SEND_EVERY * 5 // 2
    sales = [till.sale(n % 10, 5_000 + 100 * n) for n in range(size)]  # under the day's cap
    sales[SEND_EVERY + 3] = till.sale(3, 5_000, redeem=10**6)  # refused: no hold, no points
    found = []
    for url in (str(tmp_path / "hq.db"), fresh_database(postgres)):
        ledger = ChainLedger(open_hq_database(url), Rules.from_mapping(rules_data()), CARD_KEY,
                             trust=TRUST)
        try:
            assert Counter(o.result for o in ledger.thread.call(ledger.apply, members)) == {
                "applied": 10}
            inserts: list[str] = []
            if isinstance(ledger.db, HqPostgresDatabase):
                ledger.db.send = counting(ledger.db.send, inserts)  # type: ignore[method-assign]
            outcomes = Counter(o.result for o in ledger.thread.call(ledger.apply, sales))
            assert outcomes == {"applied": size - 1, "refused": 1}
            found.append((applied_rows(ledger.db), inserts))
        finally:
            ledger.close()
    (sqlite, _), (pg, inserts) = found
    assert pg == sqlite
    assert sum(1 for _, _, _, _, points, _, _, _ in pg if points) >= size - 1
    assert len(inserts) == 3
