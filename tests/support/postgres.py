"""A private PostgreSQL server: initdb in a temporary directory, a free loopback port.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user (the
process is still ours: we hold its PID and stop it).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from terminal.core.processes import stop_process
from tests.support.mosquitto import free_port


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed")
    return found


def _run_as() -> dict[str, Any]:
    """Popen arguments that drop root to the postgres user; empty when not root."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root and no 'postgres' user exists to run the server "
                           "(PostgreSQL refuses root)") from None
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


class Postgres:
    """``start()`` returns nothing; ``dsn`` connects as superuser ``postgres`` to ``posterm``."""

    def __init__(self, directory: Path | None = None, *, replicated: bool = False) -> None:
        """``replicated``: keep full-page writes on, which a standby's base backup needs."""
        # The postgres user must reach the directory, so by default it is a fresh one in /tmp
        # (pytest's own temporary tree is private to root); it is removed on stop().
        self._owned = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="posterm-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/posterm"
        self._as = _run_as()
        self._settings = ["-c", "fsync=off"]
        if not replicated:
            self._settings += ["-c", "full_page_writes=off"]

    def _prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as:
            os.chown(self.directory, self._as["user"], self._as["group"])
        result = subprocess.run([_binary("initdb"), "-D", str(self.data), "-U", "postgres",
                                 "-A", "trust", "--no-sync", "-E", "UTF8"],
                                capture_output=True, cwd=self.directory, **self._as)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr.decode(errors='replace')}")

    def start(self, timeout: float = 30.0) -> None:
        if not self.data.exists():
            self._prepare()
        log = open(self.directory / "postgres.log", "ab")  # noqa: SIM115 (handed to the child)
        self.process = subprocess.Popen(
            [_binary("postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.directory}",
             *self._settings],
            stdout=log, stderr=log, cwd=self.directory, **self._as)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError("postgres exited at start:\n" + self.log_text())
            ready = subprocess.run([_binary("pg_isready"), "-h", "127.0.0.1", "-p",
                                    str(self.port)], capture_output=True)
            if ready.returncode == 0:
                self._create_database()
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"postgres did not accept on port {self.port} within {timeout}s")

    def _create_database(self) -> None:
        result = subprocess.run([_binary("createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                                 "-U", "postgres", "posterm"], capture_output=True)
        if result.returncode != 0 and b"already exists" not in result.stderr:
            raise RuntimeError(f"createdb failed: {result.stderr.decode()}")

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is not None:
            # Fast shutdown (SIGINT): it rolls back what runs and closes every session. "Smart"
            # (SIGTERM) waits for the clients to leave, a timed-out test's runaway query
            # included, and a SIGKILL of the postmaster alone would leave its backends running;
            # so immediate shutdown (SIGQUIT, which stops them too) comes before that.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                stop_process(process, timeout, signal.SIGQUIT)
        if self._owned:
            shutil.rmtree(self.directory, ignore_errors=True)

    def log_text(self) -> str:
        path = self.directory / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> Postgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Standby(Postgres):
    """A hot standby of ``primary`` (started with ``replicated=True``) streaming its WAL: a base
    backup by ``pg_basebackup -R``, then read-only queries on its own free port."""

    def __init__(self, primary: Postgres) -> None:
        super().__init__(replicated=True)
        self.primary = primary

    def _prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as:
            os.chown(self.directory, self._as["user"], self._as["group"])
        result = subprocess.run(
            [_binary("pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port), "-U",
             "postgres", "-D", str(self.data), "-R", "-X", "stream", "--no-sync",
             "--checkpoint=fast"],  # the default, spread, waits minutes for a checkpoint
            capture_output=True, cwd=self.directory, **self._as)
        if result.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed: {result.stderr.decode(errors='replace')}")

    def _create_database(self) -> None:
        """The primary's databases are already here (and a standby creates none)."""

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def caught_up(self, timeout: float = 30.0) -> None:
        """Wait until this standby has replayed everything the primary has written so far."""
        with psycopg.connect(self.primary.dsn, autocommit=True) as primary:
            target = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.dsn, autocommit=True) as standby:
            while time.monotonic() < deadline:
                replayed = standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                           (target,)).fetchone()[0]
                if replayed:
                    return
                time.sleep(0.05)
        raise TimeoutError(f"the standby did not replay up to {target} within {timeout}s")
