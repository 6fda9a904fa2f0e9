"""HQ's member operations reaching real tills: the operation made at HQ (``MemberOps`` on the
collector's database), published signed by the real collector through a real
Mosquitto, applied by tills built as the daemon builds them and driven through the simulation
console."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from terminal.hq.collector import Collector
from terminal.hq.member_ops.errors import ImportRejected
from terminal.hq.member_ops.service import MemberOps
from terminal.loyalty.cards import card_hash
from terminal.loyalty.clock import Moment
from terminal.loyalty.errors import RedeemRefused
from terminal.loyalty.store.models import Member
from tests.support.shared import EXAMPLES
from tests.sync.conftest import run
from tests.sync.harness import CARD_KEY, Chain, now, until
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


async def _member_of(store: Store) -> None:
    """CARD registered at ``store``, earning there, and known at HQ."""
    await _register_and_earn(store, CARD)
    await until(store.drained, 20)


async def _hq_balance(hq: Collector, card_hash: str) -> int:
    return await hq.ledger.thread.run(lambda: Member.get(Member.card_hash == card_hash).balance)


async def _op(ops: MemberOps, operation: str, *args: Any, **kwargs: Any) -> Any:
    """The operation as the console makes it: off the loop, on the collector's database (each
    call binds the models under the process-wide lock the collector's ledger thread takes)."""
    return await asyncio.to_thread(getattr(ops, operation), *args, **kwargs)


def test_a_card_frozen_at_hq_neither_earns_nor_redeems_at_any_till_which_says_why(
        chain_and_ops: Any, tmp_path: Path) -> None:
    chain, hq, ops = chain_and_ops

    async def scenario() -> None:
        async with _stores(tmp_path, chain) as (s1, s2):
            await _member_of(s2)
            card_hash = s2.terminal.ledger.card_hash(CARD)
            before = await _hq_balance(hq, card_hash)
            local = (await s2.member(CARD))[2]

            frozen = await _op(ops, "freeze", CARD, actor="ann", reason="卡片被盗 stolen card")
            assert frozen.state == "frozen"
            for store in (s1, s2):  # the home store and one that never saw the member
                await until(lambda store=store: store.card_state(CARD), 20)
                assert await store.card_state(CARD) == ("frozen", "卡片被盗 stolen card")

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
                await until(lambda store=store: store.card_is(CARD, "active"), 20)
                await store.do(f"s {CARD}")
                assert store.till.refused is None, store.till.refused
                assert store.pole[1].split()[:2] == ["Points", str(before + 300)], store.pole

    run(scenario(), timeout=120)


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


NEW = "8000999911"  # the replacement card
SECOND = "8000222233"  # the same person's second membership


async def _hq_view(hq: Collector, card: str) -> tuple[str, int] | None:
    """(member id, balance) of the member HQ holds on ``card``, or None."""
    def read() -> tuple[str, int] | None:
        member = Member.get_or_none(Member.card_hash == card_hash(CARD_KEY, card))
        return None if member is None else (member.id, member.balance)
    return await hq.ledger.thread.run(read)


async def _states_reached(stores: tuple[Store, ...], card: str, state: str) -> None:
    for store in stores:
        await until(lambda store=store: store.card_is(card, state), 20)


def test_a_lost_card_is_refused_everywhere_and_the_new_one_shows_the_balance(
        chain_and_ops: Any, tmp_path: Path) -> None:
    chain, hq, ops = chain_and_ops

    async def scenario() -> None:
        async with _stores(tmp_path, chain) as (s1, s2):
            await _member_of(s2)
            member, balance = await _hq_view(hq, CARD)
            local = await s2.member(CARD)

            await _op(ops, "replace_card", CARD, NEW, actor="ann", reason="挂失 reported lost")
            await _states_reached((s1, s2), CARD, "retired")
            await _states_reached((s1, s2), NEW, "active")
            for store in (s1, s2):
                await store.do(f"s {CARD}")
                assert store.till.refused == (f"Card ****{CARD[-4:]} is retired by HQ (挂失 "
                                              "reported lost): use the member's new card")
            # The home store re-keyed its member (its share of the points, its history); the
            # other store learns the new card from HQ. Both show HQ's balance.
            assert await s2.member(NEW) == local and await s2.member(CARD) is None
            for store in (s2, s1):
                await store.do(f"s {NEW}")
                assert store.till.refused is None, store.till.refused
                assert store.pole[1].split()[:2] == ["Points", str(balance)], store.pole
            await s1.do("300 dept1", "cash")
            await until(s1.drained, 20)
            assert (await _hq_view(hq, NEW))[0] == member
            assert (await _hq_view(hq, NEW))[1] > balance
            assert await _hq_view(hq, CARD) is None
            assert await s1.invariants() == [] and await s2.invariants() == []

    run(scenario(), timeout=120)


def test_a_sale_to_the_old_card_from_a_till_that_had_not_heard_credits_the_member(
        chain_and_ops: Any, tmp_path: Path) -> None:
    """A till cut off when the card was replaced sold to the old card; its event reaches HQ
    later and the points follow the member to the new card."""
    chain, hq, ops = chain_and_ops
    (tmp_path / "members.csv").write_text("card,tier,points\n8000121212,member,500\n",
                                          encoding="utf-8")

    async def scenario() -> None:
        till = chain.till("S003", "T01")
        await _op(ops, "import_members", (tmp_path / "members.csv").read_text(),
                  actor="ann", reason="move")
        await till.run(till.store.import_member, "8000121212", "member", Moment(now()))
        sold = await till.sell(30000, "8000121212")  # in the outbox, not sent yet
        await _op(ops, "replace_card", "8000121212", NEW, actor="ann", reason="lost")
        async with chain:
            await chain.drained()
            _, balance = await _hq_view(hq, NEW)
            assert balance == 500 + sold.points_earned > 500

    run(scenario(), timeout=60)


def test_a_merge_sums_the_points_at_hq_and_at_the_tills(
        chain_and_ops: Any, tmp_path: Path) -> None:
    chain, hq, ops = chain_and_ops
    phones = {CARD: "13912340001", SECOND: "13912340009"}

    async def scenario() -> None:
        async with _stores(tmp_path, chain) as (s1, s2):
            # S002 holds both memberships; S001 holds only the second one.
            await _register_and_earn(s2, CARD)
            await s2.do(f"s {SECOND}", f"{phones[SECOND]} enter", "0 enter", "200 dept1", "cash")
            # HQ holds the registration before S001 asks for the member: a lookup no longer
            # waits behind ingest batches, so it answers from what HQ has committed.
            await until(s2.drained, 20)
            await s1.do(f"s {SECOND}", "300 dept1", "cash")
            for store in (s1, s2):
                await until(store.drained, 20)
            _, kept = await _hq_view(hq, CARD)
            _, gone = await _hq_view(hq, SECOND)
            s2_kept, s2_gone = (await s2.member(CARD))[2], (await s2.member(SECOND))[2]
            s1_gone = (await s1.member(SECOND))[2]

            await _op(ops, "merge", CARD, SECOND, actor="ann", reason="同一人两张卡")
            await _states_reached((s1, s2), SECOND, "retired")
            assert (await _hq_view(hq, CARD))[1] == kept + gone
            assert (await _hq_view(hq, SECOND))[1] == 0
            # S002 moved its share into the member kept; S001 re-keyed its member to that card.
            assert (await s2.member(CARD))[2] == s2_kept + s2_gone
            assert (await s2.member(SECOND))[2] == 0
            assert await s2.sql("SELECT phone_hash, phone_last4 FROM member WHERE card_hash = ?",
                                card_hash(CARD_KEY, SECOND)) == [(None, "")]
            assert (await s1.member(CARD))[2] == s1_gone and await s1.member(SECOND) is None
            for store in (s1, s2):
                await store.do(f"s {SECOND}")
                assert "is retired by HQ (同一人两张卡)" in store.till.refused
                await store.do(f"s {CARD}")
                assert store.pole[1].split()[:2] == ["Points", str(kept + gone)], store.pole
                assert await store.invariants() == []

    run(scenario(), timeout=120)


def test_an_erasure_reaches_the_till_that_holds_the_member(
        chain_and_ops: Any, tmp_path: Path) -> None:
    chain, _hq, ops = chain_and_ops

    async def scenario() -> None:
        async with _stores(tmp_path, chain) as (_s1, s2):
            await _member_of(s2)
            await _op(ops, "edit_profile", CARD, actor="ann", reason="customer called",
                      name="张三", birthday="1990-05-01")

            hashed = card_hash(CARD_KEY, CARD)

            async def named() -> bool:
                rows = await s2.sql("SELECT name, birthday FROM member WHERE card_hash = ?",
                                    hashed)
                return rows == [("张三", "1990-05-01")]
            await until(named, 20)
            entries = await s2.sql("SELECT * FROM ledger_entry ORDER BY seq")
            balance = (await s2.member(CARD))[2]

            await _op(ops, "erase", CARD, actor="ann", reason="erasure request")

            async def erased() -> bool:
                rows = await s2.sql("SELECT name, birthday, phone_hash, phone_last4 FROM member "
                                    "WHERE card_hash = ?", hashed)
                return rows == [("", None, None, "")]
            await until(erased, 20)
            assert await s2.sql("SELECT * FROM ledger_entry ORDER BY seq") == entries
            assert (await s2.member(CARD))[2] == balance
            await s2.do(f"s {CARD}")  # the anonymous member still earns and redeems
            assert s2.till.refused is None, s2.till.refused

    run(scenario(), timeout=120)


def test_imported_members_are_served_at_any_till_with_their_opening_balance(
        chain_and_ops: Any, tmp_path: Path) -> None:
    chain, hq, ops = chain_and_ops

    async def scenario() -> None:
        async with _stores(tmp_path, chain) as (s1, _s2):
            bad = "card,tier,points,name\n8000565656,gold,2500,王芳\n8000565656,gold,1,dup\n"
            with pytest.raises(ImportRejected):
                await _op(ops, "import_members", bad, actor="ann", reason="move")
            assert await _hq_view(hq, "8000565656") is None
            await _op(ops, "import_members", bad.rsplit("8000565656,gold,1", 1)[0],
                      actor="ann", reason="move")
            await s1.do("s 8000565656")
            assert s1.till.refused is None, s1.till.refused
            assert s1.pole[1].split() == ["Points", "2500", "gold"], s1.pole

    run(scenario(), timeout=60)


def test_a_freeze_arriving_mid_sale_stops_the_sale_from_earning(
        chain_and_ops: Any, tmp_path: Path) -> None:
    chain, _hq, ops = chain_and_ops

    async def scenario() -> None:
        async with _stores(tmp_path, chain) as (_s1, s2):
            await _member_of(s2)
            sales = await s2.sql("SELECT COUNT(*) FROM sale")
            await s2.do(f"s {CARD}", "300 dept1", "subtotal")
            assert s2.till.refused is None and s2.till.draft.card == CARD
            await _op(ops, "freeze", CARD, actor="ann", reason="fraud check")
            await _states_reached((s2,), CARD, "frozen")
            await s2.do("cash")
            assert s2.till.refused == f"Card ****{CARD[-4:]} is frozen by HQ: fraud check"
            assert await s2.sql("SELECT COUNT(*) FROM sale") == sales

    run(scenario(), timeout=120)


def test_republish_signs_every_state_again_and_every_till_takes_them_again(
        chain_and_ops: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``posterm-hq member republish``: the collectors sign every card's state again and every
    till takes every state again, whatever its bookmark says: here a till whose ledger lost a
    state it had (as one that refused it under a key it did not trust yet would lack it)
    holds it again, and its bookmark is back at HQ's version."""
    from terminal.hq.cli import main
    from terminal.loyalty.store.models import CardState
    from terminal.sync.member_states import held_through

    chain, hq, ops = chain_and_ops

    async def scenario() -> None:
        till = chain.till("S001", "T05")
        async with chain:
            await till.register(CARD)
            await chain.drained()
            frozen = await _op(ops, "freeze", CARD, actor="ann", reason="stolen")
            assert hq.publisher is not None
            await until(lambda: hq.publisher.published == 1, 20)
            await until(lambda: till.run(till.store.card_block, CARD), 20)
            assert await till.link.catch_up.once()  # its bookmark past the state, then lost
            assert await till.run(held_through) == frozen.seq
            await till.run(lambda: CardState.delete().execute())
            assert await till.run(till.store.card_block, CARD) is None
            code = await asyncio.to_thread(main, ["member", "republish", "--db",
                                                  str(tmp_path / "hq.db")])
            assert code == 0
            await until(lambda: hq.publisher.published == 2, 20)
            await until(lambda: till.run(till.store.card_block, CARD), 20)
            assert await till.run(held_through) == frozen.seq

    run(scenario(), timeout=60)
    assert "1 card states to publish again" in capsys.readouterr().out
