"""`posterm-hq expire`: HQ's sweep of the chain ledger, by the terminals' own engine and rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.cli import main
from terminal.hq.database import open_hq_database
from terminal.loyalty.cards import card_hash
from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import Registration
from terminal.loyalty.rules import load_rules
from terminal.loyalty.store.ledger_store import CardRef
from tests.support.shared import EXAMPLES

KEY = b"chain-card-key-0123456789abcdef"


def _chain_with_a_member(tmp_path: Path, url: str | None = None) -> tuple[str, Path]:
    db, key = url or str(tmp_path / "hq.db"), tmp_path / "card.key"
    key.write_bytes(KEY)
    ledger = ChainLedger(open_hq_database(db), load_rules(EXAMPLES / "rules.toml"), KEY)
    joined = Moment(datetime(2026, 3, 4, 2, tzinfo=UTC))
    ref = CardRef(card_hash(KEY, "8000123456"), "3456")
    ledger.thread.call(ledger.store.register, Registration(card=ref), joined)  # type: ignore[arg-type]
    ledger.close()
    return db, key


def _expire(db: str, key: Path, at: str, capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["expire", "--db", db, "--rules", str(EXAMPLES / "rules.toml"),
                 "--card-key-file", str(key), "--at", at]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_hq_expires_the_registration_bonus_a_year_on(
    engine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    url = None
    if engine == "postgresql":
        from tests.hq.test_postgres_collector import fresh_database

        url = fresh_database(request.getfixturevalue("postgres"))
    db, key = _chain_with_a_member(tmp_path, url)
    assert _expire(db, key, "2027-03-03T00:00:00+00:00", capsys)["lots"] == 0  # not yet
    swept = _expire(db, key, "2027-03-05T00:00:00+00:00", capsys)
    assert (swept["lots"], swept["points"], swept["members"]) == (1, 100, 1)
    ledger = ChainLedger(open_hq_database(db), load_rules(EXAMPLES / "rules.toml"), KEY)
    try:
        assert ledger.thread.call(ledger.store.check_invariants) == []
    finally:
        ledger.close()
    assert _expire(db, key, "2027-03-06T00:00:00+00:00", capsys)["lots"] == 0  # once only


def test_bad_time_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, key = _chain_with_a_member(tmp_path)
    assert main(["expire", "--db", db, "--rules", str(EXAMPLES / "rules.toml"),
                 "--card-key-file", str(key), "--at", "2027-03-05"]) == 2
    assert "carries no zone" in capsys.readouterr().err


def test_bad_workers_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, key = _chain_with_a_member(tmp_path)
    for bad in ("0", "-1", "many"):
        with pytest.raises(SystemExit):
            main(["expire", "--db", db, "--rules", str(EXAMPLES / "rules.toml"),
                  "--card-key-file", str(key), "--workers", bad])
        assert "--workers" in capsys.readouterr().err
