"""Two releases made at once never share a version (pushing.made), on SQLite and PostgreSQL:
two approvals in two processes (as two consoles, or a console and the command line; in one
process the models' binding already takes them in turn), each on its own connection; and on
PostgreSQL the race forced (the first approval holds its transaction open after its insert
until the second is seen waiting on the version's key), so the retry is what saves it."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from peewee import PostgresqlDatabase

from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.models import ConsoleAudit
from terminal.hq.console.roles import Principal
from terminal.hq.rules_studio import releases
from terminal.hq.rules_studio.models import BundleRelease
from terminal.hq.rules_studio.pushing import made
from tests.rules_studio.test_releases import ADMIN, ADMIN2, MKT, _content, _pushed, _signer

GUARD = 60.0  # seconds: only a failure waits this long


SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "hq.db")
    from tests.hq.test_postgres_collector import fresh_database
    return fresh_database(request.getfixturevalue("postgres"))


def _staged(url: str, count: int) -> list[int]:
    db = ConsoleDb(url)
    try:
        signer = _signer()
        return [_pushed(db, db.call(releases.stage, MKT, _content(), "S001", signer)).version
                for _ in range(count)]
    finally:
        db.close()


def approve(url: str, who: Principal, version: int, start: Any, out: Any,
            inserted: Any = None, proceed: Any = None) -> None:
    """One approval in a process of its own (its own console database): after ``start``;
    with ``inserted``, the approval says so once its release is inserted and holds its
    transaction until ``proceed``; with ``proceed`` alone, it begins once ``start`` is set."""
    db = ConsoleDb(url)
    step: Callable[..., BundleRelease] = releases.approve
    if inserted is not None:
        def step(*args: Any) -> BundleRelease:
            row = releases.approve(*args)
            inserted.set()
            assert proceed.wait(GUARD)
            return row
    try:
        start.wait(GUARD)
        row = asyncio.run(made(db, step, who, version, _signer()))
        out.put((who.name, row.version))
    except Exception as exc:  # the test reads it
        out.put((who.name, f"{type(exc).__name__}: {exc}"))
    finally:
        db.close()


def _results(processes: list[Any], out: Any) -> dict[str, Any]:
    found = dict(out.get(timeout=GUARD) for _ in processes)
    for process in processes:
        process.join(GUARD)
        assert process.exitcode == 0
    return found


def _chain_releases(url: str) -> tuple[list[tuple[int, int]], int]:
    db = ConsoleDb(url)
    try:
        return db.call(lambda: (
            [(r.version, r.source_version) for r in BundleRelease.select().where(
                BundleRelease.kind == "chain").order_by(BundleRelease.version)],
            ConsoleAudit.select().where(ConsoleAudit.action == "rules.chain").count()))
    finally:
        db.close()


def test_two_approvals_at_once_get_two_versions(url: str) -> None:
    first, second = _staged(url, 2)
    start, out = SPAWN.Barrier(2), SPAWN.Queue()
    processes = [SPAWN.Process(target=approve, args=(url, who, version, start, out))
                 for who, version in ((ADMIN, first), (ADMIN2, second))]
    for process in processes:
        process.start()
    found = _results(processes, out)
    assert sorted(found.values()) == [second + 1, second + 2], found
    chain, audited = _chain_releases(url)
    assert sorted(source for _, source in chain) == [first, second] and audited == 2


def _waiting_on_a_lock(url: str) -> Callable[[], bool]:
    name = url.rsplit("/", 1)[1]
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    watcher = PostgresqlDatabase(name, host="127.0.0.1", port=port, user="postgres")

    def waiting() -> bool:
        return bool(watcher.execute_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
            "AND wait_event_type = 'Lock'", (name,)).fetchone()[0])
    return waiting


@pytest.mark.slow
@pytest.mark.parametrize("same", [False, True], ids=["two-staged", "one-staged-twice"])
def test_a_forced_race_on_postgresql_is_retried(postgres, same: bool) -> None:
    """The first approval inserts its version and holds its transaction; the second reads the
    same highest version, and its insert waits on the first's key; the first commits. The
    second then runs again: a new version, or (the same staged release) 'approved already'."""
    from tests.hq.test_postgres_collector import fresh_database
    url = fresh_database(postgres)
    first, second = _staged(url, 2)
    inserted, proceed, out = SPAWN.Event(), SPAWN.Event(), SPAWN.Queue()
    go = SPAWN.Event()
    go.set()
    processes = [
        SPAWN.Process(target=approve, args=(url, ADMIN, first, go, out, inserted, proceed)),
        SPAWN.Process(target=approve, args=(url, ADMIN2, first if same else second,
                                            inserted, out))]
    for process in processes:
        process.start()
    assert inserted.wait(GUARD)
    waiting, deadline = _waiting_on_a_lock(url), time.monotonic() + GUARD
    while not waiting():  # the condition polled, never a sleep in its place
        assert time.monotonic() < deadline, "the second approval never waited"
        time.sleep(0.02)
    proceed.set()
    found = _results(processes, out)
    assert found["boss"] == second + 1, found
    if same:
        assert "approved already" in found["deputy"], found
    else:
        assert found["deputy"] == second + 2, found
    assert _chain_releases(url)[1] == (1 if same else 2)
