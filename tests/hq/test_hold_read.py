"""A hold request reads what it needs in one statement (terminal.hq.holds.read) on SQLite and
PostgreSQL: HQ's bounds per till, per member and per hour, a repeat of a hold, another till's
hold id, a frozen card, points a till's older hold on the member sets aside, timed-out holds
left out, and what is left to hold."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from peewee import PostgresqlDatabase

from terminal.hq import chain_ledger
from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import open_hq_database
from terminal.hq.models import MemberHold
from terminal.hq.policy import TrustPolicy
from terminal.loyalty.clock import to_micros
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import CardState
from terminal.protocol.messages import MemberRequest, MemberResponse
from tests.hq.test_batch_kept import Till, card
from tests.hq.test_ingest_batches import new_url  # noqa: F401  (the fixture)
from tests.sync.harness import CARD_KEY, rules_data

POLICY = TrustPolicy.from_mapping({"holds": {
    "max_per_till": 3, "max_per_member": 2, "max_points_per_till": 5000,
    "max_per_till_member_per_hour": 4}})


def test_holds_are_bounded_from_one_read(
        new_url: Callable[[], str], tmp_path: Path) -> None:  # noqa: F811
    ledger = ChainLedger(open_hq_database(new_url()), Rules.from_mapping(rules_data()), CARD_KEY,
                         trust=POLICY)
    till = Till("S001", datetime.now(UTC) - timedelta(hours=1))

    def ask(n: int, points: int, where: str = "T01", hold_id: str | None = None,
            op: str = "hold") -> MemberResponse:
        request = MemberRequest(op, card(n) if op == "hold" else None,
                                points if op == "hold" else None, hold_id or str(uuid.uuid4()))
        return ledger.holding[0].call(ledger.answer, request, "S001", where)

    try:
        events = [till.register(n) for n in range(7)]
        events += [till.sale(n, 300_000) for n in range(7)]  # 3,000 points each, +100 bonus
        assert {o.result for o in ledger.thread.call(ledger.apply, events)} == {"applied"}
        first = ask(0, 1000, hold_id="a1c0ffee-0000-4000-8000-000000000001")
        assert (first.ok, first.balance, first.tier) == (True, 2100, "silver")
        # The same request again (a timeout): the same hold; another till's: refused.
        assert ask(0, 1000, hold_id=first.hold_id).hold_id == first.hold_id
        other = ask(0, 1000, where="T02", hold_id=first.hold_id)
        assert not other.ok and "another till" in (other.error or "")
        # A new hold of the same till on the member replaces its older one (its points free).
        second = ask(0, 3000)
        assert (second.ok, second.balance) == (True, 100)
        assert ledger.requests.call(lambda: MemberHold.get_by_id(first.hold_id).state) == \
            "voided"
        # Another till's holds count against the member: 100 left, then the member's bound.
        short = ask(0, 500, where="T02")
        assert not short.ok and short.error == "insufficient points: 100 available"
        assert ask(0, 100, where="T02").ok
        assert "max_per_member" in (ask(0, 100, where="T03").error or "")
        # The till's bounds: points held (3,000 on member 0), then the number of holds.
        assert "max_points_per_till" in (ask(1, 2500).error or "")
        assert ask(1, 1900).ok and ask(2, 100).ok
        assert "max_per_till" in (ask(3, 100).error or "")
        # Holds that timed out count for nothing; a frozen card holds nothing.
        now_us = to_micros(datetime.now(UTC))

        def arrange() -> None:
            MemberHold.update(expires_us=now_us - 1).where(
                MemberHold.card_hash.in_([card(1), card(2)])).execute()
            CardState.insert(card_hash=card(4), state="frozen", reason="checking", version=1,
                             updated_us=now_us).execute()

        ledger.requests.call(lambda: ledger.db.atomic()(arrange)())
        assert ask(3, 2000).ok  # 3 holds of the till, 2 timed out: 1 counts, 3,000 points
        frozen = ask(4, 100, where="T05")
        assert frozen.error == "card frozen at HQ: checking"
        # The hour's bound on one till and member: a fifth hold in the hour is refused.
        for _ in range(3):
            assert ask(5, 100, where="T06").ok
        assert ask(5, 100, where="T06").ok
        assert "max_per_till_member_per_hour" in (ask(5, 100, where="T06").error or "")
        assert not ask(99, 100, where="T07").ok
    finally:
        ledger.close()


def test_pending_holds_are_read_through_indexes_not_every_hold(
        new_url: Callable[[], str]) -> None:  # noqa: F811
    """A hold's read and the upkeep's voiding find the pending holds through partial indexes
    (migration 25): member_hold keeps every hold ever made, and reading it whole made each hold
    slower the longer HQ ran (10.7 ms a hold at 20,000 holds on PostgreSQL, 0.2 ms with them)."""
    from terminal.hq import holds

    ledger = ChainLedger(open_hq_database(new_url()), Rules.from_mapping(rules_data()), CARD_KEY,
                         trust=POLICY)
    now = to_micros(datetime.now(UTC))
    db = ledger.db

    def plans() -> list[str]:
        MemberHold.insert_many([
            {"id": str(uuid.uuid4()), "card_hash": card(n % 50), "points": 100,
             "state": "voided" if n % 10 else "posted", "store": "S001", "terminal": "T01",
             "created_us": now - 1000, "expires_us": now + 10**8} for n in range(3000)],
        ).execute()
        params = (card(1), str(uuid.uuid4()), "S001", "T01", now)
        if isinstance(db, PostgresqlDatabase):
            db.execute_sql("ANALYZE member_hold")
            read = [line for (line,) in db.execute_sql(
                "EXPLAIN " + holds.READ.replace("?", "%s"), params).fetchall()]
            voiding = [line for (line,) in db.execute_sql(
                "EXPLAIN SELECT id FROM member_hold WHERE state = 'pending' "
                "AND expires_us <= %s", (now,)).fetchall()]
            return [line for line in read + voiding if "Seq Scan on member_hold" in line]
        read = [row[-1] for row in db.execute_sql("EXPLAIN QUERY PLAN " + holds.READ,
                                                  params).fetchall()]
        voiding = [row[-1] for row in db.execute_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM member_hold WHERE state = 'pending' "
            "AND expires_us <= ?", (now,)).fetchall()]
        return [line for line in read + voiding if line.startswith("SCAN h")
                or line.startswith("SCAN member_hold")]

    try:
        assert ledger.requests.call(plans) == []
    finally:
        ledger.close()


def test_settled_holds_are_pruned_after_the_policys_days(
        new_url: Callable[[], str], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Holds settled (posted, voided) more than [holds] keep_days ago are deleted by the
    upkeep's prune_holds, a round's worth at a time, oldest first; pending holds, however old,
    and holds settled since stay. Holds are not the ledger (no append-only trigger refuses)."""
    policy = TrustPolicy.from_mapping({"holds": {"keep_days": 10}})
    ledger = ChainLedger(open_hq_database(new_url()), Rules.from_mapping(rules_data()), CARD_KEY,
                         trust=policy)
    now = to_micros(datetime.now(UTC))
    day = 86_400_000_000

    def hold(name: str, state: str, settled_days_ago: int | None) -> dict[str, object]:
        created = now - 40 * day
        return {"id": name, "card_hash": card(1), "points": 100, "state": state,
                "store": "S001", "terminal": "T01", "created_us": created,
                "expires_us": created + 600_000_000,
                "settled_us": None if settled_days_ago is None else now - settled_days_ago * day}

    rows = [hold("old-posted", "posted", 30), hold("old-voided", "voided", 11),
            hold("old-pending", "pending", None), hold("recent-posted", "posted", 9),
            hold("recent-voided", "voided", 1),
            *(hold(f"older-{n}", "voided", 20 + n) for n in range(3))]

    def left() -> list[str]:
        return sorted(h.id for h in MemberHold.select(MemberHold.id))

    try:
        ledger.requests.call(lambda: MemberHold.insert_many(rows).execute())
        monkeypatch.setattr(chain_ledger, "PRUNE_HOLDS", 2)  # a round deletes so many at most
        assert ledger.requests.call(ledger.prune_holds, now) == 2  # the oldest settled first
        assert not {"old-posted", "older-2"} & set(ledger.requests.call(left))
        monkeypatch.undo()
        assert ledger.requests.call(ledger.prune_holds, now) == 3
        assert ledger.requests.call(ledger.prune_holds, now) == 0
        assert ledger.requests.call(left) == ["old-pending", "recent-posted", "recent-voided"]
    finally:
        ledger.close()


def test_timed_out_holds_are_voided_a_chunk_at_a_time(
        new_url: Callable[[], str]) -> None:  # noqa: F811
    """The upkeep voids every pending hold that timed out, and only those, at the same moment,
    VOID_CHUNK a transaction on PostgreSQL (a backlog's 1,808 in one UPDATE held their rows
    20-72 ms, docs/hq.md session 19 (c)), until a chunk comes short; a hold a writer has locked
    is skipped and found by a later round."""
    ledger = ChainLedger(open_hq_database(new_url()), Rules.from_mapping(rules_data()), CARD_KEY)
    now = to_micros(datetime.now(UTC))

    def hold(name: str, state: str, expires_us: int) -> dict[str, object]:
        return {"id": name, "card_hash": card(1), "points": 100, "state": state,
                "store": "S001", "terminal": "T01", "created_us": now - 600_000_000,
                "expires_us": expires_us, "settled_us": now - 1 if state != "pending" else None}

    rows = [*(hold(f"due-{n}", "pending", now - 1_000 * n) for n in range(1, 13)),
            hold("pending", "pending", now + 600_000_000),
            hold("posted", "posted", now - 1_000)]

    def states() -> dict[str, tuple[str, int | None]]:
        return {h.id: (h.state, h.settled_us) for h in MemberHold.select()}

    try:
        ledger.upkeep.call(lambda: MemberHold.insert_many(rows).execute())
        before = ledger.upkeep.call(states)
        locked = isinstance(ledger.db, PostgresqlDatabase)
        if locked:  # a sale posting due-12 holds its row: skipped, not waited for
            writer = psycopg.connect(**ledger.db.connection_kwargs())
            writer.execute("SELECT 1 FROM member_hold WHERE id = 'due-12' FOR UPDATE")
        assert ledger.upkeep.call(ledger.void_expired_holds, 5) == (11 if locked else 12)
        after = ledger.upkeep.call(states)
        voided = {name for name, (state, _) in after.items() if before[name][0] != state}
        assert voided == {f"due-{n}" for n in range(1, 12 if locked else 13)}
        assert all(after[name][0] == "voided" for name in voided)
        assert len({after[name][1] for name in voided}) == 1  # one moment, every chunk
        assert after["pending"] == before["pending"] and after["posted"] == before["posted"]
        if locked:
            writer.rollback()
            writer.close()
            assert ledger.upkeep.call(ledger.void_expired_holds, 5) == 1
            assert ledger.upkeep.call(states)["due-12"][0] == "voided"
        assert ledger.upkeep.call(ledger.void_expired_holds, 5) == 0
    finally:
        ledger.close()
