"""HQ's schema history: the last release's databases (tests/hq/release, made by its code) upgrade
on SQLite and on PostgreSQL with every row intact; collectors refuse a schema of another version,
naming both; PostgreSQL keeps the append-only promise itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from peewee import Database, PostgresqlDatabase, SqliteDatabase

from terminal.hq import migrations
from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.cli import main
from terminal.hq.database import open_hq_database
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import database as store_database
from tests.hq.test_ingest_batches import apply, till_events
from tests.hq.test_postgres_collector import fresh_database
from tests.support.postgres import _binary
from tests.sync.harness import CARD_KEY, rules_data

RELEASE = Path(__file__).parent / "release"
Rows = dict[str, tuple[list[str], list[tuple[Any, ...]]]]


VERSIONS = (store_database.VERSION_KEY, store_database.APPLIED_KEY,  # in meta: what an
            migrations.VERSION_KEY)  # upgrade moves


def rows(db: Database) -> Rows:
    """Every table's columns and rows, in a stable order (the schema versions left out)."""
    found = {}
    for table in db.get_tables():
        columns = sorted(c.name for c in db.get_columns(table))
        body = db.execute_sql(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
        if table == "meta":
            body = [row for row in body if row[columns.index("key")] not in VERSIONS]
        found[table] = (columns, sorted(body, key=repr))
    return found


def assert_kept(before: Rows, after: Rows) -> None:
    """Each table of ``before`` is still there with its rows, its old columns' values the same
    (an upgrade may add columns and tables)."""
    assert set(before) <= set(after)
    for table, (columns, old) in before.items():
        new_columns, new = after[table]
        assert set(columns) <= set(new_columns), table
        keep = [new_columns.index(c) for c in columns]
        assert sorted((tuple(row[i] for i in keep) for row in new), key=repr) == old, table


def release_sqlite(tmp_path: Path) -> str:
    path = tmp_path / "hq-0.1.db"
    shutil.copy(RELEASE / "hq-0.1.db", path)
    return str(path)


def release_postgresql(postgres: Any) -> str:
    url = fresh_database(postgres)
    subprocess.run([_binary("psql"), "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f",
                    str(RELEASE / "hq-0.1.sql")], check=True, capture_output=True)
    return url


def plain(url: str) -> Database:
    """The database without any of HQ's opening (no migration, no check)."""
    if url.startswith("postgresql://"):
        return PostgresqlDatabase(url, prefer_psycopg3=True)
    return SqliteDatabase(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def release_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return release_sqlite(tmp_path)
    return release_postgresql(request.getfixturevalue("postgres"))


def test_the_last_release_upgrades_with_its_data_intact(release_url: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with plain(release_url) as db:
        before = rows(db)
    assert len(before["applied_event"][1]) == 36 and before["member_hold"][1]
    latest = migrations.latest()
    # A collector refuses it, naming both versions; nothing is changed by the refusal.
    with pytest.raises(migrations.SchemaMismatch,
                       match=f"version 0, older than this posterm-hq's {latest}: run "
                             "`posterm-hq db upgrade"):
        open_hq_database(release_url, migrate=False)
    assert main(["db", "upgrade", "--db", release_url]) == 0
    assert capsys.readouterr().out.strip() == f"schema version {latest} (this posterm-hq's: " \
                                              f"{latest})"
    with plain(release_url) as db:
        assert_kept(before, rows(db))
        if release_url.startswith("postgresql://"):  # migration 14 numbered the lots it found
            lots, unnumbered = db.execute_sql(
                "SELECT count(*), count(*) FILTER (WHERE l.earned_seq IS DISTINCT FROM e.seq) "
                "FROM lot l JOIN ledger_entry e ON e.id = l.id").fetchone()
            assert lots > 0 and unnumbered == 0
    # Upgraded, the collector opens it, the ledger adds up, and new events apply.
    ledger = ChainLedger(open_hq_database(release_url, migrate=False),
                         Rules.from_mapping(rules_data()), CARD_KEY)
    try:
        assert ledger.thread.call(ledger.store.check_invariants) == []
        # (An adjustment needs a manager HQ knows at the store: not this test's subject.)
        events = [e for e in till_events(tmp_path, "S003") if e.kind != "adjust"]
        outcomes = apply(ledger, events)
        assert set(outcomes) <= {"applied", "flagged"} and sum(outcomes.values()) == 17
        assert ledger.thread.call(ledger.store.check_invariants) == []
    finally:
        ledger.close()
    assert main(["db", "upgrade", "--db", release_url]) == 0  # again: nothing to do
    assert capsys.readouterr().out.startswith(f"schema version {latest} ")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_newer_schema_is_refused_naming_both_versions(kind: str, tmp_path: Path,
                                                        request: pytest.FixtureRequest) -> None:
    url = str(tmp_path / "hq.db") if kind == "sqlite" \
        else fresh_database(request.getfixturevalue("postgres"))
    open_hq_database(url).close()
    latest = migrations.latest()
    with plain(url) as db:
        db.execute_sql("UPDATE meta SET value = '99' WHERE key = 'hq_schema_version'")
    for migrate in (False, True):
        with pytest.raises(migrations.SchemaMismatch,
                           match=f"version 99, newer than this posterm-hq's {latest}"):
            open_hq_database(url, migrate=migrate)
    assert main(["db", "version", "--db", url]) == 1


def test_postgresql_refuses_to_rewrite_history(postgres: Any, tmp_path: Path) -> None:
    url = release_postgresql(postgres)
    assert main(["db", "upgrade", "--db", url]) == 0
    refused = [
        "UPDATE ledger_entry SET points = points + 1",
        "DELETE FROM ledger_entry",
        "UPDATE allocation SET points = 0",
        "DELETE FROM sale_line",
        "UPDATE applied_event SET outcome = 'refused'",
        "DELETE FROM applied_event",
        "TRUNCATE audit",
        "UPDATE lot SET points = points + 1",
        "UPDATE lot SET member_id = member_id || 'x'",
        "UPDATE lot SET earned_us = earned_us + 1, remaining = 0",
        "DELETE FROM lot",
    ]
    with plain(url) as db:
        for statement in refused:
            with pytest.raises(Exception, match="append-only"), db.atomic():
                db.execute_sql(statement)
        with db.atomic() as allowed:  # what the ledger itself changes of a lot
            db.execute_sql("UPDATE lot SET remaining = remaining, expires_us = expires_us + 1")
            allowed.rollback()
        indexes = {row[0] for row in db.execute_sql(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'lot'").fetchall()}
        assert "lot_open_by_expiry" in indexes
        assert "lot_member_id" not in indexes  # lot_member_id_expires_us serves (migration 27)
        # Room on member's pages for its balance updates to stay HOT (migration 18; pages
        # filled from the upgrade on).
        (options,) = db.execute_sql(
            "SELECT reloptions FROM pg_class WHERE relname = 'member'").fetchone()
        assert options == ["fillfactor=50"]


def test_postgresql_checks_the_ledgers_references_once_a_statement(postgres: Any) -> None:
    """Migration 29: an allocation's entry and lot and an entry's member are checked by a
    statement trigger instead of foreign keys (no row locks), by INSERT and by COPY; members,
    which entries name without a foreign key now, are never deleted nor renumbered."""
    url = release_postgresql(postgres)
    assert main(["db", "upgrade", "--db", url]) == 0
    with plain(url) as db:
        entry, lot, member = db.execute_sql(
            "SELECT e.id, l.id, e.member_id FROM ledger_entry e, lot l "
            "WHERE l.member_id = e.member_id LIMIT 1").fetchone()
        columns = "id, seq, member_id, kind, points, debt_delta, reason, operator, wall_us, trusted"
        refused: list[tuple[str, tuple[Any, ...], str]] = [
            ("INSERT INTO allocation (entry_id, lot_id, points) VALUES ('none', %s, -1)",
             (lot,), "allocation names an entry that is not in the ledger"),
            ("INSERT INTO allocation (entry_id, lot_id, points) VALUES (%s, %s, -1), "
             "(%s, 'none', -1)", (entry, lot, entry),
             "allocation names a lot that is not in the ledger"),
            (f"INSERT INTO ledger_entry ({columns}) VALUES "
             "('e-none', 999999, 'none', 'adjust', 1, 0, '', '', 1, true)", (),
             "ledger_entry names a member that is not in the ledger"),
            ("DELETE FROM member", (), "a member is never deleted nor renumbered"),
            ("TRUNCATE member CASCADE", (), "a member is never deleted nor renumbered"),
            ("UPDATE member SET id = id || 'x' WHERE id = %s", (member,),
             "a member is never deleted nor renumbered"),
        ]
        for statement, params, error in refused:
            with pytest.raises(Exception, match=error), db.atomic():
                db.execute_sql(statement, params)
        cursor = db.connection().cursor()
        with pytest.raises(Exception, match="allocation names a lot"), db.atomic(), \
                cursor.copy("COPY allocation (entry_id, lot_id, points) FROM STDIN") as copy:
            copy.write_row((entry, lot, -1))
            copy.write_row((entry, "none", -1))
        with db.atomic() as allowed:  # what writers do: rows naming what is there
            with cursor.copy("COPY allocation (entry_id, lot_id, points) FROM STDIN") as copy:
                copy.write_row((entry, lot, -1))
            db.execute_sql(f"INSERT INTO ledger_entry ({columns}) VALUES "
                           "('e-new', 999999, %s, 'adjust', 1, 0, '', '', 1, true)", (member,))
            db.execute_sql("UPDATE member SET balance = balance, id = id")
            allowed.rollback()
        keys = {name for (name,) in db.execute_sql(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid IN ('allocation'::regclass, 'ledger_entry'::regclass)").fetchall()}
        assert keys == set()


def test_postgresql_reads_entries_by_sale_through_the_partial_index(postgres: Any) -> None:
    """Migration 30: the entries' index by sale holds the entries of a sale only, and the reads
    by sale use it, with a generic plan (the server's prepared statements) too."""
    url = release_postgresql(postgres)
    assert main(["db", "upgrade", "--db", url]) == 0
    with plain(url) as db, db.atomic():
        (definition,) = db.execute_sql(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ledger_entry_by_sale'").fetchone()
        assert definition.endswith("(sale_id) WHERE (sale_id IS NOT NULL)")
        assert not db.execute_sql(
            "SELECT 1 FROM pg_indexes WHERE indexname = 'ledger_entry_sale_id'").fetchall()
        db.execute_sql("SET LOCAL enable_seqscan = off")
        db.execute_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        for condition, value in (("e.sale_id = $1", "'s1'"),
                                 ("e.sale_id = ANY($1)", "'{s1,s2}'::text[]")):
            kind = "text[]" if "ANY" in condition else "text"
            db.execute_sql(f"PREPARE by_sale ({kind}) AS SELECT e.id FROM ledger_entry e "
                           f"WHERE {condition} AND e.kind IN ('redeem', 'restore')")
            plan = " ".join(row[0] for row in db.execute_sql(
                f"EXPLAIN EXECUTE by_sale ({value})").fetchall())
            db.execute_sql("DEALLOCATE by_sale")
            assert "ledger_entry_by_sale" in plan, plan


def test_every_migration_has_both_kinds_and_the_versions_run_without_a_gap() -> None:
    history = migrations.history()
    assert [m.version for m in history] == list(range(1, len(history) + 1))
    assert all(m.name.startswith(f"v{m.version:04d}_") for m in history)


def test_a_migration_is_both_or_one_step_a_kind_never_a_mix() -> None:
    def step(db: Database) -> None:
        return None

    both = migrations._load(SimpleNamespace(__name__="v0099_same", both=step), 99, "v0099_same")
    assert both.sqlite is step and both.postgresql is step
    kinds = migrations._load(SimpleNamespace(__name__="v0099_kinds", sqlite=step,
                                             postgresql=step), 99, "v0099_kinds")
    assert kinds.sqlite is step and kinds.postgresql is step
    for wrong in ({"sqlite": step}, {"both": step, "postgresql": step}, {}):
        with pytest.raises(TypeError, match="must define both"):
            migrations._load(SimpleNamespace(__name__="v0099_wrong", **wrong), 99, "v0099_wrong")
