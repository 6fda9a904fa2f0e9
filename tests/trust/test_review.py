"""`posterm-hq review`: what HQ refused or flagged, newest first, for a person to look at."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.cli import main
from terminal.hq.database import open_hq_database
from terminal.loyalty.rules import Rules
from terminal.protocol.messages import Event
from tests.sync.harness import CARD_KEY, rules_data

from .support import encode, envelope, sale_body


def test_review_lists_refused_and_flagged_events(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "hq.db")
    ahead = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    events = [envelope("sale", sale_body("OK1"), seq=1),
              envelope("sale", sale_body("BAD", operator=["x"]), seq=2),
              envelope("sale", sale_body("AHEAD"), seq=3, wall_time=ahead),
              envelope("sale", sale_body("OTHER"), seq=1, where=("S002", "T01"))]
    ledger = ChainLedger(open_hq_database(db), Rules.from_mapping(rules_data()), CARD_KEY)
    try:
        outcomes = ledger.thread.call(ledger.apply, [Event.from_json(encode(e))
                                                     for e in events])
    finally:
        ledger.close()
    assert [o.result for o in outcomes] == ["applied", "refused", "flagged", "applied"]
    assert main(["review", "--db", db]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "2 event(s) for review"
    assert any("S001/T01" in line and "refused" in line
               and "body.operator must be text, not list" in line for line in out)
    assert any("flagged" in line and "ahead of HQ" in line for line in out)
    assert main(["review", "--db", db, "--store", "S002"]) == 0
    assert capsys.readouterr().out.strip() == "0 event(s) for review"
    assert main(["review", "--db", db, "--json", "--limit", "1"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["outcome"] in ("refused", "flagged") and row["event"] in {
        events[1]["id"], events[2]["id"]}
    assert main(["review", "--db", db, "--limit", "0"]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err
