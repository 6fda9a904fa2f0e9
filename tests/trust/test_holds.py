"""Break 4 of issue 16: holds cannot be squatted, and honest tills do not trip over their own.

Against a real collector on the shipped broker: an honest till of store S002 clears a
redemption and asks again for other points (as after clearing the subtotal), and asks for a new
hold for the same sale after losing the first one (as after a SIGKILL); each answer is a hold of
the points asked. A till of S001 (the attacker) asks for a hold under the honest till's hold id
and voids it (refused, the hold untouched), holds one member's points over and over (each
replaces the last) and many members' at once (bounded per till).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from terminal.protocol.messages import MemberRequest, MemberResponse
from terminal.protocol.topics import Topics
from tests.sync.conftest import mqtt_client, run
from tests.sync.harness import until

from .support import ATTACKER, HqDatabase, card, collector, drained, honest_till, record

# The attacker here asks quickly, one request after another: not a flood (test_floods.py).
POLICY = ("[holds]\nmax_per_till = 3\nmax_per_member = 4\nmax_points_per_till = 5000\n"
          "[limits]\nrequests_per_second = 100\n")


async def _ask(client: Any, request: MemberRequest) -> MemberResponse:
    topics = Topics()
    reply = await client.request(topics.member_request(*ATTACKER), request.to_json(),
                                 response_topic=topics.member_response(*ATTACKER), timeout=10)
    return MemberResponse.from_json(reply.payload)


def _holds(database: HqDatabase) -> dict[str, tuple[str, int, str, tuple[str, str]]]:
    """HQ's holds: id -> (card hash, points, state, (store, terminal))."""
    return {row[0]: (row[1], row[2], row[3], (row[4], row[5])) for row in database.rows(
        "SELECT id, card_hash, points, state, store, terminal FROM member_hold")}


def test_holds_are_per_request_bound_to_their_till_and_bounded(
        tmp_path: Path, pki: Any, broker: Any) -> None:
    policy = tmp_path / "trust.toml"
    policy.write_text(POLICY, encoding="utf-8")
    database = HqDatabase(str(tmp_path / "hq.db"))
    member = "8000000500"
    others = [f"800000051{n}" for n in range(4)]

    async def scenario() -> None:
        async with honest_till(tmp_path, pki, broker) as till:
            await till.register(member)
            for other in others:
                await till.register(other)
            for _ in range(2):
                await till.sell(500_000, member)  # 8,100 points
            await until(lambda: drained(till), 30)
            sale = "S002-T01-0007"
            # Cleared and redeemed again, other points: a new hold, not "the hold was voided".
            first = await till.link.hold(card(member), 500, sale)
            await till.link.void(first)
            again = await till.link.hold(card(member), 600, sale)
            assert not again.offline and again.id != first.id
            # The till was killed with that hold pending; the next sale has the same number.
            after_kill = await till.link.hold(card(member), 700, sale)
            assert after_kill.id != again.id
            holds = _holds(database)
            assert holds[after_kill.id][1:3] == (700, "pending")
            async with mqtt_client(pki, broker, "/".join(ATTACKER), client_id="squat") as bad:
                # The honest till's hold id, asked by another till: refused, left as it was.
                taken = await _ask(bad, MemberRequest("hold", member=card(member), points=700,
                                                      hold_id=after_kill.id))
                assert not taken.ok and "another till" in (taken.error or "")
                voided = await _ask(bad, MemberRequest("void", hold_id=after_kill.id))
                assert not voided.ok
                assert _holds(database)[after_kill.id][2] == "pending"
                # Holding one member's points again and again: each replaces the last.
                for _ in range(4):
                    renewed = await _ask(bad, MemberRequest(
                        "hold", member=card(member), points=1000, hold_id=str(uuid.uuid4())))
                    assert renewed.ok
                mine = [h for h in _holds(database).values()
                        if h[3] == ATTACKER and h[2] == "pending"]
                assert len(mine) == 1, mine
                # ... but not for ever: 6 holds on one member in an hour, then no more.
                for _ in range(2):
                    assert (await _ask(bad, MemberRequest(
                        "hold", member=card(member), points=1000,
                        hold_id=str(uuid.uuid4())))).ok
                squat = await _ask(bad, MemberRequest("hold", member=card(member), points=1000,
                                                      hold_id=str(uuid.uuid4())))
                assert not squat.ok and "max_per_till_member_per_hour" in (squat.error or "")
                # Holding many members' points at once: bounded per till.
                answers = [await _ask(bad, MemberRequest("hold", member=card(other),
                                                         points=100,
                                                         hold_id=str(uuid.uuid4())))
                           for other in others]
                assert [a.ok for a in answers] == [True, True, False, False], answers
                assert "max_per_till" in (answers[-1].error or "")
                # More than a member may redeem in a day is no hold at all.
                greedy = await _ask(bad, MemberRequest("hold", member=card(member),
                                                       points=20_100, hold_id=str(uuid.uuid4())))
                assert not greedy.ok and "redeem in a day" in (greedy.error or "")
            # The honest till can still hold what is left for its own sale.
            mine = await till.link.hold(card(member), 500, "S002-T01-0008")
            assert not mine.offline

    with collector(tmp_path, pki, broker, database.url.removeprefix("sqlite:///"),
                   "--trust", str(policy)) as hq:
        run(scenario())
        record("hq-holds", hq.log(), sales=2, inputs=2 + 4 + len(others) + 1)
