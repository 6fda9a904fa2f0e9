"""HQ's member operations reaching real tills: the operation made at HQ (``MemberOps`` on the
collector's database), published signed and retained by the real collector through a real
Mosquitto, applied by tills built as the daemon builds them and driven through the simulation
console."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from terminal.hq.collector import Collector
from terminal.hq.member_ops.service import MemberOps
from terminal.loyalty.errors import RedeemRefused
from terminal.loyalty.store.models import Member
from tests.support.shared import EXAMPLES
from tests.sync.conftest import run
from tests.sync.harness import CARD_KEY, Chain, until
from tests.sync.test_across_stores import CARD, Store, _register_and_earn, _stores


@pytest.fixture
def chain_and_ops(pki: Any, broker: Any, tmp_path: Path) -> Any:
    """The chain (not started) with a collector publishing member states, and HQ's member
    operations on the collector's database."""
    (tmp_path / "card.key").write_bytes(CARD_KEY)
    chain = Chain(tmp_path, pki, broker)
    hq = chain.hq(member_states=True)
    ops = MemberOps.open(str(tmp_path / "hq.db"), EXAMPLES / "rules.toml",
                         tmp_path / "card.key")
    yield chain, hq, ops
    ops.close()


async def _card_state(store: Store, card: str) -> tuple[str, str] | None:
    rows = await store.sql("SELECT state, reason FROM card_state WHERE card_hash = ?",
                           store.terminal.ledger.card_hash(card))
    return rows[0] if rows else None


async def _hq_balance(hq: Collector, card_hash: str) -> int:
    return await hq.ledger.thread.run(lambda: Member.get(Member.card_hash == card_hash).balance)


async def _op(ops: MemberOps, name: str, *args: Any, **kwargs: Any) -> Any:
    """The operation as the console makes it: off the loop, on the collector's database (each
    call binds the models under the process-wide lock the collector's ledger thread takes)."""
    return await asyncio.to_thread(getattr(ops, name), *args, **kwargs)


def test_a_card_frozen_at_hq_neither_earns_nor_redeems_at_any_till_which_says_why(
        chain_and_ops: Any, tmp_path: Path) -> None:
    chain, hq, ops = chain_and_ops

    async def scenario() -> None:
        async with _stores(tmp_path, chain) as (s1, s2):
            await _register_and_earn(s2, CARD)
            await until(s2.drained, 20)
            card_hash = s2.terminal.ledger.card_hash(CARD)
            before = await _hq_balance(hq, card_hash)
            local = (await s2.member(CARD))[2]

            frozen = await _op(ops, "freeze", CARD, actor="ann", reason="卡片被盗 stolen card")
            assert frozen.state == "frozen"
            for store in (s1, s2):  # the home store and one that never saw the member
                await until(lambda store=store: _card_state(store, CARD), 20)
                assert await _card_state(store, CARD) == ("frozen", "卡片被盗 stolen card")

            # Swiped, the card is refused with HQ's reason on the display: no member in the
            # sale, so it earns nothing; a redemption has no member to take points from.
            for store in (s2, s1):
                await store.do(f"s {CARD}")
                assert store.till.refused == (f"Card ****{CARD[-4:]} is frozen by HQ: "
                                              "卡片被盗 stolen card"), store.till.refused
                assert store.till.draft.card is None
                await store.do("500 dept1", "subtotal", "redeem")
                assert store.till.redeem_points == 0 and store.till.hold is None
                await store.do("cash")
            await until(s1.drained, 20)
            await until(s2.drained, 20)
            assert (await s2.member(CARD))[2] == local
            assert await _hq_balance(hq, card_hash) == before
            assert await s2.invariants() == [] and await s1.invariants() == []

            # HQ's adjustment on the frozen card, then the unfreeze: the till serves the member
            # again with HQ's balance (its cached answer was dropped by the new state).
            await _op(ops, "adjust", CARD, 300, actor="bob", reason="goodwill")
            await _op(ops, "unfreeze", CARD, actor="ann", reason="card found")
            for store in (s1, s2):
                await until(lambda store=store: _is_active(store), 20)
                await store.do(f"s {CARD}")
                assert store.till.refused is None, store.till.refused
                assert store.pole[1].split()[:2] == ["Points", str(before + 300)], store.pole

    run(scenario(), timeout=120)


async def _is_active(store: Store) -> bool:
    return (await _card_state(store, CARD) or ("", ""))[0] == "active"


def test_hq_refuses_a_hold_on_a_frozen_card_before_the_till_has_heard(
        chain_and_ops: Any, tmp_path: Path) -> None:
    """The till's own copy of the state can lag; HQ's answer to the hold cannot."""
    chain, _hq, ops = chain_and_ops

    async def scenario() -> None:
        till = chain.till("S001", "T09")
        async with chain:
            await till.register("8000555566")
            await till.sell(60000, "8000555566")
            await chain.drained()
            card_hash = await till.run(lambda: Member.get(Member.card_last4 == "5566").card_hash)
            await _op(ops, "freeze", "8000555566", actor="ann", reason="fraud check")
            # Asked straight away (the state may not have reached the till yet).
            with pytest.raises(RedeemRefused, match="card frozen at HQ: fraud check"):
                await till.link.hold(card_hash, 100, "sale-1")

    run(scenario(), timeout=60)
