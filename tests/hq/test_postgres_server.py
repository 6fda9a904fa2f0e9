"""The tests' own PostgreSQL servers stop whole, whatever a test left running on them."""

from __future__ import annotations

import os
import threading
import time

import psycopg

from tests.support.postgres import Postgres


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_ends_a_server_with_a_query_still_running() -> None:
    """A timed-out test can leave a query running; stopping its server must end the query's
    backend too (a "smart" shutdown waited for it, and a SIGKILL of the postmaster alone left
    the backend running on its own)."""
    server = Postgres()
    server.start()
    session = psycopg.connect(server.dsn, autocommit=True)
    backend = session.execute("SELECT pg_backend_pid()").fetchone()[0]
    ended: list[BaseException] = []

    def runaway() -> None:
        try:
            session.execute("SELECT pg_sleep(3600)")
        except psycopg.Error as exc:  # the shutdown ends it
            ended.append(exc)

    thread = threading.Thread(target=runaway)
    thread.start()
    while not session.closed and not _query_started(server, backend):
        time.sleep(0.05)
    server.stop(timeout=30)
    thread.join(60)
    session.close()
    assert not thread.is_alive() and ended, "the running query was not ended by the stop"
    assert not _alive(backend), f"backend {backend} outlived its server"


def _query_started(server: Postgres, backend: int) -> bool:
    with psycopg.connect(server.dsn, autocommit=True) as probe:
        row = probe.execute("SELECT query FROM pg_stat_activity WHERE pid = %s",
                            (backend,)).fetchone()
    return row is not None and "pg_sleep" in row[0]
