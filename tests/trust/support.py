"""What the HQ trust suite shares: a real ``posterm-hq collect`` process, an attacker holding a
valid terminal certificate (CN S001/T01) on the shipped broker, an honest till of another store
(S002/T01, the sync side in this process), and HQ's database read from outside the collector."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playhouse.db_url import connect

from terminal.protocol.topics import Topics
from tests.faults.chain import Collector
from tests.faults.support import Counts
from tests.hq.test_postgres_collector import fresh_database
from tests.sync.conftest import Inbox, mqtt_client
from tests.sync.harness import CARD_KEY, Chain, Till, until

ATTACKER = ("S001", "T01")
HONEST = ("S002", "T01")


@pytest.fixture(params=["sqlite", "postgresql"])
def hq_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh HQ database of the kind the test runs on: a SQLite path or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "hq.db")
    return fresh_database(request.getfixturevalue("postgres"))


def envelope(kind: str, body: dict[str, Any], *, seq: int, epoch: int = 1,
             wall_time: str | None = None, trusted: bool = True,
             where: tuple[str, str] = ATTACKER) -> dict[str, Any]:
    """An event as a till writes it (LedgerStore._event), with a fresh id."""
    return {"id": str(uuid.uuid4()), "kind": kind, "store": where[0], "terminal": where[1],
            "seq": seq, "epoch": epoch,
            "wall_time": wall_time or datetime.now(UTC).isoformat(),
            "time_trusted": trusted, "body": body}


def sale_body(sale: str, **changes: Any) -> dict[str, Any]:
    """An anonymous cash sale of one 1-yuan line, with ``changes``."""
    body: dict[str, Any] = {
        "sale": sale, "member": None, "card_hash": None, "tender": "cash", "redeem_points": 0,
        "online": True, "lines": [{"sku": "SKU1", "name": "item", "category": "", "qty": 1,
                                   "price_fen": 100, "paid_fen": 100}],
        "list_fen": 100, "discount_fen": 0, "deduction_fen": 0, "paid_fen": 100,
        "points_earned": 0, "operator": "ann"}
    body.update(changes)
    return body


def encode(event: dict[str, Any]) -> bytes:
    """JSON as a hostile client may write it: ``\\ud800`` stays an escape (a lone surrogate
    once parsed), NUL is ``\\u0000``."""
    return json.dumps(event).encode()


class HqDatabase:
    """HQ's database as another process sees it (the collector writes it)."""

    def __init__(self, url: str) -> None:
        self.url = url if "://" in url else f"sqlite:///{url}"

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        db = connect(self.url)
        try:
            return list(db.execute_sql(sql, params).fetchall())
        except Exception as exc:  # the collector has not created its tables yet
            if "applied_event" in str(exc) or "no such table" in str(exc):
                return []
            raise
        finally:
            db.close()

    def outcomes(self) -> dict[str, tuple[str, str]]:
        """applied_event: id -> (outcome, detail)."""
        return {row[0]: (row[1], row[2])
                for row in self.rows("SELECT id, outcome, detail FROM applied_event")}


@contextlib.contextmanager
def collector(tmp: Path, pki: Any, broker: Any, db: str, *options: str,
              client_id: str = "posterm-hq-collect") -> Iterator[Collector]:
    """A running ``posterm-hq collect`` on the example rules and the chain's card key."""
    (tmp / "card.key").write_bytes(CARD_KEY)
    process = Collector(tmp, pki, broker, db, options, client_id)
    process.start()
    try:
        yield process
    finally:
        process.stop()


class Attacker:
    """A client holding the certificate of a real terminal: publishes what it likes on that
    terminal's topics and reads the acks HQ sends it."""

    def __init__(self, client: Any, topics: Topics) -> None:
        self.client, self.topics = client, topics
        self.acks = Inbox()

    @property
    def events_topic(self) -> str:
        return self.topics.terminal(*ATTACKER, "events")

    async def publish(self, payload: bytes, channel: str = "events") -> None:
        await self.client.publish(self.topics.terminal(*ATTACKER, channel), payload)

    async def publish_acked(self, events: list[dict[str, Any]], timeout: float = 30) -> None:
        """Publish ``events`` (encoded as a hostile client may) and wait until HQ acked each."""
        for event in events:
            await self.publish(encode(event))
        await until(lambda: {e["id"] for e in events} <= self.acked(), timeout)

    def acked(self) -> set[str]:
        return {event_id for message in self.acks.messages
                for event_id in json.loads(message.payload)["ids"]}

    async def republish(self, payloads: list[bytes], every: float = 0.5) -> None:
        """Publish ``payloads`` again and again, as a till whose events are never acked does,
        until cancelled."""
        while True:
            for payload in payloads:
                await self.publish(payload)
            await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def attacker(pki: Any, broker: Any) -> AsyncIterator[Attacker]:
    topics = Topics()
    async with mqtt_client(pki, broker, "/".join(ATTACKER), client_id="attacker") as client:
        attack = Attacker(client, topics)
        await client.subscribe(topics.terminal(*ATTACKER, "acks"), attack.acks)
        hq_state = Inbox()
        await client.subscribe(topics.hq_state(), hq_state)
        # HQ online (retained, then live): its subscriptions are in place, so nothing is lost.
        await until(lambda: any(json.loads(m.payload)["state"] == "online"
                                for m in hq_state.messages), 30)
        yield attack


@contextlib.asynccontextmanager
async def honest_till(tmp: Path, pki: Any, broker: Any) -> AsyncIterator[Till]:
    """An honest till of store S002, connected, with HQ (a collector process) online."""
    chain = Chain(tmp / "honest", pki, broker)
    till = chain.till(*HONEST)
    await chain.start()
    try:
        await chain.ready()
        yield till
    finally:
        await chain.stop()


async def sells_through(till: Till, sales: int, timeout: float) -> None:
    """Ring up ``sales`` cash sales and wait until HQ has acked every one."""
    for n in range(sales):
        await till.sell(100 + n)
    await until(lambda: drained(till), timeout)


async def drained(till: Till) -> bool:
    """Whether HQ has acked every event the till wrote."""
    return await till.backlog() == 0


def record(suite: str, log: str, *, sales: int = 0, inputs: int = 0, crashes: int = 0,
           notes: str = "") -> None:
    """A row for the fault-suite table (bench/faults_table.py): honest sales, hostile inputs,
    and the inputs that crashed anything (a traceback in the collector's log)."""
    Counts(suite, sales=sales, crashes=crashes, inputs=inputs,
           inputs_crashed=log.count("Traceback"), notes=notes).write()


def card(number: str) -> str:
    """The card hash HQ and the tills know a card number by."""
    from terminal.loyalty.cards import card_hash
    return card_hash(CARD_KEY, number)


def member_sale(sale: str, card_hash: str, fen: int, redeem: int = 0,
                **changes: Any) -> dict[str, Any]:
    """A member's sale of one line of ``fen``, redeeming ``redeem`` points, as a till sends it."""
    deduction = redeem // 100 * 100 * 100 // 100  # points_per_yuan 100: 100 points, 1 yuan
    return sale_body(sale, card_hash=card_hash, redeem_points=redeem,
                     lines=[{"sku": "SKU1", "name": "item", "category": "", "qty": 1,
                             "price_fen": fen, "paid_fen": fen - deduction}],
                     list_fen=fen, deduction_fen=deduction, paid_fen=fen - deduction,
                     **changes)


def register_body(card_hash: str) -> dict[str, Any]:
    return {"member": uuid.uuid4().hex, "card_hash": card_hash, "name": "", "phone_hash": None,
            "birthday": None, "referrer": None, "referrer_card_hash": None, "bonus": 100}
