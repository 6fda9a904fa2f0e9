"""Same input, same ledger: the shared scenario and a long random one, each replayed 20 times,
give the same output and the same rows in every table, ids aside (issue 15 bug 3)."""

from __future__ import annotations

import json
import random
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from terminal.loyalty.rules import load_rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.tools.replay import REPLAY_CARD_KEY, replay

RUNS = 20
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Tables whose rows first name the random ids, in an order that does not depend on them.
_ANCHORS = (
    ("member", "card_hash"),
    ("ledger_entry", "seq"),
    ("sale", "seq"),
    ("refund", "seq"),
    ("exchange", "seq"),
    ("outbox", "seq"),
    ("audit", "seq"),
)


def random_scenario(seed: int, steps: int = 400) -> dict[str, Any]:
    """Members registering, buying, redeeming, refunding, exchanging and adjusting, many steps
    at one instant (lots that expire together), clock jumps past expiries and reviews."""
    pick = random.Random(seed)
    cards = [f"80000000{i:02d}" for i in range(6)]
    now = 1_772_590_000  # 2026-03-04, in seconds
    out: list[dict[str, Any]] = [{"at": _iso(now)}]
    out += [{"register": {"card": card, "birthday": "1990-03-05"}} for card in cards]
    sales: list[str] = []
    for number in range(steps):
        roll = pick.random()
        card = pick.choice(cards)
        if roll < 0.08:
            now += pick.choice([60, 86_400, 86_400 * 31, 86_400 * 200])
            out.append({"at": _iso(now)})
        elif roll < 0.45:
            sale = f"S{number}"
            sales.append(sale)
            out.append({"sale": {"id": sale, "card": card, "redeem_points": pick.choice(
                [0, 0, 500, 600, 1000]), "lines": [
                {"sku": pick.choice(["A", "B", "6901234567892"]),
                 "category": pick.choice(["", "fresh", "household", "tobacco"]),
                 "qty": pick.randint(1, 3), "price_fen": pick.randint(0, 40_000)}
                for _ in range(pick.randint(1, 3))]}})
        elif roll < 0.6 and sales:
            refund: dict[str, Any] = {"sale": pick.choice(sales)}
            if pick.random() < 0.5:
                refund["lines"] = [{"sku": pick.choice(["A", "B", "6901234567892"]),
                                    "qty": 1}]
            out.append({"refund": refund})
        elif roll < 0.75:
            out.append({"adjust": {"card": card, "points": pick.choice([300, 700, -400, -900]),
                                   "reason": "test", "operator": "manager"}})
        elif roll < 0.85:
            out.append({"exchange": {"card": card, "sku": "GIFT-UMBRELLA"}})
        elif roll < 0.9:
            out.append({"expire": {}})
        else:
            out.append({"hq": pick.choice(["online", "offline"])})
    return {"terminal": {"store": "S001", "terminal": "T01"}, "steps": out}


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def canonical(db_path: Path, output: dict[str, Any]) -> tuple[list[Any], str]:
    """Every row of every table and the output, each random id replaced by its order of first
    appearance in rows ordered by what does not depend on ids."""
    connection = sqlite3.connect(db_path)
    sql = connection.execute
    names: dict[str, str] = {}

    def name(text: str) -> str:
        return _UUID.sub(lambda m: names.setdefault(m.group(0), f"id{len(names)}"), text)

    try:
        for table, order in _ANCHORS:
            for row in sql(f"SELECT * FROM {table} ORDER BY {order}").fetchall():
                for value in row:
                    if isinstance(value, str):
                        name(value)
        rows: list[Any] = []
        tables = [r[0] for r in sql("SELECT name FROM sqlite_master WHERE type = 'table' "
                                    "ORDER BY name").fetchall()]
        for table in tables:
            found = [tuple(name(v) if isinstance(v, str) else v for v in row)
                     for row in sql(f"SELECT * FROM {table}").fetchall()]
            rows += [(table, *row) for row in sorted(found, key=repr)]
    finally:
        connection.close()
    return rows, name(json.dumps(output, sort_keys=True, ensure_ascii=False))


def _replay_once(scenario: dict[str, Any], rules_path: Path, db: Path) -> tuple[Any, str]:
    store = LedgerStore.open(db, load_rules(rules_path), REPLAY_CARD_KEY, Identity("S001", "T01"))
    try:
        output = replay(scenario, store)
    finally:
        store.close()
    return canonical(db, output)


@pytest.mark.parametrize("which", ["shared", "random"])
def test_replay_gives_the_same_ledger_every_time(which: str, examples: Path, tmp_path: Path,
                                                 same_millisecond: None) -> None:
    """Every id minted in one millisecond, so that nothing may order by them."""
    if which == "shared":
        scenario = json.loads((examples / "scenario.json").read_text(encoding="utf-8"))
    else:
        scenario = random_scenario(seed=15)
    first = _replay_once(scenario, examples / "rules.toml", tmp_path / "run0.db")
    assert first[0] and '"sales"' in first[1]
    for run in range(1, RUNS):
        again = _replay_once(scenario, examples / "rules.toml", tmp_path / f"run{run}.db")
        assert again[1] == first[1], f"run {run}: the output differs"
        assert again[0] == first[0], f"run {run}: the ledger's rows differ"
