"""The event reader of ``posterm-hq collect --member-requests apart``: a process of its own that
takes the terminals' events from the broker as fast as they come and hands what it admits to the
ingest process over a pipe (terminal/hq/event_pipe.py).

Read in the ingest process, events waited for the interpreter's lock behind the ledger's batches:
ten tills publishing 4,000 events in about a second outran it, and past its queue (Mosquitto's
``max_queued_messages``, 1,000 with 100 in flight) the broker dropped the rest, which the tills
published again only after their ack timeout (bench_ingest.py, session 11). Here the broker's
queue drains at the speed of the network, the TLS and paho, and the backlog waits in this process
instead, bounded (event_pipe.AHEAD_BYTES; past it an event is shed, as the collector's own queue
sheds past the trust policy's ``queue``: not acked, the till publishes it again).

The reader opens no database: it admits (admission.py: retained, size, each terminal's rate),
parses the event (Event.from_json) and passes its topic and fields on (event_pipe.parsed; a
payload that does not parse goes on as its bytes, for the ingest process to refuse as before);
the ingest process applies and acks them. It
subscribes as ``CLIENT-ID-events`` in the same shared subscription, stops when the ingest process
is gone (its parent's pid changes, or the pipe closes), and the ingest process stops if it dies.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict

from terminal.hq.admission import Admission
from terminal.hq.collector import Flag
from terminal.hq.event_pipe import PARSED, RAW, FrameWriter, parsed
from terminal.hq.limits import MAX_EVENT_BYTES, RateLimiter
from terminal.hq.policy import Limits
from terminal.protocol.messages import Event, MessageError
from terminal.protocol.mqtt import Message, MqttClient, MqttConfig
from terminal.protocol.topics import Topics

log = logging.getLogger(__name__)


class EventReader:
    def __init__(self, config: MqttConfig, topics: Topics, limits: Limits, fd: int,
                 reading: Flag | None = None) -> None:
        """``fd``: the pipe's writing end; ``limits``: the trust policy's (each terminal's
        event rate); ``reading`` is set while subscribed (HQ says online only then, as when
        the ingest process's own connection carried the events)."""
        self.topics, self.fd, self.reading = topics, fd, reading
        self.client = MqttClient(config)
        self.counts: defaultdict[str, int] = defaultdict(int)
        self.admission = Admission(topics, self.counts, self.client)
        self._rate = RateLimiter(limits.events_per_second, limits.events_per_second * 10)
        self._writer: FrameWriter | None = None
        self.lost = False  # the ingest process closed its end

    async def start(self) -> None:
        log.info("event reader (pid %d): events to the ingest process's pipe", os.getpid())
        self._writer = await FrameWriter.open(self.fd, self._lose)
        await self.client.subscribe(self.topics.all_terminals("events"), self._on_event,
                                    retain_as_published=True)
        if self.reading is not None:
            self.client.on_ready(self.reading.set)
            self.client.on_lost(self.reading.clear)
        await self.client.start()

    async def stop(self) -> None:
        await self.client.stop()
        if self._writer is not None:
            self._writer.close()  # what waits for the pipe is written first

    def _lose(self) -> None:
        if not self.lost:
            log.warning("the ingest process closed the event pipe")
        self.lost = True

    def _on_event(self, message: Message) -> None:
        source = self.admission.admit(message, self._rate, MAX_EVENT_BYTES)
        if source is None or self._writer is None:
            return
        try:  # parsed here, on the reader's core: the ingest process makes the Event again
            payload, kind = parsed(Event.from_json(message.payload)), PARSED
        except MessageError:  # the ingest process refuses it, as it always did
            payload, kind = message.payload, RAW
        if not self._writer.send(message.topic, payload, kind):
            self.counts["shed"] += 1  # not acked: the till publishes it again
            if self.counts["shed"] % 1000 == 1:
                log.warning("the ingest process is %d bytes behind: shed an event from %s/%s "
                            "(%d so far)", self._writer.transport.get_write_buffer_size(),
                            source.store, source.terminal, self.counts["shed"])
