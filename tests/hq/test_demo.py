"""`posterm-hq demo`: the demo chain is made by the real stores and HQ ingest, the same on
every run, and only into an empty database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.cli import main
from terminal.hq.database import open_hq_database
from terminal.hq.demo import build_demo
from terminal.hq.models import AppliedEvent, TerminalSeen
from terminal.loyalty.rules import load_rules
from terminal.loyalty.store.models import LedgerEntry, Member, Sale
from tests.support.shared import EXAMPLES

pytestmark = pytest.mark.slow  # a three-month chain of 300 members, built twice

KEY = b"chain-card-key-0123456789abcdef"


def _content(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Everything but the record ids (UUIDs) and HQ's own apply times."""
    ledger = ChainLedger(open_hq_database(url), load_rules(EXAMPLES / "rules.toml"), KEY)

    def read() -> dict[str, list[tuple[Any, ...]]]:
        cards = {m.id: m.card_hash for m in Member.select()}
        return {
            "members": sorted(Member.select(
                Member.card_hash, Member.name, Member.phone_hash, Member.birthday,
                Member.tier, Member.balance, Member.debt, Member.registered_us).tuples()),
            "entries": [(cards[e.member_id], e.kind, e.points, e.debt_delta, e.reason,
                         e.operator, e.wall_us) for e in
                        LedgerEntry.select().order_by(LedgerEntry.seq)],
            "sales": [(cards.get(s.member_id), s.wall_us, s.list_fen, s.paid_fen,
                       s.points_earned, s.points_redeemed, s.tier) for s in
                      Sale.select().order_by(Sale.seq)],
            "events": sorted(AppliedEvent.select(
                AppliedEvent.store, AppliedEvent.terminal, AppliedEvent.seq,
                AppliedEvent.kind, AppliedEvent.outcome, AppliedEvent.points_in,
                AppliedEvent.points_out).tuples()),
            "fleet": sorted(TerminalSeen.select(TerminalSeen.store,
                                                TerminalSeen.terminal).tuples()),
        }
    try:
        return ledger.thread.call(read)
    finally:
        ledger.close()


def test_the_demo_is_the_same_on_every_run_and_sound(tmp_path: Path) -> None:
    rules = load_rules(EXAMPLES / "rules.toml")
    runs = []
    for name in ("a", "b"):
        url = str(tmp_path / f"{name}.db")
        summary = build_demo(url, rules, KEY, members=40, sales_per_day=3)
        runs.append((summary, _content(url)))
    (first, content), (second, again) = runs
    assert first == second and content == again
    assert first.members == 40 and first.sales > 500
    # HQ prices each sale with the chain-wide tier; the few sales a till priced on another
    # tier (an upgrade earned at another store the same day) are applied and flagged for review.
    assert set(first.events) <= {"applied", "flagged"}
    assert first.events.get("flagged", 0) < first.events["applied"] / 50
    assert first.redemptions > 0 and first.refunds > 0
    names = [row[1] for row in content["members"]]
    assert all(name and all("\u4e00" <= ch <= "\u9fff" for ch in name) for name in names)
    kinds = {row[3] for row in content["events"]}
    assert {"register", "sale", "refund", "import"} <= kinds
    assert content["fleet"] == [("S001", "T01"), ("S001", "T02"), ("S002", "T01"),
                                ("S003", "T01")]
    ledger = ChainLedger(open_hq_database(str(tmp_path / "a.db")), rules, KEY)
    try:
        assert ledger.thread.call(ledger.store.check_invariants) == []
    finally:
        ledger.close()


def test_the_demo_command_refuses_a_database_with_members(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "card.key"
    key.write_bytes(KEY)
    db = str(tmp_path / "hq.db")
    args = ["demo", "--db", db, "--card-key-file", str(key), "--rules",
            str(EXAMPLES / "rules.toml"), "--members", "5", "--sales-per-day", "2"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    printed = json.loads(out)
    assert printed["members"] == 5 and printed["stores"] == ["S001", "S002", "S003"]
    assert "console login: admin / posterm-demo" in err
    before = _content(db)
    assert main(args) == 1
    assert "already holds members" in capsys.readouterr().err
    assert _content(db) == before
