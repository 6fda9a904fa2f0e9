"""A till's catch-up of member states (terminal.sync.member_states.CatchUp) asks its next page
as a page's own cost allows, not at a fixed two pages a second: once the ledger thread has been
left for as long as the last page kept it, no sooner than ``pace`` after the last ask (HQ's
per-till request rate), and not while one of the till's lookups, holds or voids awaits HQ's
answer. Time here is a fake clock the test moves (no timing asserts); the member client is the
till's own (terminal.sync.members.MemberClient) over a fake MQTT client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from terminal.protocol.bundle import TrustStore
from terminal.protocol.messages import MemberRequest, MemberResponse
from terminal.protocol.topics import Topics
from terminal.sync import member_states
from terminal.sync.member_states import CatchUp
from terminal.sync.members import MemberClient

PAGES = 4


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Broker:
    """The MQTT client's ``request`` as MemberClient uses it: a states page answered at once
    (``more`` until the last), ``rtt`` seconds of the fake clock on the way; a hold answered when
    the test says."""

    def __init__(self, clock: Clock, rtt: float) -> None:
        self.clock, self.rtt = clock, rtt
        self.asked: list[int] = []  # each page's "since"
        self.hold_answer: asyncio.Future[None] | None = None

    async def request(self, topic: str, payload: bytes, *, response_topic: str,
                      timeout: float) -> Any:
        request = MemberRequest.from_json(payload)
        now = datetime.now(UTC)
        if request.op == "hold":
            self.hold_answer = asyncio.get_running_loop().create_future()
            await self.hold_answer
            answer = MemberResponse("hold", True, now, member=request.member,
                                    hold_id=request.hold_id, balance=0, tier="member")
            return SimpleNamespace(payload=answer.to_json())
        assert request.op == "states" and request.since is not None
        self.asked.append(request.since)
        self.clock.now += self.rtt
        through = request.since + 200
        answer = MemberResponse("states", True, now, states=(), through=through,
                                more=through < PAGES * 200)
        return SimpleNamespace(payload=answer.to_json())


class Ledger:
    """The ledger thread: a page's apply costs ``costs[n]`` seconds of the fake clock."""

    def __init__(self, clock: Clock, costs: list[float]) -> None:
        self.clock, self.costs, self.through = clock, costs, 0

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        if function is member_states.held_through:
            return self.through
        assert function is member_states.receive_page
        self.clock.now += self.costs[self.through // 200]
        self.through = args[3]
        return [], []


def _catch_up(clock: Clock, broker: Broker, ledger: Ledger,
              sleep: Callable[[float], Any]) -> tuple[CatchUp, MemberClient]:
    members = MemberClient(broker, Topics("posterm/v1"), "S001", "T01")  # type: ignore[arg-type]

    async def report(*args: str) -> None:
        raise AssertionError(f"nothing is refused here: {args}")

    return CatchUp(members, ledger, None, TrustStore.of([]), lambda: True,  # type: ignore[arg-type]
                   lambda state: None, report, pace=0.3, clock=clock, sleep=sleep), members


def test_the_next_page_is_asked_as_the_last_ones_cost_allows() -> None:
    clock = Clock()
    # Two cheap pages (the request's bound decides), a costly one (its cost decides), the last.
    broker, ledger = Broker(clock, rtt=0.02), Ledger(clock, [0.05, 0.01, 0.9, 0.05])
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        clock.now += seconds

    catch_up, _ = _catch_up(clock, broker, ledger, sleep)
    assert asyncio.run(catch_up.once())
    assert broker.asked == [0, 200, 400, 600]
    # pace - (rtt + cost) after a cheap page; the page's own cost after a costly one
    assert slept == [0.23, 0.27, 0.9]


def test_the_next_page_waits_for_a_hold_in_flight() -> None:
    clock = Clock()
    broker, ledger = Broker(clock, rtt=0.0), Ledger(clock, [0.0] * PAGES)
    seen: list[int] = []

    async def scenario() -> None:
        held: list[asyncio.Task[Any]] = []

        async def sleep(seconds: float) -> None:
            clock.now += seconds
            if not held:  # a sale asks HQ for a hold while the catch-up waits
                held.append(asyncio.create_task(members.hold("b" * 64, 10, "sale-1")))
                while broker.hold_answer is None:
                    await asyncio.sleep(0)

        catch_up, members = _catch_up(clock, broker, ledger, sleep)
        running = asyncio.create_task(catch_up.once())
        while broker.hold_answer is None:
            await asyncio.sleep(0)
        for _ in range(50):  # the catch-up has every chance to ask meanwhile
            await asyncio.sleep(0)
        seen.append(len(broker.asked))
        broker.hold_answer.set_result(None)
        assert not (await held[0]).offline
        assert await running

    asyncio.run(scenario())
    assert seen == [1]  # the second page waited for the hold's answer
    assert broker.asked == [0, 200, 400, 600]
