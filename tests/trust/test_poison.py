"""Break 1 of issue 16: one poison event must not stop the chain's ingest.

An attacker with a valid terminal certificate republishes parseable but bad events twice a
second to a real ``posterm-hq collect`` (SQLite and PostgreSQL) on the shipped broker, while an
honest till of another store rings up 30 sales. Every honest sale is applied; every poison event
is refused alone, recorded with its reason for review, and acked.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.sync.conftest import run
from tests.sync.harness import until

from .support import (
    HqDatabase,
    attacker,
    collector,
    encode,
    envelope,
    honest_till,
    record,
    sale_body,
    sells_through,
)

HONEST_SALES = 30


def poison_events() -> dict[str, dict[str, Any]]:
    """What the red team sent: each is parseable JSON with a valid envelope around it."""
    register = {"member": "M1", "card_hash": "ab" * 32, "phone_hash": None, "birthday": None,
                "referrer": None, "referrer_card_hash": None, "bonus": 0}
    return {
        "seq 2^63": envelope("sale", sale_body("P1"), seq=2**63),
        "epoch 2^63": envelope("sale", sale_body("P2"), seq=2, epoch=2**63),
        "epoch 2^31": envelope("sale", sale_body("P3"), seq=3, epoch=2**31),
        "name a number": envelope("register", {**register, "name": 12345}, seq=4),
        "name a list": envelope("register", {**register, "card_hash": "cd" * 32,
                                             "name": ["a", "b"]}, seq=5),
        "operator a list": envelope("sale", sale_body("P6", operator=["x"]), seq=6),
        "lone surrogate": envelope("sale", sale_body("P7", points_earned="\ud800"), seq=7),
        "NUL": envelope("sale", sale_body("P8", operator="a\x00b"), seq=8),
        "year 9999": envelope("sale", sale_body("P9"), seq=9,
                              wall_time="9999-12-31T23:59:59+00:00"),
    }


def test_poison_events_are_refused_alone_and_honest_sales_applied(
        tmp_path: Path, pki: Any, broker: Any, hq_db: str) -> None:
    poison = poison_events()
    database = HqDatabase(hq_db)

    async def scenario() -> None:
        async with attacker(pki, broker) as attack, honest_till(tmp_path, pki, broker) as till:
            flood = asyncio.create_task(attack.republish([encode(e) for e in poison.values()]))
            try:
                await sells_through(till, HONEST_SALES, timeout=30)
                await until(lambda: {e["id"] for e in poison.values()} <= attack.acked(), 30)
            finally:
                flood.cancel()
        outcomes = database.outcomes()
        honest = [outcome for outcome, _ in outcomes.values()
                  if outcome == "applied"]
        assert len(honest) == HONEST_SALES
        for name, event in poison.items():
            outcome, detail = outcomes[event["id"]]
            assert outcome == "refused", (name, outcome, detail)
            assert detail, name  # the reason, for review

    with collector(tmp_path, pki, broker, hq_db) as hq:
        try:
            run(scenario(), timeout=120)
        except BaseException:
            print(hq.log()[-4000:])
            raise
        record("hq-poison-events", hq.log(), sales=HONEST_SALES, inputs=len(poison))
