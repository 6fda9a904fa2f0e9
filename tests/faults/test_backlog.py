"""Resources: a backlog of outbox events (half a million at ``POSTERM_SUITE_SIZE=25``, 20,000 at
CI size) drained by the daemon to HQ (``posterm-hq collect``) over a real broker; the daemon's
resident memory, sampled from /proc while it works, stays bounded."""

from __future__ import annotations

import json
import random
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import load_rules
from terminal.loyalty.store import Identity, LedgerStore
from tests.sync.harness import CARD_KEY, Keys, now

from .chain import IDENTITY, RULES, Collector, till_files
from .support import Counts, SimDaemon, outbox, scaled

RSS_BOUND_MB = 80  # growth over the ready daemon's RSS that still counts as bounded


def _backlog(database: Path, count: int) -> None:
    """``count`` anonymous cash-sale events in the outbox, copies of one real one."""
    store = LedgerStore.open(database, load_rules(RULES), CARD_KEY, Identity(*IDENTITY))
    try:
        store.sale(SaleRequest("BULK-0", [Line("SKU1", 1, 1000, "item", "fresh")],
                               tender="cash", operator="bulk"), Moment(now()))
    finally:
        store.close()
    with sqlite3.connect(database) as db:
        seq, epoch, created, trusted, raw = db.execute(
            "SELECT seq, epoch, created_us, trusted, payload FROM outbox "
            "WHERE kind = 'sale'").fetchone()
        template = json.loads(raw)

        def rows() -> Any:
            for n in range(1, count):
                event = {**template, "id": str(uuid.UUID(int=random.Random(n).getrandbits(128))),
                         "seq": seq + n, "body": {**template["body"], "sale": f"BULK-{n}"}}
                yield (event["id"], seq + n, epoch, "sale", json.dumps(event, sort_keys=True),
                       created, trusted)
        db.executemany("INSERT INTO outbox (id, seq, epoch, kind, payload, created_us, trusted)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?)", rows())
        db.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (str(seq + count),))
    db.close()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_a_large_backlog_drains_in_bounded_memory(tmp_path: Path, pki: Any, broker: Any) -> None:
    count = scaled(20_000)
    files = till_files(tmp_path, pki, broker, Keys(tmp_path / "keys"))
    _backlog(files.database, count)
    counts = Counts("backlog")
    daemon = SimDaemon(tmp_path / "sim", files.config)
    hq = Collector(tmp_path, pki, broker)
    samples: list[float] = []
    try:
        daemon.start()
        assert daemon.process is not None
        pid = daemon.process.pid
        base = _rss_mb(pid)
        hq.start()
        deadline = time.monotonic() + 60 + count / 200
        acked = 0
        while acked < count and time.monotonic() < deadline:
            samples.append(_rss_mb(pid))
            acked = sum(outbox(files.database).values())
            time.sleep(0.5)  # the sampling period, not a wait for a state
        samples.append(_rss_mb(pid))
    finally:
        daemon.close()
        hq.stop()
        counts.notes = (f"backlog of {count} events: {acked} drained and acked; daemon RSS "
                        f"{base:.0f} MB ready, peak {max(samples, default=0):.0f} MB")
        counts.write()
    assert acked >= count, f"only {acked} of {count} events drained by the deadline"
    assert max(samples) - base < RSS_BOUND_MB, (base, max(samples))
