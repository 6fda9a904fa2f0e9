"""Outage: the broker and HQ go away for stretches while the till keeps selling, come back, the
till is killed mid-drain and HQ mid-batch, and at the end every event is delivered a second
time. Nothing the display showed is lost, HQ holds every event once, and balances agree.

Size (``POSTERM_SUITE_SIZE``): CI runs 8 outage phases of 3-6 sales each.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import Any

from terminal.protocol.messages import Ack
from terminal.protocol.topics import Topics
from tests.sync.conftest import Inbox, mqtt_client, run
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

OUTAGES = ("broker", "hq", "both", "hq-killed", "till-killed-mid-drain")


class Store:
    """The till as a process, HQ's collector, the broker, and what the display showed."""

    def __init__(self, files: TillFiles, daemon: SimDaemon, hq: Collector, broker: Any) -> None:
        self.files, self.daemon, self.hq, self.broker = files, daemon, hq, broker
        self.shown: set[str] = set()
        self.counts = Counts("outage")

    def open_till(self) -> None:
        self.daemon.start()
        self.daemon.send([SIGN_IN])

    def kill_till(self) -> None:
        self.shown |= set(self.daemon.shown_sales())
        self.daemon.kill()
        self.counts.crashes += 1

    def sell(self, rng: random.Random, count: int) -> None:
        """Ring up ``count`` sales and wait until the display showed each completed."""
        target = len(self.daemon.shown_sales()) + count
        self.daemon.send(sales(rng, count))
        wait_for(lambda: len(self.daemon.shown_sales()) >= target, 60,
                 f"{count} sales to complete")
        self.counts.sales += count

    def acked(self) -> int:
        return sum(outbox(self.files.database).values())


def _phase(store: Store, kind: str, rng: random.Random) -> None:
    if kind in ("broker", "both"):
        store.broker.stop()
    if kind in ("hq", "both"):
        store.hq.stop()
    if kind == "hq-killed":  # SIGKILL: a batch may be committed and never acked
        store.hq.stop(kill=True)
        store.counts.crashes += 1
    store.sell(rng, rng.randint(3, 6))  # the till sells through the outage
    if kind in ("broker", "both"):
        store.broker.start()
    if kind in ("hq", "both", "hq-killed"):
        store.hq.start()
    if kind == "till-killed-mid-drain":
        before = store.acked()
        store.sell(rng, rng.randint(3, 6))
        wait_for(lambda: store.acked() > before, 60, "the drain to begin")
        store.kill_till()
        store.open_till()


async def _deliver_twice(pki: Any, broker: Any, database: Path) -> int:
    """Publish every event in the outbox again, as the till; wait until HQ acked each."""
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT id, payload FROM outbox ORDER BY seq").fetchall()
    db.close()
    topics = Topics()
    acks = Inbox()
    async with mqtt_client(pki, broker, "/".join(IDENTITY), client_id="replayer") as client:
        await client.subscribe(topics.acks(*IDENTITY), acks)
        for _event_id, payload in rows:
            await client.publish(topics.events(*IDENTITY), payload.encode())
        wanted = {row[0] for row in rows}
        async with asyncio.timeout(60):
            while not wanted <= {i for m in acks.messages for i in Ack.from_json(m.payload).ids}:
                await acks.wait_for(len(acks.messages) + 1, timeout=60)
    return len(rows)


def test_outages_lose_nothing_and_double_nothing(tmp_path: Path, pki: Any, broker: Any) -> None:
    keys = Keys(tmp_path / "keys")
    files = till_files(tmp_path, pki, broker, keys)
    store = Store(files, SimDaemon(tmp_path / "sim", files.config),
                  Collector(tmp_path, pki, broker), broker)
    rng = random.Random(7301)
    store.hq.start()
    try:
        store.open_till()
        for phase in range(scaled(8)):
            _phase(store, OUTAGES[phase % len(OUTAGES)], rng)
        wait_for(lambda: all(outbox(files.database).values()), 90, "HQ's acks for everything")
        store.kill_till()
        before = hq_applied(store.hq.db), hq_duplicates(files.database, store.hq.db)
        redelivered = run(_deliver_twice(pki, broker, files.database), timeout=90)
    finally:
        store.daemon.close()
        store.hq.stop()
    problems = ledger_problems(files.database, RULES, CARD_KEY, IDENTITY, store.shown)
    store.counts.sales_lost = sum("shown but not stored" in p for p in problems)
    events = outbox(files.database)
    applied = hq_applied(store.hq.db)
    store.counts.hq_duplicates = hq_duplicates(files.database, store.hq.db)
    store.counts.write()
    assert not problems, problems
    assert set(applied) == set(events) and set(applied.values()) == {"applied"}
    assert redelivered == len(events)
    assert before == (applied, 0), "delivering every event a second time changed HQ"
    assert store.counts.hq_duplicates == 0
