"""The shared example scenario must come out exactly as its `expected` block says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def _replay(examples: Path, db: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "terminal.daemon.cli", "replay", str(examples / "scenario.json"),
         "--rules", str(examples / "rules.toml"), "--db", str(db)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(done.stdout)


def _without_why(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "why"}


def test_example_scenario_matches_expected(examples: Path, tmp_path: Path) -> None:
    scenario = json.loads((examples / "scenario.json").read_text(encoding="utf-8"))
    expected = scenario["expected"]
    out = _replay(examples, tmp_path / "term.db")

    for want in expected["sales"]:
        got = next(s for s in out["sales"] if s["id"] == want["id"])
        assert {k: got[k] for k in _without_why(want)} == _without_why(want)
    for want in expected["refunds"]:
        got = next(r for r in out["refunds"] if r["sale"] == want["sale"])
        assert {k: got[k] for k in _without_why(want)} == _without_why(want)
    assert [{"step": e["step"], "why": e["why"]} for e in out["errors"]] == expected["errors"]
    for want in expected["members"]:
        got = next(m for m in out["members"] if m["card"] == want["card"])
        assert {k: got[k] for k in _without_why(want)} == _without_why(want)


def test_card_numbers_are_not_stored_in_clear(examples: Path, tmp_path: Path) -> None:
    _replay(examples, tmp_path / "term.db")
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("term.db*"))
    assert b"8000123456" not in raw
    assert "王小明".encode() in raw  # names are kept for receipts


def test_bad_scenario_is_refused_clearly(examples: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "terminal.daemon.cli", "replay", str(bad), "--rules",
         str(examples / "rules.toml"), "--db", str(tmp_path / "x.db")],
        capture_output=True, text=True,
    )
    assert done.returncode == 2
    assert "not valid JSON" in done.stderr
