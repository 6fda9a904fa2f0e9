"""The parallel replay gives exactly the one-process figures: the window cut by member, each
part replayed alone (and in real worker processes), the parts added up."""

from __future__ import annotations

import threading

from terminal.hq.rules_studio import parallel
from terminal.hq.rules_studio.backtest import backtest, report, tally
from terminal.hq.rules_studio.parallel import merge, partition, replay_both, replay_pair
from terminal.hq.rules_studio.validate import validate
from tests.rules_studio.edits import BASE, edited
from tests.rules_studio.synthetic import history

IN_FORCE = validate(BASE).rules
TRIPLED = validate(edited(("points_per_yuan = 1 ", "points_per_yuan = 3 "))).rules
assert IN_FORCE is not None and TRIPLED is not None


def _report(pair, made) -> dict:
    old, new = pair
    return report(tally(old, new, made.homes, IN_FORCE, TRIPLED, len(made.events)), made.start,
                  made.until, made.first_seq, made.recorded, IN_FORCE, TRIPLED)


def test_parts_replayed_alone_add_up_to_the_whole() -> None:
    made = history(300, 4, seed=7)
    whole = replay_pair(made, IN_FORCE, TRIPLED)
    parts = partition(made, 3)
    assert sum(len(p.events) for p in parts) == len(made.events)
    assert all(p.events for p in parts)
    pairs = [replay_pair(part, IN_FORCE, TRIPLED) for part in parts]
    merged = merge([old for old, _ in pairs]), merge([new for _, new in pairs])
    assert _report(merged, made) == _report(whole, made)
    assert whole[1].chain.points_issued > whole[0].chain.points_issued


def test_worker_processes_give_the_same_numbers() -> None:
    made = history(200, 3, seed=3)
    assert _report(replay_both(made, IN_FORCE, TRIPLED, 2, min_events=0), made) \
        == _report(replay_pair(made, IN_FORCE, TRIPLED), made)


def test_progress_counts_each_event_once_under_each_rule_set() -> None:
    """Told from the worker processes too: twice the window's events in all."""
    made = history(1_500, 3, seed=5)
    for workers in (1, 2):
        told: list[int] = []
        replay_both(made, IN_FORCE, TRIPLED, workers, min_events=0, tick=told.append)
        assert sum(told) == 2 * len(made.events) and all(n > 0 for n in told)


def test_a_backtest_reports_events_replayed_up_to_the_window() -> None:
    made = history(1_500, 3, seed=5)
    seen: list[tuple[str, int, int]] = []
    backtest(made, IN_FORCE, TRIPLED, lambda *report: seen.append(report), workers=1)
    done = [d for _, d, _ in seen]
    assert {step for step, _, _ in seen} == {"replaying"}
    assert {total for _, _, total in seen} == {len(made.events)}
    assert done[0] == 0 and done[-1] == len(made.events) and done == sorted(done)
    assert len(done) > 3  # along the way, not only at the ends


def test_beside_other_threads_the_workers_are_spawned_with_the_same_numbers() -> None:
    """The console runs a backtest in a thread of its own: its workers are spawned (a fork of
    a threaded process may inherit a held lock), each part pickled to them; one thread alone
    forks them, the parts in their memory. The same figures either way."""
    made = history(200, 3, seed=3)
    found: dict[str, object] = {}

    def job() -> None:
        found["forked"] = parallel._context()[1]
        found["report"] = _report(replay_both(made, IN_FORCE, TRIPLED, 2, min_events=0), made)
    thread = threading.Thread(target=job)
    thread.start()
    thread.join(120)
    assert found["forked"] is False
    assert found["report"] == _report(replay_pair(made, IN_FORCE, TRIPLED), made)
