"""A rollback never switches to a release that cannot open the ledger (docs/field.md section 5).

The ledgers are real SQLite files migrated by today's code plus a simulated future step 8; the
update agent sees them only through what the opener recorded in the state directory, as on a
box, where it runs as root and must not open the ledger."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from peewee import SqliteDatabase

from terminal.field import update
from terminal.field.ledger_guard import LedgerLevel, read_level, recorder
from terminal.loyalty.store import database
from terminal.loyalty.store.database import MIGRATIONS, Migration, open_database

BOOT = "boot-1"
TODAY = max(MIGRATIONS)
FUTURE = TODAY + 1


def _future_step(db: SqliteDatabase, migrator: object) -> None:
    db.execute_sql("CREATE TABLE future_note (id INTEGER PRIMARY KEY)")


def _crash(db: SqliteDatabase, migrator: object) -> None:
    raise RuntimeError("power cut in the middle of step 8")


def _ledger(state: Path, future: Migration | None) -> None:
    """The till's ledger as the daemon opens it (today's schema), then a future release's
    opening with step 8 (None: no future release)."""
    db = open_database(state / "ledger.db", recorder(state))
    try:
        if future is not None:
            database.upgrade(db, {**MIGRATIONS, FUTURE: future}, recorder(state))
    finally:
        db.close()


def _on_trial(tmp_path: Path, previous_schema: int | None) -> tuple[Path, Path]:
    """1.0.0 ran (and said it runs ``previous_schema``), 2.0.0 is on trial since uptime 100."""
    home, state = tmp_path / "home", tmp_path / "state"
    state.mkdir(parents=True)
    for version in ("1.0.0", "2.0.0"):
        (home / "releases" / version).mkdir(parents=True)
    releases = update.Releases(home)
    releases.point("previous", "1.0.0")
    releases.point("current", "2.0.0")
    releases.save_trial(update.Trial("2.0.0", "1.0.0", 60, BOOT, 100.0))
    update.mark_healthy(state, "1.0.0", previous_schema)
    return home, state


def _cli(home: Path, state: Path, action: str) -> int:
    parser = argparse.ArgumentParser()
    update.configure(parser)
    return update.run(parser.parse_args([action, "--home", str(home), "--state-dir", str(state)]))


def _current(home: Path) -> str | None:
    return update.Releases(home).version("current")


def test_a_failed_trial_after_a_breaking_step_keeps_the_release_and_says_why(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home, state = _on_trial(tmp_path, TODAY)
    _ledger(state, Migration(_future_step, additive=False))
    assert read_level(state) == LedgerLevel(FUTURE, FUTURE)

    assert "on trial" in update.check(home, state, update.Clock(BOOT, 159.0))
    with pytest.raises(update.RollbackRefused) as refused:
        update.check(home, state, update.Clock(BOOT, 160.0))
    said = str(refused.value)
    assert said.startswith("2.0.0 was not healthy within 60 s: not rolled back to 1.0.0")
    assert f"needs software of schema {FUTURE} or newer" in said
    assert f"1.0.0 runs ledger schema {TODAY} at most" in said
    assert f"install a release of schema {FUTURE} or newer" in said
    assert _current(home) == "2.0.0"
    assert not update.Releases(home).has_failed("2.0.0")
    assert update.Releases(home).trial() is None  # nothing left for the check to do
    status = update.status_lines(home, state)
    assert f"ledger: needs schema {FUTURE}, applied {FUTURE}" in status
    assert f"ROLLBACK REFUSED: {said}" in status
    assert _cli(home, state, "status") == 0
    assert "ROLLBACK REFUSED: 2.0.0 was not healthy" in capsys.readouterr().out


def test_the_schema_is_recorded_before_a_breaking_step_runs(tmp_path: Path) -> None:
    """A step that dies half-way (the power cut) leaves a record that says too much, so the
    rollback is refused rather than made to a release the ledger may refuse."""
    home, state = _on_trial(tmp_path, TODAY)
    with pytest.raises(RuntimeError, match="power cut"):
        _ledger(state, Migration(_crash, additive=False))
    assert read_level(state) == LedgerLevel(FUTURE, FUTURE)
    with pytest.raises(update.RollbackRefused, match=f"schema {FUTURE} or newer"):
        update.check(home, state, update.Clock(BOOT, 160.0))
    assert _current(home) == "2.0.0"


def test_a_rollback_by_hand_is_refused_the_same_way(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home, state = _on_trial(tmp_path, TODAY)
    _ledger(state, Migration(_future_step, additive=False))

    assert _cli(home, state, "rollback") == 1
    err = capsys.readouterr().err
    assert err.startswith("update rollback: rolled back by hand: not rolled back to 1.0.0")
    assert f"schema {FUTURE} or newer" in err and f"ledger schema {TODAY} at most" in err
    assert _current(home) == "2.0.0"
    assert update.Releases(home).trial() is not None  # by hand: the trial goes on


def test_an_additive_step_still_rolls_back(tmp_path: Path) -> None:
    home, state = _on_trial(tmp_path, TODAY)
    _ledger(state, Migration(_future_step, additive=True))
    assert read_level(state) == LedgerLevel(5, FUTURE)

    outcome = update.check(home, state, update.Clock(BOOT, 160.0))
    assert outcome == "rolled back to 1.0.0: 2.0.0 was not healthy within 60 s"
    assert _current(home) == "1.0.0"
    assert "ROLLBACK REFUSED" not in "\n".join(update.status_lines(home, state))


def test_a_release_that_never_said_its_schema_is_taken_to_run_5(tmp_path: Path) -> None:
    """The releases shipped before the record (schema 5 at most): today's ledger (5, additive 6
    and 7 applied) still rolls back to them, one a breaking step 8 migrated does not."""
    home, state = _on_trial(tmp_path, None)
    assert "schema" not in (state / "healthy-1.0.0").read_text()
    _ledger(state, None)
    assert read_level(state) == LedgerLevel(5, TODAY)
    assert update.rollback(home, "by hand", state) == "rolled back to 1.0.0: by hand"

    home, state = _on_trial(tmp_path / "next", None)
    _ledger(state, Migration(_future_step, additive=False))
    with pytest.raises(update.RollbackRefused,
                       match="never said its schema here: taken to run ledger schema 5"):
        update.rollback(home, "by hand", state)
    assert _current(home) == "2.0.0"


def test_no_breaking_step_runs_unrecorded(tmp_path: Path) -> None:
    """A state directory the opener cannot write: an additive step still runs (logged), a
    breaking one does not, so the record never says less than the ledger needs."""

    def read_only(schema: database.StoredSchema) -> None:
        raise PermissionError("read-only file system")

    db = open_database(tmp_path / "ledger.db")
    try:
        with pytest.raises(database.StorageError, match=f"will need schema {FUTURE}"):
            database.upgrade(db, {**MIGRATIONS, FUTURE: Migration(_future_step, additive=False)},
                             read_only)
        assert database.stored_schema(db) == database.StoredSchema(TODAY, 5)
        assert database.upgrade(
            db, {**MIGRATIONS, FUTURE: Migration(_future_step, additive=True)}, read_only
        ) == FUTURE
        assert database.stored_schema(db) == database.StoredSchema(FUTURE, 5)
    finally:
        db.close()
