"""The collector's acks beside its next batch (terminal/hq/collector.py, _apply_batches).

A committed batch's acks are handed to the MQTT client and the next batch goes to the ledger
thread without waiting for their PUBACKs (until session 16 the ledger thread sat idle through
one broker round trip a terminal between batches); those PUBACKs are awaited after the next
batch, so no more than two batches' acks are ever in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from terminal.hq.chain_ledger import Outcome
from terminal.hq.collector import Collector
from terminal.hq.policy import TrustPolicy
from terminal.protocol.messages import Ack
from terminal.protocol.mqtt import MqttConfig
from terminal.protocol.topics import Topics

IDS = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(4)]


@dataclass(frozen=True)
class _Event:
    id: str
    store: str
    terminal: str


class _Thread:
    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)


class _Ledger:
    """Applies each batch at once, its events applied; remembers the batches and, for each,
    the acks not yet answered by the broker when it was applied."""

    def __init__(self, client: _Client) -> None:
        self.trust, self.thread, self.db = TrustPolicy(), _Thread(), None
        self.client = client
        self.batches: list[list[str]] = []
        self.unanswered: list[int] = []

    def apply(self, events: list[_Event]) -> list[Outcome]:
        self.batches.append([event.id for event in events])
        self.unanswered.append(sum(not future.done() for _, future in self.client.sent))
        return [Outcome(event, "applied") for event in events]  # type: ignore[arg-type]


class _Client:
    """Hands out a future a publish; the test answers them (the broker's PUBACK)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, asyncio.Future[None]]] = []
        self.payloads: list[tuple[str, bytes]] = []

    def publish_nowait(self, topic: str, payload: bytes, *args: Any) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self.sent.append((topic, future))
        self.payloads.append((topic, payload))
        return future

    async def publish(self, topic: str, payload: bytes, *args: Any) -> None:
        await self.publish_nowait(topic, payload)

    def answer(self) -> None:
        for _, future in self.sent:
            if not future.done():
                future.set_result(None)


def test_the_next_batch_is_applied_while_the_last_ones_acks_await_their_pubacks() -> None:
    async def run() -> _Client:
        client = _Client()
        ledger = _Ledger(client)
        collector = Collector(ledger, MqttConfig("127.0.0.1", 1, "hq-test"),  # type: ignore[arg-type]
                              batch_max=2, serves="events")
        collector.client = client  # type: ignore[assignment]
        for n, till in enumerate(["T01", "T02", "T01", "T02"]):
            collector._queue.put_nowait(_Event(IDS[n], "S001", till))  # type: ignore[arg-type]
        task = asyncio.create_task(collector._apply_batches())
        try:
            # The second batch is applied though the broker has answered none of the
            # first's two acks (one a terminal).
            for _ in range(100):
                if len(ledger.batches) == 2:
                    break
                await asyncio.sleep(0.01)
            assert ledger.batches == [IDS[:2], IDS[2:]]
            assert ledger.unanswered == [0, 2]
            # The first batch's PUBACKs are awaited before the second's acks go out: two
            # batches' acks in flight at most.
            await asyncio.sleep(0.05)
            assert len(client.sent) == 2
            client.answer()
            for _ in range(100):
                if len(client.sent) == 4:
                    break
                await asyncio.sleep(0.01)
            assert len(client.sent) == 4
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return client

    client = asyncio.run(run())
    acked = [(topic, Ack.from_json(payload).ids) for topic, payload in client.payloads]
    t01, t02 = Topics().acks("S001", "T01"), Topics().acks("S001", "T02")
    assert acked == [(t01, (IDS[0],)), (t02, (IDS[1],)), (t01, (IDS[2],)), (t02, (IDS[3],))]
