"""`posterm run --simulate` as systemd runs it: READY=1, WATCHDOG=1, clean exit on SIGTERM."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.till_config import KEYPAD_AND_PRINTER, till_config_data, write_config


def _collect(sock: socket.socket, until: str, deadline: float) -> list[str]:
    seen: list[str] = []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            seen.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if any(until in message.split("\n") for message in seen):
            break
    return seen


def _read_until(proc: subprocess.Popen[bytes], text: bytes, deadline: float) -> bytes:
    """What the process wrote on stdout up to and including ``text`` (fails at ``deadline``)."""
    assert proc.stdout is not None
    seen = b""
    while text not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {text!r} on stdout in time; got {seen.decode()[-2000:]}"
        if select.select([proc.stdout], [], [], left)[0]:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"stdout closed before {text!r}; got {seen.decode()[-2000:]}"
            seen += chunk
    return seen


def _stop(proc: subprocess.Popen[bytes], timeout: float = 60) -> tuple[bytes, bytes]:
    """SIGTERM, then what the process wrote; one that does not stop in ``timeout`` is made to
    dump every thread's stack (faulthandler on SIGABRT) and the test fails showing them."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _out, err = proc.communicate(timeout=30)
        raise AssertionError(f"no clean stop {timeout} s after SIGTERM; threads:\n"
                             f"{err.decode(errors='replace')[-6000:]}") from None


def _ready_and_fed(sock: socket.socket) -> list[str]:
    """What a waiting daemon told systemd up to its watchdog's second ping, READY=1 among it."""
    seen = _collect(sock, "WATCHDOG=1", time.monotonic() + 60)
    seen += _collect(sock, "WATCHDOG=1", time.monotonic() + 10)
    assert any("READY=1" in m.split("\n") for m in seen), seen
    return seen


def _run_under_systemd(tmp_path: Path, *args: str, stdin: int | None = None
                       ) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """`posterm run ARGS` as systemd starts it: its notify socket (bound here, to read), a
    watchdog of 0.4 s."""
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000",
           "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen([sys.executable, "-m", "terminal.daemon.cli", "run", *args],
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    return proc, sock


def test_simulated_daemon_notifies_and_stops_cleanly(tmp_path: Path) -> None:
    proc, sock = _run_under_systemd(tmp_path, "--simulate", "--state-dir", str(tmp_path / "sim"),
                                    stdin=subprocess.PIPE)
    try:
        ready = _collect(sock, "READY=1", time.monotonic() + 60)
        assert any("READY=1" in m.split("\n") for m in ready), ready
        pings = _collect(sock, "WATCHDOG=1", time.monotonic() + 5)
        assert any("WATCHDOG=1" in m.split("\n") for m in pings), pings
        assert proc.stdin is not None
        proc.stdin.write(b"1 enter 1234 enter\n12.5 dept1\n")  # a sale in progress at SIGTERM
        proc.stdin.flush()
        shown = _read_until(proc, b"TOTAL          12.50", time.monotonic() + 30)
        rest, err = _stop(proc)
        out = shown + rest
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    assert proc.returncode == 0, err.decode()
    assert b"stopped cleanly" in err
    assert "TOTAL          12.50" in out.decode()
    # Ready with no HQ to reach: the release confirmed itself for the update check.
    from terminal import __version__
    assert (tmp_path / "sim" / f"healthy-{__version__}").exists()
    # ... saying the ledger schema it runs, and the ledger's numbers recorded (docs/field.md 5).
    from terminal.field.ledger_guard import LedgerLevel, read_level, release_schema
    from terminal.loyalty.store.database import MIGRATIONS, compatible_from
    assert release_schema(tmp_path / "sim", __version__) == max(MIGRATIONS)
    assert read_level(tmp_path / "sim") == LedgerLevel(
        compatible_from(MIGRATIONS, max(MIGRATIONS)), max(MIGRATIONS))
    assert any(m.startswith("STATUS=") or "\nSTATUS=" in m for m in ready + pings)


def test_simulation_runs_the_terminal_of_the_given_config(tmp_path: Path) -> None:
    """`posterm run --simulate --config FILE` used to ignore FILE and sell on the demo state."""
    from terminal.daemon.sim.demo import demo_rules

    (tmp_path / "card.key").write_text("k" * 32)
    data = till_config_data(tmp_path / "till", tmp_path / "card.key", "S042", "T07")
    data["loyalty"]["rules_file"] = str(demo_rules().resolve())
    config = write_config(tmp_path / "till.toml", data)
    result = subprocess.run(
        [sys.executable, "-m", "terminal.daemon.cli", "run", "--simulate", "--state-dir",
         str(tmp_path / "demo"), "--config", str(config)],
        input=b"1 enter 1234 enter\n12.5 dept1\ncash\n", capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert "销售 S042-T07-0001" in result.stdout.decode()  # the LCD's prompt, in Chinese
    assert (tmp_path / "till" / "ledger.db").exists()
    assert not (tmp_path / "demo").exists()


def test_unprovisioned_daemon_waits_for_its_config(tmp_path: Path) -> None:
    """No config yet: READY=1 with the reason in STATUS=, watchdog pings, and an exit asking
    systemd for a restart (EX_TEMPFAIL) as soon as provisioning writes the config."""
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    config = tmp_path / "posterm.toml"
    env = {**os.environ, "NOTIFY_SOCKET": address, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "terminal.daemon.cli", "run", "--config",
                             str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        ready = _collect(sock, "READY=1", time.monotonic() + 30)
        assert any("STATUS=not provisioned" in m for m in ready), ready
        assert proc.poll() is None  # it waits rather than failing in a restart loop
        config.write_text("# written by posterm provision\n")
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    assert proc.returncode == 75, err.decode()
    assert b"not provisioned" in err


def test_freshly_provisioned_terminal_prints_its_status_page(tmp_path: Path) -> None:
    from terminal.field.provision import STATUS_PAGE_MARKER

    state = tmp_path / "sim"
    state.mkdir()
    (state / STATUS_PAGE_MARKER).write_bytes(b"")
    proc = subprocess.Popen(
        [sys.executable, "-m", "terminal.daemon.cli", "run", "--simulate", "--state-dir",
         str(state)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"})
    page = state / "receipts" / "status.txt"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
                not page.exists() or (state / STATUS_PAGE_MARKER).exists()):
            time.sleep(0.1)
    finally:
        _stop(proc)
    text = page.read_text(encoding="utf-8")
    assert "S001 / T01" in text and "software" in text and "keypad" in text, text
    assert not (state / STATUS_PAGE_MARKER).exists()  # once only


def test_a_box_without_rules_or_certificate_is_ready_and_says_what_it_waits_for(
        tmp_path: Path) -> None:
    """Provisioned offline, before HQ signed its request: no rules, no certificate. The daemon
    is up (READY=1, watchdog), says what it waits for, and stops cleanly; it does not fail in a
    restart loop that would make an OS update's boot check give up on the slot."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from terminal.protocol.keys import public_pem

    (tmp_path / "root.pub").write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    (tmp_path / "state/credentials").mkdir(parents=True)  # the card key, as provisioning writes
    (tmp_path / "state/credentials/card.key").write_bytes(b"k" * 32)
    config = write_config(tmp_path / "posterm.toml", {
        "terminal": {"store": "S001", "terminal_id": "T42"},
        "paths": {"state_dir": str(tmp_path / "state")},
        "broker": {"host": "127.0.0.1", "port": 1, "ca_file": str(tmp_path / "ca.pem"),
                   "cert_file": str(tmp_path / "terminal.crt"),
                   "key_file": str(tmp_path / "terminal.key")},
        "hq": {"root_public_key_file": str(tmp_path / "root.pub")},
        "input": {"keypad": {"backend": "evdev", "role": "keypad", "match": "*keypad*"}},
        "printer": {"backend": "dummy"},
    })
    proc, sock = _run_under_systemd(tmp_path, "--config", str(config))
    try:
        seen = _ready_and_fed(sock)
        assert any("STATUS=waiting for HQ's rules" in m for m in seen), seen
        assert any("no certificate yet" in m for m in seen), seen
        assert proc.poll() is None
        _out, err = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    assert proc.returncode == 0, err.decode()
    assert b"stopped cleanly while waiting for HQ's rules" in err
    assert not (tmp_path / "state" / "rules.toml").exists()
    # Not linked to HQ (no certificate): nothing shows this release can reach HQ, so an
    # application update on trial is not kept on its account.
    from terminal import __version__
    assert not (tmp_path / "state" / f"healthy-{__version__}").exists()


def _standalone_config(tmp_path: Path, card_key: Path,
                       devices: dict[str, dict[str, Any]] | None = None) -> Path:
    from terminal.daemon.sim.demo import demo_rules

    return write_config(tmp_path / "posterm.toml", {
        "terminal": {"store": "S001", "terminal_id": "T43"},
        "paths": {"state_dir": str(tmp_path / "state")},
        "loyalty": {"rules_file": str(demo_rules().resolve()), "card_key_file": str(card_key),
                    "departments": ["fresh", "household"]},
        **KEYPAD_AND_PRINTER, **(devices or {}),
    })


def test_a_box_without_its_card_key_is_ready_says_so_and_goes_on_when_it_comes(
        tmp_path: Path) -> None:
    """Provisioned without the chain's card key: no exit into systemd's restart loop (which an
    A/B boot check would take for a broken slot) but READY, saying what is missing, watchdog
    fed; once the key file is there the same process starts the till."""
    card_key = tmp_path / "credentials" / "card.key"
    config = _standalone_config(tmp_path, card_key)
    proc, sock = _run_under_systemd(tmp_path, "--config", str(config))
    try:
        seen = _ready_and_fed(sock)
        status = [m for m in seen if "STATUS=no card key" in m]
        assert status and f"{card_key}: cannot read the card key" in status[0], seen
        assert "[hq] card_key in posterm-provision.toml" in status[0]
        assert proc.poll() is None
        card_key.parent.mkdir()
        card_key.write_bytes(b"k" * 32)
        deadline = time.monotonic() + 60
        while not any("STATUS=ready:" in m for m in seen):
            assert proc.poll() is None and time.monotonic() < deadline, seen[-5:]
            seen += _collect(sock, "WATCHDOG=1", min(deadline, time.monotonic() + 5))
        _out, err = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    assert proc.returncode == 0, err.decode()
    text = err.decode()
    assert "cannot start" not in text and text.count("no card key") == 1
    assert f"card key: {card_key} is there now; going on" in text
    assert "terminal S001/T43 ready" in text


@pytest.mark.parametrize(("charset", "language"), [("gb18030", "zh"), ("ascii", "en")])
def test_the_missing_card_key_is_on_the_pole_display_in_its_language(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, charset: str, language: str) -> None:
    import asyncio

    from terminal.core.systemd import Notifier
    from terminal.daemon.config import load_config
    from terminal.daemon.waiting_for_card_key import NO_KEY_POLE, wait_for_card_key
    from terminal.drivers import pole

    config = load_config(_standalone_config(
        tmp_path, tmp_path / "card.key", {"pole": {"backend": "pty", "charset": charset}}))
    opened: list[pole.PoleDisplay] = []

    def spy(pole_config: pole.PoleConfig) -> pole.PoleDisplay:
        opened.append(pole.PoleDisplay(pole_config))  # the real display, on a pty
        return opened[-1]

    monkeypatch.setattr(pole, "open_pole", spy)

    async def wait() -> bool:
        stop = asyncio.Event()
        waiting = asyncio.create_task(wait_for_card_key(config, Notifier(None), stop))
        async def shown_once() -> None:
            while not (opened and opened[0].lines[0]):
                await asyncio.sleep(0.01)

        await asyncio.wait_for(shown_once(), 30)
        shown = opened[0].lines
        stop.set()
        assert shown == NO_KEY_POLE[language], shown
        return await waiting

    assert asyncio.run(wait()) is False  # stopped while waiting


def test_simulation_with_no_input_stops_cleanly(tmp_path: Path) -> None:
    """Started with stdin on /dev/null (nohup, a service, `< /dev/null`), the simulation's
    console used to log epoll's refusal as a traceback and then wait for input for ever; it
    now takes the empty input as the end of input and stops as at `quit`."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "terminal.daemon.cli", "run", "--simulate", "--state-dir",
         str(tmp_path / "sim")],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert b"stopped cleanly" in err
    assert b"Traceback" not in err, err.decode()
    assert b"pole display" in out  # the console drew its first screen
