"""Members across stores (holds, lookups, the offline overdraft) and HQ commands."""

from __future__ import annotations

import re
import uuid

import pytest

from terminal.hq import report
from terminal.loyalty.errors import RedeemRefused
from terminal.loyalty.store.models import Member
from terminal.protocol.messages import Command, Status
from terminal.protocol.topics import Topics
from tests.sync.conftest import Inbox, mqtt_client, run
from tests.sync.harness import Chain, hq_snapshot, until

T = Topics()
CARD = "MEMBER0042"


async def card_hash(till) -> str:
    return await till.run(lambda: Member.get(Member.card_last4 == CARD[-4:]).card_hash)


def test_two_stores_redeem_offline_and_hq_records_the_overdraft(pki, broker, tmp_path) -> None:
    async def scenario() -> None:
        # Generous rules so each till may spend its whole local balance while cut off. Both
        # tills credit their own registration bonus; HQ credits it once (the member registered
        # twice is one chain member), so the two balances spent exceed HQ's by that bonus.
        chain = Chain(tmp_path, pki, broker, offline_allowance=100000, max_percent_of_sale=100,
                      min_points=1, step_points=1)
        s1, s2, hq = chain.till("S001", "T01"), chain.till("S002", "T01"), chain.hq()
        async with chain:
            for till in (s1, s2):
                await till.register(CARD)
                await till.sell(40000, CARD)  # earns at each store, below any tier upgrade
            await chain.drained()
            chain_balance = (await s1.link.member_balance(await card_hash(s1))).balance
            broker.stop()
            await until(lambda: not s1.link.reachable and not s2.link.reachable)
            spent = []
            for till in (s1, s2):
                points = await till.balance(CARD)
                hold = await till.link.hold(await card_hash(till), points, "sale-x")
                assert hold.offline
                # Tobacco earns nothing, so the ledger moves only by the redemption.
                await till.sell(points * 2, CARD, redeem=points, online=False, category="tobacco")
                spent.append(points)
            broker.start()
            await chain.drained(timeout=30)
            overdraft = sum(spent) - chain_balance
            assert overdraft == chain.rules.earn.bonus_registration
            entries, members = await hq_snapshot(hq)
            adjust = [e for e in entries if e[1] == "adjust"]
            assert len(adjust) == 1 and adjust[0][2] == -overdraft
            # Whichever till's redemption reached HQ second carries the overdraft.
            assert re.fullmatch(rf"overdraft: {overdraft} of ({spent[0]}|{spent[1]}) points "
                                r"redeemed at S00[12]/T01 sale \S+ beyond the chain balance",
                                adjust[0][3])
            assert members[0][1:] == (-overdraft, overdraft)  # balance, debt
            totals = await hq.ledger.thread.run(report.report)
            assert totals["chain"]["overdraft_points"] == overdraft
            assert await hq.ledger.thread.run(hq.ledger.store.check_invariants) == []
    run(scenario(), timeout=60)


def test_lookup_hold_void_and_commands(pki, broker, tmp_path) -> None:
    async def scenario() -> None:
        chain = Chain(tmp_path, pki, broker)
        till, hq = chain.till(), chain.hq()
        async with chain:
            await till.register(CARD)
            await till.sell(300000, CARD)
            await chain.drained()
            hashed = await card_hash(till)
            full = (await till.link.member_balance(hashed)).balance
            assert full == await till.balance(CARD)
            first = await till.link.hold(hashed, 500, "sale-1")
            # Asked again (the redemption cleared and keyed again): a new hold replacing it.
            hold = await till.link.hold(hashed, 500, "sale-1")
            assert not hold.offline and hold.points == 500 and hold.id != first.id
            till.link.members._cache.clear()
            assert (await till.link.member_balance(hashed)).balance == full - 500
            with pytest.raises(RedeemRefused, match="insufficient points"):
                await till.link.hold(hashed, full + 100, "sale-2")
            await till.link.void(hold)
            till.link.members._cache.clear()
            assert (await till.link.member_balance(hashed)).balance == full
            assert await till.link.member_balance("0" * 64) is None  # unknown member

            async with mqtt_client(pki, broker, "hq", client_id="hq-cmd") as office:
                cmd = T.cmd("S001", "T01")
                await office.publish(cmd, Command(str(uuid.uuid4()), "print_status").to_json())
                await until(lambda: till.printed == ["status page"])
                await office.publish(cmd, b'{"id": "x", "name": "resync"}')
                await until(lambda: till.link.rejected is not None)
                assert till.link.rejected["what"] == "command"
                assert till.link.rejected["reason"] == "malformed"
                assert "not a UUID" in till.link.rejected["detail"]
                unknown = f'{{"id": "{uuid.uuid4()}", "name": "format_disk"}}'.encode()
                await office.publish(cmd, unknown)
                await until(lambda: till.link.rejected["reason"] == "unknown_command")
                await office.publish(cmd, Command(str(uuid.uuid4()), "resync",
                                                  {"all": True}).to_json())
                await until(lambda: "takes no arguments" in till.link.rejected["detail"])
                births = Inbox()
                await office.subscribe(T.status("S001", "T01"), births)
                await births.wait_for(1)  # the retained birth
                await office.publish(cmd, Command(str(uuid.uuid4()), "resync").to_json())
                fresh = Status.from_json((await births.wait_for(2))[1].payload)
                assert fresh.state == "online" and fresh.backlog == 0
            await until(lambda: hq.counts["applied"] == 2)
    run(scenario(), timeout=60)


def test_an_exchange_hold_is_named_by_its_exchange_and_never_meets_a_sales() -> None:
    from terminal.protocol import ids

    sale = ids.hold_id("S001", "T01", "x-1")
    exchange = ids.hold_id("S001", "T01", "x-1", "exchange")
    assert sale == ids.hold_id("S001", "T01", "x-1", "sale")  # a sale's name is unchanged
    assert exchange == ids.hold_id("S001", "T01", "x-1", "exchange") != sale  # a retry is one
    assert exchange != ids.hold_id("S001", "T02", "x-1", "exchange")
    assert str(uuid.UUID(exchange)) == exchange
    with pytest.raises(ValueError):
        ids.hold_id("S001", "T01", "x-1", "refund")
