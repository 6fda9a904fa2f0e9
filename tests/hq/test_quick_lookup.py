"""A member lookup in one statement (terminal.hq.lookups) answers what the full way answers
(ChainLedger._lookup in one snapshot), on SQLite and PostgreSQL: unknown, retired and frozen
cards, pending, expired and settled holds, lots expired and not yet swept, and a member whose
tier review is due (the full way's, by design)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import open_hq_database, snapshot
from terminal.hq.models import MemberHold
from terminal.loyalty.clock import to_micros
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import CardState, Lot, Member
from terminal.protocol.messages import MemberRequest
from tests.hq.test_batch_kept import Till, card, hold
from tests.hq.test_ingest_batches import new_url  # noqa: F401  (the fixture)
from tests.sync.harness import CARD_KEY, rules_data


def test_one_statement_answers_as_the_full_lookup(
        new_url: Callable[[], str], tmp_path: Path) -> None:  # noqa: F811
    ledger = ChainLedger(open_hq_database(new_url()), Rules.from_mapping(rules_data()), CARD_KEY)
    now = datetime.now(UTC)
    till = Till("S001", now - timedelta(hours=1))
    try:
        events = [till.register(n) for n in range(6)]
        events += [till.sale(n, 100_000 + n * 1_000) for n in range(6)]
        events += [till.sale(5, 30_000) for _ in range(2)]
        assert {o.result for o in ledger.thread.call(ledger.apply, events)} == {"applied"}
        for n, points in ((1, 300), (2, 500)):  # pending holds
            answer = ledger.holding[0].call(
                ledger.answer, MemberRequest("hold", card(n), points, hold(n)), "S001", "T01")
            assert answer.ok, answer.error
        now_us = to_micros(now)

        def arrange() -> None:
            # Member 2 also has a hold that timed out and one posted; member 3 a lot that
            # expired an hour ago, not swept; card 4 is retired, card 5 frozen; member 0's
            # review of this month is not recorded.
            MemberHold.insert_many([
                {"id": hold(20), "card_hash": card(2), "points": 900, "state": "pending",
                 "store": "S001", "terminal": "T02", "created_us": now_us - 10**9,
                 "expires_us": now_us - 10**6},
                {"id": hold(21), "card_hash": card(2), "points": 700, "state": "posted",
                 "store": "S001", "terminal": "T02", "created_us": now_us - 10**9,
                 "expires_us": now_us + 10**9}]).execute()
            member = Member.get(Member.card_hash == card(3))
            Lot.update(expires_us=now_us - 3_600_000_000).where(Lot.member == member.id).execute()
            CardState.insert_many([
                {"card_hash": card(4), "state": "retired", "reason": "lost 'card' 张",
                 "version": 1, "updated_us": now_us},
                {"card_hash": card(5), "state": "frozen", "reason": "checking", "version": 2,
                 "updated_us": now_us},
            ]).execute()
            Member.update(tier_reviewed_us=None).where(Member.card_hash == card(0)).execute()

        with ledger.db.atomic():
            ledger.requests.call(arrange)

        def both(n: int) -> tuple[object, object, object]:
            request = MemberRequest("lookup", card(n))
            quick = ledger._quick_lookup(request)
            with snapshot(ledger.db):
                full = ledger._lookup(request, "S001", "T01")
            return (quick and (quick.ok, quick.tier, quick.balance, quick.error),
                    (full.ok, full.tier, full.balance, full.error), full)

        answers = {n: ledger.requests.call(both, n) for n in range(7)}
        for n in (1, 2, 3, 4, 5, 6):
            quick, full, _ = answers[n]
            assert quick == full, n
        assert answers[0][0] is None  # the review due: the full way answers
        assert answers[6][1][3] == "unknown member"
        assert answers[4][1][3].startswith("card retired at HQ: lost 'card' 张")
        assert answers[5][1][0] is True  # a frozen card's balance is still shown
        assert answers[3][1][2] == 0  # every point expired
        # The answer through answer() is the quick one (audited like any lookup).
        via = ledger.requests.call(ledger.answer, MemberRequest("lookup", card(1)), "S001",
                                   "T01")
        assert (via.ok, via.tier, via.balance) == answers[1][1][:3]
    finally:
        ledger.close()
