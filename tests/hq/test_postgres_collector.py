"""Two collectors sharing the event stream into one PostgreSQL ledger (a real server)."""

from __future__ import annotations

import uuid
from collections import Counter

from peewee import PostgresqlDatabase

from terminal.hq import fleet, report
from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import open_hq_database
from terminal.loyalty.store.models import Outbox
from tests.sync.conftest import mqtt_client, run
from tests.sync.harness import CARD_KEY, Chain, hq_applied, hq_snapshot, until


def fresh_database(postgres) -> str:
    name = f"hq_{uuid.uuid4().hex[:8]}"
    admin = PostgresqlDatabase("posterm", host="127.0.0.1", port=postgres.port, user="postgres")
    admin.execute_sql(f"CREATE DATABASE {name}")
    admin.close()
    return f"postgresql://postgres@127.0.0.1:{postgres.port}/{name}"


def test_two_collectors_on_postgresql_apply_each_event_once(pki, broker, postgres,
                                                            tmp_path) -> None:
    async def scenario() -> None:
        url = fresh_database(postgres)
        chain = Chain(tmp_path, pki, broker)
        tills = [chain.till("S001", "T01"), chain.till("S002", "T01")]
        ledgers = [ChainLedger(open_hq_database(url), chain.rules, CARD_KEY) for _ in range(2)]
        first = chain.hq(client_id="hq-1", ledger=ledgers[0])
        second = chain.hq(client_id="hq-2", ledger=ledgers[1])
        await chain.start()
        try:
            for n, till in enumerate(tills):
                await till.register(f"PGCARD{n}")
                for k in range(20):
                    await till.sell(1500 + k, f"PGCARD{n}" if k % 2 else None)
            await chain.drained(timeout=40)
            applied = await hq_applied(first)
            assert len(applied) == 42 and set(applied.values()) == {"applied"}
            assert first.counts["applied"] > 0 and second.counts["applied"] > 0  # shared
            before = await hq_snapshot(first)
            payloads = await tills[0].run(lambda: [r.payload.encode() for r in Outbox.select()])
            async with mqtt_client(pki, broker, "S001/T01", client_id="replay") as again:
                for payload in payloads:
                    await again.publish(tills[0].link.outbox.topic, payload)
            # At least the 21 replayed copies come back as duplicates (a till may also resend
            # one of its own whose ack crossed its retry: also a duplicate, also a no-op).
            await until(lambda: first.counts["duplicate"] + second.counts["duplicate"] >= 21,
                        timeout=30)
            assert await hq_snapshot(second) == before
            assert Counter((await hq_applied(second)).values()) == {"applied": 42}
            totals = await first.ledger.thread.run(report.report)
            assert set(totals["stores"]) == {"S001", "S002"}
            assert totals["chain"]["members"] == 2
            assert totals["chain"]["liability_points"] == sum(
                row["net_points"] for row in totals["stores"].values())
            seen = await first.ledger.thread.run(fleet.fleet)
            assert [row["terminal"] for row in seen] == ["S001/T01", "S002/T01"]
            assert all(row["online"] and row["backlog"] == 0 for row in seen)
            assert await first.ledger.thread.run(first.ledger.store.check_invariants) == []
        finally:
            await chain.stop()
    run(scenario(), timeout=90)
