"""Clock: the till runs on a clock that lies (30 days behind, 30 days ahead, at 1970, untrusted),
then NTP syncs and the clock jumps. No lot expires early, no promotion applies outside its
window, every record says whether its time was trusted, and sequence numbers only grow.

The till is built by the composition root with a clock function returning (time, trusted), as
the daemon builds it, and driven through the simulation console. The chain's example rules have
a National Day promotion (1-7 October 2026) and a Wednesday member day; T0 (a Monday in
November 2026) is outside both, T0 - 30 days is inside National Day and T0 + 30 days a Wednesday.
"""

from __future__ import annotations

import io
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from terminal.daemon.bootstrap import Terminal, build
from terminal.daemon.config import load_config
from terminal.daemon.sim.console import Console
from terminal.daemon.sim.demo import seed_demo
from tests.sync.conftest import run

from .chain import TillFiles, till_files
from .scripts import SIGN_IN
from .support import Counts

ZONE = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=ZONE)
BASKET = ("s", "88.00 dept1", "cash")  # the demo member buys fresh goods: earns points


@dataclass
class LyingClock:
    at: datetime
    trusted: bool

    def __call__(self) -> tuple[datetime, bool]:
        return self.at, self.trusted


def _rows(database: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as db:
        rows = db.execute(sql).fetchall()
    db.close()
    return rows


def _last_sale(files: TillFiles) -> tuple[int, bool]:
    (earned, trusted), = _rows(files.database,
                               "SELECT points_earned, trusted FROM sale ORDER BY seq DESC LIMIT 1")
    return int(earned), bool(trusted)  # type: ignore[call-overload]


def _expired(files: TillFiles) -> int:
    return int(_rows(files.database,  # type: ignore[call-overload]
                     "SELECT count(*) FROM ledger_entry WHERE kind = 'expire'")[0][0])


async def _sweep(terminal: Terminal) -> None:
    """The expiry sweep as of the till's clock (what the end of day runs)."""
    store = terminal.ledger.store
    at, trusted = terminal.ledger.clock()
    await terminal.ledger.executor.run(lambda: store.expire(store.moment(at, trusted)))


def _sequences_only_grow(files: TillFiles) -> None:
    for table in ("outbox", "ledger_entry", "sale"):
        seqs = [row[0] for row in _rows(files.database, f"SELECT seq FROM {table} ORDER BY rowid")]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), table


async def _sell(console: Console, files: TillFiles) -> tuple[int, bool]:
    for line in BASKET:
        await console.command(line)
    return _last_sale(files)


def _scenario(tmp: Path, first: LyingClock, then: LyingClock, counts: Counts) -> None:
    files = till_files(tmp)
    clock = LyingClock(first.at, first.trusted)

    async def scenario() -> None:
        terminal = await build(load_config(files.config), clock=clock, prepare=seed_demo)
        try:
            console = Console(terminal, io.StringIO())
            await console.command(SIGN_IN)
            reference = await _sell(console, files)
            clock.at, clock.trusted = then.at, then.trusted  # the clock jumps
            lied = await _sell(console, files)
            await _sweep(terminal)
            clock.at, clock.trusted = T0 + timedelta(hours=2), True  # NTP syncs
            synced = await _sell(console, files)
            await _sweep(terminal)
            counts.sales += 3
        finally:
            await terminal.close()
        points = {reference[0], lied[0], synced[0]}
        assert points == {reference[0]}, f"a promotion applied outside its window: {points}"
        assert (reference[1], lied[1], synced[1]) == (first.trusted, then.trusted, True)
        assert _expired(files) == 0, "a lot expired early"
        _sequences_only_grow(files)
        untrusted = _rows(files.database, "SELECT count(*) FROM outbox WHERE NOT trusted")[0][0]
        assert (untrusted > 0) == (not first.trusted or not then.trusted), untrusted
        lots = _rows(files.database, "SELECT min(expires_us) FROM lot")[0][0]
        floor = (T0 + timedelta(days=360)).timestamp() * 1e6
        assert lots is not None and int(lots) >= floor, "a lot dated before trusted time"

    run(scenario(), timeout=60)


@pytest.mark.parametrize("offset", [timedelta(days=-30), timedelta(days=30)],
                         ids=["30-days-behind", "30-days-ahead"])
def test_untrusted_clock_off_by_a_month(tmp_path: Path, offset: timedelta) -> None:
    counts = Counts("clock")
    _scenario(tmp_path, LyingClock(T0, True), LyingClock(T0 + offset, False), counts)
    counts.write()


@pytest.mark.parametrize("start", [T0 - timedelta(days=30), T0 + timedelta(days=30),
                                   datetime(1970, 1, 1, 8, 0, tzinfo=ZONE)],
                         ids=["fresh-30-days-behind", "fresh-30-days-ahead", "fresh-1970"])
def test_fresh_till_starts_on_an_untrusted_clock(tmp_path: Path, start: datetime) -> None:
    """No trusted time seen at all until NTP: lots are re-dated when it syncs."""
    counts = Counts("clock")
    _scenario(tmp_path, LyingClock(start, False), LyingClock(start, False), counts)
    counts.write()


def test_a_year_ahead_untrusted_expires_nothing(tmp_path: Path) -> None:
    """Past every lot's expiry, but untrusted: the sweep waits for trusted time."""
    counts = Counts("clock")
    _scenario(tmp_path, LyingClock(T0, True), LyingClock(T0 + timedelta(days=400), False),
              counts)
    counts.write()


def test_the_windows_the_suite_relies_on_apply_on_a_trusted_clock(tmp_path: Path) -> None:
    """The premise: trusted, T0 - 30 days (National Day) and T0 + 30 days (a Wednesday) earn
    more than T0 for the same basket, so equal points above mean the windows were held shut."""
    files = till_files(tmp_path)
    clock = LyingClock(T0, True)

    async def scenario() -> list[int]:
        terminal = await build(load_config(files.config), clock=clock, prepare=seed_demo)
        try:
            console = Console(terminal, io.StringIO())
            await console.command(SIGN_IN)
            earned = []
            for at in (T0, T0 - timedelta(days=30), T0 + timedelta(days=30)):
                clock.at = at
                earned.append((await _sell(console, files))[0])
            return earned
        finally:
            await terminal.close()

    plain, national_day, wednesday = run(scenario(), timeout=60)
    assert plain > 0 and national_day > plain and wednesday > plain
