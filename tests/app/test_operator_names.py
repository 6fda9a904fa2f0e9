"""Signing in greets the operator by the name they were set with (``set_operator``'s
``shown``: a person's name, Chinese allowed), not by their id; an operator set without one is
greeted by their id, as before. The id stays what the log, events and the audit carry."""

from __future__ import annotations

from pathlib import Path

from terminal.loyalty.store.operators import set_operator

from .conftest import TillBench

NUMBER, PIN = 3, "2468"


def _lcd(tmp_path: Path, examples: Path, language: str) -> TillBench:
    return TillBench(tmp_path, examples, {"lcd": {"backend": "dummy", "language": language}})


def test_the_chinese_lcd_greets_the_operator_by_their_name(tmp_path: Path,
                                                          examples: Path) -> None:
    bench = _lcd(tmp_path, examples, "zh")
    try:
        bench.do("1 enter 1234 enter")
        frame = bench.terminal.displays.frame
        assert frame is not None and frame.prompt.startswith("已登录：李娜。"), frame.prompt
        assert "cashier" not in frame.prompt
        assert bench.till.operator is not None and bench.till.operator.name == "cashier"
    finally:
        bench.close()


def test_the_english_lcd_says_the_same_name(tmp_path: Path, examples: Path) -> None:
    bench = _lcd(tmp_path, examples, "en")
    try:
        bench.do("2 enter 9999 enter")
        frame = bench.terminal.displays.frame
        assert frame is not None and frame.prompt.startswith("Signed in: 王强."), frame.prompt
    finally:
        bench.close()


def test_an_operator_set_without_a_name_is_greeted_by_their_id(tmp_path: Path,
                                                               examples: Path) -> None:
    bench = _lcd(tmp_path, examples, "zh")
    ledger = bench.terminal.ledger
    try:
        bench.runner.run(ledger.executor.run(lambda: set_operator(
            ledger.store.db, ledger.pin_key, NUMBER, "zhou", "cashier", PIN)))
        bench.do(f"{NUMBER} enter {PIN} enter")
        frame = bench.terminal.displays.frame
        assert frame is not None and frame.prompt.startswith("已登录：zhou。"), frame.prompt
    finally:
        bench.close()


def test_a_receipt_names_who_printed_it_as_they_are_greeted(tmp_path: Path,
                                                            examples: Path) -> None:
    """The header's 收银: the shown name (李娜, cashier no. 1), else the id; the sale's event and
    the audit keep the id either way."""
    bench = _lcd(tmp_path, examples, "zh")
    ledger = bench.terminal.ledger
    try:
        bench.do("1 enter 1234 enter", "10 dept1", "subtotal", "10 cash")
        assert "收银 李娜" in bench.receipts[-1] and "cashier" not in bench.receipts[-1]
        bench.do("sign_in_out")
        bench.runner.run(ledger.executor.run(lambda: set_operator(
            ledger.store.db, ledger.pin_key, NUMBER, "zhou", "cashier", PIN)))
        bench.do(f"{NUMBER} enter {PIN} enter", "10 dept1", "subtotal", "10 cash")
        assert "收银 zhou" in bench.receipts[-1]
    finally:
        bench.close()
