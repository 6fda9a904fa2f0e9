"""``--member-requests apart``: HQ says it is online only once its member requests are answered.

A till takes HQ's retained "online" to mean its lookups and holds are answered; with the two
halves of a collector in two processes, the events' half used to say so as soon as it was
connected, and a hold sent before the other half had subscribed timed out into the offline
allowance (tests/trust/test_requests_apart.py, now and then on a loaded machine)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from terminal.protocol.messages import HqState, MemberRequest, MemberResponse
from terminal.protocol.mqtt import MqttClient
from terminal.protocol.topics import Topics

from .conftest import Inbox, mqtt_client, run
from .harness import Chain

TILL = ("S001", "T01")
ROUNDS = 3  # of the events' half's upkeep, each of which would say "online" again


def _states(inbox: Inbox) -> list[str]:
    return [HqState.from_json(message.payload).state for message in inbox.messages]


def test_online_is_said_once_member_requests_are_answered(tmp_path: Path, pki: Any,
                                                          broker: Any) -> None:
    topics = Topics()

    async def scenario() -> None:
        chain = Chain(tmp_path, pki, broker)
        answering = threading.Event()  # what the two processes share (a multiprocessing Event)
        events = chain.hq(client_id="hq-events", serves="events", ready=answering)
        requests = chain.hq(client_id="hq-requests", serves="requests", answering=answering)
        states = Inbox()
        async with mqtt_client(pki, broker, "/".join(TILL)) as till:
            await till.subscribe(topics.hq_state(), states)
            try:
                await events.start()
                await events.client.wait_ready(30)
                # Connected, subscribed and announcing every state_interval: still not online,
                # as nothing answers a hold yet. (A window of absence, not a synchronisation.)
                await asyncio.sleep(events.state_interval * ROUNDS)
                assert "online" not in _states(states)
                assert not answering.is_set()

                await requests.start()
                await requests.client.wait_ready(30)
                async with asyncio.timeout(30):
                    while "online" not in _states(states):
                        await states.wait_for(len(states.messages) + 1, 30)
                assert answering.is_set()
                # What a till does on "online": a lookup, answered at once.
                reply = await till.request(
                    topics.member_request(*TILL),
                    MemberRequest("lookup", "0" * 64).to_json(),
                    response_topic=topics.member_response(*TILL), timeout=30)
                answer = MemberResponse.from_json(reply.payload)
                assert not answer.ok and answer.error == "unknown member"
            finally:
                await chain.stop()

    run(scenario())


class Cut:
    """A TCP relay to the broker that a test can cut (closing its connections and refusing new
    ones) and mend: one client's link to the broker fails while others' stay up."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port, self.listen_port = host, port, 0
        self.open = True
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self._links.update((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.open = False
        for writer in self._links:
            writer.close()
        self._links.clear()

    def mend(self) -> None:
        self.open = True

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def test_hq_says_offline_while_member_requests_lose_their_broker(tmp_path: Path, pki: Any,
                                                                 broker: Any) -> None:
    """The member-request process loses its broker connection while the events' process keeps
    its own: HQ's state goes offline (a till's holds would go unanswered, so it falls back to
    the offline allowance at once instead of timing out), and online again once it is back."""
    topics = Topics()

    async def scenario() -> None:
        chain = Chain(tmp_path, pki, broker)
        answering = threading.Event()
        events = chain.hq(client_id="hq-events", serves="events", ready=answering)
        requests = chain.hq(client_id="hq-requests", serves="requests", answering=answering)
        relay = Cut(broker.host, broker.port)
        await relay.start()
        requests.client = MqttClient(replace(requests.client.config, host="127.0.0.1",
                                             port=relay.listen_port))
        states = Inbox()

        async def state_becomes(state: str) -> None:
            async with asyncio.timeout(30):
                while not _states(states) or _states(states)[-1] != state:
                    await states.wait_for(len(states.messages) + 1, 30)

        async with mqtt_client(pki, broker, "/".join(TILL)) as till:
            await till.subscribe(topics.hq_state(), states)
            try:
                await chain.start()
                await chain.ready()
                await state_becomes("online")

                relay.cut()  # the requests' connection fails; the events' stays
                await state_becomes("offline")
                assert not answering.is_set()
                assert events.client.connected

                relay.mend()  # it reconnects (backoff), subscribes, answers: online again
                await state_becomes("online")
                assert answering.is_set()
                reply = await till.request(
                    topics.member_request(*TILL),
                    MemberRequest("lookup", "0" * 64).to_json(),
                    response_topic=topics.member_response(*TILL), timeout=30)
                assert MemberResponse.from_json(reply.payload).error == "unknown member"
            finally:
                await chain.stop()
                await relay.stop()

    run(scenario())


def test_hq_says_offline_after_an_online_sent_while_its_offline_awaited_the_broker(
        tmp_path: Path, pki: Any, broker: Any) -> None:
    """What HQ last said is what it last sent, whatever PUBACK came when: the member-request
    process stops answering (HQ sends "offline"; the broker, stopped, acks nothing), answers
    again (the upkeep sends "online"), then stops again: HQ must say "offline" again. Before,
    the "offline"'s late PUBACK made HQ think it had said offline last and it kept quiet, the
    tills' last word being "online" (seen once at load 13 in the test above)."""
    topics = Topics()

    async def scenario() -> None:
        chain = Chain(tmp_path, pki, broker)
        answering = threading.Event()
        answering.set()
        events = chain.hq(client_id="hq-events", serves="events", ready=answering)
        states = Inbox()

        async def until(condition: Any) -> None:
            async with asyncio.timeout(30):
                while not condition():
                    await asyncio.sleep(0.01)

        async with mqtt_client(pki, broker, "/".join(TILL)) as till:
            await till.subscribe(topics.hq_state(), states)
            try:
                await events.start()
                await until(lambda: _states(states)[-1:] == ["online"])
                os.kill(broker.process.pid, signal.SIGSTOP)  # takes packets, answers none
                try:
                    answering.clear()
                    await until(lambda: events._said == "offline")  # sent, not acked
                    answering.set()
                    await until(lambda: events._said == "online")  # the upkeep's, sent after
                finally:
                    os.kill(broker.process.pid, signal.SIGCONT)
                await until(lambda: _states(states)[-2:] == ["offline", "online"])
                answering.clear()
                await until(lambda: _states(states)[-1:] == ["offline"])
            finally:
                await chain.stop()

    run(scenario())
