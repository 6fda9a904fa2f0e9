"""Run a backtest against HQ's database: at once (the command line) or as a background job with
progress (the console)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from terminal.hq.database import open_hq_database
from terminal.hq.models import HQ_MODELS
from terminal.hq.rules_studio.backtest import backtest
from terminal.hq.rules_studio.history import load_history
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import MODELS

STEPS = ("reading", "in_force", "candidate", "done")  # a job's progress, in order


def run_backtest(db_url: str, in_force: Rules, candidate: Rules, days: int,
                 until: datetime | None = None,
                 progress: Callable[[str], None] = lambda step: None) -> dict[str, Any]:
    progress("reading")
    db = open_hq_database(db_url, migrate=False)
    try:
        with db.bind_ctx(MODELS + HQ_MODELS):
            history = load_history(days, in_force.zone, until)
    finally:
        db.close()
    result = backtest(history, in_force, candidate, progress)
    progress("done")
    return result


@dataclass
class Job:
    id: str
    author: str
    days: int
    text: str = ""  # the candidate rules as written (what a stage from the job's page signs)
    step: str = "queued"
    result: dict[str, Any] | None = None
    error: str = ""
    ended: threading.Event = field(default_factory=threading.Event)

    @property
    def percent(self) -> int:
        return 0 if self.step == "queued" else (STEPS.index(self.step) + 1) * 100 // len(STEPS)

    @property
    def finished(self) -> bool:
        return self.step == "done" or bool(self.error)


@dataclass
class Jobs:
    """Backtests running in threads of their own, each on its own database connection."""

    db_url: str
    jobs: dict[str, Job] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, author: str, in_force: Rules, candidate: Rules, days: int,
              text: str = "") -> Job:
        job = Job(uuid.uuid4().hex, author, days, text)
        with self.lock:
            self.jobs[job.id] = job

        def step(name: str) -> None:
            job.step = name

        def work() -> None:
            try:
                job.result = run_backtest(self.db_url, in_force, candidate, days, None, step)
            except Exception as exc:  # shown on the job's page: the job is the report
                job.error = f"{type(exc).__name__}: {exc}"
            finally:
                job.ended.set()
        threading.Thread(target=work, name=f"backtest-{job.id[:8]}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)
