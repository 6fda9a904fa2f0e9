"""A hold in one statement (PostgreSQL, migration 33's ``hq_hold_ask``, session 14): the function
takes the member's advisory lock and then runs :data:`holds.ASK` with a snapshot taken after the
lock, so a hold that waited for its member's writer reads what that writer committed, on a
holding thread and on the event loop alike; and the function runs today's ``holds.ASK`` (a
change of ASK must come with a migration that replaces the function). That it answers and
writes as the full way does: tests/hq/test_hold_at_once.py, which takes it both ways."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from terminal.hq import holds, lookups
from terminal.hq.database import _PG_MEMBER_LOCKS, member_key, member_locks
from terminal.hq.holds import HOUR_US
from terminal.hq.loop_holds import LoopHolds
from terminal.loyalty.clock import to_micros
from terminal.protocol.messages import MemberRequest, MemberResponse
from tests.hq.test_loop_holds import _ledger
from tests.hq.test_requests_beside_ingest import WAIT, _until, _waiting_for_advisory_locks


def _other_tills_holds(conn: psycopg.Connection[Any]) -> None:
    """3,000 pending holds of other tills and members (a backlog's redemptions that held HQ
    holds), written past the ledger's statistics."""
    now_us = to_micros(datetime.now(UTC))
    conn.execute(
        "INSERT INTO member_hold (id, card_hash, points, state, store, terminal, "
        "created_us, expires_us) SELECT 'other-' || n, md5(n::text) || md5(n::text), 10, "
        "'pending', 'S1' || (n %% 10), 'T01', %s, %s FROM generate_series(1, 3000) n",
        (now_us, now_us + HOUR_US))


def _explained(conn: psycopg.Connection[Any], plans: list[str], nested: bool = False) -> None:
    """auto_explain on ``conn``: each statement's plan, as run, appended to ``plans`` (with
    ``nested``, a function's statements too)."""
    conn.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
    conn.execute("LOAD 'auto_explain'")
    for setting in ("log_min_duration = 0", "log_analyze = on", "log_level = notice",
                    *(["log_nested_statements = on"] if nested else [])):
        conn.execute(f"SET auto_explain.{setting}")


def test_the_function_takes_the_members_lock_then_runs_todays_ask(postgres, tmp_path) -> None:
    ledger, _ = _ledger(postgres, tmp_path)
    try:
        source = ledger.requests.call(lambda: ledger.db.execute_sql(
            "SELECT prosrc FROM pg_proc WHERE proname = 'hq_hold_ask'").fetchone()[0])
        ask = holds.ASK
        for number in range(2, ask.count("?") + 2):  # the lock key is $1
            ask = ask.replace("?", f"${number}", 1)
        assert f"RETURN QUERY {ask};" in source, "holds.ASK changed: replace the function " \
            "by a new migration"
        lock = source.index(f"pg_advisory_xact_lock({_PG_MEMBER_LOCKS}, lock_key)")
        assert lock < source.index("RETURN QUERY")
    finally:
        ledger.close()


@pytest.mark.parametrize("way", ["thread", "loop"])
def test_a_hold_reads_what_its_members_writer_committed_while_it_waited(
        postgres, tmp_path, way: str) -> None:
    ledger, registered = _ledger(postgres, tmp_path)
    member = registered[0]
    looked = ledger.requests.call(ledger.answer, MemberRequest("lookup", member), "S001", "T01")
    assert looked.ok and looked.balance is not None and looked.balance > 100, looked
    answers: list[MemberResponse] = []

    def ask_hold() -> None:
        request = MemberRequest("hold", member, 100, "after-the-writer")
        if way == "thread":
            answers.append(ledger.holding[0].call(ledger.answer, request, "S001", "T01"))
            return

        async def on_a_loop() -> MemberResponse:
            loop_holds = LoopHolds(ledger, connections=1, max_connections=1)
            await loop_holds.open()
            try:
                return await asyncio.wait_for(loop_holds.answer(request, "S001", "T01"), WAIT)
            finally:
                await loop_holds.close()

        answers.append(asyncio.run(on_a_loop()))

    asking = threading.Thread(target=ask_hold, name="test-hold")
    try:
        # Another writer of the member (a batch, another till's hold) holds its lock and holds
        # every point it has; the hold sent meanwhile waits for the lock.
        with psycopg.connect(**ledger.db.connection_kwargs()) as writer:
            writer.execute(*member_locks([member]))
            now_us = to_micros(datetime.now(UTC))
            writer.execute(
                "INSERT INTO member_hold (id, card_hash, points, state, store, terminal, "
                "created_us, expires_us) VALUES ('the-writers', %s, %s, 'pending', 'S002', "
                "'T01', %s, %s)", (member, looked.balance, now_us, now_us + HOUR_US))
            asking.start()
            _until(lambda: ledger.requests.call(_waiting_for_advisory_locks, ledger.db) >= 1,
                   "the hold waits for the member's lock")
            assert not answers
            writer.commit()
        asking.join(WAIT)
        assert not asking.is_alive()
        # Read after the lock: the writer's hold counts, nothing is left to hold.
        [answer] = answers
        assert not answer.ok and answer.error == "insufficient points: 0 available", answer
        assert ledger.requests.call(lambda: ledger.db.execute_sql(
            "SELECT count(*) FROM member_hold WHERE id = 'after-the-writer'").fetchone()[0]) == 0
        # The statement was its own transaction: nothing holds the member's lock after it.
        granted = ledger.holding[1].call(ledger.answer, MemberRequest(
            "hold", registered[1], 100, "another"), "S001", "T01")
        assert granted.ok, granted
        assert ledger.requests.call(lambda: ledger.db.execute_sql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0]) == 0
    finally:
        if asking.is_alive():
            asking.join(WAIT)
        ledger.close()


def test_a_hold_that_names_no_member_takes_no_lock(postgres, tmp_path) -> None:
    ledger, registered = _ledger(postgres, tmp_path)
    try:
        assert holds.lock_key(MemberRequest("hold", None, 100, "h")) is None
        assert holds.lock_key(MemberRequest("hold", registered[0], 100, "h")) == \
            member_key(registered[0])
        row: Any = ledger.holding[0].call(lambda: holds.ask(
            ledger.db, None, ledger.ask_parameters(MemberRequest("hold", None, 100, "h"),
                                                   "S001", "T01", datetime.now(UTC))))
        found, inserted = holds.asked(row, MemberRequest("hold", None, 100, "h"))
        assert found.member is None and not inserted
    finally:
        ledger.close()


def test_a_holds_counts_read_their_own_holds_not_every_pending_one(postgres, tmp_path) -> None:
    """The function's counts find the till's pending holds by store and terminal and the
    member's by card hash (migration 34), whatever the statistics say of the pending holds: with
    migration 33's statement, after an ANALYZE that saw 3,000 pending holds of other tills (a
    backlog's redemptions that held HQ holds), the planner read the till's through the pending
    holds' expiry index, every pending hold (docs/hq.md, session 18 (c))."""
    ledger, registered = _ledger(postgres, tmp_path)
    plans: list[str] = []
    try:
        with psycopg.connect(**ledger.db.connection_kwargs(), autocommit=True) as conn:
            _other_tills_holds(conn)
            conn.execute("ANALYZE member_hold")
            _explained(conn, plans, nested=True)
            for n in range(7):  # past the 5 custom plans, the plan kept for the connection
                request = MemberRequest("hold", registered[n % 3], 100, f"mine-{n}")
                parameters = ledger.ask_parameters(request, "S001", "T01", datetime.now(UTC))
                conn.execute(holds.ASK_AT_ONCE.replace("?", "%s"),
                             (member_key(request.member or ""), *parameters))
        asks = [plan for plan in plans if "WITH q AS" in plan]
        assert len(asks) == 7
        for plan in asks:
            assert "Seq Scan on member_hold" not in plan, plan
            removed = [int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", plan)]
            assert max(removed, default=0) < 100, plan
    finally:
        ledger.close()


def test_the_upkeep_analyzes_the_holds_that_outgrew_their_statistics(postgres, tmp_path) -> None:
    """PL/pgSQL keeps a generic plan of the function's statement for the connection from its
    sixth run, until the table's next ANALYZE; made while ``member_hold``'s statistics said it
    was empty (a new HQ; each of bench_ingest's databases) it read the table whole seven times
    a hold, and went on doing so as a backlog's holds came in, until autovacuum's next visit
    (bench_ingest (c) with --c-backlog-holds: 12-30 ms a hold for the drain's first seconds).
    The holds' upkeep analyzes the table once it changed by more rows than its statistics
    count, and the kept plan is made again, by the holds' indexes (docs/hq.md, session 19
    (c))."""
    ledger, registered = _ledger(postgres, tmp_path)
    plans: list[str] = []

    def ask(conn: psycopg.Connection[Any], n: int, store: str = "S001") -> None:
        request = MemberRequest("hold", registered[n % 3], 100, f"{store}-{n}")
        parameters = ledger.ask_parameters(request, store, "T01", datetime.now(UTC))
        conn.execute(holds.ASK_AT_ONCE.replace("?", "%s"),
                     (member_key(request.member or ""), *parameters))

    try:
        with psycopg.connect(**ledger.db.connection_kwargs(), autocommit=True) as conn:
            conn.execute("DELETE FROM member_hold")
            conn.execute("VACUUM ANALYZE member_hold")  # as the bench's new database: empty
            assert not ledger.upkeep.call(ledger.keep_hold_statistics)
            for n in range(7):  # the connection's plan made, and kept, for an empty table
                ask(conn, n)
            _other_tills_holds(conn)  # a backlog's holds, before any ANALYZE
            conn.execute("SELECT pg_stat_force_next_flush()")  # counted before it is idle
            assert ledger.upkeep.call(ledger.keep_hold_statistics)
            assert not ledger.upkeep.call(ledger.keep_hold_statistics)  # analyzed: as counted
            _explained(conn, plans, nested=True)
            for n in range(7, 10):
                ask(conn, n, "S002")
        asks = [plan for plan in plans if "WITH q AS" in plan]
        assert len(asks) == 3
        for plan in asks:
            assert "Seq Scan on member_hold" not in plan, plan
            removed = [int(n) for n in re.findall(r"Rows Removed by (?:Join )?Filter: (\d+)",
                                                  plan)]
            assert max(removed, default=0) < 100, plan
    finally:
        ledger.close()


def test_a_lookup_reads_the_members_holds_not_every_pending_one(postgres, tmp_path) -> None:
    """The lookup's pending points find the member's holds by card hash alone: with "pending,
    not timed out" in the WHERE, on statistics that said member_hold was empty, the planner
    added the pending holds' expiry index and read every pending hold's entry a lookup
    (docs/hq.md, session 19 (c))."""
    ledger, registered = _ledger(postgres, tmp_path)
    plans: list[str] = []
    try:
        with psycopg.connect(**ledger.db.connection_kwargs(), autocommit=True) as conn:
            conn.execute("DELETE FROM member_hold")
            conn.execute("VACUUM ANALYZE member_hold")  # as the bench's new database: empty
            _other_tills_holds(conn)  # a backlog's holds, before any ANALYZE
            _explained(conn, plans)
            for member in registered[:3]:
                now_us = to_micros(datetime.now(UTC))
                conn.execute(lookups.LOOKUP.replace("?", "%s"), (now_us, now_us, member))
        looked = [plan for plan in plans if "FROM member_hold h" in plan]
        assert len(looked) == 3
        for plan in looked:
            assert "member_hold_pending_expiry" not in plan, plan
            assert "Seq Scan on member_hold" not in plan, plan
    finally:
        ledger.close()
