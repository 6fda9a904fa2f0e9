"""Signing in at the till: operator number + PIN, the lockout and a manager's unlock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from terminal.daemon.bootstrap import StartupError, build
from terminal.loyalty.store.models import Audit
from terminal.loyalty.store.operators import MAX_FAILURES

from .conftest import TillBench, till_config


def test_operator_number_then_pin(bench: TillBench) -> None:
    bench.do("1 enter")
    assert bench.till.mode == "pin" and bench.till.operator is None
    bench.do("12")
    assert bench.pole[1] == "**"  # the PIN is masked; the operator number was not
    bench.do("34 enter")
    assert bench.till.operator.name == "cashier" and bench.till.mode == "ready"


def test_clear_at_the_pin_goes_back_to_the_operator_number(bench: TillBench) -> None:
    bench.do("1 enter", "clear", "2 enter 9999 enter")
    assert bench.till.operator.name == "manager"


def test_wrong_pins_lock_the_operator_and_a_manager_unlocks(bench: TillBench) -> None:
    bench.do("1 enter")
    for _ in range(MAX_FAILURES - 1):
        bench.do("0000 enter")
        assert "PIN not recognised" in bench.till.refused
    bench.do("0000 enter")
    assert "Operator 1 is locked after 5 wrong PINs" in bench.till.refused
    bench.do("1234 enter")  # the right PIN, too late
    assert "locked" in bench.till.refused and bench.till.operator is None
    bench.do("void")
    assert bench.till.mode == "manager" and "needs a manager" in bench.till.message
    bench.do("2 enter 9999 enter")
    assert bench.till.mode == "pin" and "Operator 1 unlocked" in bench.till.message
    bench.do("1234 enter")
    assert bench.till.operator.name == "cashier"
    audit = bench.runner.run(bench.terminal.ledger.executor.run(lambda: [
        (row.actor, row.action, row.subject) for row in Audit.select().order_by(Audit.seq)]))
    assert ("cashier", "operator_locked", "1") in audit
    assert ("manager", "operator_unlocked", "1") in audit


def test_the_pin_key_is_made_once_and_must_stay(tmp_path: Path, examples: Path) -> None:
    bench = TillBench(tmp_path, examples)
    key_file = bench.terminal.config.pin_key_file
    bench.close()
    assert key_file.parent.name == "credentials" and key_file.stat().st_mode & 0o777 == 0o600
    key_file.write_text("f" * 64)  # another key: the operators' hashes were made with the first
    with pytest.raises(StartupError, match=r"pin\.key: the PIN key is not the one"):
        asyncio.run(build(till_config(tmp_path, examples)))
    key_file.write_text("short")
    with pytest.raises(StartupError, match="the PIN key must be at least 32 bytes"):
        asyncio.run(build(till_config(tmp_path, examples)))
    key_file.unlink()  # lost: a new one is made, and refused the same way
    with pytest.raises(StartupError, match="not the one"):
        asyncio.run(build(till_config(tmp_path, examples)))
