"""A new box's first rules come from HQ: a blank provisioning directory plus an enrollment code
becomes a `posterm run` process that waits for HQ's signed bundle (READY, saying so), refuses a
forged one and waits on, keeps the good one and sells; its sale reaches HQ. Nobody hands it a
rules file. Restarted, it starts at once on the bundle it holds."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminal import __version__
from terminal.core.configfile import to_toml
from terminal.field import provision
from terminal.hq.models import AppliedEvent
from terminal.protocol.mqtt import MqttClient, MqttConfig
from terminal.protocol.topics import Topics
from tests.hq.test_enrollment import EnrolledPki, Hq, box, hq  # noqa: F401  (the fixture)
from tests.support.till_config import KEYPAD_AND_PRINTER
from tests.sync.harness import CARD_KEY, Chain, Keys

T = Topics()
pytestmark = pytest.mark.slow  # Mosquitto, HQ's enrollment service and the daemon's process


class Daemon:
    """`posterm run` as systemd starts it: its notify socket read, its log in a file."""

    def __init__(self, tmp: Path, config: Path, *, simulate: bool) -> None:
        self.address = str(tmp / f"notify-{time.monotonic_ns()}.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.address)
        self.sock.setblocking(False)
        self.log = tmp / f"daemon-{time.monotonic_ns()}.log"
        self.notified: list[str] = []
        argv = [sys.executable, "-m", "terminal.daemon.cli", "run", "--config", str(config)]
        if simulate:
            argv.insert(4, "--simulate")
        env = {**os.environ, "NOTIFY_SOCKET": self.address, "PYTHONUNBUFFERED": "1",
               "PYTHONFAULTHANDLER": "1"}
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=log, env=env)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def _drain(self) -> None:
        while True:
            try:
                self.notified.append(self.sock.recv(65536).decode())
            except BlockingIOError:
                return

    async def until(self, check, what: str, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while True:
            self._drain()
            if check():
                return
            assert self.proc.poll() is None, f"the daemon ended ({self.proc.returncode}) " \
                                             f"before {what}:\n{self.text()[-4000:]}"
            assert time.monotonic() < deadline, f"no {what} in {timeout} s:\n{self.text()[-4000:]}"
            await asyncio.sleep(0.1)

    def said(self, needle: str) -> bool:
        return any(needle in message for message in self.notified)

    def type(self, lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(lines.encode())
        self.proc.stdin.flush()

    async def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(self.proc.wait, 60)
        self.sock.close()
        return code


def payload(chain: Chain) -> dict:
    return {"rules": chain.rules_data,
            "catalogue": [{"sku": "COLA", "name": "可乐 cola", "price_fen": 350,
                           "barcode": "6901234567892"}],
            "settings": {}}


async def publish(running: Hq, scope: str, wire: bytes) -> None:
    client = MqttClient(MqttConfig(running.broker.host, running.broker.port, "hq-bundles",
                                   tls=running.hq_tls))
    await client.start()
    try:
        await client.wait_ready(20)
        await client.publish(T.bundle(scope), wire, retain=True)
    finally:
        await client.stop()


def test_a_blank_box_waits_for_hqs_signed_rules_refuses_forged_ones_and_sells(
        hq: Hq, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    keys = Keys(tmp_path / "keys")  # HQ's root and signing key: the root goes in the template
    (hq.directory / "root.pub").write_bytes(keys.root_pub.read_bytes())
    card_key = tmp_path / "card.key"
    card_key.write_bytes(CARD_KEY)
    code = hq.code("S001/T04", "--ttl", "2h", capsys=capsys)
    boot, state = tmp_path / "boot", tmp_path / "state"
    source = hq.provisioning_file(boot, "S001/T04", code, "--card-key-file", str(card_key))
    # What the technician adds for this store's hardware (here simulated) and, for the test, a
    # state directory of its own instead of /var/lib/posterm. No rules anywhere.
    source.write_text(source.read_text() + "\n" + to_toml({
        "paths": {"state_dir": str(state)},
        "loyalty": {"departments": ["fresh", "household"]},
        **KEYPAD_AND_PRINTER,
    }))
    assert box(source, state) == 0
    config = state / provision.CONFIG_NAME
    assert not (state / "rules.toml").exists()
    assert (state / provision.CREDENTIALS / "card.key").read_bytes() == CARD_KEY

    async def scenario() -> None:
        chain = Chain(tmp_path / "chain", EnrolledPki(hq.hq_tls, {}), hq.broker)
        collector = chain.hq(str(hq.db_path))
        await collector.start()
        daemon = Daemon(tmp_path, config, simulate=True)
        try:
            await daemon.until(lambda: daemon.said("READY=1"), "READY=1 while waiting")
            assert daemon.said("STATUS=waiting for HQ's rules")
            # Forged: signed by a key outside HQ's root; and a bundle of another chain's root.
            await publish(hq, "store/S001", keys.bundle(
                "store/S001", 5, payload(chain), signing=Ed25519PrivateKey.generate()))
            other = Keys(tmp_path / "other")
            await publish(hq, "chain", other.bundle("chain", 7, payload(chain)))
            await daemon.until(lambda: "bad_signature" in daemon.text()
                               and daemon.text().count("refused") >= 2, "both refusals")
            await daemon.until(lambda: daemon.said("HQ's rules bundle refused"),
                               "the refusal in STATUS=")
            assert "still waiting for HQ's rules" in daemon.text()
            assert "ready" not in daemon.text().split("still waiting")[-1]
            assert daemon.proc.poll() is None
            # HQ's own bundle: kept, and the till starts on its rules.
            await publish(hq, "chain", keys.bundle("chain", 1, payload(chain)))
            await daemon.until(lambda: "terminal S001/T04 ready" in daemon.text(),
                               "the till started")
            assert "rules: HQ's chain bundle v1 kept" in daemon.text()
            daemon.type("1 enter 1234 enter\n12.5 dept1\ncash\n")

            def applied() -> list[tuple[str, str]]:
                return [(row.kind, row.outcome) for row in AppliedEvent.select()
                        .where(AppliedEvent.terminal == "T04")]

            deadline = time.monotonic() + 90
            while ("sale", "applied") not in await collector.ledger.thread.run(applied):
                assert time.monotonic() < deadline, (await collector.ledger.thread.run(applied),
                                                     daemon.text()[-3000:])
                await asyncio.sleep(0.2)
            assert await daemon.stop() == 0
            assert not (state / "rules.toml").exists()  # the rules are the held bundle's
            # Started again (systemd's next start, here without the simulation): at once, on
            # the bundle it holds.
            again = Daemon(tmp_path, config, simulate=False)
            await again.until(lambda: "terminal S001/T04 ready" in again.text(), "a restart")
            assert "rules: HQ's chain bundle v1, held" in again.text()
            assert not again.said("waiting for HQ's rules")
            assert await again.stop() == 0
        finally:
            if daemon.proc.poll() is None:
                daemon.proc.kill()
            await collector.stop()
            await asyncio.to_thread(collector.ledger.close)

    asyncio.run(scenario())


def test_malformed_and_foreign_bundles_are_refused_and_stop_while_waiting_is_clean(
        hq: Hq, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    keys = Keys(tmp_path / "keys")
    (hq.directory / "root.pub").write_bytes(keys.root_pub.read_bytes())
    card_key = tmp_path / "card.key"
    card_key.write_bytes(CARD_KEY)
    code = hq.code("S001/T05", capsys=capsys)
    state = tmp_path / "state"
    source = hq.provisioning_file(tmp_path / "boot", "S001/T05", code, "--card-key-file",
                                  str(card_key))
    source.write_text(source.read_text() + f'\n[paths]\nstate_dir = "{state}"\n'
                      '[printer]\nbackend = "dummy"\n')
    assert box(source, state) == 0

    async def scenario() -> None:
        chain = Chain(tmp_path / "chain", EnrolledPki(hq.hq_tls, {}), hq.broker)
        # No keypad section in the file: provisioning gave the box its evdev inputs.
        daemon = Daemon(tmp_path, state / provision.CONFIG_NAME, simulate=False)
        healthy = state / f"healthy-{__version__}"
        assert not healthy.exists()
        try:
            await daemon.until(lambda: daemon.said("STATUS=waiting for HQ's rules"), "waiting")
            # READY and linked to HQ's broker: as far as a release can go without rules, so an
            # application update on trial is kept (it would roll back after 10 minutes else).
            # The mark is written, then logged: wait for both (the file alone was seen a moment
            # before the log line reached the pipe, at load 10-13).
            await daemon.until(lambda: healthy.exists() and "healthy (linked to HQ's broker, "
                               "waiting for its rules)" in daemon.text(),
                               "the release marked healthy while waiting, and said so")
            await publish(hq, "chain", b'{"bundle": "not base64!", "signature": ""}')
            # and a bundle for another store, on this store's topic
            await publish(hq, "store/S001", keys.bundle("store/S002", 3, payload(chain)))
            await daemon.until(lambda: "refused (malformed)" in daemon.text()
                               and "refused (wrong_scope)" in daemon.text(), "the refusals")
            assert "ready" not in daemon.text().split("refused (")[-1]
        finally:
            code = await daemon.stop()
        assert code == 0, daemon.text()[-3000:]
        assert "stopped cleanly while waiting for HQ's rules" in daemon.text()

    asyncio.run(scenario())


def test_a_box_provisioned_without_the_card_key_says_so_and_goes_on_once_it_is_there(
        hq: Hq, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """Provisioned from a template without the chain's card key: the daemon used to wait for
    HQ's rules, fail on the missing key once the bundle came, exit, and be restarted by systemd
    into the same failure. Now it is READY and says the card key is missing, HQ's bundle meanwhile
    changes nothing, and once the key is there the same process takes the bundle and sells."""
    keys = Keys(tmp_path / "keys")
    (hq.directory / "root.pub").write_bytes(keys.root_pub.read_bytes())
    code = hq.code("S001/T06", capsys=capsys)
    state = tmp_path / "state"
    source = hq.provisioning_file(tmp_path / "boot", "S001/T06", code)  # no --card-key-file
    source.write_text(source.read_text() + f'\n[paths]\nstate_dir = "{state}"\n'
                      '[printer]\nbackend = "dummy"\n')
    assert box(source, state) == 0
    card_key = state / provision.CREDENTIALS / "card.key"
    assert not card_key.exists()

    async def scenario() -> None:
        chain = Chain(tmp_path / "chain", EnrolledPki(hq.hq_tls, {}), hq.broker)
        daemon = Daemon(tmp_path, state / provision.CONFIG_NAME, simulate=False)
        try:
            await daemon.until(lambda: daemon.said("STATUS=no card key"), "the missing key said")
            assert daemon.said("READY=1")
            assert f"{card_key}: cannot read the card key" in daemon.text()
            assert "provision the box again with the chain's card key ([hq] card_key" in \
                daemon.text()
            await publish(hq, "chain", keys.bundle("chain", 1, payload(chain)))
            # Still the same process, still saying it (it does not take the bundle without the
            # key it would store the members under).
            assert daemon.proc.poll() is None and "cannot start" not in daemon.text()
            card_key.write_bytes(CARD_KEY)
            await daemon.until(lambda: "rules: HQ's chain bundle v1 kept" in daemon.text(),
                               "the bundle taken once the key is there")
            await daemon.until(lambda: "terminal S001/T06 ready" in daemon.text(),
                               "the till started in the same process")
            assert daemon.text().count("no card key") == 1  # said once, not in a loop
        finally:
            code = await daemon.stop()
        assert code == 0, daemon.text()[-3000:]

    asyncio.run(scenario())
