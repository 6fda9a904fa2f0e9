"""Break 2 of issue 16: a till's adjustment is applied only as HQ's trust policy allows.

HQ's register (``--trust``) names 王芳 a manager at S001 and ann a cashier. The attacker's till
(S001/T01) adjusts: by 10,000,000 three times, by ann, by a name HQ does not know, and
-10,000,000 on a member of store S002; then within HQ's bounds, by its manager, until the
member's day is used up. Only the adjustments within the policy move points.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.sync.conftest import run
from tests.sync.harness import until

from .support import (
    HONEST,
    HqDatabase,
    attacker,
    card,
    collector,
    drained,
    envelope,
    honest_till,
    record,
    register_body,
)
from .test_time_and_spending import balance

POLICY = """
[operators.S001]
"王芳" = "manager"
"ann" = "cashier"

[adjust]
max_points = 5000
max_per_member_per_day = 8000
"""


def adjust(member: str, points: int, operator: str, seq: int) -> dict[str, Any]:
    return envelope("adjust", {"entry": uuid.uuid4().hex, "member": None, "card_hash": member,
                               "points": points, "reason": "goodwill", "operator": operator},
                    seq=seq)


def test_adjustments_need_a_manager_bounds_and_the_members_store(
        tmp_path: Path, pki: Any, broker: Any, hq_db: str) -> None:
    policy = tmp_path / "trust.toml"
    policy.write_text(POLICY, encoding="utf-8")
    database = HqDatabase(hq_db)
    own, other = card("8000000300"), "8000000301"
    refused = [adjust(own, 10_000_000, "王芳", 2 + n) for n in range(3)] + [
        adjust(own, 100, "ann", 5), adjust(own, 100, "mallory", 6)]
    allowed = [adjust(own, 5000, "王芳", 7), adjust(own, -2000, "王芳", 8)]
    over_the_day = adjust(own, 1500, "王芳", 9)  # 5,000 + 2,000 + 1,500 > 8,000

    async def scenario() -> dict[str, Any]:
        async with attacker(pki, broker) as attack, honest_till(tmp_path, pki, broker) as till:
            await till.register(other)
            await until(lambda: drained(till), 30)
            theft = adjust(card(other), -10_000_000, "王芳", 10)
            events = [envelope("register", register_body(own), seq=1), *refused, *allowed,
                      over_the_day, theft]
            await attack.publish_acked(events)
            return theft

    with collector(tmp_path, pki, broker, hq_db, "--trust", str(policy)) as hq:
        theft = run(scenario())
        record("hq-adjustments", hq.log(), inputs=len(refused) + len(allowed) + 3)
    outcomes = database.outcomes()
    assert [outcomes[e["id"]][0] for e in refused] == ["refused"] * 5
    assert [outcomes[e["id"]][1].split(":")[0] for e in refused] == [
        "adjust.max_points"] * 3 + ["adjust.manager"] * 2
    assert [outcomes[e["id"]][0] for e in allowed] == ["applied"] * 2
    assert outcomes[over_the_day["id"]][1].startswith("adjust.max_per_member_per_day")
    assert outcomes[theft["id"]][1].startswith("adjust.cross_store")
    assert balance(database, own) == 100 + 5000 - 2000
    assert balance(database, card(other)) == 100
    assert HONEST[0] == "S002"
