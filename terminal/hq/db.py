"""`posterm-hq db`: HQ's database schema (terminal.hq.migrations).

    posterm-hq db upgrade --db URL    migrate to this release's schema, print the version
    posterm-hq db version --db URL    print the stored version and this release's

Collectors, reports and the fleet view refuse a schema of another version, naming both: run
``upgrade`` when installing a new release, before starting its collectors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from peewee import Database

from terminal.hq import migrations, rollup
from terminal.hq.database import open_hq_database, snapshot, tune_for_reports
from terminal.hq.models import HQ_MODELS
from terminal.loyalty.store.models import MODELS

T = TypeVar("T")


def open_or_say(url: str, command: str) -> Database | None:
    """HQ's database for a command that reads it (never migrated), or None having printed why
    not (a schema of another version, not UTF8) as ``posterm-hq COMMAND: ...``."""
    try:
        return open_hq_database(url, migrate=False)
    except ValueError as exc:
        print(f"posterm-hq {command}: {exc}", file=sys.stderr)
        return None


def read_once(db: Database, read: Callable[[], T], zone: ZoneInfo | None = None,
              window_months: int = rollup.WINDOW_MONTHS) -> T:
    """``read()`` with HQ's models bound, in one snapshot of the ledger (a report's figures agree
    with each other while collectors write), then ``db`` closed: a report command's one read.
    With the rules' ``zone`` (and tier window), the roll-ups catch up first (a report that
    reads them)."""
    try:
        if zone is not None:
            rollup.catch_up(db, zone, window_months)
        with db.bind_ctx(MODELS + HQ_MODELS), snapshot(db):
            tune_for_reports(db)
            return read()
    finally:
        db.close()


def print_json(data: Any) -> None:
    """A report as ``--json`` prints it: keys sorted, Chinese as itself."""
    print(json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("upgrade", "version"))
    parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")


def run(args: argparse.Namespace) -> int:
    try:
        db: Database = open_hq_database(args.db, migrate=args.action == "upgrade")
    except ValueError as exc:
        if args.action == "version" and isinstance(exc, migrations.SchemaMismatch):
            print(f"posterm-hq db: {exc}")
            return 1
        print(f"posterm-hq db {args.action}: {exc}", file=sys.stderr)
        return 1
    try:
        version = migrations.stored_version(db)
    finally:
        db.close()
    print(f"schema version {version} (this posterm-hq's: {migrations.latest()})")
    return 0
