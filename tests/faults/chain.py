"""A till config with ``[broker]``/``[hq]`` for the daemon as a process, and ``posterm-hq collect``
in its own process, both against the broker a test started (as ``tests/sync`` wires them)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminal.core.processes import stop_process
from terminal.field.provision import toml_dumps
from tests.support.shared import EXAMPLES, ROOT
from tests.support.till_config import till_config_data
from tests.sync.harness import CARD_KEY, Keys

RULES = EXAMPLES / "rules.toml"
IDENTITY = ("S001", "T01")


@dataclass(frozen=True)
class TillFiles:
    config: Path
    database: Path
    state_dir: Path


def till_files(tmp: Path, pki: Any = None, broker: Any = None, keys: Keys | None = None,
               devices: dict[str, dict[str, Any]] | None = None) -> TillFiles:
    """Write the till's card key and config (simulated devices; MQTT when ``keys`` is given)."""
    state = tmp / "till"
    state.mkdir(parents=True, exist_ok=True)
    (tmp / "card.key").write_bytes(CARD_KEY)
    mqtt = None
    if keys is not None:
        mqtt = (broker, pki.client("/".join(IDENTITY)), keys.root_pub)
    data = till_config_data(state, tmp / "card.key", *IDENTITY, mqtt=mqtt, receipt_png=True,
                            devices={"drawer": {"enabled": True}, "lcd": {"backend": "dummy"},
                                     **(devices or {})})
    config = tmp / "till.toml"
    config.write_text(toml_dumps(data), encoding="utf-8")
    return TillFiles(config, state / "ledger.db", state)


class Collector:
    """``posterm-hq collect`` into ``hq.db`` (or the database ``db`` names) as a child process,
    log in ``hq.log``; ``options`` are more command-line options (``--trust``)."""

    def __init__(self, tmp: Path, pki: Any, broker: Any, db: str | Path | None = None,
                 options: Sequence[str] = (), client_id: str = "posterm-hq-collect") -> None:
        self.tmp, self.pki, self.broker = tmp, pki, broker
        self.db = tmp / "hq.db" if db is None else db
        self.options, self.client_id = list(options), client_id
        if "--trust" not in self.options:
            # HQ applies a till's adjustment only from a manager its own register names; the
            # simulation's demo seed adjusts as "demo" (docs/hq-trust.md).
            policy = tmp / "hq-trust.toml"
            policy.write_text('[operators.S001]\ndemo = "manager"\n', encoding="utf-8")
            self.options += ["--trust", str(policy)]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        files = self.pki.client("hq")
        with (self.tmp / "hq.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "terminal.hq.cli", "collect", "--db", str(self.db),
                 "--rules", str(RULES), "--card-key-file", str(self.tmp / "card.key"),
                 "--host", self.broker.host, "--port", str(self.broker.port),
                 "--ca", str(files.ca), "--cert", str(files.cert), "--key", str(files.key),
                 "--client-id", self.client_id, *self.options],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)

    def stop(self, kill: bool = False) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        stop_process(process, 20, signal.SIGKILL if kill else signal.SIGTERM)

    def log(self) -> str:
        path = self.tmp / "hq.log"
        return path.read_text(errors="replace") if path.exists() else ""
