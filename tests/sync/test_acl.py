"""The shipped broker config and the ACL `posterm-hq acl` generates keep terminals inside their
own topics and their own scopes' bundles (the broker fixture's register is TEST_FLEET)."""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminal.field import provision
from terminal.protocol.keys import public_pem
from terminal.protocol.mqtt import (
    MqttClient,
    MqttConfig,
    PublishRefused,
    SubscribeRefused,
    TlsFiles,
)
from terminal.protocol.topics import Topics
from tests.drivers.waiting import until
from tests.support.mosquitto import TEST_FLEET, Mosquitto
from tests.sync.conftest import SENTINEL, Inbox, Pki, hq_and_terminal, mqtt_client, run

T = Topics()
BUNDLES = f"{T.root}/bundles/#"
# Not a scope of the scheme (Topics.bundle refuses it): were anything under bundles/ readable by
# every terminal, as with the former "pattern read .../bundles/#", this would leak too.
OTHER_TERMINAL = f"{T.root}/bundles/terminal/S002/T01"


def test_terminal_cannot_publish_as_another(pki, broker) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        async with hq_and_terminal(pki, broker) as (hq, a):
            await hq.subscribe(T.all_terminals("events"), inbox)
            await hq.subscribe(T.all_terminals("status"), inbox)
            for topic in (T.events("S001", "T02"), T.events("S002", "T01"),
                          T.status("S001", "T02")):
                # Mosquitto may say so in the PUBACK; either way nothing is delivered.
                with contextlib.suppress(PublishRefused):
                    await a.publish(topic, b"forged")
            await a.publish(T.events("S001", "T01"), b"own")  # the sentinel
            await inbox.wait_for_payload(b"own")
            assert [(m.topic, m.payload) for m in inbox.messages] == [
                (T.events("S001", "T01"), b"own")]
    run(scenario())


def test_terminal_reads_only_its_own_commands_acks_and_responses(pki, broker) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        async with hq_and_terminal(pki, broker) as (hq, a):
            for channel in ("cmd", "acks", "members/resp"):
                await a.subscribe(f"{T.root}/t/+/+/{channel}", inbox)
            for store, terminal in (("S001", "T02"), ("S002", "T01"), ("S001", "T01")):
                for channel in ("cmd", "acks", "members/resp"):
                    await hq.publish(T.terminal(store, terminal, channel), b"x")
            await hq.publish(T.cmd("S001", "T01"), SENTINEL)
            await inbox.before_sentinel()
            assert sorted(inbox.topics) == sorted(
                T.terminal("S001", "T01", c) for c in ("cmd", "acks", "members/resp"))
    run(scenario())


def test_terminal_cannot_forge_hq_traffic(pki, broker) -> None:
    """A terminal can neither ack its own events, command itself, nor push bundles."""
    async def scenario() -> None:
        inbox = Inbox()
        async with hq_and_terminal(pki, broker) as (hq, a):
            await hq.subscribe(f"{T.root}/#", inbox)
            for topic in (T.acks("S001", "T01"), T.cmd("S001", "T01"), T.bundle("chain"),
                          T.hq_state(), T.member_response("S001", "T01")):
                with contextlib.suppress(PublishRefused):
                    await a.publish(topic, b"forged")
            await a.publish(T.events("S001", "T01"), SENTINEL)  # its own topic: delivered
            assert await inbox.before_sentinel() == []
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
        await until(lambda: client.backoff.attempt >= 2, 10, "two refused attempts")
        assert not client.connected and client.backoff.attempt >= 2
        await client.stop()
    run(scenario())


async def _publish_bundles(pki: Pki, broker: Mosquitto, bundles: dict[str, bytes],
                           retain: bool = True) -> None:
    """Publish ``bundles``, then SENTINEL (not retained) on the chain's bundle topic, which every
    terminal reads."""
    async with mqtt_client(pki, broker, "hq", client_id="hq-push") as hq:
        for topic, payload in bundles.items():
            await hq.publish(topic, payload, retain=retain)
        await hq.publish(T.bundle("chain"), SENTINEL)


def _got(inbox: Inbox) -> list[tuple[str, bytes]]:
    """What arrived, sentinels left out."""
    return sorted((m.topic, m.payload) for m in inbox.messages if m.payload != SENTINEL)


async def _settled(*inboxes: Inbox) -> None:
    """Wait for the latest sentinel in each inbox, then forget the sentinels seen so far."""
    for inbox in inboxes:
        await inbox.wait_for_payload(SENTINEL)
        inbox.messages[:] = [m for m in inbox.messages if m.payload != SENTINEL]


def test_terminal_reads_its_own_scopes_bundles_only(pki, broker) -> None:
    assert "S001/T01" in TEST_FLEET and "S002/T01" in TEST_FLEET
    bundles = {T.bundle("chain"): b"chain", T.bundle("store/S001"): b"S001",
               T.bundle("store/S002"): b"S002", OTHER_TERMINAL: b"S002/T01"}

    async def scenario() -> None:
        await _publish_bundles(pki, broker, bundles)
        a_inbox, b_inbox = Inbox(), Inbox()
        async with mqtt_client(pki, broker, "S001/T01") as a, \
                mqtt_client(pki, broker, "S002/T01") as b:
            await a.subscribe(BUNDLES, a_inbox)
            with contextlib.suppress(SubscribeRefused):  # refused outright, or never delivered
                await a.subscribe(T.bundle("store/S002"), a_inbox)
                await a.subscribe(OTHER_TERMINAL, a_inbox)
            await b.subscribe(BUNDLES, b_inbox)
            await a_inbox.wait_for(2)
            await b_inbox.wait_for(2)
            # New bundles, not only retained ones, are filtered the same way at delivery.
            await _publish_bundles(pki, broker, {t: b"new " + p for t, p in bundles.items()},
                                   retain=False)
            await a_inbox.wait_for(4)
            await b_inbox.wait_for(4)
            await _settled(a_inbox, b_inbox)
        own = {"S001/T01": ("chain", "store/S001"), "S002/T01": ("chain", "store/S002")}
        for inbox, identity in ((a_inbox, "S001/T01"), (b_inbox, "S002/T01")):
            assert _got(inbox) == sorted(
                (T.bundle(scope), prefix + bundles[T.bundle(scope)])
                for scope in own[identity] for prefix in (b"", b"new ")), identity
    run(scenario())


@contextlib.asynccontextmanager
async def _provisioned_terminal(broker: Mosquitto, tls: TlsFiles,
                                client_id: str) -> AsyncIterator[MqttClient]:
    client = MqttClient(MqttConfig(broker.host, broker.port, client_id, tls=tls,
                                   backoff_initial=0.1, backoff_max=0.5))
    await client.start()
    try:
        await client.wait_ready(10)
        yield client
    finally:
        await client.stop()


def _provision(pki: Pki, state: Path, store: str, terminal_id: str) -> tuple[Path, TlsFiles]:
    """Provision a terminal as in the field (its own key and a request), then sign the request
    as HQ does; returns the request and the terminal's TLS files."""
    prov = provision.Provisioning(
        store=store, terminal_id=terminal_id, broker_host="127.0.0.1", broker_port=8883,
        broker_ca=pki.ca.ca_file.read_bytes(),
        hq_root_public_key=public_pem(Ed25519PrivateKey.generate().public_key()),
        certificate=None, private_key=None, usb_ids={}, devices={})
    outcome = provision.provision(prov, state)
    assert outcome.csr is not None
    cert = pki.ca.sign_request(outcome.csr.read_bytes())
    key = state / provision.CREDENTIALS / "terminal.key"
    return outcome.csr, TlsFiles(pki.ca.ca_file, cert, key)


def test_new_terminal_reads_its_store_after_register_and_sighup(pki, broker,
                                                                tmp_path: Path) -> None:
    """S003/T01 is provisioned and certified but not yet registered: it connects and reads the
    chain's bundles, not its store's. HQ adds it with `posterm-hq acl --add-from` its request, the
    broker gets SIGHUP (by PID): the connected terminal then gets its store's new bundle without
    reconnecting, a new connection the retained one, and no other terminal gets it."""
    assert "S003/T01" not in TEST_FLEET
    csr, tls = _provision(pki, tmp_path / "S003-T01", "S003", "T01")
    bundles = {T.bundle("chain"): b"chain", T.bundle("store/S003"): b"S003 v1"}

    async def scenario() -> None:
        await _publish_bundles(pki, broker, bundles)
        new_inbox, other_inbox = Inbox(), Inbox()
        async with _provisioned_terminal(broker, tls, "S003-T01") as new, \
                mqtt_client(pki, broker, "S001/T01") as other:
            await new.subscribe(BUNDLES, new_inbox)
            await other.subscribe(BUNDLES, other_inbox)
            await new_inbox.wait_for(1)
            await _publish_bundles(pki, broker, {})  # the sentinel alone
            await _settled(new_inbox, other_inbox)
            assert _got(new_inbox) == [(T.bundle("chain"), b"chain")]

            broker.generate_acl("--add-from", str(csr))
            assert "S003/T01" in broker.register.read_text().split()
            assert "user S003/T01\ntopic read posterm/v1/bundles/store/S003\n" in \
                (broker.directory / "acl").read_text()
            broker.reload()

            await _publish_bundles(pki, broker, {T.bundle("store/S003"): b"S003 v2"})
            await new_inbox.wait_for(2)
            await _settled(new_inbox, other_inbox)
            assert _got(new_inbox) == [(T.bundle("chain"), b"chain"),
                                       (T.bundle("store/S003"), b"S003 v2")]
            assert new.connected and other.connected  # the reload dropped no one
            assert _got(other_inbox) == [(T.bundle("chain"), b"chain")]
        fresh = Inbox()
        async with _provisioned_terminal(broker, tls, "S003-T01-again") as again:
            await again.subscribe(BUNDLES, fresh)
            await fresh.wait_for(2)
            assert _got(fresh) == [(T.bundle("chain"), b"chain"),
                                   (T.bundle("store/S003"), b"S003 v2")]
    run(scenario())
