"""Whether a rollback leaves a till that can open its ledger, known without opening the ledger.

The update agent runs as root, and root opening the WAL ledger could leave ``-wal``/``-shm``
files the daemon's user cannot open (terminal.field.operators checks the owner for the same
reason). So the agent reads two small files the daemon writes as its own user in its state
directory (docs/field.md section 5):

- ``ledger-schema.json``: the ledger's schema numbers, written *before* a migration runs with
  what the ledger will need after it (a crash mid-migration leaves a record that says too much,
  never too little): ``compatible`` (the lowest software schema that may run on it) and
  ``applied``. Written by every opener that passes :func:`recorder` (the daemon, ``posterm
  operator``); a new record is written only when it changes.
- ``healthy-<version>``: the release's health mark (terminal.field.update.mark_healthy), which
  says the highest ledger schema that release runs (``schema N``). A release that has never
  been healthy here, or that marked itself before this record existed, says nothing: it is
  taken to run :data:`UNRECORDED_SCHEMA`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from terminal.core.atomic import write_atomic

if TYPE_CHECKING:
    from terminal.loyalty.store.database import StoredSchema

RECORD = "ledger-schema.json"
# Every release shipped before releases said their schema runs schema 5 at most (5 is what
# ledgers in the field say), and none of the later ones needs more than 5 of a ledger (6 and 7
# are additive): taking an unrecorded release to run 5 refuses a rollback to it exactly when a
# breaking step above 5 has run, and changes nothing before.
UNRECORDED_SCHEMA = 5
SCHEMA_LINE = re.compile(r"^schema (\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class LedgerLevel:
    compatible: int  # the lowest software schema that may run on the ledger
    applied: int  # the last migration applied (or about to be)


def recorder(state_dir: Path) -> Callable[[StoredSchema], None]:
    """What an opener gives ``open_database``: records the numbers it is about to leave."""

    def record(schema: StoredSchema) -> None:
        write_level(state_dir, LedgerLevel(schema.compatible, schema.applied))

    return record


def write_level(state_dir: Path, level: LedgerLevel) -> None:
    if read_level(state_dir) == level:
        return
    body = {"compatible": level.compatible, "applied": level.applied}
    write_atomic(state_dir / RECORD, json.dumps(body) + "\n", 0o644)


def read_level(state_dir: Path) -> LedgerLevel | None:
    """The recorded numbers; None when none are recorded or the record is unreadable (then a
    release from before the record is the one that opened the ledger last: 5 at most)."""
    try:
        body = json.loads((state_dir / RECORD).read_text(encoding="utf-8"))
        return LedgerLevel(int(body["compatible"]), int(body["applied"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def health_mark(schema: int | None) -> str:
    """The body of ``healthy-<version>``: when, and the ledger schema this release runs."""
    return f"{time.time():.0f}\n" + (f"schema {schema}\n" if schema is not None else "")


def release_schema(state_dir: Path, version: str) -> int | None:
    """The highest ledger schema ``version`` said it runs when it was healthy here, or None."""
    try:
        found = SCHEMA_LINE.search((state_dir / f"healthy-{version}").read_text())
    except (OSError, UnicodeDecodeError):
        return None
    return int(found.group(1)) if found else None


def rollback_refusal(state_dir: Path, current: str, previous: str) -> str | None:
    """Why switching from ``current`` back to ``previous`` would strand the till, or None."""
    level = read_level(state_dir)
    said = release_schema(state_dir, previous)
    runs = UNRECORDED_SCHEMA if said is None else said
    if level is None or level.compatible <= runs:
        return None
    how = (f"runs ledger schema {runs} at most" if said is not None else
           f"never said its schema here: taken to run ledger schema {runs} at most")
    return (f"not rolled back to {previous}: the ledger needs software of schema "
            f"{level.compatible} or newer (applied {level.applied}, recorded in "
            f"{state_dir / RECORD}) and {previous} {how}, so it could not start; {current} "
            f"stays. Fix what keeps {current} from being healthy (posterm doctor, the journal), "
            f"or install a release of schema {level.compatible} or newer; going back to "
            f"{previous} needs its ledger restored from before {current} (docs/field.md "
            "section 5)")
