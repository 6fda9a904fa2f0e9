"""A till's member requests beside ingest on PostgreSQL (issue 11): with a batch's transaction
held open (ChainLedger.in_batch), a lookup and a hold on a member the batch does not name are
answered, a lookup of one it names reads the balance from before it, and a hold on one it names
waits for the batch's lock on that member, then answers once the batch commits."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter
from typing import Any

from peewee import Database

from terminal.hq.chain_ledger import ChainLedger, Outcome
from terminal.hq.database import open_hq_database
from terminal.loyalty.rules import Rules
from terminal.protocol.messages import Event, MemberRequest
from tests.hq.test_ingest_batches import TRUST, till_events
from tests.hq.test_postgres_collector import fresh_database
from tests.sync.harness import CARD_KEY, rules_data

WAIT = 120.0  # a bound on waiting for a real condition, never a measure


def _waiting_for_advisory_locks(db: Database) -> int:
    """Sessions of this database waiting for an advisory lock now."""
    return db.execute_sql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND wait_event = 'advisory'").fetchone()[0]


def _until(condition: Any, what: str) -> None:
    done = threading.Event()
    for _ in range(int(WAIT * 20)):
        if condition():
            return
        done.wait(0.05)  # polling a real condition (no event to wait on across processes)
    raise AssertionError(f"not reached: {what}")


def test_member_requests_are_answered_while_a_batch_holds_its_transaction_open(
        postgres, tmp_path) -> None:
    first = till_events(tmp_path)
    registered = [e.body["card_hash"] for e in first if e.kind == "register"]
    named, apart = registered[0], registered[2]
    # The second store's events of the members but the last: the batch that stays open.
    batch = [e for e in till_events(tmp_path, "S002")
             if e.body.get("card_hash") not in (apart, None) and e.kind != "adjust"]
    ledger = ChainLedger(open_hq_database(fresh_database(postgres)),
                         Rules.from_mapping(rules_data()), CARD_KEY, trust=TRUST)
    inside, release = threading.Event(), threading.Event()
    outcomes: list[Outcome] = []

    def hold_open(events: list[Event]) -> None:
        inside.set()
        assert release.wait(WAIT), "the test never released the batch"

    def ingest() -> None:
        outcomes.extend(ledger.thread.call(ledger.apply, batch))

    def ask(op: str, member: str, points: int | None = None,
            hold: str | None = None) -> Any:
        return ledger.requests.call(ledger.answer, MemberRequest(op, member, points, hold),
                                    "S001", "T01")

    try:
        assert set(Counter(o.result for o in ledger.thread.call(ledger.apply, first))) \
            <= {"applied", "flagged"}
        before = ask("lookup", named).balance
        ledger.in_batch = hold_open
        worker = threading.Thread(target=ingest, name="test-ingest")
        worker.start()
        assert inside.wait(WAIT), "the batch never started"

        # The batch is mid-transaction, holding its members' locks: others are served.
        assert ask("lookup", apart).ok
        held = ask("hold", apart, 100, "hold-apart")
        assert held.ok and held.hold_id == "hold-apart"
        assert ask("lookup", named).balance == before  # a snapshot from before the batch

        # A hold on a member the batch names waits for that member, and only for it.
        answers: list[Any] = []
        waiting = threading.Thread(target=lambda: answers.append(
            ask("hold", named, 100, "hold-named")), name="test-hold")
        waiting.start()
        _until(lambda: _waiting_for_advisory_locks(ledger.db) >= 1, "the hold waits")
        assert not answers
        release.set()
        worker.join(WAIT)
        waiting.join(WAIT)
        assert not worker.is_alive() and not waiting.is_alive()
        assert answers and answers[0].ok
        assert len(outcomes) == len(batch)
        assert {o.result for o in outcomes} <= {"applied", "flagged"}
        assert ledger.thread.call(ledger.store.check_invariants) == []
    finally:
        release.set()
        ledger.close()


def _same_thread_card(ledger: ChainLedger, member: str) -> str:
    """A card hash HQ does not know whose own hold thread is ``member``'s."""
    own = ledger.request_thread(MemberRequest("hold", member, 100, "x"))
    for n in range(1000):
        card = hashlib.sha256(f"unknown-{n}".encode()).hexdigest()
        if ledger.request_thread(MemberRequest("hold", card, 100, "x")) is own:
            return card
    raise AssertionError("no card hash on the member's thread")


def test_a_hold_waiting_for_a_batch_holds_up_no_other_members_hold(postgres, tmp_path) -> None:
    """The collector's way (request_thread, then run on that thread): a hold on a member a
    batch holds waits on one holding thread; a hold on another member whose own thread that
    is goes to an idle one and is answered meanwhile (it queued behind the waiting one)."""
    first = till_events(tmp_path)
    named = next(e.body["card_hash"] for e in first if e.kind == "register")
    batch = [e for e in till_events(tmp_path, "S002")
             if e.body.get("card_hash") is not None and e.kind != "adjust"]
    assert any(e.body["card_hash"] == named for e in batch)
    ledger = ChainLedger(open_hq_database(fresh_database(postgres)),
                         Rules.from_mapping(rules_data()), CARD_KEY, trust=TRUST)
    inside, release = threading.Event(), threading.Event()

    def hold_open(events: list[Event]) -> None:
        inside.set()
        assert release.wait(WAIT), "the test never released the batch"

    async def ask(member: str, hold: str) -> Any:
        request = MemberRequest("hold", member, 100, hold)
        return await ledger.request_thread(request).run(ledger.answer, request, "S001", "T01")

    async def scenario() -> None:
        waiting = asyncio.ensure_future(ask(named, "hold-named"))
        await asyncio.to_thread(_until, lambda: _waiting_for_advisory_locks(ledger.db) >= 1,
                                "the hold waits for the batch")
        other = await asyncio.wait_for(ask(_same_thread_card(ledger, named), "hold-other"),
                                       WAIT / 4)
        assert not other.ok and other.error == "unknown member"  # answered
        assert not waiting.done()  # the batch still holds the named member
        release.set()
        assert (await asyncio.wait_for(waiting, WAIT)).ok

    try:
        ledger.thread.call(ledger.apply, first)
        ledger.in_batch = hold_open
        worker = threading.Thread(target=lambda: ledger.thread.call(ledger.apply, batch),
                                  name="test-ingest")
        worker.start()
        assert inside.wait(WAIT), "the batch never started"
        asyncio.run(scenario())
        worker.join(WAIT)
        assert not worker.is_alive()
    finally:
        release.set()
        ledger.close()
