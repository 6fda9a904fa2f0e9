"""`posterm-hq rules validate|lint|diff` on files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from terminal.hq.cli import main
from tests.rules_studio.edits import BASE, edited
from tests.support.shared import EXAMPLES

IN_FORCE = str(EXAMPLES / "rules.toml")


def write(tmp_path: Path, text: str, name: str = "candidate.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_validate_says_ok_or_the_key_and_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "validate", IN_FORCE]) == 0
    assert "OK (Sunrise Mart Rewards)" in capsys.readouterr().out
    bad = write(tmp_path, edited(('rounding = "floor"', 'rounding = "sideways"')))
    assert main(["rules", "validate", bad, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    (problem,) = report["problems"]
    assert problem["key"] == "earn.rounding"
    assert BASE.splitlines()[problem["line"] - 1].startswith("rounding = ")


def test_validate_json_carries_each_problems_code_and_values(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As ``POST /api/v1/rules/check`` does (tests/console/test_rules_words.py): the code and its
    values (each as text) beside the key, the line and the engine's English."""
    bad = write(tmp_path, edited(('rounding = "floor"', 'rounding = "sideways"')))
    assert main(["rules", "validate", bad, "--json"]) == 1
    (problem,) = json.loads(capsys.readouterr().out)["problems"]
    assert problem == {"key": "earn.rounding", "line": problem["line"], "code": "choice",
                       "values": {"key": "earn.rounding", "value": "'sideways'",
                                  "choices": "floor, round, ceil"},
                       "message": "earn.rounding: 'sideways' is not one of floor, round, ceil"}
    not_toml = write(tmp_path, BASE + "\n[earn\n", "broken.toml")
    assert main(["rules", "validate", not_toml, "--json"]) == 1
    (problem,) = json.loads(capsys.readouterr().out)["problems"]
    assert problem["code"] == "toml" and set(problem["values"]) >= {"column"}, problem
    assert problem["line"] == len(BASE.splitlines()) + 2, problem


def test_validate_refuses_a_missing_file(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "validate", str(tmp_path / "nothing.toml")]) == 1
    assert "cannot read the rules file" in capsys.readouterr().err


def test_lint_prints_warnings_with_lines_and_exits_3(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    candidate = write(tmp_path, edited(("earn_multiplier = 1.2", "earn_multiplier = 3"),
                                       ("per_sale = 5000", "# none")))
    assert main(["rules", "lint", candidate, "--in-force", IN_FORCE, "--json",
                 "--now", "2026-12-05T09:00:00+08:00"]) == 3
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert [(w["code"], w["key"]) for w in warnings] == [
        ("multiplier_up", "tiers.level[silver].earn_multiplier"),
        ("cap_removed", "earn.caps.per_sale")]
    lines = BASE.splitlines()
    assert lines[warnings[0]["line"] - 1].startswith("earn_multiplier = 1.2")
    assert lines[warnings[1]["line"] - 1] == "[earn.caps]"
    assert main(["rules", "lint", IN_FORCE, "--in-force", IN_FORCE, "--lang", "en"]) == 0
    assert capsys.readouterr().out.strip() == "0 条警告 / warning(s)"


def test_lint_refuses_an_invalid_candidate_and_a_zoneless_now(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, edited(("min_points = 500", "min_points = -1")))
    assert main(["rules", "lint", bad, "--in-force", IN_FORCE]) == 1
    assert "redeem.min_points" in capsys.readouterr().err
    assert main(["rules", "lint", IN_FORCE, "--in-force", IN_FORCE,
                 "--now", "2026-12-05T09:00:00"]) == 1
    assert "carries no zone" in capsys.readouterr().err


def test_diff_per_scope(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chain = write(tmp_path, edited(("min_points = 500", "min_points = 300")))
    store = write(tmp_path, edited(("max_percent_of_sale = 50", "max_percent_of_sale = 60")),
                  "s001.toml")
    assert main(["rules", "diff", chain, "--in-force", IN_FORCE,
                 "--also", "store/S001", IN_FORCE, store]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "== chain: 1 change(s)", "  ~ redeem.min_points: 500 -> 300",
        "== store/S001: 1 change(s)", "  ~ redeem.max_percent_of_sale: 50 -> 60"]
    assert main(["rules", "diff", chain, "--in-force", IN_FORCE, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"chain": [
        {"change": "changed", "key": "redeem.min_points", "before": "500", "after": "300"}]}
