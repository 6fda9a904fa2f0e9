"""Version 10: the rules studio's backtest jobs (``backtest_job``), so a backtest's figures
outlive the console process that ran it and any console of the chain can show them."""

from __future__ import annotations

from peewee import Database

from terminal.hq.rules_studio.models import BacktestJob
from terminal.loyalty.store.binding import bound


def both(db: Database) -> None:
    with bound(db, [BacktestJob]):
        db.create_tables([BacktestJob], safe=True)
