"""The till's state machine: every mode x every keypad action is handled or refused with a
message, and every handler the till has is reachable through the table."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from terminal.app.flow import Till
from terminal.app.machine import HANDLERS, OVERRIDE_ACTIONS
from terminal.app.modes import PROMPTS, Mode
from terminal.drivers.keymap import DEFAULT_KEYMAP

from .conftest import TillBench

CASHIER, MANAGER = "1 enter 1234 enter", "2 enter 9999 enter"  # number, then PIN
# How the cashier gets the till into each mode, as simulation lines from a fresh start.
REACH = {
    Mode.LOCKED: (),
    Mode.PIN: ("1 enter",),
    Mode.MANAGER_PIN: (CASHIER, "refund", "2 enter"),
    Mode.READY: (CASHIER,),
    Mode.MANAGER: (CASHIER, "refund"),
    Mode.REGISTER: (CASHIER, "s 8000999999"),
    Mode.CONSENT: (CASHIER, "s 8000999999", "13900000002 enter"),
    Mode.SUBTOTAL: (CASHIER, "s", "5 dept1", "subtotal"),
    Mode.REFUND_FIND: (MANAGER, "refund"),
    Mode.REFUND_LINES: (CASHIER, "5 dept1", "cash", "refund", MANAGER, "1 enter"),
    Mode.EXCHANGE: (CASHIER, "s", "redeem"),
    Mode.ADJUST: (MANAGER, "s", "discount"),
    Mode.CONFIRM_Z: (MANAGER, "subtotal"),
    Mode.PRICE_CHECK: (CASHIER, "price_check"),
}
KEYMAP_ACTIONS = sorted(set(DEFAULT_KEYMAP.values()) | OVERRIDE_ACTIONS)
ENTRY = {action for action in KEYMAP_ACTIONS if action.startswith("digit_")} | {
    "decimal_point", "backspace"}


def _state(till: Till) -> tuple[object, ...]:
    return (till.mode, till.operator, list(till.draft.lines), till.draft.card, till.quote,
            till.redeem_points, till.pending, till.new_card, till.refund_sale, till.units,
            till.care_phone, till.keyed.text)


class _Walk:
    """A till in ``mode``, made again from a fresh start whenever an action moved it on."""

    def __init__(self, tmp: Path, examples: Path, mode: Mode) -> None:
        self.tmp, self.examples, self.mode = tmp, examples, mode
        self.made = 0
        self.bench = self._fresh()

    def _fresh(self) -> TillBench:
        self.made += 1
        where = self.tmp / f"till{self.made}"
        where.mkdir()
        bench = TillBench(where, self.examples)
        bench.do(*REACH[self.mode])
        assert bench.till.mode is self.mode and bench.till.refused is None, bench.till.message
        return bench

    def press(self, action: str) -> None:
        self.bench.runner.run(self.bench.till.on_action(action))
        self.bench.runner.run(self.bench.till.settle())

    def again(self) -> None:
        self.bench.close()
        self.bench = self._fresh()


@pytest.mark.parametrize("mode", list(Mode), ids=str)
def test_every_action_in_every_mode_is_handled_or_refused(tmp_path: Path, examples: Path,
                                                          mode: Mode) -> None:
    walk = _Walk(tmp_path, examples, mode)
    try:
        for action in KEYMAP_ACTIONS:
            till = walk.bench.till
            before = _state(till)
            walk.press(action)
            if action in ENTRY:  # the entry buffer takes it and echoes it, in every mode
                typed = {"backspace": "", "decimal_point": "."}.get(action, action[-1])
                assert till.refused is None and till.keyed.text == typed, (mode, action)
                till.keyed.take()
                continue
            assert till.message, f"{mode} x {action}: the cashier was told nothing"
            if action != "clear" and (mode, action) not in HANDLERS:
                assert till.refused == (f"{till.refused.split(' does nothing here')[0]} does "
                                        f"nothing here: {PROMPTS[mode]}"), till.refused
                assert _state(till) == before, f"{mode} x {action} changed the till"
                continue
            if till.refused is not None:  # the handler refused: nothing changed
                assert _state(till) == before, f"{mode} x {action} refused but changed"
                continue
            walk.again()  # it moved the till on: the next action starts in the mode again
    finally:
        walk.bench.close()


def test_every_handler_is_in_the_table_under_its_own_name() -> None:
    handler_names = {f"_{mode}_" for mode in Mode} | {"_any_"}
    defined = {
        function for name, function in inspect.getmembers(Till, inspect.iscoroutinefunction)
        if name.startswith(tuple(handler_names))
        and list(inspect.signature(function).parameters) == ["self"]
    }
    assert defined == set(HANDLERS.values()), "handlers missing from the table: " + ", ".join(
        sorted(f.__name__ for f in defined - set(HANDLERS.values())))
    for (mode, action), handler in HANDLERS.items():
        assert handler.__name__ in (f"_{mode}_{action}", f"_any_{action}"), (mode, action)
        assert getattr(Till, handler.__name__) is handler, f"{handler.__name__} is overridden"


def test_every_table_entry_is_reachable() -> None:
    assert set(REACH) == set(Mode)  # the walk above reaches every mode
    assert {action for _mode, action in HANDLERS} <= set(KEYMAP_ACTIONS)
    assert OVERRIDE_ACTIONS.isdisjoint(DEFAULT_KEYMAP.values())
