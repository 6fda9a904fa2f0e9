"""The asyncio paho wrapper against a real Mosquitto running the shipped config."""

from __future__ import annotations

import asyncio
import random
import socket
import threading

import paho.mqtt.client as paho
import pytest

from terminal.protocol.mqtt import (
    Backoff,
    ConnectionLost,
    MqttClient,
    MqttConfig,
    NotConnected,
    RequestTimeout,
    Will,
    _overlap,
)
from terminal.protocol.topics import Topics
from tests.drivers.waiting import until
from tests.sync.conftest import SENTINEL, Inbox, hq_and_terminal, mqtt_client, run

T = Topics()
EVENTS = T.events("S001", "T01")


def test_backoff_grows_with_jitter_and_resets() -> None:
    backoff = Backoff(0.5, 8.0, random.Random(7))
    delays = [backoff.next() for _ in range(8)]
    for step, delay in zip([0.5, 1, 2, 4, 8, 8, 8, 8], delays, strict=True):
        assert step / 2 <= delay <= step
    assert len(set(delays)) == len(delays)
    backoff.reset()
    assert backoff.next() <= 0.5


FILTERS = ["a/b", "a/+", "a/#", "#", "+", "+/+", "a/+/c", "$SYS/#", "+/b", "a/b/#", EVENTS,
           T.all_terminals("events", shared=False)]
TOPICS = ["a", "a/b", "a/c", "a/b/c", "b", "$SYS/x", "a/x/c", "x/b", "", "a/", "/b", EVENTS,
          T.acks("S001", "T01")]


def test_filters_overlap_when_some_topic_matches_both() -> None:
    for a in FILTERS:
        for b in FILTERS:
            # Conservative: "$" topics aside, overlap whenever one of TOPICS matches both.
            if any(paho.topic_matches_sub(a, t) and paho.topic_matches_sub(b, t)
                   for t in TOPICS if not t.startswith("$")):
                assert _overlap(a, b), (a, b)
    assert not _overlap(EVENTS, T.acks("S001", "T01"))
    assert not _overlap("a/b/c", "a/b") and _overlap("a/#", "a") and _overlap("a/+/c", "a/b/+")


def test_publish_awaits_puback_and_runs_on_the_loop(pki, broker) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        async with hq_and_terminal(pki, broker) as (hq, terminal):
            await hq.subscribe(T.all_terminals("events"), inbox)
            threads = {threading.get_ident()}
            inbox_thread = lambda m: threads.add(threading.get_ident())  # noqa: E731
            await hq.subscribe(T.all_terminals("events", shared=False), inbox_thread)
            for n in range(20):
                await terminal.publish(EVENTS, b"event %d" % n)
            got = await inbox.wait_for(20)
            assert [m.payload for m in got] == [b"event %d" % n for n in range(20)]
            assert all(m.qos == 1 and m.topic == EVENTS for m in got)
            assert threads == {threading.get_ident()}  # handlers ran on the loop's thread
            # No paho network thread (loop_start names it paho-mqtt-client-ID) for any client;
            # counting all threads would count other tests' executor threads still winding down.
            assert not [t.name for t in threading.enumerate()
                        if t.name.startswith("paho-mqtt-client-")]
    run(scenario())


def test_publish_while_disconnected_is_refused_at_once(pki, broker) -> None:
    async def scenario() -> None:
        broker.stop()
        async with mqtt_client(pki, broker, "S001/T01", ready=False) as terminal:
            with pytest.raises(NotConnected):
                await terminal.publish(EVENTS, b"x")
    run(scenario())


def test_reconnects_after_broker_restart_and_renews_subscriptions(pki, broker) -> None:
    async def scenario() -> None:
        inbox, readies, terminal_readies = Inbox(), [], []
        async with hq_and_terminal(pki, broker) as (hq, terminal):
            hq.on_ready(lambda: readies.append("hq"))
            terminal.on_ready(lambda: terminal_readies.append("terminal"))
            await hq.subscribe(T.all_terminals("events"), inbox)
            await terminal.publish(EVENTS, b"before")
            await inbox.wait_for(1)
            await asyncio.to_thread(broker.restart)
            # Until both have connected again (wait_ready alone may see the old connection).
            await until(lambda: readies and terminal_readies, 10, "both clients to reconnect")
            await hq.wait_ready(10)
            await terminal.wait_ready(10)
            await terminal.publish(EVENTS, b"after")
            got = await inbox.wait_for(2)
            assert [m.payload for m in got] == [b"before", b"after"]
            assert readies == ["hq"]  # callbacks added after the first connect run on reconnect
    run(scenario())


def test_will_announces_death_on_abrupt_disconnect(pki, broker) -> None:
    status = T.status("S001", "T01")

    async def scenario() -> None:
        inbox = Inbox()
        will = Will(status, b'{"state":"offline","epoch":4}')
        async with mqtt_client(pki, broker, "hq") as hq:
            await hq.subscribe(T.all_terminals("status", shared=False), inbox)
            async with mqtt_client(pki, broker, "S001/T01", will=will, keepalive=5) as terminal:
                await terminal.publish(status, b'{"state":"online","epoch":4}', retain=True)
                await inbox.wait_for(1)
                terminal.paho.socket().close()  # the network vanishes: no DISCONNECT packet
                got = await inbox.wait_for(2, timeout=10)
            assert got[1].payload == will.payload
        async with mqtt_client(pki, broker, "hq", client_id="hq-late") as late:
            retained = Inbox()
            await late.subscribe(status, retained)
            assert (await retained.wait_for(1))[0].payload == will.payload  # will was retained
    run(scenario())


def test_clean_stop_sends_no_will(pki, broker) -> None:
    status = T.status("S001", "T01")

    async def scenario() -> None:
        inbox = Inbox()
        async with mqtt_client(pki, broker, "hq") as hq:
            await hq.subscribe(status, inbox)
            async with mqtt_client(pki, broker, "S001/T01", will=Will(status, b"dead")):
                pass  # stop() returns once the broker closed the connection after DISCONNECT
            # A will would have been published then: a message sent after it arrives after it.
            async with mqtt_client(pki, broker, "S001/T01", client_id="S001-T01-later") as later:
                await later.publish(status, SENTINEL)
            assert await inbox.before_sentinel() == []
    run(scenario())


def test_request_response_with_correlation(pki, broker) -> None:
    async def scenario() -> None:
        async with hq_and_terminal(pki, broker) as (hq, terminal):
            async def answer(request) -> None:
                await hq.respond(request, b"balance of " + request.payload)
            await hq.subscribe(T.all_terminals("members/req"), answer)
            replies = await asyncio.gather(*(
                terminal.request(T.member_request("S001", "T01"), b"M%d" % n,
                                 response_topic=T.member_response("S001", "T01"), timeout=5)
                for n in range(5)))
            assert [r.payload for r in replies] == [b"balance of M%d" % n for n in range(5)]
            assert len({r.correlation_data for r in replies}) == 5
    run(scenario())


def test_request_times_out_without_a_responder(pki, broker) -> None:
    async def scenario() -> None:
        async with mqtt_client(pki, broker, "S001/T01") as terminal:
            with pytest.raises(RequestTimeout):
                await terminal.request(T.member_request("S001", "T01"), b"M1",
                                       response_topic=T.member_response("S001", "T01"),
                                       timeout=0.5)
    run(scenario())


def test_an_overlapping_subscription_splits_copies_without_replaying_retained(pki, broker) -> None:
    status = T.status("S001", "T01")

    async def scenario() -> None:
        one, every = Inbox(), Inbox()
        async with mqtt_client(pki, broker, "S001/T01") as terminal, \
                mqtt_client(pki, broker, "hq") as hq:
            await terminal.publish(status, b"retained", retain=True)
            await hq.subscribe(status, one)  # alone: no subscription identifier
            await one.wait_for(1)
            await hq.subscribe(T.all_terminals("status", shared=False), every)  # overlaps it
            await every.wait_for(1)  # the retained message, for the new filter only
            await terminal.publish(status, b"live")
            await one.wait_for(2)
            await every.wait_for(2)
            await terminal.publish(status, SENTINEL)  # any extra copy of "live" comes before it
            for inbox in (one, every):
                await inbox.before_sentinel()
            assert [m.payload for m in one.messages] == [b"retained", b"live"]
            assert [m.payload for m in every.messages] == [b"retained", b"live"]
    run(scenario())


def test_paho_keeps_the_window_and_forgets_publishes_a_lost_connection_failed(pki,
                                                                                broker) -> None:
    """The client leans on paho's public API for its in-flight window and for forgetting the
    publishes a lost connection failed (``drop_out_messages``, paho >= 2.2): the outbox, not
    paho, sends them again. A paho upgrade that changes either fails here."""
    async def scenario() -> None:
        inbox = Inbox()
        async with hq_and_terminal(pki, broker, max_inflight=4) as (hq, terminal):
            await hq.subscribe(T.all_terminals("events"), inbox)
            sent = [b"window %d" % n for n in range(40)]  # ten times the window, all acked
            await asyncio.gather(*(terminal.publish_nowait(EVENTS, p) for p in sent))
            assert [m.payload for m in await inbox.wait_for(40)] == sent
            lost = [terminal.publish_nowait(EVENTS, b"lost %d" % n) for n in range(10)]
            terminal.paho.socket().shutdown(socket.SHUT_RDWR)  # before the loop writes them
            results = await asyncio.gather(*lost, return_exceptions=True)
            assert all(isinstance(r, ConnectionLost) for r in results), results
            await terminal.wait_ready(10)
            await terminal.publish(EVENTS, b"after")
            got = [m.payload for m in await inbox.wait_for(41)]
            # paho would resend the lost ones first on the new connection: none came
            assert got[40:] == [b"after"], got[40:]
    run(scenario())


def test_a_topic_is_matched_once_until_a_subscription_is_added() -> None:
    """The subscriptions a topic matches are found by paho's matcher once (session 18: its
    tree walked for every event was a tenth of HQ's event reader), and found again once a
    subscription that may match it is added."""
    client = MqttClient(MqttConfig("127.0.0.1", 1, "matching"))
    got: list[tuple[str, str]] = []
    walks = 0
    walk = client._routes.iter_match

    def counting(topic: str):  # type: ignore[no-untyped-def]
        nonlocal walks
        walks += 1
        return walk(topic)

    client._routes.iter_match = counting  # type: ignore[method-assign]

    def deliver() -> None:
        message = paho.MQTTMessage(mid=1, topic=EVENTS.encode())
        message.payload, message.qos = b"{}", 1
        client._on_message(client.paho, None, message)

    async def main() -> None:
        await client.subscribe(T.all_terminals("events"), lambda m: got.append(("all", m.topic)))
        for _ in range(3):
            deliver()
        assert walks == 1
        await client.subscribe(EVENTS, lambda m: got.append(("one", m.topic)))
        deliver()
        assert walks == 2

    run(main())
    assert got[:3] == [("all", EVENTS)] * 3
    assert sorted(got[3:]) == [("all", EVENTS), ("one", EVENTS)]
