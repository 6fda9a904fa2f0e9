"""Version 32: ``terminal_seen.printer_state``, the printer's state as a code a till's status
carries beside its words (``Status.printer_state``), so the console shows it in its reader's
language. Rows from before have "": the till's words alone, as an older till still sends."""

from __future__ import annotations

from peewee import Database

from terminal.hq.migrations import add_columns
from terminal.hq.models import TerminalSeen


def both(db: Database) -> None:
    add_columns(db, TerminalSeen, TerminalSeen.printer_state)
