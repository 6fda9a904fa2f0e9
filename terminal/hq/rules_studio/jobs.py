"""Run a backtest against HQ's database: at once (the command line) or as a background job with
progress (the console)."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from peewee import Database

from terminal.hq.database import open_hq_database
from terminal.hq.rules_studio import stream
from terminal.hq.rules_studio.backtest import Progress
from terminal.hq.rules_studio.models import BacktestJob
from terminal.loyalty.clock import to_micros
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.binding import bound

STEPS = ("reading", "replaying", "done")  # a job's steps, in order


def run_backtest(db_url: str, in_force: Rules, candidate: Rules, days: int,
                 until: datetime | None = None,
                 progress: Progress = lambda step, done, total: None) -> dict[str, Any]:
    """Read from the database a span of members at a time and replayed as read
    (:mod:`stream`)."""
    return stream.run(db_url, in_force, candidate, days, until, progress)


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
    done: int = 0  # events replayed (backtest.backtest counts them), kept in memory only
    total: int = 0  # the window's events, once read

    @property
    def percent(self) -> int:
        if self.step == "done":
            return 100
        return self.done * 100 // self.total if self.step == "replaying" and self.total else 0

    @property
    def finished(self) -> bool:
        return (self.step == "done" and self.result is not None) or bool(self.error)


@dataclass
class Jobs:
    """Backtests running in threads of their own, each on its own database connection, each
    kept in ``backtest_job`` as it goes (:func:`stored` reads one back)."""

    db_url: str
    jobs: dict[str, Job] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, author: str, in_force: Rules, candidate: Rules, days: int,
              text: str = "") -> Job:
        job = Job(uuid.uuid4().hex, author, days, text)
        with self.lock:
            self.jobs[job.id] = job
        threading.Thread(target=self._work, args=(job, in_force, candidate),
                         name=f"backtest-{job.id[:8]}", daemon=True).start()
        return job

    def _work(self, job: Job, in_force: Rules, candidate: Rules) -> None:
        db = open_hq_database(self.db_url, migrate=False)
        try:
            _keep(db, job, started=True)

            def step(name: str, done: int, total: int) -> None:
                job.done, job.total = done, total
                if name != job.step:  # the table keeps the step; the count is the page's
                    job.step = name
                    _keep(db, job)
            try:
                result = run_backtest(self.db_url, in_force, candidate, job.days, None, step)
            except Exception as exc:  # shown on the job's page: the job is the report
                job.error = f"{type(exc).__name__}: {exc}"
            else:
                # The result first, then the step: a page reading the job from another thread
                # between the two must never see a finished job without its figures (it
                # rendered a 500 with no polling left, and the page waited forever).
                job.result = result
                job.done = job.total
                job.step = "done"
            _keep(db, job, ended=True)
        finally:
            db.close()
            job.ended.set()

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)


def _keep(db: Database, job: Job, *, started: bool = False, ended: bool = False) -> None:
    row: dict[Any, Any] = {BacktestJob.step: job.step, BacktestJob.error: job.error,
                           BacktestJob.result: json.dumps(job.result, ensure_ascii=False)
                           if job.result is not None else ""}
    now = to_micros(datetime.now(UTC))
    if ended:
        row[BacktestJob.ended_us] = now
    with bound(db, [BacktestJob]), db.atomic():
        if started:
            BacktestJob.insert(id=job.id, author=job.author, days=job.days, text=job.text,
                               started_us=now, **{f.name: v for f, v in row.items()}).execute()
        else:
            BacktestJob.update(row).where(BacktestJob.id == job.id).execute()


def stored(job_id: str) -> Job | None:
    """A job as ``backtest_job`` keeps it (models bound): one this process no longer holds
    (another console's, or one from before a restart). One that never ended is shown as
    interrupted: no thread of this process runs it."""
    row = BacktestJob.get_or_none(BacktestJob.id == job_id)
    if row is None:
        return None
    job = Job(row.id, row.author, row.days, row.text, row.step,
              json.loads(row.result) if row.result else None, row.error)
    if row.ended_us is None and not job.error:
        job.error = "interrupted: the console that ran it stopped (or runs it elsewhere)"
    job.ended.set()
    return job
