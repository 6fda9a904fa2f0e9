"""Enrollment in one visit, end to end on the shipped Mosquitto config: a blank provisioning
directory plus a one-time code becomes a terminal whose sale reaches HQ, with no file edited after
the first; every refusal is shown in the box's words and spends nothing."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import pwd
import threading
import time
import tomllib
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from terminal.field import enroll, provision
from terminal.hq.acl import Terminal
from terminal.hq.broker_acl import BrokerAcl
from terminal.hq.cli import main as posterm_hq
from terminal.hq.database import open_hq_database
from terminal.hq.enrollment import codes
from terminal.hq.enrollment.service import EnrollmentService
from terminal.hq.models import EnrollmentCode
from terminal.hq.pki import authority
from terminal.protocol.enrollment import POLE, REFUSALS, EnrollRequest
from terminal.protocol.keys import public_pem
from terminal.protocol.mqtt import Message, MqttClient, MqttConfig, TlsFiles
from terminal.protocol.topics import Topics
from tests.support.mosquitto import SHIPPED_ACL, BrokerTls, Mosquitto
from tests.sync.harness import Chain, hq_applied

T = Topics()
pytestmark = pytest.mark.slow  # starts Mosquitto itself (not through the broker fixture)


class Hq:
    """HQ's side: the CA, the broker with its CRL and ACL, and the enrollment service running on
    a loop in a thread of its own (the box's `posterm provision` blocks the test's thread)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = authority.init(directory / "ca")
        self.chain = directory / "ca" / "chain.pem"
        pki = directory / "pki"
        pki.mkdir()
        for name, args in (("server", ["server", "127.0.0.1"]), ("hq", ["identity", "hq"]),
                           ("claim", ["identity", "claim"])):
            assert posterm_hq(["ca", *args, "--ca", str(directory / "ca"), "-o",
                               str(pki / name)]) == 0
        self.hq_tls = TlsFiles(self.chain, pki / "hq.crt", pki / "hq.key")
        self.claim = TlsFiles(self.chain, pki / "claim.crt", pki / "claim.key")
        authority.write_crl(self.ca, pki / "crl.pem")
        self.broker = Mosquitto(directory / "broker", BrokerTls(self.chain, pki / "server.crt",
                                                                pki / "server.key",
                                                                pki / "crl.pem"), terminals=())
        self.db_path = directory / "hq.db"
        self.db = open_hq_database(str(self.db_path))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hq-loop")
        self.service = EnrollmentService(
            self.db, self.ca,
            MqttConfig(self.broker.host, self.broker.port, "enroll-service", tls=self.hq_tls,
                       backoff_initial=0.05, backoff_max=0.3),
            BrokerAcl(self.broker.register, SHIPPED_ACL, self.broker.directory / "acl",
                      self.broker.pid_file))

    def on_loop(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.broker.start()
        self.thread.start()
        self.on_loop(self.service.start())
        self.on_loop(self.service.client.wait_ready(10))

    def stop(self) -> None:
        self.on_loop(self.service.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()
        self.db.close()
        self.broker.stop()

    def code(self, identity: str, *extra: str, capsys: pytest.CaptureFixture[str]) -> str:
        """What `posterm-hq enroll issue` prints for the technician."""
        capsys.readouterr()
        assert posterm_hq(["enroll", "issue", identity, "--db", str(self.db_path), *extra]) == 0
        return capsys.readouterr().out.strip()

    def expired_code(self, identity: str) -> str:
        store, terminal = identity.split("/")
        with self.db.bind_ctx([EnrollmentCode]):
            return codes.issue(Terminal(store, terminal), datetime.now(UTC) - timedelta(hours=2),
                               timedelta(hours=1)).code

    def provisioning_file(self, directory: Path, identity: str, code: str,
                          *extra: str) -> Path:
        """HQ's template (`posterm-hq enroll template`) with what the technician writes: store,
        terminal and code."""
        store, terminal = identity.split("/")
        root = self.directory / "root.pub"
        if not root.exists():
            root.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
        template = io.StringIO()
        with contextlib.redirect_stdout(template):
            assert posterm_hq(["enroll", "template", "--ca", str(self.directory / "ca"),
                               "--claim", str(self.directory / "pki" / "claim"), "--root-pub",
                               str(root), "--host", self.broker.host, "--port",
                               str(self.broker.port), *extra]) == 0
        text = (template.getvalue().replace('store = ""', f'store = "{store}"', 1)
                .replace('terminal_id = ""', f'terminal_id = "{terminal}"', 1)
                .replace('code = ""', f'code = "{code}"', 1))
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "posterm-provision.toml"
        path.write_text(text)
        return path


@pytest.fixture
def hq(tmp_path: Path) -> Iterator[Hq]:
    running = Hq(tmp_path / "hq")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def box(source: Path, state: Path) -> int:
    """What the box runs at boot: `posterm provision` on the boot partition's file."""
    return provision.main(["--from", str(source), "--state-dir", str(state), "--error-file",
                           str(source.with_name("posterm-provision-error.txt")),
                           "--enroll-timeout", "20", "--owner", pwd.getpwuid(os.getuid()).pw_name,
                           # as root the default is the box's /var/lib/posterm-trust
                           *(["--trust-dir", str(state.parent / "trust")] if os.geteuid() == 0
                             else [])])


class EnrolledPki:
    """The chain harness's PKI, from what enrollment installed (terminals) and HQ's identity."""

    def __init__(self, hq_tls: TlsFiles, states: dict[str, Path]) -> None:
        self.hq_tls = hq_tls
        self.states = states

    def client(self, cn: str) -> TlsFiles:
        if cn == "hq":
            return self.hq_tls
        broker = tomllib.loads((self.states[cn] / provision.CONFIG_NAME).read_text())["broker"]
        return TlsFiles(Path(broker["ca_file"]), Path(broker["cert_file"]),
                        Path(broker["key_file"]))


def test_a_blank_box_and_a_code_become_a_terminal_whose_sale_reaches_hq(
        hq: Hq, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = hq.code("S001/T03", "--ttl", "2h", capsys=capsys)
    boot = tmp_path / "boot"
    source = hq.provisioning_file(boot, "S001/T03", code)
    state = tmp_path / "state"
    reloads = hq.broker.reloads()
    powered_on = time.perf_counter()

    assert box(source, state) == 0
    enrolled = time.perf_counter()
    # HQ answered only once the broker ran the ACL granting the store's bundles.
    assert hq.broker.reloads() > reloads

    assert not source.exists()  # consumed, as any provisioning file
    assert sorted(p.name for p in boot.iterdir()) == []  # no request left to carry to HQ
    credentials = state / provision.CREDENTIALS
    assert not (credentials / "claim.key").exists() and not (credentials / "terminal.csr").exists()
    facts = provision.status_facts(state)
    assert facts["certificate"].startswith("OU=S001,CN=S001/T03")
    assert "S001/T03" in hq.broker.register.read_text()
    assert "user S001/T03" in (hq.broker.directory / "acl").read_text()

    async def sell() -> tuple[list[str], dict[str, str]]:
        chain = Chain(tmp_path / "chain", EnrolledPki(hq.hq_tls, {"S001/T03": state}),
                      hq.broker)
        till = chain.till("S001", "T03")
        collector = chain.hq(str(hq.db_path))
        async with chain:
            await till.sell(2500)
            await chain.drained()
            return await till.events(), await hq_applied(collector)

    events, applied = asyncio.run(sell())
    assert len(events) == 1 and applied[events[0]] == "applied"
    sold = time.perf_counter()
    # The visit's figure for docs/field.md (not asserted: the machine is shared).
    print(f"\none visit: provisioning + enrollment {enrolled - powered_on:.2f} s, then the "
          f"till's first sale applied at HQ {sold - enrolled:.2f} s later "
          f"(total {sold - powered_on:.2f} s)")


def refused(source: Path, state: Path, reason: str) -> None:
    """The box refused with ``reason``: nothing configured, the file kept, the words shown."""
    assert box(source, state) == 1
    zh, en = REFUSALS[reason]
    error = source.with_name("posterm-provision-error.txt").read_text()
    assert zh in error and en in error
    assert source.exists()
    assert not (state / provision.CONFIG_NAME).exists()
    assert provision.status_facts(state) == {"enrollment": f"{zh} / {en}"}
    assert enroll.waiting_lines(state) == POLE[reason]  # what the pole display shows


def test_every_refusal_is_shown_and_spends_nothing(hq: Hq, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code = hq.code("S002/T01", capsys=capsys)
    issued = hq.directory / "ca" / "issued"
    signed_before = len(list(issued.iterdir()))  # the broker's, HQ's and the claim identity
    # Wrong terminal: T02's box with T01's code.
    refused(hq.provisioning_file(tmp_path / "b1", "S002/T02", code), tmp_path / "s1",
            "wrong_terminal")
    # Unknown and expired codes.
    refused(hq.provisioning_file(tmp_path / "b2", "S002/T01", "AAAA-BBBB-CCCC"),
            tmp_path / "s2", "code_unknown")
    refused(hq.provisioning_file(tmp_path / "b3", "S002/T01", hq.expired_code("S002/T01")),
            tmp_path / "s3", "code_expired")
    # A request whose CN names another terminal (not what a box makes: sent by hand).
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "S002/T09")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    answer = asyncio.run(enroll.exchange(hq.broker.host, hq.broker.port, hq.claim,
                                         EnrollRequest("S002", "T01", code, csr), 20))
    assert (answer.ok, answer.reason) == (False, "cn_mismatch")
    assert len(list(issued.iterdir())) == signed_before  # no refusal signed anything
    # None of these spent the code: the right box, with a file the technician fixed, enrolls.
    right = hq.provisioning_file(tmp_path / "b1", "S002/T01", code)
    assert box(right, tmp_path / "s1") == 0
    assert enroll.read_refusal(tmp_path / "s1") is None  # success clears the earlier refusal
    assert enroll.waiting_lines(tmp_path / "s1") == ("NOT PROVISIONED", "see posterm-provision")
    assert provision.is_provisioned(tmp_path / "s1")
    # Reused: a second box with the same, now spent, code.
    refused(hq.provisioning_file(tmp_path / "b4", "S002/T01", code), tmp_path / "s4",
            "code_used")
    assert hq.service.answered == {"granted": 1, "refused": 5}


def test_the_claim_identity_reads_nothing_but_enrollment_answers(hq: Hq) -> None:
    """Retained chain bundles and member states reach a terminal, never the shared claim
    identity; the marker HQ publishes after them on the claim's own topic proves it looked."""
    nonce = "0" * 32

    async def scenario() -> list[str]:
        got: list[str] = []
        publisher = MqttClient(MqttConfig(hq.broker.host, hq.broker.port, "hq-pub",
                                          tls=hq.hq_tls))
        claim = MqttClient(MqttConfig(hq.broker.host, hq.broker.port, "claim-probe",
                                      tls=hq.claim))
        marker = asyncio.Event()

        def seen(message: Message) -> None:
            got.append(message.topic)
            if message.topic == T.enroll_response(nonce):
                marker.set()

        await publisher.start()
        await publisher.wait_ready(10)
        await publisher.publish(T.bundle("chain"), b"chain bundle", retain=True)
        await publisher.publish(T.hq_state(), b"online", retain=True)
        await claim.start()
        await claim.wait_ready(10)
        for topic in (T.bundle("chain"), T.hq_state(), T.member_states(),
                      T.enroll_response(nonce)):
            await claim.subscribe(topic, seen)
        await publisher.publish(T.enroll_response(nonce), b"marker")
        async with asyncio.timeout(20):
            await marker.wait()
        await claim.stop()
        await publisher.stop()
        return got

    assert asyncio.run(scenario()) == [T.enroll_response(nonce)]


def test_a_supplied_certificate_still_provisions_without_hq(tmp_path: Path) -> None:
    """Offline: a certificate and key in the file provision as before, with no [enroll]."""
    ca = authority.init(tmp_path / "ca")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "S001/T05")]))
           .sign(key, hashes.SHA256()))
    cert = ca.sign(csr).public_bytes(serialization.Encoding.PEM).decode()
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    root = public_pem(Ed25519PrivateKey.generate().public_key()).decode()
    source = tmp_path / "posterm-provision.toml"
    source.write_text(f"""
[terminal]
store = "S001"
terminal_id = "T05"
[broker]
host = "127.0.0.1"
ca = '''{ca.chain_pem.decode()}'''
certificate = '''{cert}'''
private_key = '''{pem_key}'''
[hq]
root_public_key = '''{root}'''
""")
    assert box(source, tmp_path / "state") == 0
    assert "CN=S001/T05" in provision.status_facts(tmp_path / "state")["certificate"]


def test_enrollment_section_is_checked_before_anything_happens(tmp_path: Path) -> None:
    hq_dir = tmp_path / "hq"
    ca = authority.init(hq_dir / "ca")
    claim, claim_key = ca.identity("claim")
    other_key = ec.generate_private_key(ec.SECP256R1())
    pem = claim.public_bytes(serialization.Encoding.PEM).decode()

    def file(code: str, key: ec.EllipticCurvePrivateKey) -> str:
        key_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        root = public_pem(Ed25519PrivateKey.generate().public_key()).decode()
        return (f'[terminal]\nstore = "S001"\nterminal_id = "T01"\n[broker]\nhost = "h"\n'
                f"ca = '''{ca.chain_pem.decode()}'''\n[hq]\nroot_public_key = '''{root}'''\n"
                f'[enroll]\ncode = "{code}"\nclaim_certificate = \'\'\'{pem}\'\'\'\n'
                f"claim_private_key = '''{key_pem}'''\n")

    with pytest.raises(provision.ProvisionError, match=r"\[enroll\] code: .* not an enrollment"):
        provision.parse(file("x;rm -rf", claim_key), "f")
    with pytest.raises(provision.ProvisionError, match="does not match claim_certificate"):
        provision.parse(file("ABCD-EFGH-JKLM", other_key), "f")
    assert provision.parse(file("abcd efgh jklm", claim_key), "f").enrollment is not None
