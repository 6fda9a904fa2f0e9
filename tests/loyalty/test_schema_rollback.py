"""A rollback across additive schema steps: the release already in the field (schema 5, whose
check is ``current > target`` on meta ``schema_version``) runs on a ledger today's software
migrated, and today's software runs on a ledger a newer release stepped additively; a ledger
that needs newer software is refused, naming both schemas. Real SQLite files, WAL,
synchronous=FULL, as ``open_database`` opens them."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from peewee import SqliteDatabase
from playhouse.migrate import SqliteMigrator

from terminal.loyalty.rules import Rules
from terminal.loyalty.store import LedgerStore, StorageError, database, open_database
from terminal.loyalty.store.models import Meta, Operator
from terminal.loyalty.store.operators import pin_mac, set_operator

from .conftest import at, register, sell

CARD = "8000000001"
PIN_KEY = b"0123456789abcdef0123456789abcdef-terminal-T01"
# The migrations of the release in the field (schema 5), as it runs them.
SHIPPED = {1: database._create_v1, 2: database._add_card_state_v2, 3: database.operators_sign_in,
           4: database._index_open_lots_by_member_v4, 5: database._held_bundle_v5}


def _shipped_schema_version(db: SqliteDatabase) -> int:
    if not db.table_exists(Meta._meta.table_name):
        return 0
    row = Meta.get_or_none(Meta.key == "schema_version")
    return int(row.value) if row else 0


def _shipped_upgrade(db: SqliteDatabase, migrations: object, record: object = None) -> int:
    """The schema-5 release's ``upgrade`` as shipped, its migrations 1-5 (whatever today's
    caller passes)."""
    steps = SHIPPED
    current = _shipped_schema_version(db)
    target = max(steps)
    if current > target:
        raise StorageError(
            f"{db.database}: schema version {current} is newer than this software ({target}); "
            "install the newer release or restore its database"
        )
    migrator = SqliteMigrator(db)
    for version in range(current + 1, target + 1):
        with database.write_transaction(db):
            if _shipped_schema_version(db) >= version:
                continue
            steps[version](db, migrator)
            Meta.replace(key="schema_version", value=str(version)).execute()
    return target


def _shipped_set_operator(db: SqliteDatabase, number: int, name: str, role: str,
                          pin: str) -> None:
    """The schema-5 release's ``set_operator`` write: no greeted name."""
    with database.write_transaction(db):
        Operator.replace(name=name, number=number, role=role, pin_mac=pin_mac(PIN_KEY, number, pin),
                         pin_salt=None, pin_hash=None, failures=0, locked_until_us=None,
                         active=True).execute()


def _meta(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as raw:
        return dict(raw.execute("SELECT key, value FROM meta WHERE key LIKE 'schema_%'"))


def _greeted(store: LedgerStore, number: int, pin: str) -> str:
    return store.sign_in(PIN_KEY, number, pin, store.moment(at("2026-03-05 10:00"))).greeted


def test_the_release_in_the_field_runs_on_a_ledger_migrated_today(
        open_store: Callable[[Rules], LedgerStore], rules: Rules, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    today = open_store(rules)
    register(today, CARD)
    sell(today, "S1", [("A", "fresh", 2, 1250)])
    set_operator(today.db, PIN_KEY, 1, "cashier", "cashier", "1111", shown="李娜")
    set_operator(today.db, PIN_KEY, 2, "manager", "manager", "2222", shown="王强")
    today.close()
    latest = str(max(database.MIGRATIONS))
    assert _meta(tmp_path / "term.db") == {"schema_version": "5", "schema_applied": latest}

    # Rolled back: the shipped release opens it, sells, and gives number 1 to someone else.
    monkeypatch.setattr(database, "upgrade", _shipped_upgrade)
    rolled_back = open_store(rules)
    sell(rolled_back, "S2", [("A", "fresh", 1, 5000)], when="2026-03-03 12:00")
    _shipped_set_operator(rolled_back.db, 1, "cashier", "cashier", "3333")
    assert rolled_back.check_invariants() == []
    rolled_back.close()
    monkeypatch.undo()

    # Today's release again: nothing to migrate; the sale is there; the new cashier is greeted
    # by their id, never by the name set for the one before; the manager kept theirs.
    again = open_store(rules)
    assert _meta(tmp_path / "term.db") == {"schema_version": "5", "schema_applied": latest}
    assert [r[0] for r in again.db.execute_sql("SELECT id FROM sale ORDER BY seq")] \
        == ["S1", "S2"]
    assert _greeted(again, 1, "3333") == "cashier"
    assert _greeted(again, 2, "2222") == "王强"
    assert again.check_invariants() == []


def test_a_ledger_a_newer_release_stepped_additively_is_opened_as_it_is(
        open_store: Callable[[Rules], LedgerStore], rules: Rules, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    open_store(rules).close()
    following = max(database.MIGRATIONS) + 1
    with sqlite3.connect(tmp_path / "term.db") as raw:  # what that release's step left
        raw.execute("CREATE TABLE future_note (id TEXT PRIMARY KEY, note TEXT NOT NULL)")
        raw.execute("INSERT OR REPLACE INTO meta VALUES ('schema_applied', ?)", (str(following),))
    with caplog.at_level(logging.WARNING):
        store = open_store(rules)
    assert f"ledger schema {following}, applied by a newer release, is above this software's " \
           f"({following - 1})" in caplog.text
    register(store, CARD)
    sell(store, "S1", [("A", "fresh", 2, 1250)])
    assert store.check_invariants() == []
    store.close()
    assert _meta(tmp_path / "term.db") == {"schema_version": "5",
                                           "schema_applied": str(following)}


def test_a_ledger_needing_newer_software_is_refused_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "term.db"
    open_database(path).close()
    following = max(database.MIGRATIONS) + 1
    with sqlite3.connect(path) as raw:  # a breaking step of a newer release
        raw.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                        [("schema_applied", str(following)), ("schema_version", str(following))])
    with pytest.raises(StorageError, match=(
            f"schema version {following} is newer than this software \\({following - 1}\\): a "
            f"release of schema {following} migrated the ledger so that only software of "
            f"schema {following} or newer runs on it; install that release")):
        open_database(path)
    assert _meta(path) == {"schema_version": str(following), "schema_applied": str(following)}


def test_a_breaking_step_raises_the_level_older_software_compares(tmp_path: Path) -> None:
    db = open_database(tmp_path / "term.db")
    following = max(database.MIGRATIONS) + 1

    def add_table(ledger: SqliteDatabase, migrator: SqliteMigrator) -> None:
        ledger.execute_sql("CREATE TABLE future_note (id TEXT PRIMARY KEY)")

    for additive, level in ((True, 5), (False, following)):
        step = database.Migration(add_table, additive=additive)
        with database.write_transaction(db):
            db.execute_sql("DROP TABLE IF EXISTS future_note")
            Meta.replace(key="schema_applied", value=str(following - 1)).execute()
        assert database.upgrade(db, {**database.MIGRATIONS, following: step}) == following
        assert database.stored_schema(db) == (following, level)
    db.close()
