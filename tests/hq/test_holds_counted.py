"""The member-request side counts the holds and voids it answers, being answered now and begun
so far (Collector ``holding``; ``posterm-hq collect --member-requests apart`` shares the counts
with the ingest process, whose transactions are longer while tills ask none and end early while
one is answered: ChainLedger.holds_answered, tested in tests/hq/test_ingest_batches.py). Each is
counted from the request's arrival to its answer, whichever way it ends; lookups are not counted
(they wait for no ingest transaction)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from terminal.hq.collector import Collector, HoldsAnswered
from terminal.hq.policy import TrustPolicy
from terminal.protocol.messages import MemberRequest, MemberResponse
from terminal.protocol.mqtt import MqttConfig
from terminal.protocol.topics import TerminalTopic


class _Thread:
    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        await asyncio.sleep(0)  # a thread's hand-off: other requests go on meanwhile
        return fn(*args)


class _Ledger:
    """Answers on the request's thread and notes, for each answer, the count at that moment; a
    void fails as the database would."""

    def __init__(self, holding: HoldsAnswered) -> None:
        self.trust, self.thread, self.db = TrustPolicy(), _Thread(), None
        self.holding = holding
        self.seen: list[tuple[str, tuple[int, int]]] = []

    def request_thread(self, request: MemberRequest) -> _Thread:
        return _Thread()

    def answer(self, request: MemberRequest, store: str, terminal: str) -> MemberResponse:
        self.seen.append((request.op, self.holding()))
        if request.op == "void":
            raise RuntimeError("the database failed")
        return MemberResponse(request.op, True, datetime.now(UTC))


def test_holds_and_voids_are_counted_while_they_are_answered() -> None:
    holding = HoldsAnswered()
    ledger = _Ledger(holding)
    collector = Collector(ledger, MqttConfig("127.0.0.1", 1, "hq-test"),  # type: ignore[arg-type]
                          serves="requests", holding=holding)
    source = TerminalTopic("S001", "T01", "members/req")

    async def scenario() -> None:
        await collector._respond(MemberRequest("hold", "m1", 100, "h1"), source)
        await collector._respond(MemberRequest("lookup", "m1"), source)
        with pytest.raises(RuntimeError):
            await collector._respond(MemberRequest("void", hold_id="h1"), source)
        # Two at once: both counted while the first is answered, the second alone after.
        await asyncio.gather(*(collector._respond(MemberRequest("hold", f"m{n}", 1, f"h{n}"),
                                                  source) for n in (2, 3)))

    asyncio.run(scenario())
    assert ledger.seen == [("hold", (1, 1)), ("lookup", (0, 1)), ("void", (1, 2)),
                           ("hold", (2, 4)), ("hold", (1, 4))]
    assert holding() == (0, 4)


def test_only_a_collector_answering_member_requests_counts_holds() -> None:
    with pytest.raises(ValueError, match="holding"):
        Collector(_Ledger(HoldsAnswered()),  # type: ignore[arg-type]
                  MqttConfig("127.0.0.1", 1, "hq-test"), serves="events",
                  holding=HoldsAnswered())
