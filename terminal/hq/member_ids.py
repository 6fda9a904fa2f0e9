"""Many members' keys in one statement (a campaign's segment, which may hold every member of the
chain; a bonus grant's chunk: terminal/hq/member_ops/bulk.py): the keys go to the database as one
parameter, never one per id (an ``IN (...)`` binds one parameter per id: PostgreSQL takes at
most 65,535, SQLite 32,766, and building and sending 100,000 of them cost more than the query;
bench/bench_care.py). PostgreSQL gets an array (``= ANY(%s)``), SQLite a JSON array read by its
``json_each``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from peewee import Database


def among(db: Database, column: str, ids: Iterable[str]) -> tuple[str, Any]:
    """A condition that ``column`` is one of ``ids``, and its one parameter, for a statement run
    on ``db`` (a database or the models' proxy)."""
    wanted = sorted(set(ids))
    if db.param == "%s":  # PostgreSQL (psycopg)
        return f"{column} = ANY(%s)", wanted
    return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(wanted)
