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
import dataclasses
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, Protocol

from terminal.hq.admission import Admission
from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import HqPostgresDatabase
from terminal.hq.event_pipe import FrameReader
from terminal.hq.limits import MAX_EVENT_BYTES, MAX_REQUEST_BYTES, RateLimiter
from terminal.hq.loop_holds import LoopHolds
from terminal.hq.member_ops.publish import MemberStatePublisher, Signer
from terminal.hq.models import BundleRefusal, TerminalSeen
from terminal.loyalty.clock import to_micros
from terminal.protocol.hq_refusals import refusal
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
from terminal.protocol.topics import TerminalTopic, Topics

log = logging.getLogger(__name__)
MAX_ANSWERING = 256  # member requests waiting for the requests thread, all terminals together


SERVES = ("all", "events", "requests")
ANSWERING_POLL = 0.05  # seconds between looks at whether the member-request process answers


class Ready(Protocol):
    """What the ingest side watches of the processes beside it: whether they are ready."""

    def is_set(self) -> bool: ...


class Flag(Ready, Protocol):
    """What the two processes of ``--member-requests apart`` share (a multiprocessing Event):
    the member-request side sets it while it answers."""

    def set(self) -> None: ...

    def clear(self) -> None: ...


class HoldsAnswered:
    """The holds and voids a member-request side is answering now and has begun so far, for
    the ingest side's transactions (ChainLedger.holds_answered). ``counts``: two integers,
    a multiprocessing RawArray made before the fork with ``--member-requests apart`` (the
    member-request process's event loop alone moves them, the ingest process reads them: no
    lock), or a list in one process."""

    def __init__(self, counts: Any = None) -> None:
        self.counts = [0, 0] if counts is None else counts

    def begin(self) -> None:
        self.counts[1] += 1
        self.counts[0] += 1

    def end(self) -> None:
        self.counts[0] -= 1

    def __call__(self) -> tuple[int, int]:
        """(answering now, begun so far)."""
        return self.counts[0], self.counts[1]


class AllSet:
    """Ready when every one of ``flags`` is (the ingest process's view of the processes beside
    it: HQ is online once its member requests are answered and its events read)."""

    def __init__(self, *flags: Ready) -> None:
        self.flags = flags

    def is_set(self) -> bool:
        return all(flag.is_set() for flag in self.flags)


class Collector:
    def __init__(self, ledger: ChainLedger, config: MqttConfig, topics: Topics | None = None, *,
                 batch_max: int = 500, state_interval: float = 10.0,
                 signer: Signer | None = None, serves: str = "all",
                 answering: Flag | None = None, ready: Ready | None = None,
                 events_from: int | None = None, holds_on_loop: bool = False,
                 holding: HoldsAnswered | None = None) -> None:
        """With a ``signer`` (HQ's signing key) the collector also publishes the member states
        HQ's member operations changed (:mod:`terminal.hq.member_ops.publish`). ``serves``:
        ``events`` (events, statuses, HQ's state; no member requests), ``requests`` (member
        requests only: a process of their own, see terminal.hq.collect) or ``all``. When the
        two are apart, the requests' side sets ``answering`` while it is subscribed, and the
        events' side says HQ is online only while ``ready`` is set (that flag, and the event
        reader's): a till takes "online" to mean its lookups and holds are answered (else a
        hold sent in between falls back to the offline allowance). ``events_from``: the
        reading end of the event reader's pipe (terminal/hq/event_reader.py): the events come
        from there, admitted, instead of from this collector's own subscription.
        ``holds_on_loop``: on PostgreSQL, holds and voids are answered on this loop
        (:mod:`terminal.hq.loop_holds`), else on the ledger's holding threads. ``holding``
        counts the holds and voids this collector answers (each from the request's arrival to
        its answer), for the ingest process's transactions (ChainLedger.holds_answered)."""
        if serves not in SERVES:
            raise ValueError(f"serves is one of {', '.join(SERVES)}, not {serves!r}")
        if events_from is not None and serves != "events":
            raise ValueError("events from a reader's pipe are for a collector serving events")
        if answering is not None and serves != "requests":
            raise ValueError("answering is set by a collector serving member requests only")
        if ready is not None and serves != "events":
            raise ValueError("ready is watched by a collector serving events only")
        if holding is not None and serves != "requests":
            raise ValueError("holding is counted by a collector serving member requests only")
        self.events, self.answers = serves != "requests", serves != "events"
        self.ledger, self.topics = ledger, topics or Topics()
        self.client = MqttClient(config)
        self.publisher = None if signer is None else MemberStatePublisher(
            self.client, ledger.thread, self.topics, signer)
        self.batch_max, self.state_interval = batch_max, state_interval
        self.answering, self.ready, self.holding = answering, ready, holding
        # What one terminal may ask of HQ (hq/limits.py): the queue of events waiting to be
        # applied is bounded, and each terminal's events and member requests are rate-limited.
        limits = ledger.trust.limits
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=limits.queue)
        self._events = RateLimiter(limits.events_per_second, limits.events_per_second * 10)
        self._requests = RateLimiter(limits.requests_per_second, limits.requests_per_second * 2)
        self._answering = 0  # member requests waiting for the requests thread
        self._said: str | None = None  # HQ's state this connection last published
        self._tasks: list[asyncio.Task[None]] = []
        self.counts: dict[str, int] = defaultdict(int)  # outcomes, and refused messages
        self.admission = Admission(self.topics, self.counts, self.client)
        self._events_from = events_from
        # Holds and voids on this loop (PostgreSQL: psycopg's async connections, opened in
        # start()); on SQLite, one shop, they stay on the ledger's holding threads.
        self.loop_holds = LoopHolds(ledger) if holds_on_loop and self.answers and isinstance(
            ledger.db, HqPostgresDatabase) else None

    async def start(self) -> None:
        if self.events:
            self.client.set_will(Will(self.topics.hq_state(),
                                      HqState("offline", datetime.now(UTC)).to_json()))
            if self._events_from is None:
                await self.client.subscribe(self.topics.all_terminals("events"),
                                            self._on_event, retain_as_published=True)
            else:
                await FrameReader.open(self._events_from, self._on_frame, self._reader_lost,
                                       self._on_parsed)
            await self.client.subscribe(self.topics.all_terminals("status"), self._on_status)
            self.client.on_ready(self._announce_when_answered)
            self.client.on_lost(self._forget_said)
            self._tasks = [asyncio.create_task(self._apply_batches(), name="hq-apply")]
            if self.ready is not None:
                self._tasks.append(asyncio.create_task(self._follow_answering(),
                                                       name="hq-answering"))
        if self.loop_holds is not None:
            await self.loop_holds.open()
        if self.answers:
            await self.client.subscribe(self.topics.all_terminals("members/req"),
                                        self._on_request, retain_as_published=True)
            self._tasks.append(asyncio.create_task(self._audit(), name="hq-audit"))
            if self.answering is not None:  # answered while connected, and only then
                self.client.on_ready(self.answering.set)
                self.client.on_lost(self.answering.clear)
        self._tasks.append(asyncio.create_task(self._upkeep(), name="hq-upkeep"))
        if self.publisher is not None and self.events:
            self._tasks.append(asyncio.create_task(self.publisher.run(), name="hq-member-states"))
        await self.client.start()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.client.connected and self.events:
            with contextlib.suppress(MqttError, TimeoutError):
                await asyncio.wait_for(self.client.publish(
                    self.topics.hq_state(), HqState("offline", datetime.now(UTC)).to_json(),
                    retain=True), 2.0)
        await self.client.stop()
        if self.loop_holds is not None:
            await self.loop_holds.close()
        if self.publisher is not None:
            self.publisher.close()

    def _announce_when_answered(self) -> None:
        """After each (re)connection: HQ's state is online, once member requests are answered
        too (a task: the MQTT client's other ready work does not wait for the other process)."""
        self._tasks = [task for task in self._tasks if not task.done()]
        self._tasks.append(asyncio.create_task(self._announce_online(), name="hq-announce"))

    async def _announce_online(self) -> None:
        while self.ready is not None and not self.ready.is_set():
            await asyncio.sleep(ANSWERING_POLL)
        with contextlib.suppress(MqttError):  # lost meanwhile: the next connection announces
            await self._announce()

    async def _follow_answering(self) -> None:
        """While connected, HQ's state follows the member-request process: offline when it
        stops answering (lost its broker connection: holds would go unanswered while this
        process's own connection stays up), online again once it answers. A state that could
        not be published is tried again at the next look."""
        while True:
            await asyncio.sleep(ANSWERING_POLL)
            if not self.client.connected:
                self._said = None
                continue
            answering = self.ready is not None and self.ready.is_set()
            if self._said == ("online" if answering else "offline"):
                continue
            with contextlib.suppress(MqttError):
                if answering:
                    await self._announce()
                else:
                    log.warning("the member-request process is not answering, or the event "
                                "reader not reading: HQ says offline")
                    await self._say("offline")

    async def _announce(self) -> None:
        await self._say("online")

    async def _say(self, state: str) -> None:
        """Publish HQ's retained state. What was said is what was sent last (the broker keeps
        a connection's order), recorded when it is sent, not when its PUBACK comes: an "online"
        sent by another task while an "offline" waited for its PUBACK is the last word the
        tills have, and the next look must see that (at load 13 a test once saw HQ go on saying
        online with its member requests cut). Unknown after a failure: the next look says it
        again."""
        self._said = state
        try:
            await self.client.publish(self.topics.hq_state(),
                                      HqState(state, datetime.now(UTC)).to_json(), retain=True)
        except MqttError:
            self._said = None
            raise

    def _forget_said(self) -> None:
        self._said = None  # the broker may have published the will since: say it again

    async def _audit(self) -> None:
        """The member lookups answered, written to lookup_audit once a second."""
        try:
            while True:
                await asyncio.sleep(1.0)
                await self.ledger.requests.run(self.ledger.write_audit)
        finally:  # stopping: what was answered since is written too
            await asyncio.shield(self.ledger.requests.run(self.ledger.write_audit))

    async def _upkeep(self) -> None:
        while True:
            await asyncio.sleep(self.state_interval)
            with contextlib.suppress(MqttError):
                if self.client.connected and self.events and (
                        self.ready is None or self.ready.is_set()):
                    await self._announce()
            if not self.answers:
                continue
            # On the upkeep's own thread: a lookup on the requests thread waited behind a round
            # of voiding (a lookup 82.9 ms behind a 71.8 ms UPDATE, bench_ingest (c) with
            # --c-backlog-holds, docs/hq.md session 19 (c)).
            try:
                voided = await self.ledger.upkeep.run(self.ledger.void_expired_holds)
                pruned = await self.ledger.upkeep.run(self.ledger.prune_holds)
                analyzed = await self.ledger.upkeep.run(self.ledger.keep_hold_statistics)
            except Exception:  # the database's trouble: the next round voids them
                log.exception("the holds' upkeep (voiding, pruning, statistics) failed")
                continue
            if voided:
                log.info("voided %d holds that timed out", voided)
            if pruned:
                log.info("deleted %d holds settled before the policy's keep_days", pruned)
            if analyzed:
                log.info("analyzed member_hold: it changed by more rows than its statistics "
                         "counted")

    # -- events --------------------------------------------------------------------------------

    def _on_event(self, message: Message) -> None:
        source = self.admission.admit(message, self._events, MAX_EVENT_BYTES)
        if source is not None:
            self._take_event(source, message.payload)

    def _on_frame(self, topic: str, payload: bytes) -> None:
        """An event the reader admitted (its topic is the broker's: it names a terminal)."""
        source = self.admission.source(topic)
        if source is not None:
            self._take_event(source, payload)

    def _reader_lost(self) -> None:
        log.warning("the event reader closed its pipe: no events come in until it is back")

    def _on_parsed(self, topic: str, event: Event) -> None:
        """An event the reader admitted and parsed (event_pipe.parsed)."""
        source = self.admission.source(topic)
        if source is not None:
            self._take(source, event)

    def _take_event(self, source: TerminalTopic, payload: bytes) -> None:
        try:
            event = Event.from_json(payload)
        except MessageError as exc:
            self.admission.refuse(source, f"malformed event: {exc}")
            return
        self._take(source, event)

    def _take(self, source: TerminalTopic, event: Event) -> None:
        if (event.store, event.terminal) != (source.store, source.terminal):
            # The broker vouches for the topic, not for what a message says about itself.
            self.admission.refuse(source, f"event {event.id} claims {event.store}/"
                                  f"{event.terminal} on another terminal's topic")
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:  # not acked: the till publishes it again
            self.counts["shed"] += 1

    async def _apply_batches(self) -> None:
        """Batches off the queue, each applied on the ledger thread and its events acked once
        committed. A batch's acks are handed to the client and the next batch goes to the
        ledger thread at once; their PUBACKs are awaited after that batch (they have come by
        then, as a rule), so at most two batches' acks are in flight. Until session 16 the ten
        tills' PUBACKs were awaited one after another before the next batch began, the ledger
        thread idle meanwhile (docs/hq.md, "Acks beside the next batch")."""
        busy: list[Event] = []  # held by another collector's batch: first in the next one
        acking: list[asyncio.Future[None]] = []  # the last batch's acks, until their PUBACKs
        while True:
            batch, busy = busy, []
            if not batch:
                batch.append(await self._queue.get())
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
                if outcome.result == "busy":
                    busy.append(outcome.event)
                if outcome.ack:
                    acks[(outcome.event.store, outcome.event.terminal)].append(outcome.event.id)
            await _acked(acking)
            acking = self._send_acks(acks)
            if len(busy) == len(batch):
                await asyncio.sleep(0.05)  # all of it held elsewhere: let that batch commit

    def _send_acks(self, acks: dict[tuple[str, str], list[str]]) -> list[asyncio.Future[None]]:
        """Hand a committed batch's acks to the client, one message a terminal; the futures
        resolve on their PUBACKs (see :meth:`_apply_batches`)."""
        now, sent = datetime.now(UTC), []
        for (store, terminal), event_ids in acks.items():
            try:
                future = self.client.publish_nowait(self.topics.acks(store, terminal),
                                                    Ack(tuple(event_ids), now).to_json())
            except MqttError:  # not connected: unacked events come again
                continue
            future.add_done_callback(_retrieved)
            sent.append(future)
        return sent

    # -- status and member requests ------------------------------------------------------------

    async def _on_status(self, message: Message) -> None:
        source = self.admission.source(message.topic)
        if source is None or not message.payload:
            return
        if len(message.payload) > MAX_REQUEST_BYTES * 4:
            self.admission.refuse(source, f"a status of {len(message.payload)} bytes")
            return
        try:
            status = Status.from_json(message.payload)
        except MessageError as exc:
            self.admission.refuse(source, f"malformed status: {exc}")
            return
        if status.rejected:
            log.warning("%s/%s refused %s: %s", source.store, source.terminal,
                        status.rejected.get("what"), status.rejected.get("detail"))
        await self.ledger.thread.run(_record_status, source, status)

    def _on_request(self, message: Message) -> Awaitable[None] | None:
        """Admit the request here, on the loop, and answer it in a task: one dropped (over its
        terminal's rate, or with too many waiting) costs no task, no parse, no database."""
        if not message.response_topic:
            return None
        source = self.admission.admit(message, self._requests, MAX_REQUEST_BYTES)
        if source is None or self._answering >= MAX_ANSWERING:
            return None  # unanswered: the till times out and keeps to its offline allowance
        self._answering += 1
        return self._answer(message, source)

    async def _answer(self, message: Message, source: TerminalTopic) -> None:
        try:
            await self._answer_admitted(message, source)
        finally:
            self._answering -= 1

    async def _answer_admitted(self, message: Message, source: TerminalTopic) -> None:
        try:
            request = MemberRequest.from_json(message.payload)
        except MessageError as exc:
            self.admission.refuse(source, f"malformed member request: {exc}")
            # No code: whether the till reads one is in the request it could not parse.
            response = MemberResponse("lookup", False, datetime.now(UTC),
                                      error=refusal("request.malformed", problem=str(exc)).error)
        else:
            response = for_till(await self._respond(request, source), request)
        with contextlib.suppress(MqttError):
            await self.client.respond(message, response.to_json())

    async def _respond(self, request: MemberRequest, source: TerminalTopic) -> MemberResponse:
        """Never behind an ingest batch: a hold or void on this loop, on a connection of its
        own (:mod:`terminal.hq.loop_holds`), the rest on a request thread and its own. A hold
        or void is counted in :attr:`holding` meanwhile: it may wait for an ingest transaction
        holding its member, which ends early while one is counted (ChainLedger.apply)."""
        if self.holding is None or request.op not in ("hold", "void"):
            return await self._respond_now(request, source)
        self.holding.begin()
        try:
            return await self._respond_now(request, source)
        finally:
            self.holding.end()

    async def _respond_now(self, request: MemberRequest, source: TerminalTopic
                           ) -> MemberResponse:
        if self.loop_holds is not None and request.op in ("hold", "void"):
            return await self.loop_holds.answer(request, source.store, source.terminal)
        return await self.ledger.request_thread(request).run(
            self.ledger.answer, request, source.store, source.terminal)


def for_till(response: MemberResponse, request: MemberRequest) -> MemberResponse:
    """``response`` as the till that sent ``request`` can read it: a refusal's ``code`` and
    ``values`` only if it asked for them (``codes``); a till before them refuses an answer with
    fields it does not know, and would take a refused hold for HQ not answering."""
    if request.codes or (response.code is None and response.values is None):
        return response
    return dataclasses.replace(response, code=None, values=None)


async def _acked(sent: list[asyncio.Future[None]]) -> None:
    """Until the acks handed to the client are answered; one refused or lost is not waited for
    again (its events are unacked: the terminal publishes them again)."""
    for future in sent:
        with contextlib.suppress(MqttError):
            await future


def _retrieved(future: asyncio.Future[None]) -> None:
    """An ack nobody awaits any more (the collector stopped) has its error taken, unlogged."""
    if not future.cancelled():
        future.exception()


def _record_status(source: TerminalTopic, status: Status) -> None:
    row = {"online": status.state == "online", "epoch": status.epoch, "version": status.version,
           "rule_version": status.rule_version, "backlog": status.backlog,
           "devices": json.dumps(status.devices, sort_keys=True),
           "bundles": json.dumps(status.bundles, sort_keys=True),
           "printer_state": json.dumps(status.printer_state, sort_keys=True)
           if status.printer_state is not None else "",
           "last_seen_us": to_micros(datetime.now(UTC))}
    if status.rejected:
        row["rejected"] = json.dumps(status.rejected, sort_keys=True)
    existing = TerminalSeen.get_or_none((TerminalSeen.store == source.store)
                                        & (TerminalSeen.terminal == source.terminal))
    if existing is not None and status.state == "offline" and status.epoch < existing.epoch:
        return  # the will of an older session arriving late: the newer birth stands
    _record_bundle_refusal(source, status, row["last_seen_us"])
    if existing is None:
        TerminalSeen.create(store=source.store, terminal=source.terminal, **row)
    else:
        TerminalSeen.update(**row).where((TerminalSeen.store == source.store)
                                         & (TerminalSeen.terminal == source.terminal)).execute()


def _record_bundle_refusal(source: TerminalTopic, status: Status, now_us: int) -> None:
    """Keep a bundle refusal the status reports (each once: a status repeats the latest)."""
    rejected = status.rejected or {}
    if rejected.get("what") != "bundle" or not rejected.get("at"):
        return
    scope = rejected.get("ref", "").partition("/bundles/")[2]
    BundleRefusal.insert(store=source.store, terminal=source.terminal, scope=scope,
                         reason=rejected.get("reason", ""), detail=rejected.get("detail", ""),
                         at=rejected["at"], received_us=now_us).on_conflict_ignore().execute()
