"""A hold on PostgreSQL in one wait for the server (ChainLedger._hold_at_once: one statement
reads, decides and writes, sent with the BEGIN, the member's lock and the COMMIT) answers and
writes exactly what the full way does (ChainLedger._hold: the read, HQ's bounds in Python, then
the writes): two ledgers on two databases take the same random requests, voids, sales and
changes of state, one each way, and every answer and every hold row must agree, without the one
statement and the ledger ever deciding differently (which the ledger logs as an error). The one
wait is taken both on a holding thread (Peewee's connection) and on an event loop (psycopg's
async connections, terminal.hq.loop_holds: the collector's way since session 13)."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import open_hq_database
from terminal.hq.loop_holds import LoopHolds
from terminal.hq.models import MemberHold
from terminal.hq.policy import TrustPolicy
from terminal.loyalty.calendar import month_start
from terminal.loyalty.clock import to_micros
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import CardState, Member
from terminal.protocol.hq_refusals import ENGLISH, Refusal
from terminal.protocol.messages import MemberRequest, MemberResponse
from tests.hq.test_batch_kept import Till, card
from tests.hq.test_postgres_collector import fresh_database
from tests.sync.harness import CARD_KEY, rules_data

POLICY = TrustPolicy.from_mapping({"holds": {
    "max_per_till": 3, "max_per_member": 2, "max_points_per_till": 5000,
    "max_per_till_member_per_hour": 4}})
MEMBERS = 6  # registered 0-5; 6 is unknown
TILLS = ("T01", "T02", "T03")
POINTS = (None, 1, 100, 500, 1000, 2000, 2900, 3500, 10**20)
# Every kind of answer the run should have met (the words of the refusals).
KINDS = ("granted", "repeat", "insufficient points", "holds.max_per_till:",
         "holds.max_points_per_till", "holds.max_per_member", "max_per_till_member_per_hour",
         "card frozen", "card retired", "unknown member", "another till",
         "another member or other points", "the hold was")


@pytest.fixture
def two_ledgers(postgres: Any) -> Iterator[Callable[[int | None], tuple[ChainLedger,
                                                                          ChainLedger]]]:
    made: list[ChainLedger] = []

    def make(day_cap: int | None) -> tuple[ChainLedger, ChainLedger]:
        rules = Rules.from_mapping(rules_data(per_member_per_day=day_cap))
        pair = tuple(ChainLedger(open_hq_database(fresh_database(postgres)), rules, CARD_KEY,
                                 hold_ttl=timedelta(hours=1), trust=POLICY) for _ in range(2))
        made.extend(pair)
        return pair  # type: ignore[return-value]

    yield make
    for ledger in made:
        ledger.close()


class Loop:
    """An event loop on a thread of its own, for a test's synchronous code to run coroutines
    on (as the collector's loop runs its requests' tasks)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-loop")
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


@pytest.fixture
def on_a_loop() -> Iterator[Callable[[ChainLedger], Callable[..., MemberResponse]]]:
    """``make(ledger)``: a function answering a hold or void of ``ledger`` the collector's way
    on PostgreSQL (:class:`LoopHolds` on an event loop), as ``ledger.answer`` takes them."""
    loop, opened = Loop(), []

    def make(ledger: ChainLedger, **sizes: int) -> Callable[..., MemberResponse]:
        holds = LoopHolds(ledger, **sizes)
        loop.run(holds.open())
        opened.append(holds)
        return lambda request, store, terminal: loop.run(holds.answer(request, store, terminal))

    yield make
    for holds in opened:
        loop.run(holds.close())
    loop.close()


def kind(response: MemberResponse, request: MemberRequest) -> str:
    if response.ok:
        return "granted" if response.balance is not None else "repeat"
    for name in KINDS:
        if name in (response.error or ""):
            return name
    return response.error or ""


@pytest.mark.parametrize(("seed", "day_cap", "way"), [
    (1, 3000, "thread"), (2, None, "thread"), (3, 3000, "loop"), (4, None, "loop")])
def test_a_hold_in_one_statement_answers_and_writes_as_the_full_way(
        two_ledgers: Callable[[int | None], tuple[ChainLedger, ChainLedger]],
        on_a_loop: Callable[[ChainLedger], Callable[..., MemberResponse]],
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, seed: int,
        day_cap: int | None, way: str) -> None:
    at_once, full_way = two_ledgers(day_cap)
    # A hold or void of the one-wait ledger: on a holding thread, or on an event loop.
    ask = (on_a_loop(at_once) if way == "loop" else
           lambda request, store, terminal: at_once.holding[0].call(at_once.answer, request,
                                                                     store, terminal))
    went_full_way: list[MemberRequest] = []  # by the one-statement ledger: tier reviews due

    def counted(request: MemberRequest, store: str, terminal: str) -> MemberResponse:
        went_full_way.append(request)
        return ChainLedger._hold_full_way(at_once, request, store, terminal)

    monkeypatch.setattr(at_once, "_hold_full_way", counted)
    rng = random.Random(seed)
    till = Till("S001", datetime.now(UTC) - timedelta(hours=1))
    events = [till.register(n) for n in range(MEMBERS)]
    events += [till.sale(n, 300_000) for n in range(MEMBERS)]  # 3,000 points each, +100 bonus
    for ledger in (at_once, full_way):
        assert {o.result for o in ledger.thread.call(ledger.apply, events)} == {"applied"}
    asked: list[tuple[MemberRequest, str]] = []  # holds asked so far and by which till
    granted: list[tuple[MemberRequest, str]] = []  # holds granted (not repeats)
    sold: list[tuple[MemberRequest, str]] = []  # holds a sale named (posted if T01's)
    seen: set[str] = set()

    def both(arrange: Callable[[], object]) -> None:
        for ledger in (at_once, full_way):
            ledger.requests.call(lambda ledger=ledger: ledger.db.atomic()(arrange)())

    def card_state(n: int, state: str | None) -> Callable[[], object]:
        def arrange() -> None:
            CardState.delete().where(CardState.card_hash == card(n)).execute()
            if state is not None:
                CardState.insert(card_hash=card(n), state=state, reason="checking", version=1,
                                 updated_us=to_micros(datetime.now(UTC))).execute()
        return arrange

    def expire(n: int) -> Callable[[], object]:
        past = to_micros(datetime.now(UTC) - timedelta(hours=2))
        return lambda: MemberHold.update(expires_us=past).where(
            MemberHold.card_hash == card(n)).execute()

    def review_due(n: int) -> Callable[[], object]:
        before = to_micros(month_start(datetime.now(UTC), at_once.store.rules.zone)) - 1
        value = rng.choice((None, before))
        return lambda: Member.update(tier_reviewed_us=value).where(
            Member.card_hash == card(n)).execute()

    def void_both(hold_id: str | None, terminal: str) -> None:
        void = MemberRequest("void", None, None, hold_id)
        one = ask(void, "S001", terminal)
        other = full_way.holding[0].call(full_way.answer, void, "S001", terminal)
        assert (one.ok, one.error, one.hold_id, one.code, one.values) == \
            (other.ok, other.error, other.hold_id, other.code, other.values)
        seen.add("void " + (one.error or "granted"))

    caplog.set_level(logging.ERROR, logger="terminal.hq.chain_ledger")
    for _ in range(450):
        if rng.random() < 0.1 and (granted or sold):  # a void: the till's own or another's
            request, by = rng.choice(rng.choice([kept for kept in (granted, sold) if kept]))
            void_both(rng.choice((request.hold_id, "none")),
                      by if rng.random() < 0.7 else rng.choice(TILLS))
            continue
        roll = rng.random()
        if roll < 0.04:
            both(card_state(rng.randrange(MEMBERS), rng.choice(("frozen", "retired", None))))
            continue
        if roll < 0.08:
            both(expire(rng.randrange(MEMBERS)))
            continue
        if roll < 0.10:
            both(review_due(rng.randrange(MEMBERS)))
            continue
        if roll < 0.16 and asked:  # a sale posts a hold of T01's (or redeems without one)
            held, by = rng.choice(asked)
            sold.append((held, by))  # voided later: posted if it was T01's and covered
            n = next((n for n in range(MEMBERS + 1) if card(n) == held.member), 0)
            sale = [till.sale(n, 100_000, redeem=min(held.points or 0, 1000),
                              hold_id=held.hold_id)]
            outcomes = [ledger.thread.call(ledger.apply, sale) for ledger in (at_once, full_way)]
            assert [o.result for o in outcomes[0]] == [o.result for o in outcomes[1]]
            continue
        terminal = rng.choice(TILLS)
        if roll < 0.24 and asked:  # the same request again (a timeout): a repeat if pending
            request, terminal = rng.choice(asked)
        elif roll < 0.30 and asked:  # the same id: another till's, member's or points
            old, by = rng.choice(asked)
            terminal = rng.choice((by, terminal))
            request = MemberRequest("hold", rng.choice((old.member, card(rng.randrange(7)))),
                                    rng.choice((old.points, *POINTS)), old.hold_id)
        else:
            request = MemberRequest("hold", card(rng.randrange(MEMBERS + 1)),
                                    rng.choice(POINTS), str(uuid.uuid4()))
        one = ask(request, "S001", terminal)
        other = full_way.holding[0].call(full_way._hold_full_way, request, "S001", terminal)
        assert (one.ok, one.error, one.balance, one.tier, one.hold_id, one.member, one.code,
                one.values) == (other.ok, other.error, other.balance, other.tier, other.hold_id,
                                other.member, other.code, other.values), request
        assert one.ok or one.code in ENGLISH, one  # every refusal carries its code
        seen.add(kind(one, request))
        if one.ok or rng.random() < 0.3:
            asked.append((request, terminal))
        if one.ok and one.balance is not None:
            granted.append((request, terminal))

    def holds() -> list[tuple[Any, ...]]:
        return sorted(MemberHold.select(MemberHold.id, MemberHold.card_hash, MemberHold.points,
                                        MemberHold.state, MemberHold.store,
                                        MemberHold.terminal).tuples())

    for hold_id, *_, state, _, terminal in full_way.requests.call(holds):
        if state == "posted":  # too rare among the random voids
            void_both(hold_id, terminal)
    assert at_once.requests.call(holds) == full_way.requests.call(holds)
    balances = [ledger.requests.call(lambda: sorted(
        Member.select(Member.card_hash, Member.balance).tuples()))
        for ledger in (at_once, full_way)]
    assert balances[0] == balances[1]
    assert [record.getMessage() for record in caplog.records] == []  # never decided apart
    assert 0 < len(went_full_way) < len(asked) / 4  # tier reviews due (any other way logs)
    assert set(KINDS) - seen == set(), seen
    assert {"void granted", "void unknown hold",
            "void the hold is already posted by its sale"} <= seen, seen
    assert any("more than a member may redeem in a day" in name for name in seen) == \
        (day_cap is not None)


def test_a_hold_the_statement_granted_and_the_ledger_refuses_is_not_kept(
        two_ledgers: Callable[[int | None], tuple[ChainLedger, ChainLedger]],
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Were the two ever to decide apart (a bug), the ledger's refusal stands and the hold the
    statement wrote is deleted, not voided: a voided hold still covers its till's redemption
    (HQ said yes, the till sold), and here HQ said no."""
    ledger, _ = two_ledgers(None)
    till = Till("S001", datetime.now(UTC) - timedelta(hours=1))
    assert {o.result for o in ledger.thread.call(
        ledger.apply, [till.register(0), till.sale(0, 300_000)])} == {"applied"}
    monkeypatch.setattr(ledger, "_hold_granted", lambda request, *_: ledger.refuse(
        request, Refusal("test.refused", {}, "refused by the ledger (this test)")))
    caplog.set_level(logging.ERROR, logger="terminal.hq.chain_ledger")
    request = MemberRequest("hold", card(0), 500, str(uuid.uuid4()))
    response = ledger.holding[0].call(ledger.answer, request, "S001", "T01")
    assert not response.ok and response.error == "refused by the ledger (this test)"
    assert ledger.requests.call(lambda: MemberHold.get_or_none(
        MemberHold.id == request.hold_id)) is None
    assert any("the one statement granted it, the ledger refuses it" in record.getMessage()
               for record in caplog.records)
