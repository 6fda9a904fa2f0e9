"""Several processes opening one new HQ database at once (a collector and the member-request
process it forks both start on an empty SQLite file): every one of them opens it, the schema
ends at this software's version, and no migration runs twice."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from peewee import Database

from terminal.hq import migrations
from terminal.hq.database import open_hq_database
from terminal.loyalty.store import database as store_database
from tests.hq.test_postgres_collector import fresh_database

T = TypeVar("T")

PROCESSES = 4


def _open(url: str, start: Any, results: Any, migrate: bool = False) -> None:
    if start is not None:
        start.wait(60)  # every process calls open_hq_database at the same moment
    try:
        db = open_hq_database(url, migrate=migrate)
    except Exception as exc:  # the parent reports what each process met
        results.put(f"{type(exc).__name__}: {exc}")
        return
    results.put(migrations.stored_version(db))
    db.close()


def _open_at_once(url: str) -> list[object]:
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(PROCESSES), context.Queue()
    processes = [context.Process(target=_open, args=(url, start, results))
                 for _ in range(PROCESSES)]
    for process in processes:
        process.start()
    found = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(60)
    return found


def test_processes_opening_one_new_sqlite_database_at_once_all_open_it(tmp_path: Path) -> None:
    assert _open_at_once(f"sqlite:///{tmp_path / 'hq.db'}") == [migrations.latest()] * PROCESSES


def _waits_on_flock(pid: int) -> bool:
    """Whether ``pid`` is blocked on a flock (a "->" line of /proc/locks names the waiters)."""
    return any(line.split()[1] == "->" and line.split()[2] == "FLOCK" and str(pid) in line.split()
               for line in Path("/proc/locks").read_text().splitlines())


def test_a_process_opening_while_another_migrates_waits_for_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race deterministically: one process stopped inside a migration half-way through the
    history (a version stored, not the latest), another opening the database meanwhile without
    migrating. It must wait, not refuse the schema as older than its own."""
    url = f"sqlite:///{tmp_path / 'hq.db'}"
    context = multiprocessing.get_context("fork")
    inside, go = context.Event(), context.Event()
    real = migrations.history()
    middle = real[len(real) // 2]

    def held(db: Database) -> None:
        inside.set()
        go.wait(120)
        middle.sqlite(db)

    history = [replace(m, sqlite=held) if m is middle else m for m in real]
    monkeypatch.setattr(migrations, "history", lambda: history)  # the children fork with it
    first, second = context.Queue(), context.Queue()
    migrating = context.Process(target=_open, args=(url, None, first, True))
    migrating.start()
    assert inside.wait(120)
    opening = context.Process(target=_open, args=(url, None, second))
    opening.start()
    deadline = time.monotonic() + 120
    while second.empty() and not _waits_on_flock(opening.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.set()
    found = [first.get(timeout=120), second.get(timeout=120)]
    for process in (migrating, opening):
        process.join(60)
    assert found == [migrations.latest()] * 2


def test_processes_opening_one_new_postgresql_database_at_once_all_open_it(
        postgres: Any) -> None:
    assert _open_at_once(fresh_database(postgres)) == [migrations.latest()] * PROCESSES


def _stale_first(real: Callable[[Database], T], stale: T) -> Callable[[Database], T]:
    """``real`` (a reader of the stored schema) answering ``stale`` once (the read before another
    process's migration committed), then the truth."""
    calls = [0]

    def version(db: Database) -> T:
        calls[0] += 1
        return stale if calls[0] == 1 else real(db)

    return version


def test_a_migration_applied_meanwhile_is_not_run_again(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    db = open_hq_database(f"sqlite:///{tmp_path / 'hq.db'}")
    ran: list[int] = []
    history = [migrations.Migration(m.version, m.name, lambda _db, v=m.version: ran.append(v),
                                    lambda _db, v=m.version: ran.append(v))
               for m in migrations.history()]
    monkeypatch.setattr(migrations, "history", lambda: history)
    monkeypatch.setattr(migrations, "stored_version",
                        _stale_first(migrations.stored_version, migrations.latest() - 2))
    assert migrations.upgrade(db) == migrations.latest()
    assert ran == []
    db.close()


def test_a_store_migration_applied_meanwhile_is_not_run_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = store_database.open_database(tmp_path / "till.db")
    latest = max(store_database.MIGRATIONS)
    ran: list[int] = []
    steps = {version: replace(step, run=lambda _db, _migrator, v=version: ran.append(v))
             for version, step in store_database.MIGRATIONS.items()}
    stale = store_database.StoredSchema(
        latest - 1, store_database.compatible_from(store_database.MIGRATIONS, latest - 1))
    monkeypatch.setattr(store_database, "stored_schema",
                        _stale_first(store_database.stored_schema, stale))
    assert store_database.upgrade(db, steps) == latest
    assert ran == []
    db.close()
