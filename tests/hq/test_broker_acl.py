"""Changing whom the broker admits, on the shipped Mosquitto config the test starts: a revoked
terminal loses TLS and its grants in one reload; HQ learns when the broker runs a new ACL (not
just that it was signalled), so a new terminal answered after that gets its store's retained
bundle; concurrent changes of the register lose nothing."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.hq import acl
from terminal.hq.broker_acl import BrokerAcl, confirm
from terminal.hq.cli import main as posterm_hq
from terminal.hq.pki import authority
from terminal.protocol.mqtt import MqttClient, MqttConfig, TlsFiles
from terminal.protocol.topics import Topics
from tests.hq.test_ca import request
from tests.support.mosquitto import SHIPPED_ACL, BrokerTls, Mosquitto
from tests.support.mqtt_probe import mqtt_connect
from tests.sync.conftest import Inbox

T = Topics()
pytestmark = pytest.mark.slow  # starts Mosquitto itself


class Site:
    """HQ's CA, the broker (CRL, generated ACL, PID file) and certificates for some terminals."""

    def __init__(self, directory: Path, terminals: tuple[str, ...]) -> None:
        self.directory = directory
        self.ca_dir = directory / "ca"
        self.ca = authority.init(self.ca_dir)
        self.chain = self.ca_dir / "chain.pem"
        pki = directory / "pki"
        pki.mkdir()
        for name, args in (("server", ["server", "127.0.0.1"]), ("hq", ["identity", "hq"])):
            assert posterm_hq(["ca", *args, "--ca", str(self.ca_dir), "-o", str(pki / name)]) == 0
        self.crl = pki / "crl.pem"
        authority.write_crl(self.ca, self.crl)
        self.hq = TlsFiles(self.chain, pki / "hq.crt", pki / "hq.key")
        self.certs: dict[str, TlsFiles] = {}
        for name in terminals:
            self.certs[name] = self.sign(name)
        self.broker = Mosquitto(directory / "broker",
                                BrokerTls(self.chain, pki / "server.crt", pki / "server.key",
                                          self.crl), terminals=terminals)
        self.acl = BrokerAcl(self.broker.register, SHIPPED_ACL, self.broker.directory / "acl",
                             self.broker.pid_file)

    def sign(self, name: str) -> TlsFiles:
        stem = name.replace("/", "_")
        csr = request(self.directory, name, name=stem)
        crt = self.directory / f"{stem}.crt"
        assert posterm_hq(["ca", "sign", str(csr), "--ca", str(self.ca_dir), "-o",
                           str(crt)]) == 0
        return TlsFiles(self.chain, crt, self.directory / f"{stem}.key")

    def client(self, name: str) -> MqttClient:
        tls = self.hq if name == "hq" else self.certs[name]
        return MqttClient(MqttConfig(self.broker.host, self.broker.port,
                                     name.replace("/", "-"), tls=tls, backoff_max=0.3))

    def handshake(self, name: str) -> int:
        files = self.certs[name]
        return mqtt_connect(self.broker.host, self.broker.port, self.chain, files.cert,
                            files.key, client_id=name.replace("/", "-"))

    def revoke(self, name: str) -> int:
        return posterm_hq(["ca", "revoke", str(self.certs[name].cert), "--ca", str(self.ca_dir),
                           "-o", str(self.crl), "--broker-pid", str(self.broker.pid_file),
                           "--register", str(self.acl.register), "--static", str(SHIPPED_ACL),
                           "--acl", str(self.acl.output)])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    running = Site(tmp_path, ("S001/T01", "S001/T02"))
    with running.broker:
        yield running


async def store_bundle_seen(site: Site, name: str) -> bytes:
    """What ``name`` receives, retained, on subscribing to its store's bundles at once."""
    inbox = Inbox()
    client = site.client(name)
    await client.start()
    try:
        await client.wait_ready(10)
        await client.subscribe(T.bundle("store/S001"), inbox)
        await client.subscribe(T.hq_state(), inbox)  # a sentinel: granted to every terminal
        await inbox.wait_for_payload(b"online")
        return b"".join(m.payload for m in inbox.messages if m.topic == T.bundle("store/S001"))
    finally:
        await client.stop()


async def publish_retained(site: Site) -> None:
    hq = site.client("hq")
    await hq.start()
    try:
        await hq.wait_ready(10)
        await hq.publish(T.bundle("store/S001"), b"store bundle", retain=True)
        await hq.publish(T.hq_state(), b"online", retain=True)
    finally:
        await hq.stop()


def test_revoke_cuts_tls_and_grants_in_one_reload(site: Site,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(publish_retained(site))
    assert asyncio.run(store_bundle_seen(site, "S001/T01")) == b"store bundle"
    before = site.broker.reloads()
    capsys.readouterr()

    assert site.revoke("S001/T01") == 0

    said = capsys.readouterr().err
    assert "removed from" in said and "reloading" in said
    assert [t.identity for t in site.acl.registered()] == ["S001/T02"]
    assert "user S001/T01" not in site.acl.output.read_text()
    site.broker.wait_reloaded(before)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        site.handshake("S001/T01")
    assert site.handshake("S001/T02") == 0
    assert asyncio.run(store_bundle_seen(site, "S001/T02")) == b"store bundle"
    assert site.broker.reloads() == before + 1  # one reload for the CRL and the ACL together


def test_revoking_an_old_certificate_keeps_a_reenrolled_terminal_registered(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    old = site.certs["S001/T01"]
    site.certs["S001/T01"] = site.sign("S001/T01")  # the box enrolled again: a new key
    site.certs["old"] = old
    capsys.readouterr()
    assert site.revoke("old") == 0
    assert "still valid" in capsys.readouterr().err
    assert "S001/T01" in [t.identity for t in site.acl.registered()]
    assert site.revoke("old") == 1  # already revoked: refused, nothing written
    assert "already revoked" in capsys.readouterr().err


def test_hq_learns_when_the_broker_runs_the_new_acl(site: Site) -> None:
    """The ACL written but the broker not yet reloaded: confirm() says no, and a terminal
    added to the register would not get its store's bundle; after the reload it says yes."""
    asyncio.run(publish_retained(site))
    site.certs["S001/T03"] = site.sign("S001/T03")
    unsignalled = BrokerAcl(site.acl.register, site.acl.static, site.acl.output)  # no PID file
    changed = unsignalled.admit(acl.Terminal("S001", "T03"), T.root)
    assert changed.reloaded is None

    async def confirmed(timeout: float) -> bool:
        hq = site.client("hq")
        await hq.start()
        try:
            await hq.wait_ready(10)
            return await confirm(hq, site.acl, changed.generation, timeout)
        finally:
            await hq.stop()

    assert asyncio.run(confirmed(0.3)) is False
    assert asyncio.run(store_bundle_seen(site, "S001/T03")) == b""  # the old ACL: no grant
    site.broker.reload()
    assert asyncio.run(confirmed(10)) is True
    assert asyncio.run(store_bundle_seen(site, "S001/T03")) == b"store bundle"


def test_admitted_and_confirmed_means_the_new_terminal_gets_its_bundle(site: Site) -> None:
    asyncio.run(publish_retained(site))

    async def enroll(name: str) -> bytes:
        store, terminal = name.split("/")
        site.certs[name] = site.sign(name)
        hq = site.client("hq")
        await hq.start()
        try:
            await hq.wait_ready(10)
            changed = await asyncio.to_thread(site.acl.admit, acl.Terminal(store, terminal),
                                              T.root)
            assert await confirm(hq, site.acl, changed.generation)
        finally:
            await hq.stop()
        return await store_bundle_seen(site, name)  # at once, as a box answered would

    for n in range(4, 7):
        assert asyncio.run(enroll(f"S001/T{n:02}")) == b"store bundle"


def test_concurrent_changes_of_the_register_lose_nothing(site: Site) -> None:
    unsignalled = BrokerAcl(site.acl.register, site.acl.static, site.acl.output)
    names = [acl.Terminal("S009", f"T{n:02}") for n in range(12)]
    start = threading.Barrier(len(names))

    def admit(terminal: acl.Terminal) -> None:
        start.wait()
        unsignalled.admit(terminal, T.root)

    threads = [threading.Thread(target=admit, args=(t,)) for t in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(names) <= set(unsignalled.registered())
    text = site.acl.output.read_text()
    assert all(f"user {t.identity}" in text for t in names)


def test_the_generation_line_names_the_file() -> None:
    static = SHIPPED_ACL.read_text()
    one = acl.render(static, [acl.Terminal("S001", "T01")], T, "r")
    two = acl.render(static, [acl.Terminal("S001", "T02")], T, "r")
    assert acl.generation_of(one) != acl.generation_of(two)
    assert acl.generation_of(one).startswith("posterm/v1/hq/acl/")
    with pytest.raises(acl.AclError):
        acl.generation_of(static)


def test_the_console_cuts_a_terminal_off_at_the_broker(site: Site, tmp_path: Path) -> None:
    """IT on the enrollment page (console started with --revoke-ca and the broker's files): the
    terminal's next handshake is refused after the one reload, the other terminal still sells."""
    from starlette.testclient import TestClient

    from terminal.hq.console.app import build
    from terminal.hq.pki.revocation import Revoker
    from tests.console.chain import add_user, build_chain
    from tests.console.test_http import csrf, login
    from tests.sync.harness import CARD_KEY

    chain = build_chain(tmp_path / "hq", sales_per_member=1)
    add_user(chain, "itops", "it")
    revoker = Revoker(site.ca_dir, site.crl, site.acl, T.root)
    app = build(chain.url, chain.rules, CARD_KEY, revoker=revoker)
    assert site.handshake("S001/T01") == 0
    before = site.broker.reloads()
    with TestClient(app, base_url="https://console.test", follow_redirects=False) as c:
        login(c, "itops")
        done = c.post("/enroll/terminal/revoke", data={
            "store": "S001", "terminal": "T01", "why": "retired",
            "csrftoken": csrf(c, "/enroll")})
        assert done.status_code == 200 and "已移出终端登记表" in done.text, done.text
    site.broker.wait_reloaded(before)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        site.handshake("S001/T01")
    assert site.handshake("S001/T02") == 0
    assert [t.identity for t in site.acl.registered()] == ["S001/T02"]
