"""Two `posterm-hq collect` processes share a till's events into one PostgreSQL ledger; one is
SIGKILLed mid-batch. The other carries on, the till publishes again what was not acked (as its
outbox does), and at the end every event is applied exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from peewee import PostgresqlDatabase

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import open_hq_database
from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import Registration, SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.loyalty.store.models import Outbox
from terminal.protocol.messages import Ack
from terminal.protocol.topics import Topics
from tests.hq.test_postgres_collector import fresh_database
from tests.sync.conftest import Inbox, mqtt_client, run
from tests.sync.harness import CARD_KEY, rules_data

from .chain import IDENTITY, Collector

CARDS = ("6200000000000018", "6200000000000026", "6200000000000034")
SALES = 300


def till_outbox(tmp: Path) -> list[tuple[str, str]]:
    """A till's outbox after three registrations and SALES sales, two in three by a member:
    (event id, payload) in the till's order."""
    till = LedgerStore.open(tmp / "till.db", Rules.from_mapping(rules_data()), CARD_KEY,
                            Identity(*IDENTITY))
    at = datetime.now(UTC) - timedelta(hours=2)
    for card in CARDS:
        at += timedelta(seconds=1)
        till.register(Registration(card=card, operator="ann"), Moment(at))
    for n in range(SALES):
        at += timedelta(seconds=1)
        till.sale(SaleRequest(str(uuid.uuid4()), [Line("SKU1", 1, 1000 + n, "item", "")],
                              card=CARDS[n % 3] if n % 3 else None, operator="ann"), Moment(at))
    with till.db.bind_ctx([Outbox]):
        rows = [(row.id, row.payload) for row in Outbox.select().order_by(Outbox.seq)]
    till.close()
    return rows


def applied(url: str) -> dict[str, str]:
    db = PostgresqlDatabase(url, prefer_psycopg3=True)
    try:
        return dict(db.execute_sql("SELECT id, outcome FROM applied_event").fetchall())
    finally:
        db.close()


def test_a_collector_killed_mid_batch_loses_nothing_and_applies_nothing_twice(
        tmp_path: Path, pki: Any, broker: Any, postgres: Any) -> None:
    url = fresh_database(postgres)
    open_hq_database(url).close()  # `posterm-hq db upgrade`
    events = till_outbox(tmp_path)
    collectors = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "card.key").write_bytes(CARD_KEY)
        collectors.append(Collector(tmp_path / name, pki, broker, db=url,
                                    client_id=f"hq-{name}"))
    topics = Topics()

    async def scenario() -> None:
        acks, states = Inbox(), Inbox()
        async with mqtt_client(pki, broker, "hq", client_id="watch") as watch:
            await watch.subscribe(topics.hq_state(), states)
            for collector in collectors:  # each announces HQ online once it has subscribed
                announced = len([m for m in states.messages if b'"online"' in m.payload])
                collector.start()
                async with asyncio.timeout(60):
                    while len([m for m in states.messages
                               if b'"online"' in m.payload]) <= announced:
                        await asyncio.sleep(0.05)
        async with mqtt_client(pki, broker, "/".join(IDENTITY), client_id="till") as till:
            await till.subscribe(topics.acks(*IDENTITY), acks)

            def acked() -> set[str]:
                return {i for m in acks.messages for i in Ack.from_json(m.payload).ids}

            async def publish(rows: list[tuple[str, str]]) -> None:
                for _, payload in rows:
                    await till.publish(topics.events(*IDENTITY), payload.encode())

            await publish(events)
            async with asyncio.timeout(60):  # kill one once the ledger is being written
                while len(applied(url)) < SALES // 5:
                    await asyncio.sleep(0.05)
            collectors[0].stop(kill=True)
            # The till publishes again what HQ has not acked, as its outbox does, until all is.
            async with asyncio.timeout(120):
                while missing := [row for row in events if row[0] not in acked()]:
                    await publish(missing)
                    with contextlib.suppress(TimeoutError):  # none came: publish again
                        await acks.wait_for(len(acks.messages) + 1, timeout=10)
    try:
        run(scenario(), timeout=200)
    finally:
        for collector in collectors:
            collector.stop()
    outcomes = applied(url)
    assert set(outcomes) == {event_id for event_id, _ in events}  # each once: the key
    assert set(outcomes.values()) <= {"applied", "flagged"}, outcomes
    ledger = ChainLedger(open_hq_database(url, migrate=False), Rules.from_mapping(rules_data()),
                         CARD_KEY)
    try:
        assert ledger.thread.call(ledger.store.check_invariants) == []
        sales = ledger.thread.call(lambda: ledger.db.execute_sql(
            "SELECT count(*) FROM sale").fetchone()[0])
        assert sales == SALES
    finally:
        ledger.close()
    assert "Traceback" not in collectors[1].log(), collectors[1].log()[-2000:]
