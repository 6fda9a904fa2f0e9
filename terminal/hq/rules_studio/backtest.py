"""A backtest: the window's history replayed under the rules in force and under a candidate,
side by side, with the check that the in-force replay gives what the ledger recorded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

from terminal.hq.rules_studio.history import History
from terminal.hq.rules_studio.parallel import replay_both
from terminal.hq.rules_studio.replay import Figures, Replayed
from terminal.loyalty.rules import Rules

MOST_AFFECTED = 20
CHECKED = ("points_issued", "points_redeemed", "points_reversed", "points_restored",
           "points_adjusted", "liability_end")


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def liability_fen(points: int, rules: Rules) -> int:
    """What a liability of ``points`` is worth at the rules' redemption rate, in whole fen."""
    return points * 100 // rules.redeem.points_per_yuan


def figures(row: Figures, rules: Rules) -> dict[str, Any]:
    out: dict[str, Any] = asdict(row)
    fen = liability_fen(row.liability_end, rules)
    out["liability_end_fen"], out["liability_end_yuan"] = fen, yuan(fen)
    return out


def side(replayed: Replayed, rules: Rules) -> dict[str, Any]:
    by_tier: dict[str, Figures] = {tier.name: Figures() for tier in rules.tiers}
    for member, row in replayed.members.items():
        total = by_tier.setdefault(replayed.tier_end.get(member, rules.tiers[0].name), Figures())
        for name in (f.name for f in fields(Figures)):
            total.add(name, getattr(row, name))
    return {
        "rules": rules.name,
        **figures(replayed.chain, rules),
        "stores": {store: figures(row, rules) for store, row in sorted(replayed.stores.items())},
        "tiers": {tier: figures(row, rules) for tier, row in by_tier.items()},
        "members_by_tier": {tier.name: sum(1 for t in replayed.tier_end.values()
                                           if t == tier.name) for tier in rules.tiers},
        "skipped": dict(sorted(replayed.skipped.items())),
    }


def check(history: History, in_force: Replayed) -> dict[str, Any]:
    """The in-force replay against what the ledger recorded over the same window."""
    recorded = asdict(history.recorded)
    replayed = {name: getattr(in_force.chain, name) for name in CHECKED}
    differences = {name: {"recorded": recorded[name], "replayed": replayed[name]}
                   for name in CHECKED if recorded[name] != replayed[name]}
    return {"matches": not differences, "recorded": recorded, "differences": differences}


def most_affected(in_force: Replayed, candidate: Replayed, homes: dict[str, str]
                  ) -> list[dict[str, Any]]:
    """The members whose balance at the end moves most (then whose points issued do), with
    the member id to break ties: a fixed order."""
    rows = []
    for member in sorted(set(in_force.members) | set(candidate.members)):
        old, new = in_force.members[member], candidate.members[member]
        moved = new.liability_end - old.liability_end
        issued = new.points_issued - old.points_issued
        if moved or issued or in_force.tier_end.get(member) != candidate.tier_end.get(member):
            rows.append((-abs(moved), -abs(issued), member, {
                "member": member, "store": homes.get(member, "HQ"),
                "tier_in_force": in_force.tier_end.get(member),
                "tier_candidate": candidate.tier_end.get(member),
                "balance_in_force": old.liability_end, "balance_candidate": new.liability_end,
                "balance_change": moved,
                "issued_in_force": old.points_issued, "issued_candidate": new.points_issued}))
    rows.sort(key=lambda row: row[:3])
    return [row[3] for row in rows[:MOST_AFFECTED]]


Progress = Callable[[str, int, int], None]  # (step, events done, events in all)


def backtest(history: History, in_force: Rules, candidate: Rules,
             progress: Progress = lambda step, done, total: None,
             workers: int | None = None) -> dict[str, Any]:
    """``workers`` processes replay parts of the members (:mod:`parallel`; default: one per
    CPU, one for a small window); the figures do not depend on it. ``progress`` is told
    ``("replaying", done, total)`` as the window's events are replayed: an event counts half
    once the rules in force have replayed it and whole once the candidate has too, so ``done``
    runs from 0 to the window's events as the work does."""
    total = len(history.events)
    replays = 0

    def tick(events: int) -> None:
        nonlocal replays
        replays += events
        progress("replaying", replays // 2, total)

    progress("replaying", 0, total)
    old, new = replay_both(history, in_force, candidate, workers, tick=tick)
    tier_changes = sorted(member for member in old.tier_end
                          if old.tier_end[member] != new.tier_end.get(member))
    change_fen = (liability_fen(new.chain.liability_end, candidate)
                  - liability_fen(old.chain.liability_end, in_force))
    return {
        "window": {"from": history.start.astimezone(in_force.zone).isoformat("T", "seconds"),
                   "until": history.until.astimezone(in_force.zone).isoformat("T", "seconds"),
                   "first_seq": history.first_seq, "events": len(history.events)},
        "candidate": side(new, candidate),
        "in_force": side(old, in_force),
        "liability_change_fen": change_fen,
        "liability_change_yuan": yuan(change_fen),
        "tier_changes": len(tier_changes),
        "most_affected": most_affected(old, new, history.homes),
        "check": check(history, old),
    }
