"""`posterm-hq local-chain` (what `scripts/simulate.sh` runs): the broker, HQ with the demo
chain, a collector, the console and the simulated till, each a real process; a sale keyed at the
till reaches HQ, a rule set staged by the rules studio's command reaches the till, and a Ctrl-C
stops everything cleanly."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from terminal.core.configfile import to_toml
from terminal.hq.localchain.broker import free_port
from terminal.hq.localchain.run import ChainFiles, prepare

pytestmark = pytest.mark.slow  # its own broker, HQ and till processes


def _until(check, timeout: float = 60.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def _till_sales(db: Path) -> list[tuple[int, int, int]]:
    """(wall_us, applied_us, points redeemed) of the sales HQ applied from the live till
    S001/T01 (the demo's S001/T01 history is dated 2026-09..11)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT wall_us, applied_us, points_out FROM applied_event "
                            "WHERE store = 'S001' AND terminal = 'T01' AND kind = 'sale' "
                            "AND wall_us > ?",
                            (int(time.time() * 1e6) - 3_600_000_000,)).fetchall()


def test_the_chain_on_one_machine_carries_a_till_sale_to_hq_and_stops_on_ctrl_c(
        tmp_path: Path) -> None:
    files = ChainFiles(tmp_path / "chain")
    prepare(files, members=20, sales_per_day=2)  # the command reuses it (300 members by default)
    port = free_port()
    chain = subprocess.Popen(
        [sys.executable, "-m", "terminal.hq.cli", "local-chain", "--state-dir", str(files.root),
         "--listen", f"127.0.0.1:{port}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)  # its own process group: the test's Ctrl-C goes to it alone
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(
        line.decode(errors="replace") for line in chain.stderr), daemon=True)  # type: ignore[union-attr]
    reader.start()
    stdout = threading.Thread(target=chain.stdout.read, daemon=True)  # type: ignore[union-attr]
    stdout.start()
    try:
        _until(lambda: any("terminal S001/T01 ready" in line for line in err), 90, "till ready")
        # The redemption below is against HQ's balance: type once the till has heard HQ online
        # (under load the till can be ready before its link has HQ's retained state).
        _until(lambda: any("HQ is online" in line for line in err), 90, "the till hearing HQ")
        banner = next(line for line in err if "console http://" in line)
        assert f"console http://127.0.0.1:{port}/  login admin / posterm-demo" in banner
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login") as page:
            assert page.status == 200
        assert chain.stdin is not None
        # The README's member sale with a redemption, against the demo card's points at HQ.
        chain.stdin.write(b"1 enter 1234 enter\ns\nb 6901234567892\n25 dept1\nsubtotal\n"
                          b"redeem\n100 cash\n")
        chain.stdin.flush()
        _until(lambda: _till_sales(files.hq_db), 60, "the till's sale at HQ")
        (wall_us, applied_us, redeemed), = _till_sales(files.hq_db)
        assert redeemed > 0
        print(f"till sale to HQ's ledger: {(applied_us - wall_us) / 1000:.1f} ms")
        _stage_to_the_till(files)
    finally:
        os.killpg(chain.pid, signal.SIGINT)  # Ctrl-C
        code = chain.wait(60)
        reader.join(10)
    text = "".join(err)
    assert code == 0, text[-3000:]
    assert "posterm: stopped cleanly" in text
    stopped = next(line for line in err if line.startswith("stopped: "))
    assert stopped.startswith("stopped: till 0, console 0, ") and stopped.rstrip().endswith(
        "collect 0"), stopped
    assert "Finished server process" in (files.logs / "console.log").read_text()
    assert "collector stopped" in (files.logs / "collect.log").read_text()


def _held(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT bundles FROM terminal_seen WHERE store = 'S001' AND "
                           "terminal = 'T01'").fetchone()
    return row[0] if row else "{}"


def _stage_to_the_till(files: ChainFiles) -> None:
    """The rules studio's stage (the command line, as the demo admin) reaches the till process,
    which reports holding it; the bundle carried the demo catalogue, so the till still has it."""
    import tomllib

    port = tomllib.loads(files.till_config.read_text(encoding="utf-8"))["broker"]["port"]
    cert, key = files.client("hq")
    candidate = files.root / "candidate.toml"
    candidate.write_text(files.rules.read_text(encoding="utf-8").replace(
        "points_per_yuan = 1 ", "points_per_yuan = 2 "), encoding="utf-8")
    staged = subprocess.run(
        [sys.executable, "-m", "terminal.hq.cli", "rules", "stage", str(candidate), "--store",
         "S001", "--db", str(files.hq_db), "--as", "admin", "--keys", str(files.keys),
         "--catalogue", str(files.catalogue), "--port", str(port), "--ca",
         str(files.pki / "ca.crt"), "--cert", str(cert), "--key", str(key)],
        capture_output=True, text=True, timeout=120)
    assert staged.returncode == 0, staged.stderr
    _until(lambda: '"store/S001": 1' in _held(files.hq_db), 60, "the till holding v1")
    with sqlite3.connect(f"file:{files.root / 'till' / 'sim.db'}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT count(*) FROM product").fetchone()[0] >= 3


def test_the_till_config_is_written_as_toml() -> None:
    import tomllib

    data = {"terminal": {"store": "S001", "name": "门店 \"1\""},
            "input": {"reader": {"backend": "simulated", "keys": ["a", "b"]}},
            "drawer": {"enabled": True, "port": 8883}}
    assert tomllib.loads(to_toml(data)) == data
