"""Run a backtest against HQ's database (the command line's and the console's entry point)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from terminal.hq.database import open_hq_database
from terminal.hq.models import HQ_MODELS
from terminal.hq.rules_studio.backtest import backtest
from terminal.hq.rules_studio.history import load_history
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import MODELS


def run_backtest(db_url: str, in_force: Rules, candidate: Rules, days: int,
                 until: datetime | None = None,
                 progress: Callable[[str], None] = lambda step: None) -> dict[str, Any]:
    db = open_hq_database(db_url, migrate=False)
    try:
        with db.bind_ctx(MODELS + HQ_MODELS):
            progress("reading the history")
            history = load_history(days, in_force.zone, until)
    finally:
        db.close()
    progress(f"replaying {len(history.events)} events")
    return backtest(history, in_force, candidate)
