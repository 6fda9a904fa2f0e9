"""`posterm operator`: a technician sets, lists and retires the till's operators on its real
ledger, through the daemon's own config file; the till then signs them in. Every refusal names
what is wrong and changes nothing (neither the staff nor the audit)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.daemon.cli import main
from terminal.loyalty.store.models import Audit
from tests.support.till_config import write_config

from .conftest import TillBench, till_config_table


@pytest.fixture
def config_file(tmp_path: Path, examples: Path) -> Iterator[Path]:
    """A till that has run once (its ledger, PIN key and the demo's cashier 1 and manager 2),
    stopped, and its config as the file the command reads."""
    TillBench(tmp_path, examples).close()
    yield write_config(tmp_path / "posterm.toml", till_config_table(tmp_path, examples))


def operator(config: Path, *args: str, pin: str | None = None,
             monkeypatch: pytest.MonkeyPatch | None = None) -> int:
    if pin is not None and monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(pin + "\n"))
    return main(["operator", *args, "--config", str(config)])


def staff(config: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    assert operator(config, "list", "--json") == 0
    return json.loads(capsys.readouterr().out)


def audit(tmp_path: Path, examples: Path) -> list[tuple[str, str, str, str]]:
    bench = TillBench(tmp_path, examples)
    try:
        return bench.runner.run(bench.terminal.ledger.executor.run(lambda: [
            (row.actor, row.action, row.subject, row.detail)
            for row in Audit.select().order_by(Audit.seq)]))
    finally:
        bench.close()


def test_an_operator_set_by_the_command_signs_in_at_the_till(
        tmp_path: Path, examples: Path, config_file: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert operator(config_file, "set", "3", "zhao.min", "--role", "cashier", "--shown", "赵敏",
                    "--pin-stdin", "--by", "tech.wu", pin="2468", monkeypatch=monkeypatch) == 0
    assert "operator 3 (zhao.min, cashier) added" in capsys.readouterr().out
    listed = {row["number"]: row for row in staff(config_file, capsys)}
    assert listed[3] == {"number": 3, "name": "zhao.min", "role": "cashier", "shown": "赵敏",
                         "active": True, "locked_until": None}
    assert {1, 2} <= set(listed)

    bench = TillBench(tmp_path, examples, {"lcd": {"backend": "dummy", "language": "zh"}})
    try:
        bench.do("3 enter 2468 enter")
        assert bench.till.operator is not None and bench.till.operator.name == "zhao.min"
        frame = bench.terminal.displays.frame
        assert frame is not None and frame.prompt.startswith("已登录：赵敏。"), frame.prompt
        rows = bench.runner.run(bench.terminal.ledger.executor.run(lambda: [
            (row.actor, row.action, row.subject, row.detail) for row in Audit.select()]))
    finally:
        bench.close()
    assert ("tech.wu", "operator_added", "3", "zhao.min cashier shown 赵敏; PIN set") in rows
    assert not any("2468" in detail for *_, detail in rows)  # the PIN is nowhere but hashed


def test_a_retired_operator_cannot_sign_in_and_setting_them_again_brings_them_back(
        tmp_path: Path, examples: Path, config_file: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert operator(config_file, "set", "3", "zhao", "--role", "cashier", "--pin-stdin",
                    pin="2468", monkeypatch=monkeypatch) == 0
    assert operator(config_file, "retire", "3", "--by", "tech.wu") == 0
    assert "operator 3 (zhao) retired" in capsys.readouterr().out
    assert {row["number"]: row["active"] for row in staff(config_file, capsys)}[3] is False
    bench = TillBench(tmp_path, examples)
    try:
        bench.do("3 enter")
        assert "Operator 3 is not known here" in bench.till.refused
    finally:
        bench.close()
    assert operator(config_file, "set", "3", "zhao", "--role", "manager", "--pin-stdin",
                    pin="1357", monkeypatch=monkeypatch) == 0
    assert "operator 3 (zhao, manager) changed" in capsys.readouterr().out
    bench = TillBench(tmp_path, examples)
    try:
        bench.do("3 enter 1357 enter")
        assert bench.till.operator is not None and bench.till.operator.is_manager
    finally:
        bench.close()
    actions = [(a, act, s) for a, act, s, _ in audit(tmp_path, examples) if s == "3"]
    assert actions[-3:] == [(actions[-3][0], "operator_added", "3"),
                            ("tech.wu", "operator_retired", "3"),
                            (actions[-1][0], "operator_changed", "3")]


@pytest.mark.parametrize(("args", "pin", "says"), [
    (("set", "1", "someone", "--role", "cashier"), "2468", "operator number 1 is cashier's"),
    (("set", "3", "x'; DROP TABLE operator;--", "--role", "cashier"), "2468",
     "is not 1-32 letters, digits or _.-"),
    (("set", "3", "zhao", "--role", "cashier"), "12", "a PIN is 4 to 8 digits"),
    (("set", "3", "zhao", "--role", "cashier"), "12345678901", "a PIN is 4 to 8 digits"),
    (("set", "3", "zhao", "--role", "cashier"), "１２３４", "a PIN is 4 to 8 digits"),
    (("set", "3", "zhao", "--role", "cashier", "--shown", "赵\x1b[2J"), "2468",
     "at most 16 printable characters"),
    (("set", "3", "zhao", "--role", "cashier", "--shown", "赵" * 17), "2468",
     "at most 16 printable characters"),
    (("set", "3", "zhao", "--role", "cashier", "--shown", "\u202e赵敏"), "2468",
     "at most 16 printable characters"),
    (("set", "0", "zhao", "--role", "cashier"), "2468", "an operator number is from 1 to 9999"),
    (("set", "3", "zhao", "--role", "cashier", "--by", "tech\nwu"), "2468",
     "who makes the change is 1-64 printable characters"),
    (("set", "2", "manager", "--role", "cashier"), "9999",
     "operator 2 (manager) is this till's last manager"),
    (("retire", "2"), None, "operator 2 (manager) is this till's last manager"),
    (("retire", "7"), None, "Operator 7 is not known here"),
])
def test_a_refused_change_names_what_is_wrong_and_changes_nothing(
        tmp_path: Path, examples: Path, config_file: Path, args: tuple[str, ...],
        pin: str | None, says: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    before, audited = staff(config_file, capsys), audit(tmp_path, examples)
    if pin is not None:
        args = (*args, "--pin-stdin")
    assert operator(config_file, *args, pin=pin, monkeypatch=monkeypatch) == 1
    assert says in capsys.readouterr().err
    assert staff(config_file, capsys) == before
    assert audit(tmp_path, examples) == audited


def test_two_pins_that_differ_change_nothing(
        config_file: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["2468", "2469"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    before = staff(config_file, capsys)
    assert operator(config_file, "set", "3", "zhao", "--role", "cashier") == 1
    assert "the two PINs differ: nothing changed" in capsys.readouterr().err
    assert staff(config_file, capsys) == before


def test_another_pin_key_is_refused(
        tmp_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = staff(config_file, capsys)
    (tmp_path / "credentials" / "pin.key").write_text("f" * 64)
    assert operator(config_file, "set", "3", "zhao", "--role", "cashier", "--pin-stdin",
                    pin="2468", monkeypatch=monkeypatch) == 1
    assert "the PIN key is not the one" in capsys.readouterr().err
    assert staff(config_file, capsys) == before


def test_no_ledger_or_no_config_is_said_plainly(
        tmp_path: Path, examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.toml"
    assert operator(missing, "list") == 2
    assert f"posterm operator: {missing}" in capsys.readouterr().err
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    config = write_config(fresh / "posterm.toml", till_config_table(fresh, examples))
    assert operator(config, "list") == 2
    assert "no ledger yet: start the till once first" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file another user's needs root")
def test_another_users_ledger_is_refused_before_anything_is_opened(
        tmp_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = tmp_path / "ledger.db"
    os.chown(ledger, 65534, 65534)  # the till's user is not whoever runs the command
    try:
        assert operator(config_file, "list") == 2
        err = capsys.readouterr().err
        assert f"{ledger} belongs to nobody: run this as that user (sudo -u nobody" in err
    finally:
        os.chown(ledger, 0, 0)
