"""The ingest batch's way on PostgreSQL (each sale's reads answered from the rows the batch
keeps, its writes kept and sent a statement per table, the holds its redemptions post kept with
them: terminal.hq.kept, terminal.hq.buffered) against SQLite's, which runs every statement of the
store one event at a time: random members' sales, redemptions against holds asked first or
without one, refunds of sales in earlier batches or the same one, and registrations, cut into
random batches, leave the same outcomes, hold answers and ledger rows on both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import open_hq_database
from terminal.loyalty.rules import Rules
from terminal.protocol.messages import Event, MemberRequest
from tests.hq.test_batch_kept import Till, card, hold, rows
from tests.hq.test_ingest_batches import TRUST, snapshot
from tests.hq.test_postgres_collector import fresh_database
from tests.sync.harness import CARD_KEY, rules_data

MEMBERS = 5  # registered and buying in the first batch; more register on the way

# (kind, member, fen, redeem points, whether its till asks HQ for a hold first); a refund names
# an earlier sale by its index among them (wrapped), a registration a new member.
OPERATION = st.one_of(
    st.tuples(st.just("sale"), st.integers(0, MEMBERS + 2), st.integers(100, 300_000),
              st.sampled_from([0, 0, 100, 500, 500, 800, 1_000, 50_000]), st.booleans()),
    st.tuples(st.just("refund"), st.integers(0, 10_000), st.just(0), st.just(0),
              st.just(False)),
    st.tuples(st.just("register"), st.integers(MEMBERS, MEMBERS + 2), st.just(0), st.just(0),
              st.just(False)),
)

Batch = tuple[dict[str, tuple[int, int]], list[Event]]


def batches(now: datetime, operations: list[tuple[str, int, int, int, bool]],
            cuts: list[int]) -> list[Batch]:
    """The events, made once (both ledgers get the same ids): a first batch registers the
    members and has each buy, then the operations cut at ``cuts`` (the holds a batch's sales
    redeem against, asked before it as tills do)."""
    old = Till("S001", now - timedelta(hours=5))
    first = [old.register(n) for n in range(MEMBERS)]
    first += [old.sale(n, 150_000 + 1_000 * n) for n in range(MEMBERS)]
    till = Till("S002", now - timedelta(hours=2))
    sales: list[tuple[str, int, int]] = []
    made: list[tuple[dict[str, tuple[int, int]], Event]] = []
    for n, (kind, member, fen, redeem, asks) in enumerate(operations):
        if kind == "refund" and sales:
            sale, owner, paid = sales[member % len(sales)]
            made.append(({}, till.refund(owner, sale, paid)))
        elif kind == "register":
            made.append(({}, till.register(member)))
        elif kind == "sale":
            name, held = f"random-{n}", hold(1_000 + n) if redeem and asks else None
            made.append(({held: (member, redeem)} if held else {},
                         till.sale(member, fen, redeem=min(redeem, fen), hold_id=held,
                                   sale=name)))
            sales.append((name, member, fen))
    out: list[Batch] = [({}, first)]
    edges = sorted({0, len(made), *(cut % (len(made) + 1) for cut in cuts)})
    for start, end in pairwise(edges):
        holds: dict[str, tuple[int, int]] = {}
        for asked, _ in made[start:end]:
            holds.update(asked)
        out.append((holds, [event for _, event in made[start:end]]))
    return out


def replay(url: str, plan: list[Batch]) -> tuple[Any, ...]:
    ledger = ChainLedger(open_hq_database(url), Rules.from_mapping(rules_data()), CARD_KEY,
                         trust=TRUST)
    try:
        outcomes, answers = [], []
        for holds, events in plan:
            for hold_id, (member, points) in holds.items():
                asked = MemberRequest("hold", card(member), points, hold_id)
                answer = ledger.holding[0].call(ledger.answer, asked, "S002", "T01")
                answers.append((hold_id, answer.ok, answer.error, answer.balance))
            outcomes += [(o.event.id, o.result, o.detail)
                         for o in ledger.thread.call(ledger.apply, events)]
        assert ledger.thread.call(ledger.store.check_invariants) == []
        return outcomes, answers, snapshot(ledger)[1:3], rows(ledger.db)
    finally:
        ledger.close()


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(operations=st.lists(OPERATION, min_size=1, max_size=30),
       cuts=st.lists(st.integers(0, 30), max_size=4))
# Two redemptions against holds, one without, a refund of one of them in the same batch, a
# registration and its first sale, and a refund in the next batch.
@example(operations=[("sale", 0, 20_000, 500, True), ("sale", 1, 30_000, 800, True),
                     ("sale", 2, 10_000, 500, False), ("refund", 1, 0, 0, False),
                     ("register", 6, 0, 0, False), ("sale", 6, 40_000, 0, False),
                     ("refund", 0, 0, 0, False)], cuts=[6])
def test_random_batches_leave_sqlites_ledger(postgres, tmp_path_factory, operations,
                                             cuts) -> None:
    plan = batches(datetime.now(UTC), operations, cuts)
    sqlite = replay(str(tmp_path_factory.mktemp("random") / "hq.db"), plan)
    assert replay(fresh_database(postgres), plan) == sqlite
