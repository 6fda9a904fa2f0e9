"""Version 17: a consent record names the till it was given at (``care_consent.store`` and
``terminal``; NULL for one recorded in the console or by command): the member's answer at a
till's registration reaches HQ as a ``consent`` event (terminal.hq.care.till)."""

from __future__ import annotations

from peewee import Database

from terminal.hq.care.models import CareConsent
from terminal.hq.migrations import add_columns


def both(db: Database) -> None:
    add_columns(db, CareConsent, CareConsent.store, CareConsent.terminal)
