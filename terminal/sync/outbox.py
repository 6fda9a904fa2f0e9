"""The durable outbox publisher (DESIGN promise 3).

The outbox table is the source of truth until HQ's application ack for an id arrives: PUBACK only
says the broker has it. Rows are published in sequence order at QoS 1 to the terminal's events
topic, only while HQ's retained state says online, with at most ``window`` events published and
not yet acked. An ack marks its rows (``acked_us``) and raises the trusted-time floor to the HQ time
it carries, in one transaction. Everything unacked is published again after a reconnect, a
restart, a failed publish or an ack that does not come (``ack_timeout``), after a backoff with
jitter; HQ applies each id at most once, so a repeat is harmless.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from datetime import datetime

from terminal.loyalty.store import LedgerStore
from terminal.loyalty.store.ledger_thread import LedgerThread
from terminal.loyalty.store.outbox import backlog_size, mark_acked, unacked_after
from terminal.protocol.messages import Ack, MessageError
from terminal.protocol.mqtt import Backoff, Message, MqttClient, MqttError

log = logging.getLogger(__name__)


class OutboxPublisher:
    def __init__(self, client: MqttClient, ledger: LedgerThread, store: LedgerStore, topic: str,
                 *, window: int = 500, batch: int = 250, ack_timeout: float = 15.0,
                 backoff: Backoff | None = None,
                 on_drained: Callable[[], None] | None = None) -> None:
        self.client, self.ledger, self.store, self.topic = client, ledger, store, topic
        self.window, self.batch, self.ack_timeout = window, batch, ack_timeout
        self.backoff = backoff or Backoff(0.5, 30.0)
        self.on_drained = on_drained
        self.hq_online = False
        self._inflight: dict[str, int] = {}  # published, not acked: id -> seq
        self._read_seq: int | None = None  # the highest seq read since the last rewind
        self._ahead: collections.deque[tuple[str, int, bytes]] = collections.deque()
        self._reading: asyncio.Task[None] | None = None
        self._generation = 0  # bumped on every rewind; late failures of older ones are ignored
        self._not_before = 0.0  # monotonic time before which nothing is published (backoff)
        self._last_progress = time.monotonic()
        self._wake = asyncio.Event()
        self._acks: list[str] = []
        self._ack_time: datetime | None = None
        self._floor = store.floor
        self._flush: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.published = 0  # publishes attempted (repeats included), for tests and status

    # -- control -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-publisher")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, self._flush, self._reading) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    def wake(self) -> None:
        """New rows, an ack, a connection or HQ online: look again (never blocks)."""
        self._wake.set()

    def set_hq_online(self, online: bool) -> None:
        if online and not self.hq_online:
            self.rewind(backoff=False)
        self.hq_online = online
        self.wake()

    def rewind(self, backoff: bool = False) -> None:
        """Forget what is in flight: everything unacked is published again (resync, reconnect)."""
        self._generation += 1
        self._inflight.clear()
        self._ahead.clear()
        self._read_seq = None
        self._last_progress = time.monotonic()
        self._not_before = time.monotonic() + self.backoff.next() if backoff else 0.0
        self.wake()

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    async def backlog(self) -> int:
        return await self.ledger.run(backlog_size)

    # -- acks ----------------------------------------------------------------------------------

    def handle_ack(self, message: Message) -> None:
        try:
            ack = Ack.from_json(message.payload)
        except MessageError as exc:
            log.warning("refused an ack on %s: %s", message.topic, exc)
            return
        for event_id in ack.ids:
            if self._inflight.pop(event_id, None) is not None:
                self._last_progress = time.monotonic()
            self._acks.append(event_id)
        if self._floor is None or ack.hq_time > self._floor:
            self._ack_time = max(ack.hq_time, self._ack_time or ack.hq_time)
        self.backoff.reset()
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._flush_acks(), name="outbox-acks")
        self.wake()

    async def _flush_acks(self) -> None:
        # Acks arriving while a commit runs are gathered into the next one: one fsync per batch.
        while self._acks:
            ids, self._acks = self._acks, []
            hq_time, self._ack_time = self._ack_time, None
            try:
                await self.ledger.run(mark_acked, self.store, ids, hq_time)
            except Exception:
                # The rows stay unacked: publish them again, and HQ acks them again.
                log.exception("outbox: marking %d acked events failed", len(ids))
                self.rewind(backoff=True)
                return
            if hq_time is not None:
                self._floor = max(hq_time, self._floor or hq_time)
        self.wake()  # the backlog may be drained now that the last acks are marked

    # -- publishing ----------------------------------------------------------------------------

    def _may_publish(self) -> bool:
        return self.client.connected and self.hq_online

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._sleep_for()):
                    await self._wake.wait()
            self._wake.clear()
            if self._inflight and time.monotonic() - self._last_progress > self.ack_timeout:
                log.warning("no ack from HQ for %.0fs; publishing the backlog again",
                            self.ack_timeout)
                self.rewind(backoff=True)
            if time.monotonic() < self._not_before:
                continue
            self._fill_window()

    def _sleep_for(self) -> float:
        now = time.monotonic()
        if now < self._not_before:
            return self._not_before - now
        return self.ack_timeout / 2 if self._inflight else 30.0

    def _fill_window(self) -> None:
        # Up to a window of rows is kept read ahead, read in the background, so that refilling
        # the window as acks free room never waits for the ledger thread (busy marking acks,
        # each commit an fsync).
        while self._may_publish():
            room = self.window - len(self._inflight)
            if room > 0 and self._ahead:
                if not self._send(room, self._generation):
                    return
                continue
            if self._reading is None and len(self._ahead) < self.window:
                self._reading = asyncio.create_task(self._read(self._generation),
                                                    name="outbox-read")
            return

    async def _read(self, generation: int) -> None:
        """Read the next batch after what was read; wake the publisher if there was one."""
        try:
            rows = await self.ledger.run(unacked_after, self.store.db, self._read_seq,
                                         self.batch)
        except Exception:
            log.exception("outbox: reading the backlog failed")
            self.rewind(backoff=True)
            return
        finally:
            self._reading = None
        if generation != self._generation:
            self.wake()  # rewound while reading: read again from the start
        elif rows:
            self._ahead.extend(rows)
            self._read_seq = rows[-1][1]
            self.wake()
        elif self._idle() and self.on_drained is not None:
            self.on_drained()

    def _idle(self) -> bool:
        """Nothing in flight, read ahead, or acked and not yet marked."""
        return not (self._inflight or self._ahead or self._acks
                    or (self._flush is not None and not self._flush.done()))

    def _send(self, room: int, generation: int) -> bool:
        """Publish up to ``room`` rows read ahead; False if the client refused (rewound)."""
        for _ in range(min(room, len(self._ahead))):
            event_id, seq, payload = self._ahead.popleft()
            self._inflight[event_id] = seq
            self.published += 1
            try:
                # No task per event: paho queues the message, the future is its PUBACK.
                future = self.client.publish_nowait(self.topic, payload, qos=1)
            except MqttError as exc:
                self._failed(event_id, generation, exc)
                return False
            future.add_done_callback(functools.partial(self._puback, event_id, generation))
        return True

    def _puback(self, event_id: str, generation: int, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self._failed(event_id, generation, exc)

    def _failed(self, event_id: str, generation: int, exc: BaseException) -> None:
        if generation == self._generation:
            log.info("outbox: publish of %s failed (%s); backing off", event_id, exc)
            self.rewind(backoff=True)
