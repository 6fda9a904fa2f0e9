"""The parallel replay gives exactly the one-process figures: the window cut by member, each
part replayed alone (and in real worker processes), the parts added up."""

from __future__ import annotations

from terminal.hq.rules_studio.backtest import most_affected, side
from terminal.hq.rules_studio.parallel import merge, partition, replay_both, replay_pair
from terminal.hq.rules_studio.validate import validate
from tests.rules_studio.edits import BASE, edited
from tests.rules_studio.synthetic import history

IN_FORCE = validate(BASE).rules
TRIPLED = validate(edited(("points_per_yuan = 1 ", "points_per_yuan = 3 "))).rules
assert IN_FORCE is not None and TRIPLED is not None


def _report(pair, made) -> tuple:
    old, new = pair
    return (side(old, IN_FORCE), side(new, TRIPLED), most_affected(old, new, made.homes),
            dict(old.skipped), dict(new.skipped))


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
