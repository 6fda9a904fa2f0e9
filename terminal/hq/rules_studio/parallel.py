"""Replay a window under both rule sets in parallel: members are independent (a member's
events touch only its own lots, spend, tier and daily counts), so the window is cut by member
into ``parts``, each part replayed in its own process (in force, then the candidate with the
in-force run's overdrafts), and the parts' figures added up.

The cut is by a stable hash of the member id (CRC-32), never by the process that happens to
finish first, and the merge adds integers and takes members in id order: the same history and
rules give the same numbers whatever ``workers`` is (a test compares with the one-process run).
A sale without a member, and a refund of a sale nobody can place, go with part 0 (they count
nothing but "skipped").
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import zlib
from collections import defaultdict
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import fields, replace
from typing import Any

from terminal.hq.rules_studio.history import History, RefundEvent, SaleEvent
from terminal.hq.rules_studio.replay import Figures, Replay, Replayed, Tick
from terminal.loyalty.rules import Rules

# Below this many events a pool costs more than it saves (starting a process imports the
# engine: about half a second here).
MIN_PARALLEL_EVENTS = 20_000
REPORT_EVERY = 0.5  # seconds between two reports of the workers' progress


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count() or 1


def _part(member: str | None, parts: int) -> int:
    return 0 if member is None else zlib.crc32(member.encode("utf-8")) % parts


def partition(history: History, parts: int) -> list[History]:
    """``history`` cut into ``parts`` histories by member."""
    if parts <= 1:
        return [history]
    owner_of_sale = {sale_id: sale.member for sale_id, sale in history.past_sales.items()}
    events: list[list[Any]] = [[] for _ in range(parts)]
    for event in history.events:
        if isinstance(event, SaleEvent):
            owner_of_sale[event.id] = event.member
            member = event.member
        elif isinstance(event, RefundEvent):
            member = owner_of_sale.get(event.sale)
        else:
            member = event.member
        events[_part(member, parts)].append(event)

    def mine(data: dict[str, Any], n: int) -> dict[str, Any]:
        return {k: v for k, v in data.items() if _part(k, parts) == n}

    def mine_spend(data: dict[str, Any], n: int) -> dict[str, Any]:
        out: dict[str, Any] = defaultdict(list)
        out.update(mine(data, n))
        return out

    return [replace(
        history, birthdays=mine(history.birthdays, n), homes=mine(history.homes, n),
        tiers=mine(history.tiers, n), lots=mine(history.lots, n), debt=mine(history.debt, n),
        events=events[n],
        past_sales={k: s for k, s in history.past_sales.items() if _part(s.member, parts) == n},
        spend=mine_spend(history.spend, n), spend_back=mine_spend(history.spend_back, n),
        day_earned=defaultdict(int, {k: v for k, v in history.day_earned.items()
                                     if _part(k[0], parts) == n}))
        for n in range(parts)]


def replay_pair(history: History, in_force: Rules, candidate: Rules,
                tick: Tick | None = None) -> tuple[Replayed, Replayed]:
    """In one process: the rules in force, then the candidate (which keeps the overdrafts the
    in-force run found: :class:`Replay`); ``tick`` counts the events each replays."""
    old = Replay(history, in_force).run(tick)
    new = Replay(history, candidate, overdrafts=old.overdrafts).run(tick)
    return old, new


_replayed: Any = None  # a worker's share of the count of events replayed (a shared integer)


def _share(counter: Any) -> None:
    global _replayed
    _replayed = counter


def _count(events: int) -> None:
    with _replayed.get_lock():
        _replayed.value += events


def _work(args: tuple[History | int, Rules, Rules]) -> tuple[Replayed, Replayed]:
    part, in_force, candidate = args
    history = _forked[part] if isinstance(part, int) else part
    return replay_pair(history, in_force, candidate,
                       tick=_count if _replayed is not None else None)


# The parts, for workers forked from this process: they find them in the memory they start
# with instead of each part being pickled to them (a second of CPU a 50,000 events each way).
_forked: list[History] = []


def _context() -> tuple[Any, bool]:
    """fork when this process runs one thread (the command line, the bench), else spawn: the
    console runs threads (its server, its database), and a forked child of a threaded process
    may inherit a lock some other thread held."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork"), True
    return multiprocessing.get_context("spawn"), False


def merge(parts: list[Replayed]) -> Replayed:
    out = Replayed()
    names = [f.name for f in fields(Figures)]
    members: dict[str, Figures] = {}
    for part in parts:
        for name in names:
            out.chain.add(name, getattr(part.chain, name))
        for store, row in part.stores.items():
            for name in names:
                out.stores[store].add(name, getattr(row, name))
        members.update(part.members)
        out.tier_end.update(part.tier_end)
        for why, count in part.skipped.items():
            out.skipped[why] += count
        out.overdrafts.update(part.overdrafts)
    for member in sorted(members):
        out.members[member] = members[member]
    out.tier_end = dict(sorted(out.tier_end.items()))
    return out


def replay_both(history: History, in_force: Rules, candidate: Rules,
                workers: int | None = None, *, min_events: int = MIN_PARALLEL_EVENTS,
                tick: Tick | None = None) -> tuple[Replayed, Replayed]:
    """Both replays, over ``workers`` processes (default: the CPUs this process may use; one
    for a window of fewer than ``min_events``). ``tick(n)``: n more events replayed, under
    either rule set (twice the window's events in all), told in this process and thread."""
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(history.events) < min_events:
        return replay_pair(history, in_force, candidate, tick)
    parts = partition(history, workers)
    context, forked = _context()
    counter = context.Value("q", 0)
    if forked:
        _forked[:] = parts
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_share,
                                 initargs=(counter,)) as pool:
            futures = [pool.submit(_work, (number if forked else part, in_force, candidate))
                       for number, part in enumerate(parts)]
            results = _wait(futures, counter, tick)
    finally:
        _forked.clear()
    return merge([old for old, _ in results]), merge([new for _, new in results])


def _wait(futures: list[Any], counter: Any, tick: Tick | None) -> list[tuple[Replayed, Replayed]]:
    """The workers' results, telling ``tick`` of their progress meanwhile."""
    told = 0
    while True:
        done, pending = wait(futures, REPORT_EVERY, FIRST_EXCEPTION)
        if tick is not None and counter.value > told:
            now = counter.value
            tick(now - told)
            told = now
        if not pending or any(f.exception() is not None for f in done):
            return [future.result() for future in futures]
