"""Two `posterm-hq collect` processes share a till's events into one PostgreSQL ledger; one is
SIGKILLed mid-batch. The other carries on, the till publishes again what was not acked (as its
outbox does), and at the end every event is applied exactly once; and the same while reports read
a streaming hot standby of the primary."""

from __future__ import annotations

import asyncio
import contextlib
import threading
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
from tests.hq.test_standby import report
from tests.support.postgres import Postgres, Standby
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


def deliver(tmp: Path, pki: Any, broker: Any, url: str, events: list[tuple[str, str]],
            kill_one: bool) -> None:
    """Two `posterm-hq collect` processes on ``url`` take the till's ``events`` from the shared
    subscription (one SIGKILLed once a fifth of the sales are applied, if ``kill_one``), the
    till publishing again what HQ has not acked, as its outbox does, until all is."""
    collectors = []
    for name in ("a", "b"):
        (tmp / name).mkdir()
        (tmp / name / "card.key").write_bytes(CARD_KEY)
        collectors.append(Collector(tmp / name, pki, broker, db=url, client_id=f"hq-{name}"))
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
            if kill_one:
                async with asyncio.timeout(60):  # kill one once the ledger is being written
                    while len(applied(url)) < SALES // 5:
                        await asyncio.sleep(0.05)
                collectors[0].stop(kill=True)
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
    assert "Traceback" not in collectors[1].log(), collectors[1].log()[-2000:]


def assert_each_event_once(url: str, events: list[tuple[str, str]]) -> None:
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


def test_a_collector_killed_mid_batch_loses_nothing_and_applies_nothing_twice(
        tmp_path: Path, pki: Any, broker: Any, postgres: Any) -> None:
    url = fresh_database(postgres)
    open_hq_database(url).close()  # `posterm-hq db upgrade`
    events = till_outbox(tmp_path)
    deliver(tmp_path, pki, broker, url, events, kill_one=True)
    assert_each_event_once(url, events)


def test_reports_read_a_standby_while_collector_processes_write_the_primary(
        tmp_path: Path, pki: Any, broker: Any) -> None:
    """Past one machine: `posterm-hq report` on a streaming hot standby while two collector
    processes (one SIGKILLed) write the primary. Each report is one snapshot of some moment of
    the primary's: the stores' points add up to the chain's liability, and no later report sees
    fewer events; caught up, the standby reports what the primary does."""
    with Postgres(replicated=True) as primary:
        url = fresh_database(primary)
        open_hq_database(url).close()
        events = till_outbox(tmp_path)
        with Standby(primary) as standby:
            on_standby = standby.url(url.rsplit("/", 1)[1])
            seen: list[int] = []
            failed: list[BaseException] = []
            writing = threading.Event()

            def read() -> None:
                try:
                    while writing.is_set() or not seen:
                        during = report(on_standby)
                        assert during["chain"]["liability_points"] == sum(
                            row["net_points"] for row in during["stores"].values()), during
                        seen.append(sum(sum(row["events"].values())
                                        for row in during["stores"].values()))
                except BaseException as exc:
                    failed.append(exc)

            writing.set()
            reader = threading.Thread(target=read)
            reader.start()
            try:
                deliver(tmp_path, pki, broker, url, events, kill_one=True)
            finally:
                writing.clear()
                reader.join(120)
            assert failed == []
            assert seen == sorted(seen), seen  # the standby replays in commit order
            assert_each_event_once(url, events)
            standby.caught_up()
            final = report(on_standby)
            assert final == report(url)
            assert sum(final["stores"]["S001"]["events"].values()) == len(events)
