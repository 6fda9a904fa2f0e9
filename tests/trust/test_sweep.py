"""Break 7 of issue 16: HQ's expiry sweep commits in chunks, and a kill mid-sweep keeps them.

20,000 lots fall due in a real HQ database; ``posterm-hq expire`` runs as a process and is
stopped (SIGSTOP) as soon as another connection sees its first lots expired, then SIGKILLed. The
lots it expired stay expired, the ledger's invariants hold, and a second run expires exactly the
rest. On one transaction, nothing at all is visible before the process ends.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import open_hq_database
from terminal.loyalty.cards import card_hash
from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import Registration
from terminal.loyalty.rules import load_rules
from terminal.loyalty.store.ledger_store import CardRef
from tests.faults.support import Counts
from tests.support.shared import EXAMPLES, ROOT
from tests.sync.harness import CARD_KEY

LOTS = 20_000
RULES = EXAMPLES / "rules.toml"
DUE = "2027-03-05T00:00:00+00:00"  # a year and a day after the registrations below


def _copies(db: sqlite3.Connection, table: str, changes: dict[str, object],
            count: int) -> None:
    """``count - 1`` copies of ``table``'s one row, ``changes`` naming per-copy values
    (a callable of the copy's number) for some columns."""
    cursor = db.execute(f"SELECT * FROM {table}")
    names = [column[0] for column in cursor.description]
    [row] = cursor.fetchall()
    marks = ", ".join("?" * len(names))
    db.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", (
        tuple(changes[name](n) if name in changes else value  # type: ignore[operator]
              for name, value in zip(names, row, strict=True))
        for n in range(1, count)))


def _chain_with_due_lots(path: Path) -> None:
    """One member registered as HQ registers them (bonus entry and lot), copied to ``LOTS``."""
    ledger = ChainLedger(open_hq_database(str(path)), load_rules(RULES), CARD_KEY)
    ref = CardRef(card_hash(CARD_KEY, "8000123456"), "3456")
    ledger.thread.call(ledger.store.register, Registration(card=ref),  # type: ignore[arg-type]
                       Moment(datetime(2026, 3, 4, 2, tzinfo=UTC)))
    ledger.close()
    with sqlite3.connect(path) as db:
        [(member,)] = db.execute("SELECT id FROM member").fetchall()
        [(entry, seq)] = db.execute("SELECT id, seq FROM ledger_entry").fetchall()
        _copies(db, "member", {"id": lambda n: f"{member}-{n}",
                               "card_hash": lambda n: hashlib.sha256(b"%d" % n).hexdigest()},
                LOTS)
        _copies(db, "ledger_entry", {"id": lambda n: f"{entry}-{n}", "seq": lambda n: seq + n,
                                     "member_id": lambda n: f"{member}-{n}"}, LOTS)
        _copies(db, "lot", {"id": lambda n: f"{entry}-{n}", "member_id": lambda n: f"{member}-{n}"},
                LOTS)
        db.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (str(seq + LOTS),))
    db.close()


def _expired(path: Path) -> int:
    with sqlite3.connect(path, timeout=30) as db:
        count = db.execute("SELECT count(*) FROM lot WHERE remaining = 0").fetchone()[0]
    db.close()
    return int(count)


def _sweep(path: Path, key: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "terminal.hq.cli", "expire", "--db", str(path), "--rules",
         str(RULES), "--card-key-file", str(key), "--at", DUE],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)


def _invariants(path: Path) -> list[str]:
    ledger = ChainLedger(open_hq_database(str(path)), load_rules(RULES), CARD_KEY)
    try:
        return ledger.thread.call(ledger.store.check_invariants)
    finally:
        ledger.close()


def test_a_sweep_killed_midway_keeps_what_it_committed(tmp_path: Path) -> None:
    path, key = tmp_path / "hq.db", tmp_path / "card.key"
    key.write_bytes(CARD_KEY)
    _chain_with_due_lots(path)
    sweep = _sweep(path, key)
    try:
        while sweep.poll() is None and _expired(path) == 0:
            time.sleep(0.002)  # polling a row count: the condition itself is what is awaited
        if sweep.poll() is None:
            os.kill(sweep.pid, signal.SIGSTOP)  # mid-sweep: freeze it where it is
        assert sweep.poll() is None, "the sweep ended before any of it was visible: one " \
            f"transaction ({_expired(path)} of {LOTS} lots expired at the end)"
    finally:
        if sweep.poll() is None:
            os.kill(sweep.pid, signal.SIGKILL)
        sweep.wait(30)
        if sweep.stdout is not None:
            sweep.stdout.close()
    kept = _expired(path)
    Counts("hq-sweep-kill", crashes=1,
           notes=f"expiry sweep of {LOTS} lots SIGKILLed midway: {kept} expired kept").write()
    assert 0 < kept < LOTS
    assert _invariants(path) == []
    rest = _sweep(path, key)
    out, _ = rest.communicate(timeout=120)
    assert rest.returncode == 0, out
    assert json.loads(out.decode().splitlines()[-1])["lots"] == LOTS - kept
    assert _expired(path) == LOTS
    assert _invariants(path) == []
