"""`posterm-hq local-chain`: the whole chain on one machine (what ``scripts/simulate.sh`` runs).

    posterm-hq local-chain [--state-dir var/chain] [--listen 127.0.0.1:8080]

Starts, each as its own process: Mosquitto with TLS and the ACL ``posterm-hq acl`` generates
(the shipped ``deploy/mosquitto`` config on a free loopback port), a collector on HQ's SQLite
database (which publishes HQ's member states, signed), the console, and in the foreground the
simulated till S001/T01 linked to HQ through the broker. Prints the console's address and the
demo login. Ctrl-C stops the till, then the console, the collector and the broker, each cleanly.

The first run makes, in ``--state-dir``: a CA with the broker's, HQ's and the till's
certificates (:mod:`.pki`), HQ's root and signing keys (``keygen``), the chain's card key, HQ's
database with the demo chain (``posterm-hq demo``: stores S001-S003, members, three months of
history, the console login) and the till's config. Later runs reuse them, history included.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from terminal.core.configfile import to_toml
from terminal.core.processes import stop_process
from terminal.daemon.sim.demo import (
    DEMO_CARD,
    DEMO_PHONE,
    DEMO_POINTS,
    demo_config_data,
    demo_rules,
)
from terminal.hq.demo import ADMIN, ADMIN_PASSWORD, TERMINALS, add_admin, build_demo
from terminal.hq.keygen import run as keygen
from terminal.hq.localchain.broker import BrokerTls, Mosquitto, free_port
from terminal.hq.localchain.pki import CertificateAuthority
from terminal.hq.member_ops.service import MemberOps
from terminal.loyalty.rules import load_rules
from terminal.protocol import canonical

TILL = "S001/T01"
PKI_DAYS = 3650  # a machine's own chain: its CA need not expire while it is used


@dataclass(frozen=True)
class ChainFiles:
    """Where a chain on one machine keeps everything."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def card_key(self) -> Path:
        return self.root / "card.key"

    @property
    def rules(self) -> Path:
        return demo_rules().resolve()

    @property
    def hq_db(self) -> Path:
        return self.root / "hq.db"

    @property
    def catalogue(self) -> Path:
        """The demo till's catalogue as the rules studio's bundles carry it (JSON)."""
        return self.root / "catalogue.json"

    @property
    def till_config(self) -> Path:
        return self.root / "till.toml"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def client(self, cn: str) -> tuple[Path, Path]:
        stem = "client-" + cn.replace("/", "_")
        return self.pki / f"{stem}.crt", self.pki / f"{stem}.key"


def prepare(files: ChainFiles, *, members: int = 300, sales_per_day: int = 6) -> None:
    """Make what is missing (see the module docstring); what exists is kept."""
    files.root.mkdir(parents=True, exist_ok=True)
    files.logs.mkdir(exist_ok=True)
    if not (files.pki / "ca.crt").exists():
        ca = CertificateAuthority(files.pki, name="posterm local chain CA", days=PKI_DAYS)
        ca.server()
        for cn in ("hq", TILL):
            ca.client(cn)
    if not (files.keys / "delegation.json").exists():
        keygen(argparse.Namespace(directory=files.keys, days=PKI_DAYS))
    if not files.card_key.exists():
        files.card_key.write_text(secrets.token_hex(32))
        files.card_key.chmod(0o600)
    if not files.hq_db.exists():
        summary = build_demo(str(files.hq_db), load_rules(files.rules),
                             files.card_key.read_bytes().strip(), members=members,
                             sales_per_day=sales_per_day)
        print(f"demo chain made: {summary.members} members, {summary.sales} sales, "
              f"{summary.refunds} refunds", file=sys.stderr)
        _demo_card_at_hq(files)
    if not files.catalogue.exists():
        seed = demo_config_data(files.root / "till", files.card_key)["loyalty"]["catalogue_file"]
        products = tomllib.loads(Path(seed).read_text(encoding="utf-8"))["product"]
        files.catalogue.write_bytes(canonical.dumps(products))
    add_admin(str(files.hq_db))


def _demo_card_at_hq(files: ChainFiles) -> None:
    """The simulated till's demo card (``s``) is a member at HQ with points to redeem: HQ's
    balance is the one a till redeems against, and the till's own demo adjustment is its local
    share only (HQ accepts adjustments only from the managers it knows)."""
    ops = MemberOps.open(str(files.hq_db), files.rules, files.card_key)
    try:
        ops.import_members(f"card,tier,points,name,phone\n{DEMO_CARD},member,{DEMO_POINTS},"
                           f"王小明,{DEMO_PHONE}\n", actor="demo",
                           reason="the simulated till's demo card")
    finally:
        ops.close()


def till_config(files: ChainFiles, broker_port: int) -> str:
    """The simulated till's config (TOML), linked to HQ through the local broker."""
    cert, key = files.client(TILL)
    data: dict[str, Any] = demo_config_data(files.root / "till", files.card_key, files.rules)
    data["broker"] = {"host": "127.0.0.1", "port": broker_port,
                      "ca_file": str(files.pki / "ca.crt"), "cert_file": str(cert),
                      "key_file": str(key)}
    data["hq"] = {"root_public_key_file": str(files.keys / "root.pub")}
    return to_toml(data)



class LocalChain:
    """The broker, a collector and the console, started and stopped in order."""

    def __init__(self, files: ChainFiles, listen: tuple[str, int],
                 broker_port: int | None = None) -> None:
        self.files, self.listen = files, listen
        register = files.root / "broker" / "terminals"
        register.parent.mkdir(parents=True, exist_ok=True)
        self.broker = Mosquitto(
            files.root / "broker",
            BrokerTls(files.pki / "ca.crt", files.pki / "server.crt", files.pki / "server.key"),
            port=broker_port, terminals=[f"{s}/{t}" for s, t in TERMINALS])
        self.processes: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []

    @property
    def console_url(self) -> str:
        return f"http://{self.listen[0]}:{self.listen[1]}/"

    def _hq(self, name: str, *args: str) -> None:
        """``posterm-hq NAME ARGS`` in its own session (Ctrl-C in the terminal is the till's),
        its output in ``logs/NAME.log``."""
        log = (self.files.logs / f"{name}.log").open("ab")
        process = subprocess.Popen([sys.executable, "-m", "terminal.hq.cli", name, *args],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True)
        self.processes.append((name, process, log))

    def start(self, timeout: float = 60.0) -> None:
        self.broker.start()
        files = self.files
        common = ["--db", str(files.hq_db), "--rules", str(files.rules),
                  "--card-key-file", str(files.card_key)]
        cert, key = files.client("hq")
        broker = ["--host", "127.0.0.1", "--port", str(self.broker.port),
                  "--ca", str(files.pki / "ca.crt"), "--cert", str(cert), "--key", str(key)]
        self._hq("collect", *common, *broker, "--keys", str(files.keys))
        # The console's broker link sends fleet commands (print the status page, resync ...);
        # with HQ's signing key the rules studio stages and pushes bundles carrying the demo
        # till's catalogue (a bundle's catalogue replaces the till's).
        self._hq("console", *common, *broker, "--listen", f"{self.listen[0]}:{self.listen[1]}",
                 "--insecure-cookies", "--keys", str(files.keys), "--catalogue",
                 str(files.catalogue))
        self._wait_for_console(timeout)
        files.till_config.write_text(till_config(files, self.broker.port), encoding="utf-8")

    def _wait_for_console(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for name, process, _ in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited ({process.returncode}); see "
                                       f"{self.files.logs / name}.log")
            try:
                socket.create_connection(self.listen, timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the console did not listen on {self.console_url} "
                                       f"within {timeout:.0f}s") from None
                time.sleep(0.1)

    def till_command(self) -> list[str]:
        return [sys.executable, "-m", "terminal.daemon.cli", "run", "--simulate", "--config",
                str(self.files.till_config)]

    def stop(self, timeout: float = 20.0) -> dict[str, int | None]:
        """SIGTERM each process, the last started first; returns their exit codes."""
        codes: dict[str, int | None] = {}
        for name, process, log in reversed(self.processes):
            if process.poll() is None:
                stop_process(process, timeout)
            codes[name] = process.returncode
            log.close()
        self.processes.clear()
        self.broker.stop()
        return codes


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, default=Path("var/chain"),
                        help="where the chain keeps its files between runs (var/chain)")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="the console's HOST:PORT")


def run(args: argparse.Namespace) -> int:
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        print(f"local-chain: --listen {args.listen!r} is not HOST:PORT", file=sys.stderr)
        return 2
    files = ChainFiles(args.state_dir.resolve())
    prepare(files)
    chain = LocalChain(files, (host, int(port)), free_port())
    code: int | None = None
    try:
        chain.start()
        print(f"\nposterm chain on this machine: console {chain.console_url}  login {ADMIN} / "
              f"{ADMIN_PASSWORD}\n  broker 127.0.0.1:{chain.broker.port} (TLS), HQ database "
              f"{files.hq_db}, logs in {files.logs}\n  the till S001/T01 follows; Ctrl-C stops "
              "everything\n", file=sys.stderr, flush=True)
        till = subprocess.Popen(chain.till_command())
        # Ctrl-C reaches the till (the terminal's foreground process group) and it stops
        # cleanly; here it only means: wait for the till, then stop the rest.
        with contextlib.suppress(KeyboardInterrupt):
            till.wait()
        with contextlib.suppress(KeyboardInterrupt):
            till.wait()
        code = till.returncode
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C does not cut the stop
        codes = chain.stop()
    print(f"stopped: till {code}, " + ", ".join(f"{name} {rc}" for name, rc in codes.items()),
          file=sys.stderr)
    return 0 if code == 0 else 1
