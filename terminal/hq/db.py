"""`posterm-hq db`: HQ's database schema (terminal.hq.migrations).

    posterm-hq db upgrade --db URL    migrate to this release's schema, print the version
    posterm-hq db version --db URL    print the stored version and this release's

Collectors, reports and the fleet view refuse a schema of another version, naming both: run
``upgrade`` when installing a new release, before starting its collectors.
"""

from __future__ import annotations

import argparse
import sys

from peewee import Database

from terminal.hq import migrations
from terminal.hq.database import open_hq_database


def open_or_say(url: str, command: str) -> Database | None:
    """HQ's database for a command that reads it (never migrated), or None having printed why
    not (a schema of another version, not UTF8) as ``posterm-hq COMMAND: ...``."""
    try:
        return open_hq_database(url, migrate=False)
    except ValueError as exc:
        print(f"posterm-hq {command}: {exc}", file=sys.stderr)
        return None


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
