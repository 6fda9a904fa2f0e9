"""Holds and voids on the collector's event loop (terminal.hq.loop_holds, PostgreSQL): a hold
on a member an open ingest batch holds waits for that batch, while other members' holds and
voids are answered on the same loop meanwhile; a pooled connection the server ended is replaced
and the request answered on another; one that fails on every attempt is refused with the
error, not left unanswered; a collector with ``holds_on_loop`` answers a real till's hold and
void through the broker that way. (That they answer and write as the thread's way does:
tests/hq/test_hold_at_once.py, way "loop".)"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import psycopg
import pytest

from terminal.hq import loop_holds
from terminal.hq.chain_ledger import ChainLedger, Outcome
from terminal.hq.database import open_hq_database
from terminal.hq.loop_holds import APPLICATION, LoopHolds
from terminal.hq.models import MemberHold
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import Member
from terminal.protocol.hq_refusals import Refusal
from terminal.protocol.messages import Event, MemberRequest, MemberResponse
from tests.hq.test_ingest_batches import TRUST, till_events
from tests.hq.test_postgres_collector import fresh_database
from tests.hq.test_requests_beside_ingest import WAIT, _until, _waiting_for_advisory_locks
from tests.sync.conftest import run
from tests.sync.harness import CARD_KEY, Chain, rules_data


def _ledger(postgres: Any, tmp_path: Any) -> tuple[ChainLedger, list[str]]:
    """A ledger on a new database with a till's members registered; their card hashes."""
    first = till_events(tmp_path)
    ledger = ChainLedger(open_hq_database(fresh_database(postgres)),
                         Rules.from_mapping(rules_data()), CARD_KEY, trust=TRUST)
    assert {o.result for o in ledger.thread.call(ledger.apply, first)} <= {"applied", "flagged"}
    return ledger, [e.body["card_hash"] for e in first if e.kind == "register"]


def hold(member: str, hold_id: str) -> MemberRequest:
    return MemberRequest("hold", member, 100, hold_id)


def test_on_the_loop_a_hold_waits_for_its_members_batch_and_for_nothing_else(
        postgres, tmp_path) -> None:
    ledger, registered = _ledger(postgres, tmp_path)
    named, apart = registered[0], registered[2]
    batch = [e for e in till_events(tmp_path, "S002")
             if e.body.get("card_hash") not in (apart, None) and e.kind != "adjust"]
    assert any(e.body["card_hash"] == named for e in batch)
    inside, release = threading.Event(), threading.Event()
    outcomes: list[Outcome] = []

    def hold_open(events: list[Event]) -> None:
        inside.set()
        assert release.wait(WAIT), "the test never released the batch"

    ledger.in_batch = hold_open
    worker = threading.Thread(target=lambda: outcomes.extend(
        ledger.thread.call(ledger.apply, batch)), name="test-ingest")
    holds = LoopHolds(ledger)

    async def scenario() -> None:
        await holds.open()
        try:
            worker.start()
            assert await asyncio.to_thread(inside.wait, WAIT), "the batch never started"
            waiting = asyncio.ensure_future(holds.answer(hold(named, "hold-named"), "S001",
                                                         "T01"))
            await asyncio.to_thread(_until, lambda: _waiting_for_advisory_locks(ledger.db) >= 1,
                                    "the hold waits for the batch")
            # The batch holds its members: another member's hold and void go on meanwhile.
            other = await asyncio.wait_for(holds.answer(hold(apart, "hold-apart"), "S001",
                                                        "T01"), WAIT / 4)
            assert other.ok and other.hold_id == "hold-apart", other
            voided = await asyncio.wait_for(holds.answer(
                MemberRequest("void", None, None, "hold-apart"), "S001", "T01"), WAIT / 4)
            assert voided.ok, voided
            assert not waiting.done()
            release.set()
            answer = await asyncio.wait_for(waiting, WAIT)
            assert answer.ok and answer.hold_id == "hold-named", answer
        finally:
            release.set()
            await holds.close()

    try:
        asyncio.run(scenario())
        worker.join(WAIT)
        assert not worker.is_alive()
        assert {o.result for o in outcomes} <= {"applied", "flagged"}
        assert ledger.requests.call(lambda: sorted(MemberHold.select(
            MemberHold.id, MemberHold.state).tuples())) == [("hold-apart", "voided"),
                                                            ("hold-named", "pending")]
    finally:
        release.set()
        ledger.close()


def _end_pooled_connections(ledger: ChainLedger) -> int:
    """The server ends the loop's pooled connections (as a restart or an administrator
    would): how many."""
    return ledger.requests.call(lambda: ledger.db.execute_sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = %s",
        (APPLICATION,)).fetchone()[0])


def test_a_connection_the_server_ended_is_replaced_and_the_request_answered(
        postgres, tmp_path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, registered = _ledger(postgres, tmp_path)
    holds = LoopHolds(ledger, connections=1, max_connections=1)  # the one connection ended

    async def ask(request: MemberRequest) -> MemberResponse:
        return await asyncio.wait_for(holds.answer(request, "S001", "T01"), WAIT)

    async def scenario() -> None:
        await holds.open()
        try:
            assert (await ask(hold(registered[0], "first"))).ok
            assert await asyncio.to_thread(_end_pooled_connections, ledger) == 1
            caplog.set_level(logging.WARNING, logger="terminal.hq.loop_holds")
            second = await ask(hold(registered[1], "second"))
            assert second.ok and second.hold_id == "second", second
            assert any("sent again on another connection" in record.getMessage()
                       for record in caplog.records)
            assert (await ask(MemberRequest("void", None, None, "first"))).ok

            # Broken on every attempt: refused, saying why, and nothing written.
            asked = loop_holds._ask

            async def ended(conn: psycopg.AsyncConnection[Any], *args: Any) -> Any:
                await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
                return await asked(conn, *args)

            monkeypatch.setattr(loop_holds, "_ask", ended)
            refused = await ask(hold(registered[2], "third"))
            assert not refused.ok and refused.error is not None
            assert refused.error.startswith("HQ's database failed: "), refused.error
            # Its code for the till's words; the database's own words stay in the English.
            assert (refused.code, refused.values) == ("hq.database", None)
            monkeypatch.setattr(loop_holds, "_ask", asked)
            # The pool has its connection again.
            assert (await ask(hold(registered[2], "fourth"))).ok
        finally:
            await holds.close()

    try:
        asyncio.run(scenario())
        assert ledger.requests.call(lambda: sorted(MemberHold.select(
            MemberHold.id, MemberHold.state).tuples())) == [
                ("first", "voided"), ("fourth", "pending"), ("second", "pending")]
    finally:
        ledger.close()


def test_a_collector_answers_a_tills_hold_and_void_on_its_loop(pki, broker, postgres,
                                                                tmp_path) -> None:
    async def scenario() -> None:
        chain = Chain(tmp_path, pki, broker)
        till = chain.till("S001", "T01")
        ledger = ChainLedger(open_hq_database(fresh_database(postgres)), chain.rules, CARD_KEY)
        hq = chain.hq(ledger=ledger, holds_on_loop=True)
        assert hq.loop_holds is not None
        answered: list[str] = []
        answer = hq.loop_holds.answer

        async def counted(request: MemberRequest, store: str, terminal: str) -> MemberResponse:
            answered.append(request.op)
            return await answer(request, store, terminal)

        hq.loop_holds.answer = counted  # type: ignore[method-assign]
        try:
            async with chain:
                await till.register("8000555566")
                await till.sell(60000, "8000555566")
                await chain.drained()
                card_hash = await till.run(
                    lambda: Member.get(Member.card_last4 == "5566").card_hash)
                hold = await till.link.hold(card_hash, 100, "sale-1")
                assert not hold.offline
                assert await ledger.requests.run(lambda: MemberHold.get(
                    MemberHold.id == hold.id).state) == "pending"
                await till.link.void(hold)
                assert await ledger.requests.run(lambda: MemberHold.get(
                    MemberHold.id == hold.id).state) == "voided"
        finally:
            ledger.close()
        assert answered == ["hold", "void"]  # on the loop, not on a holding thread

    run(scenario(), timeout=120)


@pytest.mark.parametrize("ledger_says", ["refuses", "voids"])
def test_a_void_the_statement_and_the_ledger_decide_apart_ends_as_the_answer_says(
        postgres, tmp_path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch, ledger_says: str) -> None:
    """A bug planted: the ledger's void_answer decides otherwise than holds.VOID did. The till
    told "refused" finds its hold as before it asked (pending, not voided by the statement);
    told "voided", finds it voided (another till's hold, which the statement kept)."""
    ledger, registered = _ledger(postgres, tmp_path)
    holds = LoopHolds(ledger)
    decide = ledger.void_answer

    def planted(request: MemberRequest, store: str, terminal: str,
                hold: MemberHold | None) -> MemberResponse:
        if ledger_says == "refuses":
            return ledger.refuse(request, Refusal("test.planted", {}, "planted refusal"))
        assert hold is not None
        return decide(request, hold.store, hold.terminal, hold)  # as if the till's own

    async def scenario() -> MemberResponse:
        await holds.open()
        try:
            granted = await asyncio.wait_for(holds.answer(hold(registered[0], "h1"), "S001",
                                                          "T01"), WAIT)
            assert granted.ok, granted
            monkeypatch.setattr(ledger, "void_answer", planted)
            caplog.set_level(logging.ERROR, logger="terminal.hq.loop_holds")
            voider = "T01" if ledger_says == "refuses" else "T02"  # T02: the statement keeps
            return await asyncio.wait_for(holds.answer(
                MemberRequest("void", None, None, "h1"), "S001", voider), WAIT)
        finally:
            await holds.close()

    try:
        answer = asyncio.run(scenario())
        state, settled = ledger.requests.call(lambda: MemberHold.select(
            MemberHold.state, MemberHold.settled_us).where(MemberHold.id == "h1").tuples()[0])
        if ledger_says == "refuses":
            assert not answer.ok and answer.error == "planted refusal", answer
            assert (state, settled) == ("pending", None)
        else:
            assert answer.ok, answer
            assert state == "voided" and settled is not None
        assert any("taken the full way" in record.getMessage() for record in caplog.records)
    finally:
        ledger.close()
