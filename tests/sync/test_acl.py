"""The shipped broker config and ACL keep terminals inside their own topics."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

import pytest

from terminal.sync.mqtt import MqttClient, MqttConfig, PublishRefused
from terminal.sync.topics import Topics
from tests.support.mosquitto import Mosquitto
from tests.sync.conftest import Inbox, mqtt_client, run

T = Topics()
SETTLE = 0.5  # long enough for Mosquitto on loopback to deliver anything it was going to


def test_terminal_cannot_publish_as_another(pki, broker) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        async with mqtt_client(pki, broker, "hq") as hq, \
                mqtt_client(pki, broker, "S001/T01") as a:
            await hq.subscribe(T.all_terminals("events"), inbox)
            await hq.subscribe(T.all_terminals("status"), inbox)
            for topic in (T.events("S001", "T02"), T.events("S002", "T01"),
                          T.status("S001", "T02")):
                # Mosquitto may say so in the PUBACK; either way nothing is delivered.
                with contextlib.suppress(PublishRefused):
                    await a.publish(topic, b"forged")
            await a.publish(T.events("S001", "T01"), b"own")
            await inbox.wait_for(1)
            await asyncio.sleep(SETTLE)
            assert [(m.topic, m.payload) for m in inbox.messages] == [
                (T.events("S001", "T01"), b"own")]
    run(scenario())


def test_terminal_reads_only_its_own_commands_acks_and_responses(pki, broker) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        async with mqtt_client(pki, broker, "hq") as hq, \
                mqtt_client(pki, broker, "S001/T01") as a:
            for channel in ("cmd", "acks", "members/resp"):
                await a.subscribe(f"{T.root}/t/+/+/{channel}", inbox)
            for store, terminal in (("S001", "T02"), ("S002", "T01"), ("S001", "T01")):
                for channel in ("cmd", "acks", "members/resp"):
                    await hq.publish(T.terminal(store, terminal, channel), b"x")
            await inbox.wait_for(3)
            await asyncio.sleep(SETTLE)
            assert sorted(inbox.topics) == sorted(
                T.terminal("S001", "T01", c) for c in ("cmd", "acks", "members/resp"))
    run(scenario())


def test_terminal_cannot_forge_hq_traffic(pki, broker) -> None:
    """A terminal can neither ack its own events, command itself, nor push bundles."""
    async def scenario() -> None:
        inbox = Inbox()
        async with mqtt_client(pki, broker, "hq") as hq, \
                mqtt_client(pki, broker, "S001/T01") as a:
            await hq.subscribe(f"{T.root}/#", inbox)
            for topic in (T.acks("S001", "T01"), T.cmd("S001", "T01"), T.bundle("chain"),
                          T.hq_state(), T.member_response("S001", "T01")):
                with contextlib.suppress(PublishRefused):
                    await a.publish(topic, b"forged")
            await asyncio.sleep(SETTLE)
            assert inbox.messages == []
    run(scenario())


def test_terminal_reads_bundles_and_hq_state(pki, broker) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        async with mqtt_client(pki, broker, "hq") as hq:
            await hq.publish(T.bundle("chain"), b"chain bundle", retain=True)
            await hq.publish(T.hq_state(), b"online", retain=True)
        async with mqtt_client(pki, broker, "S001/T01") as a:
            await a.subscribe(T.bundle("chain"), inbox)
            await a.subscribe(T.hq_state(), inbox)
            got = await inbox.wait_for(2)
            assert sorted(m.payload for m in got) == [b"chain bundle", b"online"]
            assert all(m.retain for m in got)
    run(scenario())


def _handshake(broker: Mosquitto, context: ssl.SSLContext) -> None:
    with socket.create_connection((broker.host, broker.port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.recv(1)  # TLS 1.3 reports a refused client certificate on the first read


def test_certificate_from_another_ca_is_refused_at_handshake(pki, broker) -> None:
    rogue = pki.client("S001/T01", rogue=True).context()
    with pytest.raises(ssl.SSLError, match=r"(?i)unknown ca|certificate"):
        _handshake(broker, rogue)
    anonymous = ssl.create_default_context(cafile=str(pki.ca.ca_file))
    with pytest.raises(ssl.SSLError, match=r"(?i)handshake|certificate"):
        _handshake(broker, anonymous)


def test_rogue_client_never_gets_connected(pki, broker) -> None:
    async def scenario() -> None:
        rogue_tls = pki.client("S001/T01", rogue=True)
        client = MqttClient(MqttConfig(broker.host, broker.port, "rogue", tls=rogue_tls,
                                       backoff_initial=0.05, backoff_max=0.1))
        await client.start()
        await asyncio.sleep(1.0)
        assert not client.connected and client.backoff.attempt >= 2
        await client.stop()
    run(scenario())
