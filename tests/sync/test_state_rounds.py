"""A member-state publisher's round does work in proportion to what changed, not to the cards.

Every half second each collector's publisher looks for the card states not yet published. It
compared every card's ``card_state`` with its ``published_state`` (a round with nothing to do
took 1.19 s at 100,000 cards on PostgreSQL: bench/bench_states.py (d)); it reads from the
version up to which every state is published (the watermark in HQ's ``meta``) on. Measured here
as work, not time: SQLite's virtual-machine steps for a round, counted with its progress handler
on the publisher's own connection, at 400 cards and at four times as many. Real parts: HQ's
SQLite database with members imported and a campaign's bonus granted, and the shipped Mosquitto.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from terminal.hq.database import open_hq_database
from terminal.hq.member_ops.publish import MemberStatePublisher, Signer, catch_up, watermark
from terminal.loyalty.store.ledger_thread import LedgerThread
from terminal.protocol.bundle import TrustStore
from terminal.protocol.member_state import verify_member_state
from terminal.protocol.topics import Topics
from tests.sync.conftest import Inbox, mqtt_client, run
from tests.sync.harness import Keys
from tests.sync.test_state_catch_up import _bonus, _members

STEP = 1  # VM instructions between two calls of the progress handler


async def _steps(thread: LedgerThread, publisher: MemberStatePublisher) -> tuple[int, int]:
    """The VM steps of one publisher round, and how many states it published."""
    counted = [0]

    def count() -> int:
        counted[0] += STEP
        return 0

    def watch(on: bool) -> None:
        assert thread.db is not None
        thread.db.connection().set_progress_handler(count if on else None, STEP)

    await thread.run(watch, True)
    try:
        published = await publisher.publish_pending()
    finally:
        await thread.run(watch, False)
    return counted[0], published


def test_a_round_reads_what_changed_not_every_card(pki: Any, broker: Any,
                                                   tmp_path: Path) -> None:
    ops = _members(tmp_path, 1_600)
    keys = Keys(tmp_path / "keys")
    db = open_hq_database(str(tmp_path / "hq.db"))
    thread = LedgerThread(db, name="publisher")

    async def scenario() -> dict[str, int]:
        async with mqtt_client(pki, broker, "hq") as client:
            publisher = MemberStatePublisher(client, thread, Topics(), Signer(
                keys.signing, keys.delegation.to_wire()))
            steps = {}
            for cards in (400, 1_600):
                await asyncio.to_thread(_bonus, ops, cards)
                assert (await _steps(thread, publisher))[1] == cards
                steps[f"idle at {cards}"], _ = await _steps(thread, publisher)
                await asyncio.to_thread(_bonus, ops, 1)
                steps[f"one at {cards}"], published = await _steps(thread, publisher)
                assert published == 1
            assert await thread.run(watermark) == await thread.run(
                lambda: db.execute_sql("SELECT max(version) FROM card_state").fetchone()[0])
            return steps

    try:
        steps = run(scenario(), timeout=120)
    finally:
        thread.close()
        db.close()
        ops.close()
    # Four times the cards: the same work, give or take the B-tree's depth and what one
    # state's publishing costs (before: four times the steps, growing with the cards).
    assert steps["idle at 1600"] < 1.5 * steps["idle at 400"], steps
    assert steps["one at 1600"] < 1.5 * steps["one at 400"], steps


def test_a_round_signs_off_the_loop_and_publishes_in_version_order(
        pki: Any, broker: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """The publisher runs on the collector's loop (the tills' events and answers): a page's
    200 signatures are made on its signing thread, not there (bench/bench_state_signing.py), and
    what goes out is as before: a live round's states on their topics in version order, a
    campaign's recorded page after page for the catch-up, whose pages verify in version order."""
    ops = _members(tmp_path, 450)
    keys = Keys(tmp_path / "keys")
    db = open_hq_database(str(tmp_path / "hq.db"))
    thread = LedgerThread(db, name="publisher")
    signed_on: set[str] = set()
    sign = Signer.sign

    def spied(signer: Signer, state: Any) -> bytes:
        signed_on.add(threading.current_thread().name)
        return sign(signer, state)

    monkeypatch.setattr(Signer, "sign", spied)
    trust = TrustStore.of([keys.root.public_key()])

    async def scenario() -> tuple[list[int], list[int]]:
        async with mqtt_client(pki, broker, "hq") as client:
            publisher = MemberStatePublisher(client, thread, Topics(), Signer(
                keys.signing, keys.delegation.to_wire()))
            try:
                inbox = Inbox()
                await client.subscribe(Topics().member_states(), inbox)
                await asyncio.to_thread(_bonus, ops, 5)  # a live round (at most 20)
                assert await publisher.publish_pending() == 5
                live = [verify_member_state(m.payload, trust).version
                        for m in await inbox.wait_for(5, 30)]
                await asyncio.to_thread(_bonus, ops, 450)  # a campaign: three pages
                assert await publisher.publish_pending() == 450
                since, recorded = max(live), []
                while True:
                    page = await thread.run(catch_up, db, since)
                    recorded += [verify_member_state(wire.encode() if isinstance(wire, str)
                                                     else wire, trust).version
                                 for wire in page.states]
                    since = page.through
                    if not page.more:
                        break
                return live, recorded
            finally:
                publisher.close()

    try:
        live, recorded = run(scenario(), timeout=120)
    finally:
        thread.close()
        db.close()
        ops.close()
    assert live == sorted(live) and len(set(live)) == 5
    assert recorded == sorted(recorded) and len(set(recorded)) == 450
    assert recorded[0] > live[-1]
    assert signed_on == {"posterm-hq-state-signing_0"}, signed_on  # never on the loop's thread
