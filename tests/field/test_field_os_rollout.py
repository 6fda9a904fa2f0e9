"""An operating-system update rolled out like a release, end to end: `posterm-hq os publish`
announces a RAUC bundle (built by image/os-bundle.sh, signed by HQ's bundle signer) on the shipped
Mosquitto config; a terminal, under its own certificate, receives the announcement
(terminal.sync.os_releases, as the daemon runs it), checks it against HQ's key chain, downloads
the bundle over HTTP and checks its size and sha256; the root installer
(terminal.field.os_update.install_ready) checks it all again, writes RAUC's keyring with the
announced CRLs and runs `rauc install` against RAUC's service on a private D-Bus
(tests/field/rauc_box.py), which writes slot B and puts it on trial.

Refused, with RAUC never called or refusing: an announcement not signed under HQ's root, a
download that is not the announced bundle, a bundle whose signer HQ revoked (the announced CRL).

Staged to one store first (`posterm-hq os publish --store`): only that store's boxes receive it
(the broker ACL), they take it over the older chain-wide one, and pass over the chain-wide one
once they installed the staged one; `os withdraw --store` clears it.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from terminal.core.digest import sha256_file
from terminal.field import anchors, os_update
from terminal.hq.cli import main as posterm_hq
from terminal.hq.member_ops.publish import Signer
from terminal.hq.os_release import announce
from terminal.hq.pki import authority
from terminal.protocol import bundle
from terminal.protocol.bundle import TrustStore
from terminal.protocol.keys import load_public
from terminal.protocol.mqtt import Message, MqttClient, MqttConfig, TlsFiles
from terminal.protocol.release import sign_os_release, verify_os_release
from terminal.protocol.topics import Topics
from terminal.sync.os_releases import OsReleases
from tests.field.rauc_box import RaucBox, missing
from tests.field.test_field_os_update import slot_images
from tests.field.test_field_rauc_install import build
from tests.support.mosquitto import BrokerTls, Mosquitto

pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing() is not None, reason=str(missing()))]
TIMEOUT = 120.0  # failure guards only
TERMINALS = ("S001/T01", "S001/T02", "S002/T01")  # HQ's register: the broker ACL grants these


def tls_name(identity: str) -> str:
    """The files of a terminal's certificate and key in HQ's directory."""
    return "terminal" if identity == "S001/T01" else "terminal-" + identity.replace("/", "-")


class Chain:
    """HQ: its CA (a broker certificate, its own identity, a terminal's, a bundle signer), its
    signing keys, the broker on the shipped config, and a web server for the bundles."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        ca_dir = directory / "ca"
        self.ca = authority.init(ca_dir)
        self.chain = ca_dir / "chain.pem"
        for name, args in (("server", ["server", "127.0.0.1"]), ("hq", ["identity", "hq"]),
                           ("signer", ["bundle-signer"])):
            assert posterm_hq(["ca", *args, "--ca", str(ca_dir), "-o", str(directory / name)]) == 0
        for identity in TERMINALS:
            key = ec.generate_private_key(ec.SECP256R1())
            csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
                [x509.NameAttribute(NameOID.COMMON_NAME, identity)])).sign(key, hashes.SHA256()))
            (directory / f"{tls_name(identity)}.crt").write_bytes(
                self.ca.sign(csr).public_bytes(serialization.Encoding.PEM))
            (directory / f"{tls_name(identity)}.key").write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        self.crl = directory / "crl.pem"
        authority.write_crl(self.ca, self.crl)
        assert posterm_hq(["keygen", str(directory / "keys")]) == 0
        self.trust = TrustStore.of([load_public(directory / "keys/root.pub")])
        self.broker = Mosquitto(directory / "broker", BrokerTls(
            self.chain, directory / "server.crt", directory / "server.key", self.crl),
            terminals=TERMINALS)
        self.web = directory / "web"
        self.web.mkdir()
        handler = functools.partial(_Quiet, directory=str(self.web))
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.http_thread = threading.Thread(target=self.http.serve_forever, name="bundles-web")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/{name}"

    def tls(self, name: str) -> TlsFiles:
        return TlsFiles(self.chain, self.dir / f"{name}.crt", self.dir / f"{name}.key")

    def crls(self) -> str:
        return self.crl.read_text() + (self.dir / "ca/root.crl").read_text()

    def broker_options(self) -> list[str]:
        return ["--host", self.broker.host, "--port", str(self.broker.port), "--broker-ca",
                str(self.chain), "--cert", str(self.dir / "hq.crt"), "--key",
                str(self.dir / "hq.key")]

    def publish(self, bundle_file: Path, version: str, rauc_conf: Path,
                store: str | None = None) -> None:
        """`posterm-hq os publish`, as HQ runs it (``store``: staged to that store first)."""
        assert posterm_hq([
            "os", "publish", str(bundle_file), "--url", self.url(bundle_file.name),
            "--version", version, "--keys", str(self.dir / "keys"), "--chain", str(self.chain),
            "--crl", str(self.crl), "--root-crl", str(self.dir / "ca/root.crl"),
            "--rauc-conf", str(rauc_conf), *(["--store", store] if store else []),
            *self.broker_options()]) == 0


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def hq(tmp_path: Path) -> Iterator[Chain]:
    chain = Chain(tmp_path / "hq")
    slot_images(chain.dir)
    chain.broker.start()
    chain.http_thread.start()
    try:
        yield chain
    finally:
        chain.http.shutdown()
        chain.http_thread.join()
        chain.broker.stop()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[RaucBox]:
    started = RaucBox(tmp_path / "box").start()
    yield started
    started.stop()


class Terminal:
    """The daemon's half, on the terminal's own MQTT identity; refusals as it reports them.
    It follows its store's staged announcement and the chain's, as the daemon does
    (terminal.sync.link), or the ``topics`` given."""

    def __init__(self, hq: Chain, state: Path, identity: str = "S001/T01",
                 topics: tuple[str, ...] | None = None) -> None:
        self.state = state
        self.reports: list[tuple[str, str, str, str]] = []
        self.received: list[str] = []  # the topics of the announcements delivered, in order
        self.releases = OsReleases(hq.trust, state, self._report)
        self.topics = topics or Topics().os_releases_for(identity.split("/")[0])
        self.client = MqttClient(MqttConfig(hq.broker.host, hq.broker.port,
                                            identity.replace("/", "-"),
                                            tls=hq.tls(tls_name(identity)), backoff_initial=0.05,
                                            backoff_max=0.3))
        self.seen = asyncio.Event()

    async def _report(self, what: str, reason: str, detail: str, ref: str) -> None:
        self.reports.append((what, reason, detail, ref))

    async def _handle(self, message: Message) -> None:
        if message.payload:
            self.received.append(message.topic)
        await self.releases.handle(message)
        self.seen.set()

    async def receive(self, until: object) -> None:
        """Subscribe (the retained announcements arrive) until ``until()`` holds."""
        assert callable(until)
        for topic in self.topics:
            await self.client.subscribe(topic, self._handle)
        await self.client.start()
        try:
            async with asyncio.timeout(TIMEOUT):
                while not until():
                    self.seen.clear()
                    await self.seen.wait()
        finally:
            await self.client.stop()


def rauc_cmd(box: RaucBox) -> tuple[str, ...]:
    """The rauc client on the box's private bus."""
    return ("env", f"DBUS_SYSTEM_BUS_ADDRESS={box.env['DBUS_SYSTEM_BUS_ADDRESS']}", "rauc")


def root_install(hq: Chain, box: RaucBox, ready: Path, state: Path,
                 trust: Path) -> os_update.Done:
    """What the root installer does with the fetched release: HQ's key and chain from root's
    anchors (written here as provisioning writes them), RAUC on the box's private bus."""
    anchors.write(trust, (hq.dir / "keys/root.pub").read_bytes(), hq.chain.read_bytes())
    root = anchors.load(trust)
    return os_update.install_ready(ready, TrustStore.of([root.root_key]), state,
                                   chain=root.chain_pem, keyring_file=box.keyring,
                                   rauc=rauc_cmd(box))


def test_hq_rolls_an_os_update_out_and_the_box_installs_it(hq: Chain, box: RaucBox,
                                                           tmp_path: Path) -> None:
    raucb = build(hq.dir, hq.dir / "signer", hq.web / "os-2026.12.2.raucb", ca=hq.dir / "ca")
    hq.publish(raucb, "2026.12.2", box.dir / "system.conf")
    terminal = Terminal(hq, tmp_path / "state")
    ready = terminal.state / "updates/os-ready"
    asyncio.run(terminal.receive(lambda: (ready / os_update.ANNOUNCEMENT).exists()
                                 or terminal.reports))
    assert terminal.reports == []
    assert (ready / os_update.BUNDLE).read_bytes() == raucb.read_bytes()

    # As the root installer runs it: key and chain from root's anchors (provisioning's copy).
    done = root_install(hq, box, ready, terminal.state, tmp_path / "trust")
    assert done.release.version == "2026.12.2" and "succeeded" in done.rauc_output
    assert not any(ready.iterdir())  # taken from the daemon's reach
    assert box.slot("root-b").read_bytes() == (hq.dir / "slot-root.ext4").read_bytes()
    assert box.status()["RAUC_BOOT_PRIMARY"] == "rootfs.1"
    assert "[tryboot]\nboot_partition=3" in box.autoboot.read_text()
    assert b"BEGIN X509 CRL" in box.keyring.read_bytes()
    assert os_update.installed(terminal.state).version == "2026.12.2"

    # The retained announcement again (a reconnect, a restart): installed already, not fetched.
    again = Terminal(hq, terminal.state)
    asyncio.run(again.receive(lambda: again.seen.is_set()))
    assert again.reports == [] and not (ready / os_update.ANNOUNCEMENT).exists()


def test_a_forged_announcement_or_another_download_never_reaches_rauc(hq: Chain, box: RaucBox,
                                                                      tmp_path: Path) -> None:
    raucb = build(hq.dir, hq.dir / "signer", hq.web / "os.raucb", ca=hq.dir / "ca")
    signer = Signer.load(hq.dir / "keys")
    # Signed by a key no root of HQ's delegated: refused by the daemon, nothing fetched.
    rogue_root, rogue = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    now = datetime.now(UTC)
    rogue_delegation = bundle.delegate(rogue_root, rogue.public_key(), now - timedelta(days=1),
                                       now + timedelta(days=30)).to_wire()
    release, _ = announce(raucb, hq.url("os.raucb"), "2026.12.3", signer, hq.chain, hq.crls(),
                          7, rauc_conf=box.dir / "system.conf")
    forged = sign_os_release(release, rogue, rogue_delegation)
    _retain(hq, forged)
    terminal = Terminal(hq, tmp_path / "state")
    asyncio.run(terminal.receive(lambda: terminal.reports))
    assert terminal.reports[0][:2] == ("os_release", "refused")
    assert "unknown_key" in terminal.reports[0][2] or "bad_signature" in terminal.reports[0][2]
    assert not (terminal.state / "updates/os-ready").exists()

    # Signed by HQ, but the web server now holds other bytes: the digest refuses the download.
    _, wire = announce(raucb, hq.url("os.raucb"), "2026.12.3", signer, hq.chain, hq.crls(), 7,
                       rauc_conf=box.dir / "system.conf")
    _retain(hq, wire)
    raucb.write_bytes(raucb.read_bytes()[:-1] + b"\x00")
    terminal = Terminal(hq, tmp_path / "state")
    asyncio.run(terminal.receive(lambda: terminal.reports))
    assert "sha256" in terminal.reports[0][2] or "bytes" in terminal.reports[0][2]
    assert not (terminal.state / "updates/os-ready" / os_update.ANNOUNCEMENT).exists()
    assert not any((terminal.state / "updates/os-fetch").iterdir())
    assert box.status()["RAUC_BOOT_PRIMARY"] == "rootfs.0"


def test_a_bundle_of_a_revoked_signer_is_refused_by_rauc_with_the_announced_crl(
        hq: Chain, box: RaucBox, tmp_path: Path) -> None:
    raucb = build(hq.dir, hq.dir / "signer", hq.web / "os.raucb", ca=hq.dir / "ca")
    assert posterm_hq(["ca", "revoke", str(hq.dir / "signer.crt"), "--ca", str(hq.dir / "ca"),
                       "-o", str(hq.crl), "--register", str(tmp_path / "none")]) == 0
    # HQ's own check refuses to announce it ...
    assert posterm_hq([
        "os", "publish", str(raucb), "--url", hq.url("os.raucb"), "--version", "2026.12.4",
        "--keys", str(hq.dir / "keys"), "--chain", str(hq.chain), "--crl", str(hq.crl),
        "--root-crl", str(hq.dir / "ca/root.crl"), "--rauc-conf", str(box.dir / "system.conf"),
        "--host", hq.broker.host, "--port", str(hq.broker.port), "--broker-ca", str(hq.chain),
        "--cert", str(hq.dir / "hq.crt"), "--key", str(hq.dir / "hq.key")]) == 1
    # ... and were it announced anyway (signed by HQ's key, with the current CRL), RAUC on the
    # box refuses it: the installer's keyring carries the CRL that names the signer.
    signer = Signer.load(hq.dir / "keys")
    now = datetime.now(UTC).replace(microsecond=0)
    release = os_update.OsRelease(
        os_update.COMPATIBLE, "2026.12.4", hq.url("os.raucb"), raucb.stat().st_size,
        sha256_file(raucb), hq.crls(), now, now + timedelta(days=7), "")
    _retain(hq, sign_os_release(release, signer.key, signer.delegation))
    terminal = Terminal(hq, tmp_path / "state")
    ready = terminal.state / "updates/os-ready"
    asyncio.run(terminal.receive(lambda: (ready / os_update.ANNOUNCEMENT).exists()
                                 or terminal.reports))
    with pytest.raises(os_update.OsUpdateError, match="certificate revoked"):
        os_update.install_ready(ready, hq.trust, terminal.state, chain=hq.chain.read_bytes(),
                                keyring_file=box.keyring, rauc=rauc_cmd(box))
    assert box.status()["RAUC_BOOT_PRIMARY"] == "rootfs.0"
    assert not any(box.slot("root-b").read_bytes())
    assert os_update.installed(terminal.state) is None


def announced_version(hq: Chain, ready: Path) -> str:
    """The version of the announcement the daemon left for the installer, checked as HQ's."""
    wire = (ready / os_update.ANNOUNCEMENT).read_bytes()
    return verify_os_release(wire, hq.trust, datetime.now(UTC)).version


def test_an_os_update_staged_to_one_store_reaches_its_boxes_before_the_chain(
        hq: Chain, box: RaucBox, tmp_path: Path) -> None:
    conf = box.dir / "system.conf"
    chain_wide = build(hq.dir, hq.dir / "signer", hq.web / "os-2026.12.2.raucb", ca=hq.dir / "ca")
    hq.publish(chain_wide, "2026.12.2", conf)
    staged = build(hq.dir, hq.dir / "signer", hq.web / "os-2026.12.3.raucb", ca=hq.dir / "ca")
    hq.publish(staged, "2026.12.3", conf, store="S001")
    topics = Topics()

    # A box of S001 gets both; the store's, newer, is the one it fetches.
    s001 = Terminal(hq, tmp_path / "s001")
    ready = s001.state / "updates/os-ready"
    asyncio.run(s001.receive(lambda: len(s001.received) == 2 or s001.reports))
    assert s001.reports == []
    assert s001.received == [topics.os_release("S001"), topics.os_release()]
    assert announced_version(hq, ready) == "2026.12.3"
    assert (ready / os_update.BUNDLE).read_bytes() == staged.read_bytes()
    # ... and the root installer puts it into slot B with RAUC.
    done = root_install(hq, box, ready, s001.state, tmp_path / "trust")
    assert done.release.version == "2026.12.3" and "succeeded" in done.rauc_output
    assert box.status()["RAUC_BOOT_PRIMARY"] == "rootfs.1"

    # A box of another store: the staged announcement is never delivered to it, even asked for
    # (the broker ACL; asked first, it would arrive first); it fetches the chain's.
    s002 = Terminal(hq, tmp_path / "s002", "S002/T01",
                    topics=(topics.os_release("S001"), *topics.os_releases_for("S002")))
    asyncio.run(s002.receive(lambda: s002.received or s002.reports))
    assert s002.reports == [] and s002.received == [topics.os_release()]
    assert announced_version(hq, s002.state / "updates/os-ready") == "2026.12.2"
    assert (s002.state / "updates/os-ready" / os_update.BUNDLE).read_bytes() == \
        chain_wide.read_bytes()

    # The S001 box again (a reconnect): it runs 2026.12.3; the chain's 2026.12.2 is older and
    # the store's installed: both passed over, nothing fetched, nothing reported.
    again = Terminal(hq, s001.state)
    asyncio.run(again.receive(lambda: len(again.received) == 2))
    assert again.reports == [] and not (ready / os_update.ANNOUNCEMENT).exists()

    # Withdrawn once the chain has it: a new box of S001 follows the chain's announcement alone.
    assert posterm_hq(["os", "withdraw", "--store", "S001", *hq.broker_options()]) == 0
    fresh = Terminal(hq, tmp_path / "s001-new", "S001/T02")
    asyncio.run(fresh.receive(lambda: fresh.received or fresh.reports))
    assert fresh.reports == [] and fresh.received == [topics.os_release()]
    assert announced_version(hq, fresh.state / "updates/os-ready") == "2026.12.2"


def _retain(hq: Chain, wire: bytes) -> None:
    """HQ publishes ``wire`` retained on the announcement topic (as `os publish` does)."""
    from terminal.hq.bundles import publish_retained

    asyncio.run(publish_retained(MqttConfig(hq.broker.host, hq.broker.port, "hq-test",
                                            tls=hq.tls("hq")), [(Topics().os_release(), wire)],
                                 TIMEOUT))


def test_the_keyring_needs_a_current_crl_of_every_ca_of_hq(tmp_path: Path) -> None:
    """What the installer writes for RAUC, and what it refuses to write (RAUC would then refuse
    every bundle, or trust a CA outside HQ's chain)."""
    ca = authority.init(tmp_path / "ca")
    chain = (tmp_path / "ca/chain.pem").read_bytes()
    root_crl = (tmp_path / "ca/root.crl").read_text()
    now = datetime.now(UTC)
    issuing = ca.crl().public_bytes(serialization.Encoding.PEM).decode()
    ring = os_update.keyring(chain, issuing + root_crl, now)
    assert ring.startswith(chain) and ring.count(b"BEGIN X509 CRL") == 2
    with pytest.raises(os_update.OsUpdateError, match="no CRL signed by CN=posterm root CA"):
        os_update.keyring(chain, issuing, now)
    stale = ca.crl(now=now - timedelta(days=40)).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(os_update.OsUpdateError, match="has expired"):
        os_update.keyring(chain, stale + root_crl, now)
    other = authority.init(tmp_path / "other", name="other")
    foreign = other.crl().public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(os_update.OsUpdateError, match="outside HQ's chain"):
        os_update.keyring(chain, issuing + root_crl + foreign, now)
    # A CRL named for HQ's issuing CA but signed by another key.
    forged_ca = authority.Authority(ca.directory, other.key, ca.cert, ca.root, [])
    forged = forged_ca.crl().public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(os_update.OsUpdateError, match="no CRL signed by CN=posterm terminal CA"):
        os_update.keyring(chain, forged + root_crl, now)


def test_hq_does_not_announce_what_boxes_would_refuse(tmp_path: Path) -> None:
    ca = authority.init(tmp_path / "ca")
    assert posterm_hq(["keygen", str(tmp_path / "keys")]) == 0
    signer = Signer.load(tmp_path / "keys")
    raucb = tmp_path / "os.raucb"
    raucb.write_bytes(b"not a bundle")
    chain = tmp_path / "ca/chain.pem"
    crls = (ca.crl(days=7).public_bytes(serialization.Encoding.PEM).decode()
            + (tmp_path / "ca/root.crl").read_text())
    # The issuing CRL ends before the announcement would: boxes would refuse every bundle.
    with pytest.raises(os_update.OsUpdateError, match="before the announcement"):
        announce(raucb, "http://hq.example/os.raucb", "1", signer, chain, crls, 14)
    # RAUC itself, with the boxes' config, refuses what is not a bundle.
    with pytest.raises(os_update.OsUpdateError, match="RAUC, as the boxes run it, refuses it"):
        announce(raucb, "http://hq.example/os.raucb", "1", signer, chain, crls, 5)
    with pytest.raises(ValueError, match="http"):
        sign_os_release(os_update.OsRelease(
            os_update.COMPATIBLE, "1", "ftp://hq.example/os.raucb", 1, "0" * 64, crls,
            datetime.now(UTC), datetime.now(UTC) + timedelta(days=1), ""), signer.key,
            signer.delegation)
