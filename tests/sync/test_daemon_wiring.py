"""The composition root wires the MQTT link from config: a till built exactly as the daemon
builds it sells on simulated hardware, and HQ (`posterm-hq collect`, in its own process as in
the field) holds every event once, over a real broker with TLS and the shipped ACL."""

from __future__ import annotations

import io
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from terminal.daemon.bootstrap import build
from terminal.daemon.config import parse_config
from terminal.daemon.sim.console import Console
from terminal.daemon.sim.demo import seed_demo
from terminal.sync.link import MqttHqLink
from tests.support.shared import EXAMPLES
from tests.support.till_config import till_config_data
from tests.sync.conftest import run
from tests.sync.harness import CARD_KEY, Keys, until


def _till_config(tmp: Path, keys: Keys, pki: Any, broker: Any) -> Any:
    mqtt = (broker, pki.client("S001/T01"), keys.root_pub)
    return parse_config(till_config_data(tmp / "till", tmp / "card.key", mqtt=mqtt),
                        "till.toml")


def _collector(tmp: Path, pki: Any, broker: Any) -> subprocess.Popen[bytes]:
    files = pki.client("hq")
    # HQ's register names the demo's adjuster a manager of S001, or its adjustment is refused.
    (tmp / "trust.toml").write_text('[operators.S001]\ndemo = "manager"\n', encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "terminal.hq.cli", "collect", "--db", str(tmp / "hq.db"),
         "--rules", str(EXAMPLES / "rules.toml"), "--card-key-file", str(tmp / "card.key"),
         "--host", broker.host, "--port", str(broker.port), "--ca", str(files.ca),
         "--cert", str(files.cert), "--key", str(files.key), "--trust", str(tmp / "trust.toml")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _applied(tmp: Path) -> dict[str, str]:
    path = tmp / "hq.db"
    if not path.exists():
        return {}
    with sqlite3.connect(path) as db:
        try:
            return dict(db.execute("SELECT id, outcome FROM applied_event").fetchall())
        except sqlite3.OperationalError:  # HQ has not created its tables yet
            return {}


def test_daemon_config_with_broker_sells_and_hq_applies_every_event(pki, broker,
                                                                    tmp_path) -> None:
    (tmp_path / "card.key").write_bytes(CARD_KEY)
    keys = Keys(tmp_path / "keys")
    hq = _collector(tmp_path, pki, broker)

    async def scenario() -> None:
        terminal = await build(_till_config(tmp_path, keys, pki, broker), prepare=seed_demo)
        try:
            assert isinstance(terminal.link, MqttHqLink)
            # One ledger thread for the till and the link, made by the composition root.
            assert terminal.link.ledger is terminal.ledger.executor
            ledger_threads = {await terminal.ledger.executor.run(threading.get_ident),
                              await terminal.link.ledger.run(threading.get_ident)}
            assert len(ledger_threads) == 1
            await until(lambda: terminal.link.reachable, 60)
            console = Console(terminal, io.StringIO())
            for line in ("1 enter 1234 enter", "s", "25 dept1", "subtotal", "500 redeem",
                         "100 cash"):
                await console.command(line)
            assert terminal.desk.printed, "the sale printed no receipt"

            def outbox_ids() -> set[str]:
                rows = terminal.ledger.store.db.execute_sql("SELECT id FROM outbox").fetchall()
                return {row[0] for row in rows}

            events = await terminal.ledger.executor.run(outbox_ids)
            assert len(events) >= 3  # the demo member's registration, adjustment and the sale
            await until(lambda: set(_applied(tmp_path)) >= events, 60)
            assert set(_applied(tmp_path).values()) == {"applied"}

            def unacked() -> int:
                return int(terminal.ledger.store.db.execute_sql(
                    "SELECT count(*) FROM outbox WHERE acked_us IS NULL").fetchone()[0])

            async def acked() -> bool:
                return await terminal.ledger.executor.run(unacked) == 0
            await until(acked, 60)  # HQ's application acks came back and were recorded
            health = terminal.link.device_health()
            assert health["printer"] == "ok" and health["keypad"] == "present"
        finally:
            await terminal.close()

    try:
        run(scenario(), timeout=240)
    finally:
        hq.send_signal(signal.SIGTERM)
        output = hq.communicate(timeout=60)[0].decode(errors="replace")
    assert hq.returncode == 0, output


def test_a_bundle_put_in_force_reaches_the_till_not_only_the_ledger(pki, broker,
                                                                      tmp_path) -> None:
    """The link put a new bundle's rules into the ledger store, while the till kept the rules it
    was built with for its redemption checks, goods and receipt header until a restart."""
    from terminal.protocol.topics import Topics
    from tests.sync.conftest import mqtt_client
    from tests.sync.harness import rules_data

    (tmp_path / "card.key").write_bytes(CARD_KEY)
    keys = Keys(tmp_path / "keys")

    async def scenario() -> None:
        terminal = await build(_till_config(tmp_path, keys, pki, broker), prepare=seed_demo)
        try:
            before = terminal.till.rules.name
            data = rules_data()
            data["program"]["name"] = "HQ's rules v1"
            wire = keys.bundle("chain", 1, {"rules": data, "catalogue": [], "settings": {}})
            async with mqtt_client(pki, broker, "hq") as hq:
                await hq.publish(Topics().bundle("chain"), wire, retain=True)
                await until(lambda: terminal.link.rule_version == 1, 60)
            assert terminal.ledger.store.rules.name == "HQ's rules v1"
            assert terminal.till.rules.name == "HQ's rules v1" != before
        finally:
            await terminal.close()

    run(scenario(), timeout=240)
