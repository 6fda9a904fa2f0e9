"""What HQ drops of a terminal's message before reading it (issue 16, break 5): a message left
retained on a terminal's events or requests (cleared: Mosquitto cannot refuse retain per topic),
one over its size, one over its terminal's rate, and one on a topic that names no terminal.

Shared by the collector, which reads events and member requests, and by the event reader of
``--member-requests apart`` (terminal/hq/event_reader.py), which reads events in a process of its
own and hands on only what it admits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import MutableMapping

from terminal.hq.limits import RateLimiter
from terminal.protocol.mqtt import Message, MqttClient, MqttError
from terminal.protocol.topics import TerminalTopic, TopicError, Topics

log = logging.getLogger(__name__)


class Admission:
    """Counts what it drops in ``counts``; a retained message is cleared through ``client``."""

    def __init__(self, topics: Topics, counts: MutableMapping[str, int],
                 client: MqttClient) -> None:
        self.topics, self.counts, self.client = topics, counts, client
        self._clearing: set[asyncio.Task[None]] = set()

    def source(self, topic: str) -> TerminalTopic | None:
        """The terminal ``topic`` names, or None (logged) for a topic naming none."""
        try:
            return self.topics.parse_terminal(topic)
        except TopicError as exc:
            log.warning("ignored a message on %s: %s", topic, exc)
            return None

    def admit(self, message: Message, limiter: RateLimiter, size: int) -> TerminalTopic | None:
        """The message's terminal, or None for a message HQ drops unread."""
        if message.retain:
            if message.payload:
                log.warning("cleared a message retained on %s", message.topic)
                self.counts["retained"] += 1
                self._clear(message.topic)
            return None
        source = self.source(message.topic)
        if source is None:
            return None
        if len(message.payload) > size:
            self.refuse(source, f"{len(message.payload)} bytes on {source.channel}; "
                        f"at most {size}")
            return None
        if not limiter.allow((source.store, source.terminal)):
            self.counts["throttled"] += 1
            if limiter.dropped % 1000 == 1:
                log.warning("%s/%s is over its rate on %s: dropped (%d so far)", source.store,
                            source.terminal, source.channel, limiter.dropped)
            return None
        return source

    def refuse(self, source: TerminalTopic, why: str) -> None:
        self.counts["malformed"] += 1
        log.warning("refused a message from %s/%s: %s", source.store, source.terminal, why)

    def _clear(self, topic: str) -> None:
        """Publish an empty retained message on ``topic``: the broker forgets what it kept."""
        async def clear() -> None:
            with contextlib.suppress(MqttError):
                await self.client.publish(topic, b"", retain=True)
        task = asyncio.create_task(clear(), name="hq-clear-retained")
        self._clearing.add(task)
        task.add_done_callback(self._clearing.discard)
