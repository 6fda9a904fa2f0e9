"""Every member state HQ changes reaches a till, however many and however slow the till, and a
chain-wide change leaves the till's share of the broker to its acks and HQ's answers.

The broker (the shipped configuration) queues at most ``max_queued_messages`` for a client past
its ``max_inflight_messages`` and drops the rest: a campaign's bonus changes a state per member,
far more than that. Here HQ publishes twice the broker's limit while a till is offline (HQ
retains none of them: the till takes them all by its catch-up) or connected but reading nothing
(its loop held up until HQ has published them all), and 5,000 while a till with a slow loop
sells and asks for holds (HQ sends one notice for them, not 5,000 messages that would fill the
till's queue ahead of its acks and answers: the broker logs no drop and every hold is
answered). Each till must end with every card's state at HQ's version. Real parts throughout:
the shipped Mosquitto, HQ's collector with its publisher, and tills built as the daemon builds
them (ledger + MqttHqLink).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from terminal.hq.collector import Collector
from terminal.hq.database import writing
from terminal.hq.localchain.broker import SHIPPED_CONF
from terminal.hq.member_ops.bulk import adjust_many
from terminal.hq.member_ops.service import MemberOps
from terminal.hq.models import HQ_MODELS
from terminal.loyalty.store.accounts import member_ref
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.models import MODELS, CardState
from terminal.sync.member_states import held_through
from tests.support.shared import EXAMPLES
from tests.sync.conftest import SENTINEL, Inbox, mqtt_client, run
from tests.sync.harness import CARD_KEY, Chain, Till, until


def _broker_limit() -> int:
    """Messages the shipped broker keeps for one client: in flight plus queued."""
    conf = SHIPPED_CONF.read_text()
    return sum(int(re.search(rf"^{name} (\d+)$", conf, re.M).group(1))  # type: ignore[union-attr]
               for name in ("max_queued_messages", "max_inflight_messages"))


STATES = 2 * _broker_limit()  # 2,200 with the shipped configuration


def _members(tmp_path: Path, count: int = STATES) -> MemberOps:
    """HQ's member operations on the collector's database, with ``count`` members imported."""
    (tmp_path / "card.key").write_bytes(CARD_KEY)
    ops = MemberOps.open(str(tmp_path / "hq.db"), EXAMPLES / "rules.toml",
                         tmp_path / "card.key")
    ops.import_members("card,tier,points\n" + "".join(f"{8100000000 + n},member,10\n"
                                                     for n in range(count)),
                       actor="ann", reason="opening balances")
    return ops


def _bonus(ops: MemberOps, count: int = STATES) -> dict[str, int]:
    """A bonus to every member, set-based as a campaign grants it: a new card state each.
    Returns HQ's card states (card hash -> version)."""
    with bound(ops.db, MODELS + HQ_MODELS), writing(ops.db):
        adjust_many(ops, [ops.store._ref(str(8100000000 + n)) for n in range(count)], 5,
                    actor="ann", reason="care campaign")
        return dict(CardState.select(CardState.card_hash, CardState.version).tuples())


async def _states(till: Till) -> dict[str, int]:
    return await till.run(lambda: dict(CardState.select(CardState.card_hash,
                                                        CardState.version).tuples()))


async def _every_state(till: Till, at_hq: dict[str, int]) -> None:
    async def complete() -> bool:
        return await _states(till) == at_hq
    try:
        await until(complete, 120)
    except TimeoutError:
        held = await _states(till)
        raise AssertionError(f"the till holds {len(held)} of HQ's {len(at_hq)} card states, "
                             f"{sum(held.get(c) == v for c, v in at_hq.items())} at HQ's "
                             "version") from None
    assert await till.run(held_through) == max(at_hq.values())


def test_a_till_offline_while_hq_published_more_than_the_broker_queues_gets_every_state(
        pki: Any, broker: Any, tmp_path: Path) -> None:
    ops = _members(tmp_path)
    at_hq = _bonus(ops)
    ops.close()
    assert len(at_hq) == STATES
    chain = Chain(tmp_path, pki, broker)
    hq = chain.hq(member_states=True)

    async def scenario() -> None:
        await hq.start()
        await hq.client.wait_ready(30)
        assert hq.publisher is not None
        await until(lambda: hq.publisher.published >= STATES, 120)
        async with mqtt_client(pki, broker, "S001/T02") as other:  # nothing kept for it
            inbox = Inbox()
            await other.subscribe(hq.topics.member_states(), inbox)
            await other.subscribe(hq.topics.states_notice(), inbox)
            await hq.client.publish(hq.topics.states_notice(), SENTINEL)
            assert await inbox.before_sentinel(10) == []
        till = chain.till("S001", "T01")
        await till.link.start()
        try:
            await _every_state(till, at_hq)
        finally:
            await chain.stop()

    run(scenario(), timeout=300)


def _hq_apart(hq: Collector, stop: threading.Event, started: threading.Event) -> None:
    """HQ's collector on a loop (and thread) of its own, as a process of its own would be: the
    till's loop held up does not hold HQ up."""
    async def serve() -> None:
        await hq.start()
        started.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await hq.stop()
    asyncio.run(serve())


Body = Callable[[Collector, Till, MemberOps], Awaitable[None]]


def _with_hq_apart(pki: Any, broker: Any, tmp_path: Path, members: int, body: Body,
                   **till_options: Any) -> None:
    """``body`` run with ``members`` members at HQ, HQ's collector on a thread of its own
    (:func:`_hq_apart`) and a till connected to it."""
    ops = _members(tmp_path, members)
    chain = Chain(tmp_path, pki, broker)
    hq = chain.hq(member_states=True)
    chain.hqs.remove(hq)  # started and stopped on its own thread
    assert hq.publisher is not None
    till = chain.till("S001", "T01", **till_options)
    stop, started = threading.Event(), threading.Event()
    apart = threading.Thread(target=_hq_apart, args=(hq, stop, started), name="hq")
    apart.start()

    async def scenario() -> None:
        try:
            assert await asyncio.to_thread(started.wait, 30)
            await till.link.start()
            await till.link.client.wait_ready(30)
            await until(lambda: till.link.reachable, 30)
            await body(hq, till, ops)
        finally:
            await chain.stop()

    try:
        run(scenario(), timeout=300)
    finally:
        stop.set()
        apart.join(60)
        ops.close()


def test_a_till_reading_slower_than_hq_publishes_gets_every_state(
        pki: Any, broker: Any, tmp_path: Path) -> None:
    async def body(hq: Collector, till: Till, ops: MemberOps) -> None:
        assert hq.publisher is not None
        at_hq = await asyncio.to_thread(_bonus, ops)
        # The till reads nothing (its loop held up, as a busy or slow till's would be)
        # until HQ has published every state: the broker drops what it cannot queue.
        give_up = time.monotonic() + 120
        while hq.publisher.published < STATES and time.monotonic() < give_up:
            time.sleep(0.05)
        assert hq.publisher.published >= STATES
        await _every_state(till, at_hq)

    _with_hq_apart(pki, broker, tmp_path, STATES, body, state_catch_up=0.5)


BONUS = 5_000  # a chain-wide bonus: 4.5 times what the broker keeps for one till
DROPPED = "Outgoing messages are being dropped"  # Mosquitto's notice when a client's queue is full


async def _slow_loop(stop: asyncio.Event) -> None:
    """Holds the till's loop up most of the time, as a busy Pi's would be: it reads the broker
    at a fifth of its pace."""
    while not stop.is_set():
        time.sleep(0.2)
        await asyncio.sleep(0.05)


def test_a_chain_wide_bonus_leaves_a_slow_till_its_acks_and_hold_answers(
        pki: Any, broker: Any, tmp_path: Path) -> None:
    cards = [member_ref(CARD_KEY, str(8100000000 + n)).hash for n in range(0, BONUS, BONUS // 10)]

    async def body(hq: Collector, till: Till, ops: MemberOps) -> None:
        assert hq.publisher is not None
        slow = asyncio.Event()
        held_up = asyncio.create_task(_slow_loop(slow))
        bonus = asyncio.create_task(asyncio.to_thread(_bonus, ops, BONUS))
        holds = []
        for card in cards:  # while HQ grants and publishes the bonus's states
            await till.sell(500)
            holds.append(await till.link.hold(card, 1, "sale"))
        at_hq = await bonus
        await until(lambda: hq.publisher.published >= BONUS, 120)
        slow.set()
        await held_up
        assert [hold.offline for hold in holds] == [False] * len(cards)
        async def acked() -> bool:  # HQ's acks of every sale arrived
            return await till.backlog() == 0
        await until(acked, 60)
        await _every_state(till, at_hq)
        assert DROPPED not in broker.log_text()

    _with_hq_apart(pki, broker, tmp_path, BONUS, body, request_timeout=15.0)
