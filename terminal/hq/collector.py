"""The HQ collector service: events in, acks out, member requests answered, fleet status kept.

It reads every terminal's events, status and member requests through the MQTT 5 shared
subscription ``$share/posterm-hq/...``, so several collectors split the stream. Events are
gathered into batches (one transaction, one commit each) and acked per terminal once committed.
``{root}/hq/state`` says online (retained) and the will says offline; each collector repeats
"online" every ``state_interval`` so one collector's death does not stop the fleet while another
still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from datetime import UTC, datetime

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.member_ops.publish import MemberStatePublisher, Signer
from terminal.hq.models import TerminalSeen
from terminal.loyalty.clock import to_micros
from terminal.protocol.messages import (
    Ack,
    Event,
    HqState,
    MemberRequest,
    MemberResponse,
    MessageError,
    Status,
)
from terminal.protocol.mqtt import Message, MqttClient, MqttConfig, MqttError, Will
from terminal.protocol.topics import TerminalTopic, TopicError, Topics

log = logging.getLogger(__name__)


class Collector:
    def __init__(self, ledger: ChainLedger, config: MqttConfig, topics: Topics | None = None, *,
                 batch_max: int = 500, state_interval: float = 10.0,
                 signer: Signer | None = None) -> None:
        """With a ``signer`` (HQ's signing key) the collector also publishes the member states
        HQ's member operations changed (:mod:`terminal.hq.member_ops.publish`)."""
        self.ledger, self.topics = ledger, topics or Topics()
        self.client = MqttClient(config)
        self.publisher = None if signer is None else MemberStatePublisher(
            self.client, ledger.thread, self.topics, signer)
        self.batch_max, self.state_interval = batch_max, state_interval
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.counts: dict[str, int] = defaultdict(int)  # outcomes, and refused messages

    async def start(self) -> None:
        self.client.set_will(Will(self.topics.hq_state(),
                                  HqState("offline", datetime.now(UTC)).to_json()))
        await self.client.subscribe(self.topics.all_terminals("events"), self._on_event)
        await self.client.subscribe(self.topics.all_terminals("status"), self._on_status)
        await self.client.subscribe(self.topics.all_terminals("members/req"), self._on_request)
        self.client.on_ready(self._announce)
        self._tasks = [asyncio.create_task(self._apply_batches(), name="hq-apply"),
                       asyncio.create_task(self._upkeep(), name="hq-upkeep")]
        if self.publisher is not None:
            self._tasks.append(asyncio.create_task(self.publisher.run(), name="hq-member-states"))
        await self.client.start()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.client.connected:
            with contextlib.suppress(MqttError, TimeoutError):
                await asyncio.wait_for(self.client.publish(
                    self.topics.hq_state(), HqState("offline", datetime.now(UTC)).to_json(),
                    retain=True), 2.0)
        await self.client.stop()

    async def _announce(self) -> None:
        await self.client.publish(self.topics.hq_state(),
                                  HqState("online", datetime.now(UTC)).to_json(), retain=True)

    async def _upkeep(self) -> None:
        while True:
            await asyncio.sleep(self.state_interval)
            with contextlib.suppress(MqttError):
                if self.client.connected:
                    await self._announce()
            voided = await self.ledger.thread.run(self.ledger.void_expired_holds)
            if voided:
                log.info("voided %d holds that timed out", voided)

    # -- events --------------------------------------------------------------------------------

    def _source(self, message: Message) -> TerminalTopic | None:
        try:
            return self.topics.parse_terminal(message.topic)
        except TopicError as exc:
            log.warning("ignored a message on %s: %s", message.topic, exc)
            return None

    def _on_event(self, message: Message) -> None:
        source = self._source(message)
        if source is None:
            return
        try:
            event = Event.from_json(message.payload)
        except MessageError as exc:
            self._refuse_message(source, f"malformed event: {exc}")
            return
        if (event.store, event.terminal) != (source.store, source.terminal):
            # The broker vouches for the topic, not for what a message says about itself.
            self._refuse_message(source, f"event {event.id} claims {event.store}/"
                                 f"{event.terminal} on another terminal's topic")
            return
        self._queue.put_nowait(event)

    def _refuse_message(self, source: TerminalTopic, why: str) -> None:
        self.counts["malformed"] += 1
        log.warning("refused a message from %s/%s: %s", source.store, source.terminal, why)

    async def _apply_batches(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                outcomes = await self.ledger.thread.run(self.ledger.apply, batch)
            except Exception:
                # Nothing was committed: the terminals publish these again (unacked).
                log.exception("applying %d events failed", len(batch))
                await asyncio.sleep(1.0)
                continue
            acks: dict[tuple[str, str], list[str]] = defaultdict(list)
            for outcome in outcomes:
                self.counts[outcome.result] += 1
                if outcome.ack:
                    acks[(outcome.event.store, outcome.event.terminal)].append(outcome.event.id)
            now = datetime.now(UTC)
            for (store, terminal), event_ids in acks.items():
                with contextlib.suppress(MqttError):  # unacked events come again
                    await self.client.publish(self.topics.acks(store, terminal),
                                              Ack(tuple(event_ids), now).to_json())

    # -- status and member requests ------------------------------------------------------------

    async def _on_status(self, message: Message) -> None:
        source = self._source(message)
        if source is None or not message.payload:
            return
        try:
            status = Status.from_json(message.payload)
        except MessageError as exc:
            self._refuse_message(source, f"malformed status: {exc}")
            return
        if status.rejected:
            log.warning("%s/%s refused %s: %s", source.store, source.terminal,
                        status.rejected.get("what"), status.rejected.get("detail"))
        await self.ledger.thread.run(_record_status, source, status)

    async def _on_request(self, message: Message) -> None:
        source = self._source(message)
        if source is None or not message.response_topic:
            return
        try:
            request = MemberRequest.from_json(message.payload)
        except MessageError as exc:
            self._refuse_message(source, f"malformed member request: {exc}")
            response = MemberResponse("lookup", False, datetime.now(UTC), error=str(exc)[:200])
        else:
            response = await self.ledger.thread.run(self.ledger.answer, request, source.store,
                                                    source.terminal)
        with contextlib.suppress(MqttError):
            await self.client.respond(message, response.to_json())


def _record_status(source: TerminalTopic, status: Status) -> None:
    row = {"online": status.state == "online", "epoch": status.epoch, "version": status.version,
           "rule_version": status.rule_version, "backlog": status.backlog,
           "devices": json.dumps(status.devices, sort_keys=True),
           "last_seen_us": to_micros(datetime.now(UTC))}
    if status.rejected:
        row["rejected"] = json.dumps(status.rejected, sort_keys=True)
    existing = TerminalSeen.get_or_none((TerminalSeen.store == source.store)
                                        & (TerminalSeen.terminal == source.terminal))
    if existing is not None and status.state == "offline" and status.epoch < existing.epoch:
        return  # the will of an older session arriving late: the newer birth stands
    if existing is None:
        TerminalSeen.create(store=source.store, terminal=source.terminal, **row)
    else:
        TerminalSeen.update(**row).where((TerminalSeen.store == source.store)
                                         & (TerminalSeen.terminal == source.terminal)).execute()
