"""Operators sign in with number + PIN against a keyed hash; wrong PINs lock them out (audited);
ledgers from before schema 3 migrate."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from terminal.loyalty.errors import InvalidInput
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import LedgerStore
from terminal.loyalty.store.database import MIGRATIONS, StoredSchema, stored_schema
from terminal.loyalty.store.models import Audit, Member, Operator
from terminal.loyalty.store.operators import (
    LOCKOUT,
    MAX_FAILURES,
    OperatorLocked,
    SignInRefused,
    set_operator,
)

from .conftest import at

PIN_KEY = b"0123456789abcdef0123456789abcdef-terminal-T01"
SCHEMA_1 = Path(__file__).parent / "data" / "ledger_schema1.sql"


@pytest.fixture
def staffed(store: LedgerStore) -> LedgerStore:
    set_operator(store.db, PIN_KEY, 1, "li", "cashier", "1234")
    set_operator(store.db, PIN_KEY, 2, "boss", "manager", "9876")
    return store


def _sign_in(store: LedgerStore, number: int, pin: str, when: str = "2026-03-05 10:00") -> str:
    return store.sign_in(PIN_KEY, number, pin, store.moment(at(when))).name


def _audit(action: str) -> list[tuple[str, str]]:
    return [(row.actor, row.subject) for row in Audit.select().where(Audit.action == action)
            .order_by(Audit.seq)]


def test_number_and_pin_sign_in_one_operator(staffed: LedgerStore) -> None:
    assert _sign_in(staffed, 1, "1234") == "li"
    boss = staffed.sign_in(PIN_KEY, 2, "9876", staffed.moment(at("2026-03-05 10:00")))
    assert boss.is_manager
    for number, pin, words in ((1, "9876", "PIN not recognised"), (2, "1234", "PIN not"),
                               (1, "12x4", "PIN not"), (1, "", "PIN not"),
                               (7, "1234", "Operator 7 is not known")):
        with pytest.raises(SignInRefused, match=words):
            _sign_in(staffed, number, pin)


def test_pins_are_kept_as_keyed_hashes(staffed: LedgerStore) -> None:
    set_operator(staffed.db, PIN_KEY, 3, "wang", "cashier", "1234")
    rows = staffed.db.execute_sql("SELECT * FROM operator").fetchall()
    assert not {"1234", "9876"} & {str(value) for row in rows for value in row}
    macs = dict(staffed.db.execute_sql("SELECT name, pin_mac FROM operator").fetchall())
    # One PIN, two operators: two hashes (the number is hashed with it), each 64 hex digits.
    assert macs["li"] != macs["wang"] and all(len(mac) == 64 for mac in macs.values())
    # Without this terminal's key, the database's hashes sign no one in.
    with pytest.raises(SignInRefused, match="PIN not recognised"):
        staffed.sign_in(b"another terminal's key 0123456789ab", 1, "1234",
                        staffed.moment(at("2026-03-05 10:00")))


@pytest.mark.parametrize(("number", "name", "role", "pin", "words"), [
    (1, "x", "cashier", "12", "4 to 8 digits"),
    (0, "x", "cashier", "1234", "from 1 to 9999"),
    (10_000, "x", "cashier", "1234", "from 1 to 9999"),
    (1, "x", "cashier", "1234", "number 1 is li's"),
    (3, "x y", "cashier", "1234", "operator name"),
    (3, "x", "owner", "1234", "role"),
])
def test_bad_operators_are_refused(staffed: LedgerStore, number: int, name: str, role: str,
                                   pin: str, words: str) -> None:
    before = list(Operator.select().order_by(Operator.name).dicts())
    with pytest.raises(InvalidInput, match=words):
        set_operator(staffed.db, PIN_KEY, number, name, role, pin)
    assert list(Operator.select().order_by(Operator.name).dicts()) == before


def test_wrong_pins_lock_the_operator_until_the_lockout_passes(staffed: LedgerStore) -> None:
    for _ in range(MAX_FAILURES - 1):  # a right PIN in between starts the count again
        with pytest.raises(SignInRefused, match=r"(try|tries) left"):
            _sign_in(staffed, 1, "0000")
    assert _sign_in(staffed, 1, "1234") == "li"
    for tries in range(MAX_FAILURES - 1, 0, -1):
        with pytest.raises(SignInRefused, match=f"{tries} tr"):
            _sign_in(staffed, 1, "0000")
    with pytest.raises(OperatorLocked, match="Operator 1 is locked after 5 wrong PINs until "
                                             "10:15"):
        _sign_in(staffed, 1, "0000")
    assert _audit("operator_locked") == [("li", "1")]
    with pytest.raises(OperatorLocked):  # the right PIN too, while locked
        _sign_in(staffed, 1, "1234", "2026-03-05 10:14")
    assert _sign_in(staffed, 2, "9876") == "boss"  # other operators sign in meanwhile
    assert _sign_in(staffed, 1, "1234", f"2026-03-05 10:{LOCKOUT // timedelta(minutes=1)}") \
        == "li"


def test_a_manager_unlocks_a_locked_operator(staffed: LedgerStore) -> None:
    moment = staffed.moment(at("2026-03-05 10:00"))
    with pytest.raises(SignInRefused, match="not locked"):
        staffed.unlock_operator(1, "boss", moment)
    for _ in range(MAX_FAILURES):
        with pytest.raises(SignInRefused):
            _sign_in(staffed, 1, "0000")
    staffed.unlock_operator(1, "boss", moment)
    assert _audit("operator_unlocked") == [("boss", "1")]
    assert _sign_in(staffed, 1, "1234") == "li"


def test_an_operator_is_greeted_by_the_name_they_were_set_with(store: LedgerStore) -> None:
    set_operator(store.db, PIN_KEY, 1, "li", "cashier", "1234", shown="李娜")
    set_operator(store.db, PIN_KEY, 2, "boss", "manager", "9876")
    signed = store.sign_in(PIN_KEY, 1, "1234", store.moment(at("2026-03-05 10:00")))
    assert (signed.name, signed.shown, signed.greeted) == ("li", "李娜", "李娜")
    boss = store.sign_in(PIN_KEY, 2, "9876", store.moment(at("2026-03-05 10:00")))
    assert (boss.name, boss.shown, boss.greeted) == ("boss", "", "boss")  # the id
    set_operator(store.db, PIN_KEY, 1, "li", "cashier", "1234")  # set again without: cleared
    assert store.sign_in(PIN_KEY, 1, "1234", store.moment(at("2026-03-05 10:01"))).greeted == "li"


@pytest.mark.parametrize("shown", ["李娜\n", "\x00", "Li\x1bNa", " 李娜", "李娜 ", "名" * 17,
                                   "\u202e李娜"])
def test_a_shown_name_is_short_printable_text(store: LedgerStore, shown: str) -> None:
    with pytest.raises(InvalidInput, match="shown name"):
        set_operator(store.db, PIN_KEY, 1, "li", "cashier", "1234", shown=shown)
    assert Operator.select().count() == 0  # nothing written


def test_the_pin_key_is_the_one_the_operators_were_set_with(staffed: LedgerStore) -> None:
    staffed.check_pin_key(PIN_KEY)
    staffed.check_pin_key(PIN_KEY)
    with pytest.raises(SignInRefused, match="not the one"):
        staffed.check_pin_key(b"a new key after a lost one 0123456789")


def test_a_schema_1_ledger_migrates(tmp_path: Path, open_store: Callable[..., LedgerStore],
                                    rules: Rules) -> None:
    path = tmp_path / "term.db"
    with sqlite3.connect(path) as made:  # the ledger as the code before schema 3 left it
        made.executescript(SCHEMA_1.read_text())
        made.execute("PRAGMA journal_mode=wal")
    store = open_store(rules)
    assert stored_schema(store.db) == StoredSchema(max(MIGRATIONS), 5)  # 6-7 additive
    assert "held_bundle" in store.db.get_tables()  # schema 5: the sync link's table
    assert "operator_name" in store.db.get_tables()  # schema 6: operators' greeted names
    # Numbered in name order; roles, the member and its points kept.
    assert [(o.number, o.name, o.role) for o in Operator.select().order_by(Operator.number)] \
        == [(1, "li", "cashier"), (2, "manager", "manager"), (3, "wang", "cashier")]
    assert Member.select().count() == 1
    # The old scrypt hash signs in once, then the keyed hash replaces it.
    assert _sign_in(store, 1, "1234") == "li"
    li = Operator.get(Operator.name == "li")
    assert li.pin_mac and li.pin_salt is None and li.pin_hash is None
    assert _audit("pin_rehashed") == [("li", "1")]
    assert _sign_in(store, 1, "1234") == "li"
    with pytest.raises(SignInRefused, match="PIN not recognised"):
        _sign_in(store, 3, "1234")  # wang's old PIN is 5678: refused and counted
    assert Operator.get(Operator.name == "wang").failures == 1
    assert _sign_in(store, 3, "5678") == "wang"
    # New operators take free numbers; opening again migrates nothing more.
    set_operator(store.db, PIN_KEY, 4, "zhao", "cashier", "4321")
    store.close()
    again = open_store(rules)
    assert stored_schema(again.db).applied == max(MIGRATIONS)
    assert _sign_in(again, 4, "4321") == "zhao"
