"""Collectors applying in parallel on one PostgreSQL (issue 11): no chain-wide lock, one member's
writes serialised on that member, an event id applied once whichever collector gets it.

Two ChainLedgers (two collectors' ledgers, each on its own connections) apply interleaved
batches of two tills' events naming the same members, each also getting some of the other's
events (a second delivery), in two threads at once; what they leave is compared row by row
with what one ledger leaves applying every event once. The sales are small enough that no
member changes tier, so the points each earns do not depend on which till's sale came first."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from terminal.hq.chain_ledger import ChainLedger, Outcome
from terminal.hq.database import open_hq_database
from terminal.hq.models import HQ_MODELS, AppliedEvent
from terminal.loyalty.cards import card_hash
from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import Registration, SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.card_states import RETIRED, CardUpdate
from terminal.loyalty.store.models import MODELS, LedgerEntry, Lot, Member
from terminal.protocol.messages import Event
from tests.hq.test_ingest_batches import TRUST, a_till, outbox_events
from tests.hq.test_postgres_collector import fresh_database
from tests.sync.harness import CARD_KEY, rules_data

CARDS = ("6200000000000018", "6200000000000026", "6200000000000034", "6200000000000042")
BATCH = 4
ROUNDS = 50  # deliveries of what was deferred: a bound, reached only when something is broken


def _till_events(tmp_path: Path, store: str) -> list[Event]:
    """A till registering every card, selling to each five times (50 yuan: no tier changes)
    and once anonymously per round, and refunding its first member sale."""
    till, moment = a_till(tmp_path, store)
    for card in CARDS:
        till.register(Registration(card=card, operator="ann"), moment())
    sales = []
    for n in range(5):
        for card in (*CARDS, None):
            sale = SaleRequest(str(uuid.uuid4()), [Line("SKU1", 1, 5000 + n, "货品", "")],
                               card=card, operator="ann")
            sales.append(till.sale(sale, moment()).id)
    till.refund(sales[0], None, moment(), operator="ann", refund_id=f"r-{store}")
    return outbox_events(till)


@contextmanager
def _ledgers(url: str, count: int = 2) -> Iterator[list[ChainLedger]]:
    """``count`` collectors' ledgers on one database. One database object, as in a process the
    models are bound to one database at a time (terminal.loyalty.store.binding): each ledger's
    threads have connections of their own, so PostgreSQL sees as many writers as collectors."""
    db = open_hq_database(url)
    ledgers = [ChainLedger(db, Rules.from_mapping(rules_data()), CARD_KEY, trust=TRUST)
               for _ in range(count)]
    try:
        yield ledgers
    finally:
        for ledger in ledgers:
            ledger.close()


def _deliver(ledger: ChainLedger, events: list[Event], start: threading.Barrier,
             outcomes: list[Outcome], failures: list[BaseException]) -> None:
    """A collector's work: batches of BATCH events, the deferred ones delivered again (as the
    till publishes what was not acked) until none is left."""
    try:
        start.wait()
        waiting = list(events)
        for _ in range(ROUNDS):
            again = []
            for first in range(0, len(waiting), BATCH):
                for outcome in ledger.thread.call(ledger.apply, waiting[first:first + BATCH]):
                    (outcomes if outcome.ack else again).append(outcome)
            waiting = [outcome.event for outcome in again]
            if not waiting:
                return
        raise AssertionError(f"still deferred: {[e.kind for e in waiting]}")
    except BaseException as exc:  # reported by the test's thread
        failures.append(exc)


def _ledger_rows(ledger: ChainLedger) -> dict[str, Any]:
    """What the chain ledger holds, without its random ids and sequence numbers (two
    collectors number from two blocks of the sequence) and the members' home stores (the
    store whose registration came first)."""
    def read() -> dict[str, Any]:
        with ledger.db.bind_ctx(MODELS + HQ_MODELS):
            entries = (LedgerEntry.select(Member.card_hash, LedgerEntry.kind, LedgerEntry.points,
                                          LedgerEntry.debt_delta, LedgerEntry.reason)
                       .join(Member).tuples())
            applied = AppliedEvent.select(AppliedEvent.id, AppliedEvent.kind,
                                          AppliedEvent.outcome, AppliedEvent.points_in,
                                          AppliedEvent.points_out).tuples()
            return {
                # Which of a card's two registrations came first (and earned the bonus) is the
                # one thing the order decides: the points registrations earned are summed.
                "applied": sorted(row if row[1] != "register" else row[:3] for row in applied),
                "registered": sum(row[3] for row in applied if row[1] == "register"),
                "entries": sorted(entries),
                "members": sorted(Member.select(Member.card_hash, Member.balance, Member.debt,
                                                Member.tier).tuples()),
                "lots": sorted(Lot.select(Member.card_hash, Lot.points, Lot.remaining)
                               .join(Member).tuples()),
            }
    return ledger.thread.call(read)


@contextmanager
def _held_open(ledger: ChainLedger, events: list[Event], held: list[Outcome]) -> Iterator[None]:
    """``ledger`` applies ``events`` on a thread of the test's, its batch held open inside its
    transaction (ChainLedger.in_batch) while the block runs; ``held`` gets its outcomes once
    it has committed."""
    inside, release = threading.Event(), threading.Event()

    def hold_open(batch: list[Event]) -> None:
        inside.set()
        assert release.wait(WAIT), "the test never released the batch"

    ledger.in_batch = hold_open
    first = threading.Thread(target=lambda: held.extend(ledger.thread.call(
        ledger.apply, events)), name="test-open")
    try:
        first.start()
        assert inside.wait(WAIT), "the batch never started"
        yield
    finally:
        release.set()
        first.join(WAIT)


def _once_each(outcomes: list[Outcome]) -> Counter[str]:
    """How many times each event was applied (or refused), whichever collector did it."""
    return Counter(o.event.id for o in outcomes if o.result != "duplicate")


def test_two_collectors_in_parallel_leave_the_ledger_one_collector_leaves(
        postgres, tmp_path) -> None:
    s1, s2 = _till_events(tmp_path, "S001"), _till_events(tmp_path, "S002")
    every = {event.id for event in s1 + s2}
    with _ledgers(fresh_database(postgres), 1) as (alone,):
        reference: list[Outcome] = []
        _deliver(alone, s1 + s2, threading.Barrier(1), reference, [])
        assert set(_once_each(reference)) == every

        with _ledgers(fresh_database(postgres)) as (one, two):
            # Interleaved: each gets its till's events and a third of the other's, again.
            streams = [s1 + s2[::3], s2 + s1[1::3]]
            start, failures = threading.Barrier(2), []
            outcomes: list[list[Outcome]] = [[], []]
            threads = [threading.Thread(target=_deliver, args=(ledger, stream, start,
                                                               got, failures))
                       for ledger, stream, got in zip((one, two), streams, outcomes,
                                                      strict=True)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert failures == []
            both = outcomes[0] + outcomes[1]
            assert _once_each(both) == Counter(every)  # each event applied exactly once
            assert len(both) == len(streams[0]) + len(streams[1])
            assert _ledger_rows(one) == _ledger_rows(alone)
            assert one.thread.call(one.store.check_invariants) == []


def test_the_same_batch_on_two_collectors_at_once_is_applied_once(postgres, tmp_path) -> None:
    events = _till_events(tmp_path, "S001")
    with _ledgers(fresh_database(postgres)) as ledgers:
        start, failures = threading.Barrier(2), []
        outcomes: list[list[Outcome]] = [[], []]
        threads = [threading.Thread(target=_deliver, args=(ledger, events, start, got,
                                                           failures))
                   for ledger, got in zip(ledgers, outcomes, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert _once_each(outcomes[0] + outcomes[1]) == Counter(e.id for e in events)
        rows = _ledger_rows(ledgers[0])
        assert len(rows["applied"]) == len(events)
        assert ledgers[0].thread.call(ledgers[0].store.check_invariants) == []


def test_a_batch_never_waits_for_another_collectors_batch(postgres, tmp_path) -> None:
    """One collector's batch is held open mid-transaction: another collector's batch of other
    members commits meanwhile; the events of its batch naming a member of the open one come
    back busy (not applied, not acked: for its next batch) without waiting, and apply once the
    first batch has committed."""
    s1, s2 = _till_events(tmp_path, "S001"), _till_events(tmp_path, "S002")
    card = [e.body["card_hash"] for e in s1 if e.kind == "register"]
    sales = [e for e in s1 + s2 if e.kind == "sale"]

    def of(events: list[Event], member: str) -> list[Event]:
        return [e for e in events if e.body.get("card_hash") == member]

    with _ledgers(fresh_database(postgres)) as (one, two):
        assert {o.result for o in one.thread.call(
            one.apply, [e for e in s1 if e.kind == "register"])} == {"applied"}
        held: list[Outcome] = []
        with _held_open(one, of(sales[:len(sales) // 2], card[0]), held):
            others = two.thread.call(two.apply, of(sales, card[1]))
            assert {o.result for o in others} == {"applied"}
            mixed = of(sales[len(sales) // 2:], card[0]) + of(sales, card[2])
            busy = two.thread.call(two.apply, mixed)
            assert {o.event.id for o in busy if o.result == "busy"} == \
                {e.id for e in of(mixed, card[0])}
            assert all(not o.ack for o in busy if o.result == "busy")
            assert {o.result for o in busy if o.event.body["card_hash"] == card[2]} == \
                {"applied"}
        again = two.thread.call(two.apply, of(mixed, card[0]))
        assert {o.result for o in held + again} == {"applied"}
        assert one.thread.call(one.store.check_invariants) == []


def test_a_batch_naming_a_retired_card_locks_the_card_carrying_its_member(
        postgres, tmp_path) -> None:
    """A batch naming a card HQ retired writes to the member of the card that replaced it, so it
    locks that card too (read with the batch's locks): another collector's batch holding the
    new card's member open makes its events come back busy; once that commits they apply, to
    the new card's member."""
    s1, s2 = _till_events(tmp_path, "S001"), _till_events(tmp_path, "S002")
    card = [e.body["card_hash"] for e in s1 if e.kind == "register"]
    new = card_hash(CARD_KEY, "6200000000000059")
    with _ledgers(fresh_database(postgres)) as (one, two):
        assert {o.result for o in one.thread.call(
            one.apply, [e for e in s1 if e.kind == "register"])} == {"applied"}
        assert one.thread.call(one.store.apply_card_update, CardUpdate(
            card[0], 1, RETIRED, "lost", replaced_by=new), Moment(datetime.now(UTC)))
        to_new = [replace(e, body={**e.body, "card_hash": new})
                  for e in s1 if e.kind == "sale" and e.body.get("card_hash") == card[1]][:2]
        to_old = [e for e in s2 if e.kind == "sale" and e.body.get("card_hash") == card[0]]
        to_other = [e for e in s2 if e.kind == "sale" and e.body.get("card_hash") == card[2]]
        held: list[Outcome] = []
        with _held_open(one, to_new, held):
            outcomes = two.thread.call(two.apply, to_old + to_other)
            assert {o.event.id for o in outcomes if o.result == "busy"} == \
                {e.id for e in to_old}
            assert {o.result for o in outcomes if o.event in to_other} == {"applied"}
        again = two.thread.call(two.apply, to_old)
        assert {o.result for o in held + again} == {"applied"}
        with one.db.bind_ctx(MODELS + HQ_MODELS):
            carried = {entry.member.card_hash for entry in LedgerEntry.select().join(
                AppliedEvent, on=(LedgerEntry.seq.between(AppliedEvent.first_seq,
                                                          AppliedEvent.last_seq)))
                .where(AppliedEvent.id.in_([e.id for e in to_old]))}
        assert carried == {new}
        assert one.thread.call(one.store.check_invariants) == []


WAIT = 120.0  # a bound on waiting for a real condition, never a measure
