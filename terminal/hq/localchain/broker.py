"""Run the shipped Mosquitto configuration on a loopback port, in a directory of its own: the
broker of a chain on one machine (``posterm-hq local-chain``) and of the tests.

The config is ``deploy/mosquitto/posterm.conf`` (in the clone) with only its port and file paths
rewritten (plus ``log_type information``, so the log says when a SIGHUP reload happened), and the
ACL is what ``posterm-hq acl`` writes from the shipped static part and a register of terminals, so
what runs is the broker set-up that ships.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from terminal.core.processes import stop_process
from terminal.hq.cli import main as posterm_hq

ROOT = Path(__file__).resolve().parents[3]
SHIPPED_CONF = ROOT / "deploy" / "mosquitto" / "posterm.conf"
SHIPPED_ACL = ROOT / "deploy" / "mosquitto" / "acl"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
RELOADED = "Reloading config."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_config(text: str, overrides: dict[str, str | None], extra: list[str]) -> str:
    """Replace the value of each directive in ``overrides`` (None: comment the line out); every
    one must be present."""
    lines, unused = [], dict(overrides)
    for line in text.splitlines():
        directive = line.split(" ", 1)[0]
        if directive in unused:
            value = unused.pop(directive)
            line = f"{directive} {value}" if value is not None else f"# {line} (not used here)"
        lines.append(line)
    if unused:
        raise ValueError(f"the shipped config lacks the directives {sorted(unused)}")
    return "\n".join([*lines, *extra]) + "\n"


@dataclass(frozen=True)
class BrokerTls:
    ca: Path
    cert: Path
    key: Path
    crl: Path | None = None  # the CA's revocation list (crlfile); None: no revocation check


class Mosquitto:
    """A broker process: ``start()``, ``stop()``, ``restart()`` (same port and persistence)."""

    def __init__(self, directory: Path, tls: BrokerTls, acl: Path | None = None,
                 port: int | None = None, terminals: Iterable[str] = ()) -> None:
        """Without ``acl``, ``self.register`` lists ``terminals`` and ``self.acl`` is what
        ``posterm-hq acl`` writes from it and the shipped static ACL."""
        self.directory = directory
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.log = directory / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None
        (directory / "data").mkdir(parents=True, exist_ok=True)
        self.register = directory / "terminals"
        self.pid_file = directory / "mosquitto.pid"  # for `posterm-hq ca revoke --broker-pid`
        if acl is None:
            acl = directory / "acl"
            self.register.write_text("".join(f"{name}\n" for name in terminals))
            self.generate_acl()
        self.acl = acl
        # Mosquitto started as root drops to the "mosquitto" user unless told to stay.
        extra = ["user root"] if os.geteuid() == 0 else []
        extra.append("log_type information")
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text(render_config(SHIPPED_CONF.read_text(), {
            "listener": f"{self.port} 127.0.0.1",
            "acl_file": str(acl),
            "persistence_location": f"{directory / 'data'}/",
            "cafile": str(tls.ca), "certfile": str(tls.cert), "keyfile": str(tls.key),
            "crlfile": str(tls.crl) if tls.crl else None,
            "log_dest": f"file {self.log}",
        }, extra))

    def start(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            raise RuntimeError("broker already running")
        # Its own session: a Ctrl-C in the terminal is for the foreground program, which
        # stops the broker itself (stop()).
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                self.process = None
                raise RuntimeError(f"mosquitto exited at start: {err}{self.log_text()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                self.pid_file.write_text(f"{self.process.pid}\n")
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not accept on port {self.port} within {timeout}s")

    def stop(self, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        stop_process(process, timeout)  # SIGTERM: Mosquitto saves its persistence file and exits
        if process.stderr:
            process.stderr.close()

    def generate_acl(self, *args: str) -> None:
        """Run ``posterm-hq acl`` on this broker's register (``args`` e.g. ``--add S003/T01``)."""
        code = posterm_hq(["acl", "--register", str(self.register), "--static", str(SHIPPED_ACL),
                     "-o", str(self.directory / "acl"), *args])
        if code != 0:
            raise RuntimeError(f"posterm-hq acl {' '.join(args)} failed ({code})")

    def reload(self, timeout: float = 5.0) -> None:
        """SIGHUP the broker (by its PID) and wait until its log says it re-read the config.

        Mosquitto reloads on its single thread, so a packet sent after the log line is handled
        under the new ACL."""
        if self.process is None:
            raise RuntimeError("broker not running")
        before = self.reloads()
        os.kill(self.process.pid, signal.SIGHUP)
        self.wait_reloaded(before, timeout)

    def reloads(self) -> int:
        """How many times the broker has logged a reload (for ``wait_reloaded``)."""
        return self.log_text().count(RELOADED)

    def wait_reloaded(self, before: int, timeout: float = 5.0) -> None:
        """Wait until the broker has reloaded since it had logged ``before`` reloads (a SIGHUP
        sent by another process, e.g. ``posterm-hq ca revoke --broker-pid``)."""
        deadline = time.monotonic() + timeout
        while self.reloads() == before:
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not reload within {timeout}s")
            time.sleep(0.02)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
