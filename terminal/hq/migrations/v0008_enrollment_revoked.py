"""Version 8: an enrollment code can be revoked unused (the console's enrollment page): when and
by whom, on a database made before."""

from __future__ import annotations

from peewee import Database

from terminal.hq.migrations import add_columns
from terminal.hq.models import EnrollmentCode


def both(db: Database) -> None:
    add_columns(db, EnrollmentCode, EnrollmentCode.revoked_us, EnrollmentCode.revoked_by)
