"""Outbox to HQ against a real broker: offline sales, a broker restart mid-drain, duplicates."""

from __future__ import annotations

from collections import Counter

from terminal.loyalty.store.models import Outbox
from tests.sync.conftest import mqtt_client, run
from tests.sync.harness import Chain, hq_applied, hq_snapshot, until

CARD = "MEMBER0001"


def test_sales_while_the_broker_is_down_reach_hq_exactly_once(pki, broker, tmp_path) -> None:
    async def scenario() -> None:
        chain = Chain(tmp_path, pki, broker)
        till, hq = chain.till(), chain.hq()
        broker.stop()
        await chain.start()
        try:
            await till.register(CARD)
            for n in range(25):
                await till.sell(1000 + n * 100, CARD if n % 2 else None)
            assert not till.link.reachable
            assert await till.backlog() == 26
            broker.start()
            await chain.drained()
            applied = await hq_applied(hq)
            assert sorted(applied) == sorted(await till.events())
            assert set(applied.values()) == {"applied"}
            # HQ replayed the same engine: the member's chain balance is the till's.
            reply = await till.link.member_balance(await till.run(_card_hash, CARD))
            assert reply is not None and reply.balance == await till.balance(CARD)
        finally:
            await chain.stop()
    run(scenario(), timeout=60)


def _card_hash(card: str) -> str:
    from terminal.loyalty.store.models import Member
    return Member.get(Member.card_last4 == card[-4:]).card_hash


def test_broker_restart_in_the_middle_of_a_drain(pki, broker, tmp_path) -> None:
    async def scenario() -> None:
        chain = Chain(tmp_path, pki, broker)
        till, hq = chain.till(window=20), chain.hq()
        broker.stop()
        await chain.start()
        try:
            for n in range(400):
                await till.sell(500 + n)
            broker.start()
            await until(lambda: hq.counts["applied"] >= 40, timeout=20, every=0.005)
            broker.restart()
            await chain.drained(timeout=40)
            applied = await hq_applied(hq)
            assert len(applied) == 400 and sorted(applied) == sorted(await till.events())
            assert sum(hq.counts[k] for k in ("applied", "duplicate")) >= 400
        finally:
            await chain.stop()
    run(scenario(), timeout=90)


def test_every_event_delivered_twice_leaves_hq_unchanged(pki, broker, tmp_path) -> None:
    async def scenario() -> None:
        chain = Chain(tmp_path, pki, broker)
        till, hq = chain.till(), chain.hq()
        async with chain:
            await till.register(CARD)
            for n in range(10):
                await till.sell(2000 + n, CARD)
            await chain.drained()
            before = await hq_snapshot(hq)
            payloads = await till.run(
                lambda: [r.payload.encode() for r in Outbox.select().order_by(Outbox.seq)])
            # The same events again, from the till's own identity, as after a lost ack.
            async with mqtt_client(pki, broker, "S001/T01", client_id="S001-T01-replay") as again:
                for payload in payloads:
                    await again.publish(till.link.outbox.topic, payload)
            await until(lambda: hq.counts["duplicate"] >= len(payloads))
            assert await hq_snapshot(hq) == before
            assert Counter((await hq_applied(hq)).values()) == {"applied": len(payloads)}
            # HQ's ledger reports to no one: replaying events leaves no outbox rows behind.
            assert await hq.ledger.thread.run(lambda: Outbox.select().count()) == 0
    run(scenario(), timeout=60)
