"""A member from another store (DESIGN promise 4): registered and earning at S002, served at
S001 from HQ's answer, redeeming HQ's points there, online and with HQ cut off.

Both tills are built as the daemon builds them (``bootstrap.build`` from [broker]/[hq] config)
and driven through the simulation console; HQ's collector runs in this process too. That is safe
because every ledger call in the process (each till's ledger executor, each link's ledger thread,
HQ's) binds the models to its own database under one lock (``terminal.loyalty.store.binding``).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from terminal.daemon.bootstrap import Terminal, build
from terminal.daemon.config import parse_config
from terminal.daemon.sim.console import Console
from terminal.daemon.sim.demo import seed_demo
from terminal.hq.collector import Collector
from terminal.hq.models import AppliedEvent, MemberHold
from terminal.loyalty.errors import StorageFull
from terminal.loyalty.ids import new_id
from terminal.loyalty.store.models import Member
from terminal.sync.link import MqttHqLink
from tests.support.terminal_view import TerminalView
from tests.support.till_config import till_config_data
from tests.sync.conftest import run
from tests.sync.harness import CARD_KEY, Chain, until

CARD = "8000111122"  # registered at S002
STRANGER = "8000333344"  # registered at S002 while S001 cannot reach HQ
PHONES = {CARD: "13912340001", STRANGER: "13912340002"}


def _config(tmp: Path, chain: Chain, store: str) -> Any:
    mqtt = (chain.broker, chain.pki.client(f"{store}/T01"), chain.keys.root_pub)
    return parse_config(till_config_data(tmp / store, tmp / "card.key", store, mqtt=mqtt),
                        f"{store}.toml")


class Store(TerminalView):
    """One till on simulated hardware, driven by console lines."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self.console = Console(terminal, io.StringIO())
        assert isinstance(terminal.link, MqttHqLink)
        self.link: MqttHqLink = terminal.link

    async def do(self, *lines: str) -> None:
        for line in lines:
            await self.console.command(line)

    async def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        db = self.terminal.ledger.store.db
        return await self.terminal.ledger.executor.run(
            lambda: db.execute_sql(query, args).fetchall())

    async def card_state(self, card: str) -> tuple[str, str] | None:
        """The card's state and its reason as HQ's word reached this till; None: no word."""
        rows = await self.sql("SELECT state, reason FROM card_state WHERE card_hash = ?",
                              self.terminal.ledger.card_hash(card))
        return rows[0] if rows else None

    async def card_is(self, card: str, state: str) -> bool:
        return (await self.card_state(card) or ("", ""))[0] == state

    async def member(self, card: str) -> tuple[Any, ...] | None:
        rows = await self.sql("SELECT id, tier, balance, debt FROM member WHERE card_hash = ?",
                              self.terminal.ledger.card_hash(card))
        return rows[0] if rows else None

    async def invariants(self) -> list[str]:
        return await self.terminal.ledger.executor.run(
            self.terminal.ledger.store.check_invariants)

    async def drained(self) -> bool:
        return await self.link.outbox.backlog() == 0


async def _hq_member(hq: Collector, card_hash: str) -> tuple[int, list[tuple[str, int, str]]]:
    from terminal.loyalty.store.models import LedgerEntry

    def read() -> tuple[int, list[tuple[str, int, str]]]:
        member = Member.get(Member.card_hash == card_hash)
        entries = [(e.kind, e.points, e.reason) for e in
                   LedgerEntry.select().where(LedgerEntry.member == member.id)
                   .order_by(LedgerEntry.seq)]
        return member.balance, entries
    return await hq.ledger.thread.run(read)


async def _hq_outcomes(hq: Collector, kind: str) -> list[tuple[str, str, str]]:
    def read() -> list[tuple[str, str, str]]:
        return [(row.store, row.outcome, row.detail) for row in
                AppliedEvent.select().where(AppliedEvent.kind == kind)]
    return await hq.ledger.thread.run(read)


@contextlib.asynccontextmanager
async def _stores(tmp: Path, chain: Chain) -> AsyncIterator[tuple[Store, Store]]:
    """The chain started and a till at each store, signed in; everything closed after."""
    async with chain, contextlib.AsyncExitStack() as opened:
        stores = []
        for store_id in ("S001", "S002"):
            store = Store(await build(_config(tmp, chain, store_id), prepare=seed_demo))
            opened.push_async_callback(store.terminal.close)
            stores.append(store)
        s1, s2 = stores
        await until(lambda: s1.link.reachable and s2.link.reachable, 20)
        await s1.do("1 enter 1234 enter")
        await s2.do("1 enter 1234 enter")
        yield s1, s2


async def _register_and_earn(s2: Store, card: str) -> None:
    await s2.do(f"s {card}", f"{PHONES[card]} enter")
    assert s2.till.message.startswith("Registered"), s2.till.message
    await s2.do("0 enter")  # no to member care's SMS question
    assert s2.till.mode == "ready", s2.till.message
    await s2.do("400 dept1", "cash")
    assert s2.till.refused is None, s2.till.refused


async def _member_at_hq(s2: Store, card: str) -> str:
    """The card registered and earning at S002, its events at HQ; its card hash."""
    await _register_and_earn(s2, card)
    await until(s2.drained, 20)
    return s2.terminal.ledger.card_hash(card)


@pytest.fixture
def chain_with_hq(pki: Any, broker: Any, tmp_path: Path) -> tuple[Chain, Collector]:
    """The chain (not started) with its HQ collector, and the card key the tills' config names."""
    (tmp_path / "card.key").write_bytes(CARD_KEY)
    chain = Chain(tmp_path, pki, broker)
    return chain, chain.hq()


def test_member_of_another_store_is_served_from_hq_and_redeems_online(
        chain_with_hq: tuple[Chain, Collector], tmp_path: Path) -> None:
    chain, hq = chain_with_hq

    async def scenario() -> None:
        async with _stores(tmp_path, chain) as (s1, s2):
            card_hash = await _member_at_hq(s2, CARD)
            at_hq, _ = await _hq_member(hq, card_hash)
            assert at_hq == (await s2.member(CARD))[2] > 100  # the bonus and the sale's points

            # S001 has never seen the card: it asks HQ and serves the member from its answer.
            assert await s1.member(CARD) is None
            await s1.do(f"s {CARD}")
            assert s1.till.mode == "ready" and s1.till.refused is None, s1.till.message
            assert s1.pole[1].split() == ["Points", str(at_hq), "member"]
            _, tier, local, _ = await s1.member(CARD)
            assert (tier, local) == ("member", 0)  # no second registration bonus here

            # Redeem at S001 against HQ's balance: the local ledger has no lots for it.
            await s1.do("200 dept2", "subtotal")
            assert s1.till.quote.balance == at_hq and s1.till.quote.max_redeem_points > 0
            await s1.do("500 redeem")
            assert s1.till.hold is not None and not s1.till.hold.offline
            await s1.do("cash")
            assert s1.till.refused is None, s1.till.refused
            sale = (await s1.sql("SELECT id, points_earned, points_redeemed FROM sale "
                                 "WHERE member_id IS NOT NULL"))[0]
            earned = sale[1]
            assert sale[2] == 500
            assert s1.pole[1] == f"Points {at_hq - 500 + earned}"
            _, _, local, debt = await s1.member(CARD)
            assert local == earned - 500 and debt == 500 - earned  # debt the earning paid off
            reason = (await s1.sql("SELECT reason FROM ledger_entry WHERE kind = 'redeem'"))[0][0]
            assert reason.startswith("held at HQ: ")
            assert await s1.invariants() == []

            await until(s1.drained, 20)
            balance, entries = await _hq_member(hq, card_hash)
            assert balance == at_hq - 500 + earned
            assert [kind for kind, _, _ in entries] == ["bonus", "earn", "redeem", "earn"]
            imports = await _hq_outcomes(hq, "import")
            assert [(store, outcome) for store, outcome, _ in imports] == [("S001", "applied")]
            assert "known at HQ" in imports[0][2]
            holds = await hq.ledger.thread.run(
                lambda: [(h.store, h.points, h.state) for h in MemberHold.select()])
            assert holds == [("S001", 500, "posted")]

            # Swiped again, the member shows HQ's balance: S001's own is only its share.
            await s1.do(f"s {CARD}")
            assert s1.pole[1].split() == ["Points", str(balance), "member"]

    run(scenario(), timeout=120)


UMBRELLA = 3000  # points for the demo rules' one goods item (GIFT-UMBRELLA, goods no. 1)


async def _tables(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    tables = ("member", "ledger_entry", "lot", "allocation", "exchange", "member_day", "outbox",
              "audit")
    return {table: sorted(await store.sql(f"SELECT * FROM {table}"), key=repr)
            for table in tables}


def test_member_of_another_store_exchanges_goods_against_hqs_points(
        chain_with_hq: tuple[Chain, Collector], tmp_path: Path) -> None:
    from terminal.protocol.messages import Event

    chain, hq = chain_with_hq

    async def scenario() -> None:
        async with _stores(tmp_path, chain) as (s1, s2):
            await _register_and_earn(s2, CARD)
            await s2.do(f"s {CARD}", "2000 dept1", "cash")  # fresh: points enough for goods
            assert s2.till.refused is None, s2.till.refused
            await until(s2.drained, 20)
            card_hash = s2.terminal.ledger.card_hash(CARD)
            at_hq, _ = await _hq_member(hq, card_hash)
            assert at_hq >= UMBRELLA + 1000

            # S001 imports the member from HQ's answer: no lots here, HQ's balance shown.
            await s1.do(f"s {CARD}", "redeem")
            assert s1.till.mode == "exchange" and s1.till.refused is None, s1.till.message

            # Another till holds most of the points meanwhile: HQ refuses S001's hold, and
            # S001 writes nothing at all.
            other = await s2.link.hold(card_hash, at_hq - 1000, "S002-T01-9999")
            assert not other.offline
            await until(s1.drained, 20)  # the import acked: nothing else moves the tables
            before = await _tables(s1)
            await s1.do("1 enter")
            assert s1.till.refused == ("Exchange refused: HQ refused the hold: insufficient "
                                       "points: 1000 available"), s1.till.refused
            assert s1.till.mode == "exchange"
            assert await _tables(s1) == before
            await s2.link.void(other)

            # HQ holds the points but the commit fails (a full disk here): the hold is voided.
            tried: list[str] = []

            async def full_disk(*args: Any, exchange_id: str, **kw: Any) -> Any:
                tried.append(exchange_id)
                raise StorageFull()
            s1.terminal.ledger.exchange = full_disk  # type: ignore[method-assign]
            await s1.do("1 enter")
            del s1.terminal.ledger.exchange
            assert s1.till.refused is not None and len(tried) == 1
            # Hold ids are minted per request: the till's latest hold at HQ is this one.
            voided = await hq.ledger.thread.run(lambda: MemberHold.select().where(
                MemberHold.store == "S001").order_by(MemberHold.created_us.desc()).get().state)
            assert voided == "voided"
            assert await _tables(s1) == before

            # Online, against HQ's balance: the local ledger carries the points as debt.
            await s1.do("1 enter")
            assert s1.till.refused is None, s1.till.refused
            assert s1.till.mode == "ready"
            assert s1.pole[1] == f"Points {at_hq - UMBRELLA}"
            [(points,)] = await s1.sql("SELECT points FROM exchange")
            assert points == UMBRELLA
            _, _, local, debt = await s1.member(CARD)
            assert (local, debt) == (-UMBRELLA, UMBRELLA)
            [(reason, debt_delta)] = await s1.sql(
                "SELECT reason, debt_delta FROM ledger_entry WHERE kind = 'redeem'")
            head, hold_id = reason.rsplit(" ", 1)  # the hold the exchange's event names
            assert head == "exchange GIFT-UMBRELLA x1; held at HQ:"
            assert debt_delta == UMBRELLA
            assert await s1.invariants() == []

            # HQ posts the exchange from its event, and the hold with it, once.
            await until(s1.drained, 20)
            balance, entries = await _hq_member(hq, card_hash)
            assert balance == at_hq - UMBRELLA
            assert [kind for kind, _, _ in entries] == ["bonus", "earn", "earn", "redeem"]
            assert entries[-1][1] == -UMBRELLA
            holds = await hq.ledger.thread.run(lambda: sorted(
                (h.id, h.store, h.points, h.state) for h in MemberHold.select()))
            assert (hold_id, "S001", UMBRELLA, "posted") in holds
            assert [h for h in holds if h[3] == "pending"] == []
            [(store, outcome, detail)] = await _hq_outcomes(hq, "exchange")
            assert (store, outcome) == ("S001", "applied") and detail.endswith("hold posted")

            # The same event again, twice: duplicates. Re-minted under a new event id: the
            # chain ledger files the exchange under an id of its own and refuses it. Nothing
            # moves either way.
            [(payload,)] = await s1.sql("SELECT payload FROM outbox WHERE kind = 'exchange'")
            event = Event.from_json(payload)
            again = await hq.ledger.thread.run(hq.ledger.apply, [event, event])
            assert [o.result for o in again] == ["duplicate", "duplicate"]
            reminted = Event.from_json(payload.replace(event.id, new_id()))
            [refused] = await hq.ledger.thread.run(hq.ledger.apply, [reminted])
            assert refused.result == "refused" and "already recorded" in refused.detail
            assert await _hq_member(hq, card_hash) == (balance, entries)
            assert await hq.ledger.thread.run(lambda: sorted(
                (h.id, h.store, h.points, h.state) for h in MemberHold.select())) == holds
            assert await hq.ledger.thread.run(hq.ledger.store.check_invariants) == []

            # Swiped again, the member shows HQ's balance after the exchange.
            await s1.do(f"s {CARD}")
            assert s1.pole[1].split()[:2] == ["Points", str(balance)]

            # The member turns gold by spending at S002: S001 takes HQ's tier at the next swipe
            # and keeps it as the floor of its monthly review.
            await s2.do(f"s {CARD}", "5000 dept2", "cash")
            assert s2.till.refused is None, s2.till.refused
            await until(s2.drained, 20)
            s1.link.members._cache.clear()  # S001's last answer is fresh for 30 s
            await s1.do(f"s {CARD}")
            assert s1.pole[1].split()[-1] == "gold"
            assert (await s1.member(CARD))[1] == "gold"
            [(reported,)] = await s1.sql("SELECT value FROM meta WHERE key LIKE 'hq_tier:%'")
            assert '"tier": "gold"' in reported

    run(scenario(), timeout=120)


def test_with_hq_cut_off_an_unknown_card_is_refused_and_redemption_keeps_to_the_allowance(
        chain_with_hq: tuple[Chain, Collector], tmp_path: Path) -> None:
    chain, hq = chain_with_hq

    async def scenario() -> None:
        async with _stores(tmp_path, chain) as (s1, s2):
            for card in (CARD, STRANGER):
                await _register_and_earn(s2, card)
            await until(s2.drained, 20)
            card_hash = s2.terminal.ledger.card_hash(CARD)
            at_hq, _ = await _hq_member(hq, card_hash)

            # The member is identified while HQ answers; HQ goes away before the redemption.
            await s1.do(f"s {CARD}", "200 dept2", "subtotal")
            assert s1.till.quote.balance == at_hq
            await hq.stop()
            await until(lambda: not s1.link.reachable, 20)
            await s1.do("500 redeem")
            assert s1.till.hold is not None and s1.till.hold.offline
            await s1.do("cash")
            assert s1.till.refused is None, s1.till.refused
            reason = (await s1.sql("SELECT reason FROM ledger_entry WHERE kind = 'redeem'"))[0][0]
            assert reason.startswith("offline hold, HQ posts it: ")
            assert await s1.invariants() == []

            # A card S001 has never seen, with HQ unreachable: refused, nothing written.
            events = await s1.sql("SELECT count(*) FROM outbox")
            await s1.do(f"s {STRANGER}")
            assert s1.till.refused == ("Card ****3344: member not known here and HQ "
                                       "unreachable: sell without points or register")
            assert s1.till.mode == "ready" and s1.till.draft.card is None
            assert await s1.member(STRANGER) is None
            assert await s1.sql("SELECT count(*) FROM outbox") == events

            # Known here but not reachable at HQ: the local view, within the allowance.
            await s1.do(f"s {CARD}", "100 dept2", "subtotal", "2100 redeem")
            assert s1.till.refused is not None and s1.till.hold is None
            await s1.do("clear", "clear")

            # HQ comes back and posts the offline redemption from the sale's event.
            back = chain.hq(ledger=hq.ledger, client_id="hq-2")
            await back.start()
            await until(s1.drained, 30)
            balance, entries = await _hq_member(back, card_hash)
            earned = (await s1.sql("SELECT points_earned FROM sale WHERE points_redeemed = 500"
                                   ))[0][0]
            assert balance == at_hq - 500 + earned
            assert [kind for kind, _, _ in entries] == ["bonus", "earn", "redeem", "earn"]
            stranger_at_hq = await _hq_outcomes(back, "import")
            assert [(store, outcome) for store, outcome, _ in stranger_at_hq] == [
                ("S001", "applied")]  # CARD's import only: the refused swipe sent nothing

    run(scenario(), timeout=120)


def test_a_card_hq_retired_is_refused_at_every_till_before_its_word_arrives(
        chain_with_hq: tuple[Chain, Collector], tmp_path: Path) -> None:
    """HQ's lookup says the card is retired (lost, merged) before the signed card state reached
    the tills: S001, which never saw the card, does not offer to register it as a new card, and
    S002, which holds the member, does not sell to it. Both say why; nothing is written."""
    from terminal.loyalty.store.models import CardState

    chain, hq = chain_with_hq

    async def scenario() -> None:
        async with _stores(tmp_path, chain) as (s1, s2):
            card_hash = await _member_at_hq(s2, CARD)

            def retire() -> None:  # HQ's record only: no member state published yet
                CardState.insert(card_hash=card_hash, state="retired", reason="lost 挂失",
                                 version=1, updated_us=0).execute()
            await hq.ledger.requests.run(retire)
            refused = "Card ****1122 is retired by HQ (lost 挂失): use the member's new card"
            for store in (s1, s2):
                assert await store.card_state(CARD) is None  # the till has no word of it
                events = await store.sql("SELECT count(*) FROM outbox")
                await store.do(f"s {CARD}")
                assert store.till.refused == refused, store.till.message
                assert store.till.mode == "ready" and store.till.draft.card is None
                assert await store.sql("SELECT count(*) FROM outbox") == events
            assert await s1.member(CARD) is None  # not imported, not registered anew

            # Scanned as a sale's line at S001, the code is a member's card, stopped.
            await s1.do(f"b {CARD}")
            assert s1.till.refused == refused, s1.till.message

    run(scenario(), timeout=120)


def test_hq_refuses_the_import_of_a_member_it_does_not_hold(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from terminal.hq.chain_ledger import ChainLedger
    from terminal.hq.database import open_hq_database
    from terminal.loyalty.ids import new_id
    from terminal.protocol.messages import Event

    chain = ChainLedger(open_hq_database(str(tmp_path / "hq.db")),
                        Chain(tmp_path, None, None).rules, CARD_KEY)
    forged = Event(new_id(), "import", "S001", "T01", 1, 1, datetime.now(UTC), True,
                   {"member": "m1", "card_hash": "ab" * 32, "tier": "member"})
    try:
        outcomes = chain.thread.call(chain.apply, [forged])
        assert [(o.result, o.detail) for o in outcomes] == [
            ("refused", "an import of a member HQ does not hold")]
        members = chain.thread.call(lambda: Member.select().count())
        assert members == 0
    finally:
        chain.close()
