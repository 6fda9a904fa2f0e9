"""Crash: the real daemon in simulation, SIGKILLed at random moments (starting up, committing,
printing, draining the outbox to HQ), restarted, again and again. After every restart each sale
the display showed completed is in the ledger exactly once, the ledger's invariants hold and
SQLite's integrity check passes; with HQ attached, HQ ends up holding every event exactly once.

Sizes (``POSTERM_SUITE_SIZE``): CI kills the standalone till 30 times and the MQTT till 12 times.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.sync.harness import CARD_KEY, Keys

from .chain import IDENTITY, RULES, Collector, TillFiles, till_files
from .scripts import SIGN_IN, sales
from .support import (
    Counts,
    SimDaemon,
    hq_applied,
    hq_duplicates,
    ledger_problems,
    outbox,
    scaled,
    wait_for,
)


def _kill_somewhere(daemon: SimDaemon, rng: random.Random) -> str:
    """Start the daemon and feed it sales, then SIGKILL it at a random moment; the moment's
    kind. Random delays here are the point (where the kill lands), not a wait for a state."""
    moment = rng.choice(["startup", "timer", "after-sale", "after-sale"])
    if moment == "startup":
        daemon.start(wait=False)
        time.sleep(rng.uniform(0.0, 0.9))
        daemon.kill()
        return moment
    daemon.start()
    count = rng.randint(2, 6)
    daemon.send([SIGN_IN, *sales(rng, count)])
    if moment == "timer":
        time.sleep(rng.uniform(0.0, 1.5))
    else:  # just after a completion: the receipt is printing, the event is being published
        target = rng.randint(1, count)
        wait_for(lambda: len(daemon.shown_sales()) >= target, 60, f"{target} sales shown")
        time.sleep(rng.uniform(0.0, 0.05))
    daemon.kill()
    return moment


def _crash_cycles(files: TillFiles, daemon: SimDaemon, cycles: int, seed: int,
                  counts: Counts, after_each: Callable[[], None] = lambda: None) -> set[str]:
    rng = random.Random(seed)
    shown: set[str] = set()
    for cycle in range(cycles):
        try:
            moment = _kill_somewhere(daemon, rng)
        finally:
            daemon.close()
        new = set(daemon.shown_sales())
        assert not new & shown, f"cycle {cycle}: sale ids shown twice: {sorted(new & shown)}"
        shown |= new
        counts.crashes += 1
        counts.sales += len(new)
        if files.database.exists():
            problems = ledger_problems(files.database, RULES, CARD_KEY, IDENTITY, shown)
            counts.sales_lost += sum("shown but not stored" in p for p in problems)
            assert not problems, f"cycle {cycle} (killed at {moment}, seed {seed}): {problems}"
        after_each()
    return shown


def test_sigkill_loses_no_sale_shown(tmp_path: Path) -> None:
    files = till_files(tmp_path)
    daemon = SimDaemon(tmp_path / "sim", files.config)
    counts = Counts("crash")
    cycles = scaled(30)
    try:
        shown = _crash_cycles(files, daemon, cycles, 7101, counts)
        daemon.start()
        daemon.send([SIGN_IN, *sales(random.Random(1), 2)])
        wait_for(lambda: len(daemon.shown_sales()) >= 2, 60, "sales after the last crash")
        shown |= set(daemon.shown_sales())
        assert daemon.stop() == 0, daemon.log_tail()
    finally:
        daemon.close()
        counts.write()
    assert counts.crashes == cycles and len(shown) > cycles / 2, counts
    assert not ledger_problems(files.database, RULES, CARD_KEY, IDENTITY, shown)


def test_sigkill_mid_drain_hq_holds_every_event_once(tmp_path: Path, pki: Any,
                                                       broker: Any) -> None:
    keys = Keys(tmp_path / "keys")
    files = till_files(tmp_path, pki, broker, keys)
    daemon = SimDaemon(tmp_path / "sim", files.config)
    hq = Collector(tmp_path, pki, broker)
    counts = Counts("crash-mqtt")
    rng = random.Random(7202)

    def now_and_then_hq_too() -> None:  # HQ's collector dies by SIGKILL as well, sometimes
        if rng.random() < 0.25:
            hq.stop(kill=True)
            hq.start()

    hq.start()
    try:
        _crash_cycles(files, daemon, scaled(12), 7203, counts, now_and_then_hq_too)
        daemon.start()
        wait_for(lambda: (events := outbox(files.database)) and all(events.values()), 90,
                 "HQ's acks for the whole outbox")
        assert daemon.stop() == 0, daemon.log_tail()
    finally:
        daemon.close()
        hq.stop()
    events = outbox(files.database)
    applied = hq_applied(hq.db)
    lost = set(events) - set(applied)
    counts.hq_duplicates = hq_duplicates(files.database, hq.db)
    counts.write()
    assert not lost, f"{len(lost)} events never reached HQ"
    assert set(applied.values()) == {"applied"}, applied
    assert counts.hq_duplicates == 0, "HQ holds an event twice (or balances differ)"
