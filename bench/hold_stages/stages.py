"""Join the stage records sitecustomize.py wrote (one file a process) by hold id and print, per
till process (the idle till, the measuring till under the backlog, the bench's backlog tills),
each stage's p50 / p99, the slowest 1% stage by stage, the full collections of each process,
and how busy the four holding threads were when each hold arrived.

    .venv/bin/python bench/hold_stages/stages.py DIR
"""

from __future__ import annotations

import collections
import itertools
import re
import sys
from pathlib import Path
from typing import Any

STAGES = ("pub", "recv", "in", "out", "resp", "ans")
Record = tuple[int, int, list[str], str]  # time (ns), pid, fields, thread


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def load(directory: Path) -> tuple[dict[str, dict[str, Record]], list[tuple[int, int, int]]]:
    holds: dict[str, dict[str, Record]] = collections.defaultdict(dict)
    collections_: list[tuple[int, int, int]] = []  # pid, start, duration (ns)
    for path in directory.glob("*.txt"):
        pid = int(path.stem)
        for line in path.read_text().splitlines():
            t, thread, kind, *rest = line.split(" ")
            if kind == "gc2":
                collections_.append((pid, int(rest[0]), int(rest[1])))
            else:
                holds[rest[0]][kind] = (int(t), pid, rest[1:], thread)
    return holds, collections_


def lock_waits(directory: Path) -> dict[int, list[float]]:
    """The advisory lock waits PostgreSQL logged (ms, by the lock's key as the holds send it),
    when the run had ``PGOPTIONS="-c log_lock_waits=on -c deadlock_timeout=2ms"`` (only waits
    past that are logged)."""
    path = directory / "postgres.log"
    waits: dict[int, list[float]] = collections.defaultdict(list)
    if not path.exists():
        return waits
    for match in re.finditer(r"acquired ExclusiveLock on advisory lock \[\d+,\d+,(\d+),\d+\] "
                             r"after ([\d.]+) ms", path.read_text(errors="replace")):
        key = int(match[1])
        waits[key - (1 << 32) if key >= 1 << 31 else key].append(float(match[2]))
    return waits


def report(till: int, rows: list[dict[str, Record]], every: list[dict[str, Record]],
           gcs: list[tuple[int, int, int]], request_pids: set[int],
           locks: dict[int, list[float]] | None = None) -> None:
    print(f"till pid {till}: {len(rows)} holds")
    if locks:
        waited = sorted(((max(locks[int(r["in"][2][0])]), (r["ans"][0] - r["pub"][0]) / 1e6)
                         for r in rows if r["in"][2] and r["in"][2][0] != "None"
                         and int(r["in"][2][0]) in locks), reverse=True)
        print(f"  holds whose member's lock was waited for over 2 ms (PostgreSQL's log): "
              f"{len(waited)}; (wait, round trip) ms: "
              + ", ".join(f"({w:.1f}, {t:.1f})" for w, t in waited[:12]))
    stages: dict[str, list[float]] = collections.defaultdict(list)

    def ms(r: dict[str, Record], a: str, b: str) -> float:
        return (r[b][0] - r[a][0]) / 1e6

    for r in rows:
        runq, backend, *waits_field = r["out"][2]
        waits = [float(w) for w in waits_field[0].split(",") if w] if waits_field else []
        stages["1 till publish -> the collector's task parses"].append(ms(r, "pub", "recv"))
        stages["2 task -> hold thread (loop: 0)"].append(ms(r, "recv", "in"))
        stages["3 on the hold thread (or the loop)"].append(ms(r, "in", "out"))
        stages["3a   psycopg waits (sum)"].append(sum(waits))
        stages["3b   psycopg waits over 0.2 ms (count)"].append(len(waits))
        stages["3c   the thread's (loop's) run-queue wait"].append(int(runq) / 1e6)
        stages["3d   its backend's run-queue wait (loop: 0)"].append(int(backend) / 1e6)
        stages["4 thread -> response built (loop: 0)"].append(ms(r, "out", "resp"))
        stages["5 response -> the till parses the answer"].append(ms(r, "resp", "ans"))
        stages["= round trip"].append(ms(r, "pub", "ans"))
    for name in sorted(stages):
        values = stages[name]
        print(f"  {name:44s} p50 {pct(values, .5):7.2f}  p99 {pct(values, .99):7.2f}  "
              f"max {max(values):7.2f}")
    by_time = sorted(rows, key=lambda r: r["ans"][0] - r["pub"][0])
    worst = by_time[-max(1, len(by_time) // 100):]
    print(f"  the slowest {len(worst)} (stages 1 + 2 + 3 + 4 + 5), the last 12:")
    for r in worst[-12:]:
        times = [r[kind][0] for kind in STAGES]
        parts = " + ".join(f"{(b - a) / 1e6:.1f}" for a, b in itertools.pairwise(times))
        print(f"    {(times[-1] - times[0]) / 1e6:6.1f} ms = {parts}; {r['in'][3]}, "
              f"out {r['out'][2]}")
    first, last = min(r["pub"][0] for r in rows), max(r["ans"][0] for r in rows)
    for pid in sorted({g[0] for g in gcs}):
        inside = [g[2] / 1e6 for g in gcs if g[0] == pid and first <= g[1] <= last]
        if inside:
            role = "member requests" if pid in request_pids else "another"
            print(f"  full collections in pid {pid} ({role}): {len(inside)}, p50 "
                  f"{pct(inside, .5):.1f} ms, max {max(inside):.1f} ms")
    others = [g for g in gcs if g[0] not in request_pids and g[0] != till]
    over: list[float] = []
    clear: list[float] = []
    for r in rows:
        a, b = r["pub"][0], r["ans"][0]
        overlaps = any(start < b and start + took > a for _, start, took in others)
        (over if overlaps else clear).append((b - a) / 1e6)
    print(f"  holds during a full collection of another process: {len(over)}, p50 "
          f"{pct(over, .5):.1f} p99 {pct(over, .99):.1f} ms; the others p50 "
          f"{pct(clear, .5):.1f} p99 {pct(clear, .99):.1f} ms")
    busy: collections.Counter[int] = collections.Counter()
    waited = waited_all_busy = 0
    for r in rows:
        arrived = r["recv"][0]
        n = sum(1 for o in every if o is not r and o["in"][0] <= arrived < o["out"][0])
        busy[n] += 1
        if r["in"][0] - arrived > 5e6:
            waited += 1
            waited_all_busy += n >= 4
    print(f"  holding threads busy when a hold arrived: {dict(sorted(busy.items()))}; waited "
          f"over 5 ms for its thread: {waited}, of which with all four busy: {waited_all_busy}")


def main(argv: list[str]) -> int:
    holds, gcs = load(Path(argv[1]))
    locks = lock_waits(Path(argv[1]))
    print(f"advisory lock waits over 2 ms in PostgreSQL's log: "
          f"{sum(map(len, locks.values()))}")
    every = [r for r in holds.values() if set(STAGES) <= set(r)]
    request_pids = {r["recv"][1] for r in every}
    tills: dict[int, list[Any]] = collections.defaultdict(list)
    for r in every:
        tills[r["pub"][1]].append(r)
    for till, rows in sorted(tills.items(), key=lambda kv: min(r["pub"][0] for r in kv[1])):
        report(till, rows, every, gcs, request_pids, locks)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
