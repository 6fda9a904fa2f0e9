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
from datetime import UTC, datetime

from terminal.loyalty.clock import to_micros
from terminal.loyalty.store import LedgerStore
from terminal.loyalty.store.database import write_transaction
from terminal.loyalty.store.models import Outbox
from terminal.sync.ledger_thread import LedgerThread
from terminal.sync.messages import Ack, MessageError
from terminal.sync.mqtt import Backoff, Message, MqttClient, MqttError

log = logging.getLogger(__name__)


def unacked_after(after_seq: int, limit: int) -> list[tuple[str, int, str]]:
    return list(Outbox.select(Outbox.id, Outbox.seq, Outbox.payload)
                .where(Outbox.acked_us.is_null() & (Outbox.seq > after_seq))
                .order_by(Outbox.seq).limit(limit).tuples())


def backlog_size() -> int:
    return Outbox.select().where(Outbox.acked_us.is_null()).count()


def mark_acked(store: LedgerStore, ids: list[str], hq_time: datetime | None) -> int:
    """Mark ``ids`` acked and raise the time floor, in one transaction; returns rows marked."""
    now = to_micros(datetime.now(UTC))
    marked = 0
    with write_transaction(store.db):
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start:start + 500]
            marked += (Outbox.update(acked_us=now)
                       .where(Outbox.id.in_(chunk) & Outbox.acked_us.is_null()).execute())
        if hq_time is not None:
            store.observe_trusted_time(hq_time)
    return marked


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
        self._read_seq = 0  # the highest seq read since the last rewind
        self._ahead: collections.deque[tuple[str, int, str]] = collections.deque()
        self._reading: asyncio.Task[bool] | None = None
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
        self._read_seq = 0
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
            await self.ledger.run(mark_acked, self.store, ids, hq_time)
            if hq_time is not None:
                self._floor = max(hq_time, self._floor or hq_time)

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
            try:
                await self._fill_window()
            except Exception:
                log.exception("outbox: reading the backlog failed")
                self.rewind(backoff=True)

    def _sleep_for(self) -> float:
        now = time.monotonic()
        if now < self._not_before:
            return self._not_before - now
        return self.ack_timeout / 2 if self._inflight else 30.0

    async def _fill_window(self) -> None:
        # Rows are read a batch ahead of the window, so that refilling it as acks free room
        # never waits for the ledger thread (busy marking acks, each commit an fsync).
        while self._may_publish():
            generation = self._generation
            room = self.window - len(self._inflight)
            if room > 0 and self._ahead:
                if not self._send(room, generation):
                    return
                continue
            if len(self._ahead) >= self.batch or self._reading is not None:
                return  # the window is full and the next batch is ready, or being read
            if room <= 0:  # read the next batch while the window waits for acks
                self._reading = asyncio.create_task(self._read(generation), name="outbox-read")
                return
            if not await self._read(generation):
                if not self._inflight and not self._acks and self.on_drained is not None:
                    self.on_drained()
                return

    async def _read(self, generation: int) -> bool:
        """Read the next batch after what was read; False when there is nothing more."""
        try:
            rows = await self.ledger.run(unacked_after, self._read_seq, self.batch)
        finally:
            self._reading = None
        if generation != self._generation:
            return True  # rewound while reading: read again from the start
        self._ahead.extend(rows)
        if rows:
            self._read_seq = rows[-1][1]
            self.wake()
        return bool(rows)

    def _send(self, room: int, generation: int) -> bool:
        """Publish up to ``room`` rows read ahead; False if the client refused (rewound)."""
        for _ in range(min(room, len(self._ahead))):
            event_id, seq, payload = self._ahead.popleft()
            self._inflight[event_id] = seq
            self.published += 1
            try:
                # No task per event: paho queues the message, the future is its PUBACK.
                future = self.client.publish_nowait(self.topic, payload.encode(), qos=1)
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
