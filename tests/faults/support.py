"""What every fault suite shares: the size knob, the counts file, the daemon as a process, and the
checks a ledger must pass after anything happened to it.

``POSTERM_SUITE_SIZE`` is ``ci`` (the default: what CI runs) or ``full``; a number scales the CI
size (``POSTERM_SUITE_SIZE=10`` runs ten times the CI counts). Each suite appends what it did to
``var/faults/counts.jsonl`` (override with ``POSTERM_FAULTS_DIR``); ``bench/faults_table.py``
sums them into the table.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from tests.support.shared import ROOT

# The LCD's line for a completed sale, in Chinese (its default) or English.
SALE_SHOWN = re.compile(r"^LCD: .*\| (?:销售|Sale) (S\d+-T\d+-\d+)(?::|：| paid by| 已用)",
                        re.MULTILINE)


def size_factor() -> float:
    """How many times the CI size to run (``ci`` 1, ``full`` 10, or a number)."""
    raw = os.environ.get("POSTERM_SUITE_SIZE", "ci").strip().lower()
    named = {"ci": 1.0, "full": 10.0}
    if raw in named:
        return named[raw]
    try:
        factor = float(raw)
    except ValueError:
        raise ValueError(f"POSTERM_SUITE_SIZE={raw!r}: give ci, full or a number") from None
    if factor <= 0:
        raise ValueError(f"POSTERM_SUITE_SIZE={raw!r} must be above zero")
    return factor


def scaled(ci: int) -> int:
    """``ci`` at CI size, scaled by the knob."""
    return max(1, round(ci * size_factor()))


def size_name() -> str:
    return os.environ.get("POSTERM_SUITE_SIZE", "ci")


@dataclass
class Counts:
    """One suite run's figures (the columns of the faults table)."""

    suite: str
    sales: int = 0
    crashes: int = 0
    sales_lost: int = 0
    hq_duplicates: int = 0
    inputs: int = 0
    inputs_crashed: int = 0
    notes: str = ""  # a figure outside the table's columns (memory, timings)

    def write(self) -> None:
        directory = Path(os.environ.get("POSTERM_FAULTS_DIR", ROOT / "var" / "faults"))
        directory.mkdir(parents=True, exist_ok=True)
        row = {**asdict(self), "size": size_name(), "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        with (directory / "counts.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.02) -> Any:
    """Poll ``check()`` until it is truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


class SimDaemon:
    """``posterm run --simulate`` as a child process: commands in on stdin, the screens read back
    from stdout on a thread, SIGKILL on demand. Always ``close()`` it (kills by PID)."""

    def __init__(self, state_dir: Path, config: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.config = config
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.output = ""
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._stderr: IO[bytes] | None = None

    def start(self, timeout: float = 60, wait: bool = True) -> None:
        """Start the daemon; with ``wait``, until its first screen is drawn (it is ready)."""
        argv = [sys.executable, "-m", "terminal.daemon.cli", "run", "--simulate",
                "--state-dir", str(self.state_dir)]
        if self.config is not None:
            argv += ["--config", str(self.config)]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._stderr = (self.state_dir / "daemon.log").open("ab")
        self.output = ""
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._stderr, env=self.env, cwd=ROOT)
        self._reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self._reader.start()
        if wait:
            self.wait_output("pole display", timeout)

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            with self._lock:
                self.output += raw.decode(errors="replace")

    def text(self) -> str:
        with self._lock:
            return self.output

    def shown_sales(self) -> list[str]:
        """Sale ids whose completion the LCD line showed, in order."""
        return SALE_SHOWN.findall(self.text())

    def wait_output(self, needle: str, timeout: float) -> None:
        def seen() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the daemon exited ({self.process.returncode}) before "
                                     f"showing {needle!r}:\n{self.log_tail()}")
            return needle in self.text()
        wait_for(seen, timeout, f"{needle!r} on the daemon's screen")

    def send(self, lines: list[str]) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write("".join(f"{line}\n" for line in lines).encode())
        self.process.stdin.flush()

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self._reap()

    def stop(self, timeout: float = 30) -> int:
        """End of input: the daemon stops cleanly; its exit status."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.close()
        code = self.process.wait(timeout)
        self._reap()
        return code

    def _reap(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.wait(30)
        if self._reader is not None:
            self._reader.join(10)
        for stream in (process.stdin, process.stdout):
            if stream is not None and not stream.closed:
                with contextlib.suppress(BrokenPipeError):  # stdin of a killed process
                    stream.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def close(self) -> None:
        self.kill()

    def log_tail(self, lines: int = 30) -> str:
        log = self.state_dir / "daemon.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def ledger_problems(db_path: Path, rules_path: Path, card_key: bytes,
                    identity: tuple[str, str], shown: set[str]) -> list[str]:
    """What is wrong with the ledger at ``db_path`` (empty when sound): SQLite's integrity
    check, the ledger's own invariants, and every sale in ``shown`` recorded exactly once (one
    sale row, one sale event in the outbox)."""
    from terminal.loyalty.rules import load_rules
    from terminal.loyalty.store import Identity, LedgerStore

    problems: list[str] = []
    with sqlite3.connect(db_path) as raw:
        status = raw.execute("PRAGMA integrity_check").fetchone()[0]
        if status != "ok":
            problems.append(f"integrity_check: {status}")
        sales = {row[0] for row in raw.execute("SELECT id FROM sale")}
        events: dict[str, int] = {}
        for (payload,) in raw.execute("SELECT payload FROM outbox WHERE kind = 'sale'"):
            sale = json.loads(payload)["body"]["sale"]
            events[sale] = events.get(sale, 0) + 1
    raw.close()
    problems += [f"sale {sale} shown but not stored" for sale in sorted(shown - sales)]
    problems += [f"sale {sale} has {n} sale events" for sale, n in events.items() if n != 1]
    problems += [f"sale {sale} has no sale event" for sale in sorted(sales - set(events))]
    store = LedgerStore.open(db_path, load_rules(rules_path), card_key, Identity(*identity),
                             new_session=False)
    try:
        problems += store.check_invariants()
    finally:
        store.close()
    return problems


def outbox(db_path: Path) -> dict[str, bool]:
    """The terminal's outbox: event id -> acknowledged by HQ."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT id, acked_us IS NOT NULL FROM outbox").fetchall()
    db.close()
    return {row[0]: bool(row[1]) for row in rows}


def hq_applied(hq_db: Path) -> dict[str, str]:
    """HQ's applied events (id -> outcome); empty before HQ made its tables."""
    if not hq_db.exists():
        return {}
    with sqlite3.connect(hq_db) as db:
        try:
            rows = db.execute("SELECT id, outcome FROM applied_event").fetchall()
        except sqlite3.OperationalError:
            rows = []
    db.close()
    return dict(rows)


def balances(db_path: Path) -> dict[str, int]:
    """Member balances by card hash (a terminal's or HQ's ledger)."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT card_hash, balance FROM member").fetchall()
    db.close()
    return dict(rows)


def hq_duplicates(till_db: Path, hq_db: Path) -> int:
    """Events HQ holds more than once: ids the terminal never wrote, and members whose HQ
    balance differs from the terminal's (an event counted twice moves it)."""
    phantom = set(hq_applied(hq_db)) - set(outbox(till_db))
    till, hq = balances(till_db), balances(hq_db)
    off = [card for card, points in till.items() if hq.get(card) != points]
    return len(phantom) + len(off)

