"""Every refusal HQ's ledger answers a till's member request with carries its code and values
(terminal.protocol.hq_refusals), on SQLite and on PostgreSQL (there a hold takes the one
statement's way): the till words them in its language, and HQ's English sentence is the one the
code and values make. HQ's database failing (terminal.hq.loop_holds) is checked in
test_loop_holds.py, a request HQ cannot parse (the collector) in tests/sync."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from terminal.hq import holds
from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import open_hq_database
from terminal.hq.models import MemberHold
from terminal.hq.policy import HoldRules, TrustPolicy
from terminal.loyalty.clock import to_micros
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import CardState
from terminal.protocol.hq_refusals import ENGLISH
from terminal.protocol.messages import MemberRequest, MemberResponse
from tests.hq.test_batch_kept import Till, card
from tests.hq.test_ingest_batches import new_url  # noqa: F401  (the fixture)
from tests.sync.harness import CARD_KEY, rules_data

POLICY = TrustPolicy.from_mapping({"holds": {"max_per_member": 2}})
DAY_CAP = 20_000
ELSEWHERE = ("hq.database", "request.malformed")  # checked where named above


def _coded(response: MemberResponse, code: str, **values: int | str) -> None:
    assert not response.ok, response
    assert (response.code, response.values) == (code, values or None), response
    assert response.error == ENGLISH[code].format(**values), response


def test_each_refusal_of_the_ledger_carries_its_code_and_values(
        new_url: Callable[[], str]) -> None:  # noqa: F811
    ledger = ChainLedger(open_hq_database(new_url()),
                         Rules.from_mapping(rules_data(per_member_per_day=DAY_CAP)), CARD_KEY,
                         trust=POLICY)
    till = Till("S001", datetime.now(UTC) - timedelta(hours=1))
    met: set[str] = set()

    def ask(request: MemberRequest, where: str = "T01") -> MemberResponse:
        thread = ledger.requests if request.op == "lookup" else ledger.holding[0]
        answer = thread.call(ledger.answer, request, "S001", where)
        if answer.code is not None:
            met.add(answer.code)
        return answer

    def hold(n: int, points: int, hold_id: str | None = None,
             member: str | None = None) -> MemberRequest:
        return MemberRequest("hold", member or card(n), points, hold_id or str(uuid.uuid4()))

    def void(hold_id: str) -> MemberRequest:
        return MemberRequest("void", hold_id=hold_id)

    try:
        events = [till.register(n) for n in range(4)]
        events += [till.sale(n, 300_000) for n in range(4)]  # 3,000 points each, +100 bonus
        assert {o.result for o in ledger.thread.call(ledger.apply, events)} == {"applied"}

        _coded(ask(MemberRequest("lookup", "not-a-card-hash")), "member.form")
        _coded(ask(hold(0, 100, member="not-a-card-hash")), "member.form")
        _coded(ask(MemberRequest("lookup", card(99))), "member.unknown")
        _coded(ask(hold(99, 100)), "member.unknown")
        _coded(ask(hold(0, DAY_CAP + 1)), "redeem.per_member_per_day", points=DAY_CAP + 1,
               cap=DAY_CAP)
        _coded(ask(hold(0, 4000)), "hold.points", available=3100)

        granted = hold(0, 1000)
        assert ask(granted).ok
        _coded(ask(granted, where="T02"), "hold.other_till")
        _coded(ask(replace(granted, points=999)), "hold.other_request")
        assert ask(void(granted.hold_id or "")).ok
        _coded(ask(granted), "hold.settled", state="voided")
        _coded(ask(void(str(uuid.uuid4()))), "hold.unknown")
        _coded(ask(MemberRequest("post", hold_id=granted.hold_id)), "hold.post")

        # A hold its sale posted cannot be voided.
        posted = hold(1, 500)
        assert ask(posted).ok
        outcomes = ledger.thread.call(ledger.apply, [till.sale(1, 100_000, redeem=500,
                                                               hold_id=posted.hold_id)])
        assert [o.result for o in outcomes] == ["applied"]
        _coded(ask(void(posted.hold_id or "")), "hold.posted")

        # The member's bound: two tills hold on member 2, a third is refused.
        assert ask(hold(2, 100), where="T02").ok and ask(hold(2, 100), where="T03").ok
        _coded(ask(hold(2, 100), where="T04"), "holds.max_per_member", count=2)

        # Cards HQ froze or retired: their reasons, as HQ staff typed them, are values.
        now_us = to_micros(datetime.now(UTC))

        def block() -> None:
            CardState.insert(card_hash=card(3), state="frozen", reason="挂失 reported lost",
                             version=1, updated_us=now_us).execute()
            CardState.insert(card_hash=card(4), state="retired", reason="merged", version=2,
                             updated_us=now_us).execute()

        ledger.requests.call(lambda: ledger.db.atomic()(block)())
        _coded(ask(hold(3, 100)), "card.frozen", reason="挂失 reported lost")
        _coded(ask(hold(4, 100)), "card.retired", reason="merged")
        _coded(ask(MemberRequest("lookup", card(4))), "card.retired", reason="merged")
        assert ledger.requests.call(lambda: MemberHold.select().where(
            MemberHold.card_hash.in_([card(3), card(4), card(99)])).count()) == 0
    finally:
        ledger.close()
    # The till's bounds, met one by one below; the rest here.
    assert met | {"holds.max_per_till", "holds.max_points_per_till",
                  "holds.max_per_till_member_per_hour", *ELSEWHERE} == set(ENGLISH)


QUIET = holds.Read(None, None, "", None, till_count=0, till_points=0, member_count=0, asked=0,
                   pending=0, replaced=0, unswept=0)


@pytest.mark.parametrize(("read", "points", "code", "values"), [
    (QUIET, 30_000, "redeem.per_member_per_day", {"points": 30_000, "cap": DAY_CAP}),
    (replace(QUIET, till_count=20), 500, "holds.max_per_till", {"count": 20}),
    (replace(QUIET, till_points=199_900), 500, "holds.max_points_per_till",
     {"held": 199_900, "points": 500, "cap": 200_000}),
    (replace(QUIET, member_count=5), 500, "holds.max_per_member", {"count": 5}),
    (replace(QUIET, asked=6), 500, "holds.max_per_till_member_per_hour", {"count": 6}),
])
def test_each_bound_of_hqs_refuses_by_its_code(read: holds.Read, points: int, code: str,
                                               values: dict[str, int]) -> None:
    rules = Rules.from_mapping(rules_data(per_member_per_day=DAY_CAP))
    request = MemberRequest("hold", card(0), points, str(uuid.uuid4()))
    said = holds.over_bounds(HoldRules(), rules, request, read)
    assert said is not None and (said.code, said.values) == (code, values)
    assert said.error == ENGLISH[code].format(**values)
