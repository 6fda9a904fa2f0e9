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
from pathlib import Path
from typing import Any

from terminal.hq.database import open_hq_database
from terminal.hq.member_ops.publish import MemberStatePublisher, Signer, watermark
from terminal.loyalty.store.ledger_thread import LedgerThread
from terminal.protocol.topics import Topics
from tests.sync.conftest import mqtt_client, run
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
