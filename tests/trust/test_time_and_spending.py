"""Break 3 of issue 16: a till can neither set HQ's clock nor spend a member's points on its say.

HQ reckons each event's time itself: what it received bounds what an event may claim, and a
till's claim never moves HQ's trusted-time floor. A redemption HQ holds no hold for is taken only
within the rules' ``offline_allowance`` for that member and day, chain-wide; the rest is not taken
from the member, and the event is flagged for review.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.sync.conftest import run
from tests.sync.harness import until

from .support import (
    HqDatabase,
    attacker,
    card,
    collector,
    drained,
    envelope,
    honest_till,
    member_sale,
    record,
    register_body,
    sale_body,
)

DAY_CAP = 8000  # earn.caps.per_member_per_day in the example rules
ALLOWANCE = 2000  # redeem.offline_allowance


def balance(database: HqDatabase, card_hash: str) -> int:
    rows = database.rows("SELECT balance FROM member WHERE card_hash = %s"
                         if database.url.startswith("postgres") else
                         "SELECT balance FROM member WHERE card_hash = ?", (card_hash,))
    return rows[0][0] if rows else 0


def test_future_dated_sales_and_a_year_2100_claim_move_nothing(
        tmp_path: Path, pki: Any, broker: Any, hq_db: str) -> None:
    database = HqDatabase(hq_db)
    member = card("8000000100")
    now = datetime.now(UTC)
    events = [envelope("register", register_body(member), seq=1)]
    # Ten sales of 5,000 points each, stamped (trusted) on ten future days: HQ dates each at
    # the time it received it, so the day cap holds.
    for day in range(10):
        at = (now + timedelta(days=day + 1)).isoformat()
        events.append(envelope("sale", member_sale(f"F{day}", member, 500_000), seq=2 + day,
                               wall_time=at))
    events.append(envelope("sale", sale_body("Y2100"), seq=20,
                           wall_time="2100-01-01T00:00:00+00:00"))

    async def scenario() -> None:
        async with attacker(pki, broker) as attack:
            await attack.publish_acked(events)

    with collector(tmp_path, pki, broker, hq_db) as hq:
        run(scenario())
        record("hq-clock-claims", hq.log(), inputs=len(events))
    assert balance(database, member) <= 100 + DAY_CAP
    floor = database.rows("SELECT value FROM meta WHERE key = 'trusted_floor_us'")
    assert floor and int(floor[0][0]) <= (datetime.now(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) \
        // timedelta(microseconds=1)
    outcomes = database.outcomes()
    assert "ahead of HQ" in outcomes[events[1]["id"]][1]  # the review sees the claim


def test_a_till_cannot_spend_another_stores_member_without_a_hold(
        tmp_path: Path, pki: Any, broker: Any, hq_db: str) -> None:
    database = HqDatabase(hq_db)
    victim = "8000000200"

    async def scenario() -> list[dict[str, Any]]:
        async with attacker(pki, broker) as attack, honest_till(tmp_path, pki, broker) as till:
            await till.register(victim)
            for _ in range(2):
                await till.sell(500_000, victim)  # 5,000 points each; the day cap stops at 8,000
            await until(lambda: drained(till), 30)
            before = balance(database, card(victim))
            assert before == 100 + DAY_CAP
            spends = [envelope("sale", member_sale(f"R{n}", card(victim), 10_000, points),
                               seq=1 + n) for n, points in enumerate((4000, 1500, 500, 500))]
            await attack.publish_acked(spends)
            return spends

    with collector(tmp_path, pki, broker, hq_db) as hq:
        spends = run(scenario())
        record("hq-spend-without-hold", hq.log(), sales=2, inputs=len(spends))
    taken = 100 + DAY_CAP - balance(database, card(victim))
    assert taken <= ALLOWANCE, taken
    assert taken == 2000  # 1,500 and 500 within the allowance; 4,000 and the last 500 not
    outcomes = database.outcomes()
    flagged = [outcomes[e["id"]] for e in spends]
    assert [outcome for outcome, _ in flagged] == ["flagged", "applied", "applied", "flagged"]
    assert "offline_allowance" in flagged[0][1]
