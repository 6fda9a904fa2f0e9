"""A backtest: the window's history replayed under the rules in force and under a candidate,
side by side, with the check that the in-force replay gives what the ledger recorded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from terminal.hq.rules_studio.history import History, Recorded
from terminal.hq.rules_studio.parallel import replay_both
from terminal.hq.rules_studio.replay import Figures, Replayed, Tick
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


@dataclass
class Tally:
    """What a backtest keeps of some members' two replays: sums by chain, store and tier, how
    many members end in each tier, how many change tier, the most affected rows; never a
    row per member. Tallies of disjoint parts of the members add up (:meth:`add`) to the
    whole's, in the order of the parts (members in id order)."""

    old: Replayed
    new: Replayed
    old_tiers: dict[str, Figures]
    new_tiers: dict[str, Figures]
    old_counts: dict[str, int]
    new_counts: dict[str, int]
    tier_changes: int
    affected: list[tuple[int, int, str, dict[str, Any]]]  # the MOST_AFFECTED first rows
    events: int

    def add(self, other: Tally) -> None:
        for mine, theirs in ((self.old, other.old), (self.new, other.new)):
            _add(mine.chain, theirs.chain)
            for store, row in theirs.stores.items():
                _add(mine.stores[store], row)
            for why, count in theirs.skipped.items():
                mine.skipped[why] += count
        for mine_tiers, theirs_tiers in ((self.old_tiers, other.old_tiers),
                                         (self.new_tiers, other.new_tiers)):
            for tier, row in theirs_tiers.items():
                _add(mine_tiers.setdefault(tier, Figures()), row)
        for mine_counts, theirs_counts in ((self.old_counts, other.old_counts),
                                           (self.new_counts, other.new_counts)):
            for tier, count in theirs_counts.items():
                mine_counts[tier] = mine_counts.get(tier, 0) + count
        self.tier_changes += other.tier_changes
        self.affected = sorted(self.affected + other.affected, key=lambda row: row[:3])[
            :MOST_AFFECTED]
        self.events += other.events


def _add(total: Figures, row: Figures) -> None:
    total.add_all(row)


def tally(old: Replayed, new: Replayed, homes: dict[str, str], in_force: Rules,
          candidate: Rules, events: int) -> Tally:
    """The two replays of some members (``old`` under the rules in force) reduced to a
    :class:`Tally`; ``homes``: their home stores."""
    def tiers(replayed: Replayed, rules: Rules) -> dict[str, Figures]:
        by_tier: dict[str, Figures] = {tier.name: Figures() for tier in rules.tiers}
        for member, row in replayed.members.items():
            _add(by_tier.setdefault(replayed.tier_end.get(member, rules.tiers[0].name),
                                    Figures()), row)
        return by_tier

    def counts(replayed: Replayed, rules: Rules) -> dict[str, int]:
        return {tier.name: sum(1 for t in replayed.tier_end.values() if t == tier.name)
                for tier in rules.tiers}

    def bare(replayed: Replayed) -> Replayed:
        out = Replayed(chain=replayed.chain)
        out.stores.update(replayed.stores)
        out.skipped.update(replayed.skipped)
        return out

    return Tally(bare(old), bare(new), tiers(old, in_force), tiers(new, candidate),
                 counts(old, in_force), counts(new, candidate),
                 sum(1 for member in old.tier_end
                     if old.tier_end[member] != new.tier_end.get(member)),
                 _affected(old, new, homes), events)


def side(replayed: Replayed, by_tier: dict[str, Figures], counts: dict[str, int],
         rules: Rules) -> dict[str, Any]:
    return {
        "rules": rules.name,
        **figures(replayed.chain, rules),
        "stores": {store: figures(row, rules) for store, row in sorted(replayed.stores.items())},
        "tiers": {tier: figures(row, rules) for tier, row in by_tier.items()},
        "members_by_tier": {tier.name: counts.get(tier.name, 0) for tier in rules.tiers},
        "skipped": dict(sorted(replayed.skipped.items())),
    }


def check(recorded: Recorded, in_force: Replayed) -> dict[str, Any]:
    """The in-force replay against what the ledger recorded over the same window."""
    found = asdict(recorded)
    replayed = {name: getattr(in_force.chain, name) for name in CHECKED}
    differences = {name: {"recorded": found[name], "replayed": replayed[name]}
                   for name in CHECKED if found[name] != replayed[name]}
    return {"matches": not differences, "recorded": found, "differences": differences}


def _affected(in_force: Replayed, candidate: Replayed, homes: dict[str, str]
              ) -> list[tuple[int, int, str, dict[str, Any]]]:
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
    return rows[:MOST_AFFECTED]


Progress = Callable[[str, int, int], None]  # (step, events done, events in all)


def report(whole: Tally, start: datetime, until: datetime, first_seq: int, recorded: Recorded,
           in_force: Rules, candidate: Rules) -> dict[str, Any]:
    """A backtest's figures, from the tally of all its members."""
    change_fen = (liability_fen(whole.new.chain.liability_end, candidate)
                  - liability_fen(whole.old.chain.liability_end, in_force))
    return {
        "window": {"from": start.astimezone(in_force.zone).isoformat("T", "seconds"),
                   "until": until.astimezone(in_force.zone).isoformat("T", "seconds"),
                   "first_seq": first_seq, "events": whole.events},
        "candidate": side(whole.new, whole.new_tiers, whole.new_counts, candidate),
        "in_force": side(whole.old, whole.old_tiers, whole.old_counts, in_force),
        "liability_change_fen": change_fen,
        "liability_change_yuan": yuan(change_fen),
        "tier_changes": whole.tier_changes,
        "most_affected": [row[3] for row in whole.affected],
        "check": check(recorded, whole.old),
    }


def progress_ticks(progress: Progress, total: int) -> Tick:
    """Reports ``("replaying", 0, total)`` and returns the replays' tick: each rule set's replay
    of an event counts half, so ``done`` runs from 0 to ``total`` as the work does."""
    replays = 0

    def tick(events: int) -> None:
        nonlocal replays
        replays += events
        progress("replaying", replays // 2, total)

    progress("replaying", 0, total)
    return tick


def backtest(history: History, in_force: Rules, candidate: Rules,
             progress: Progress = lambda step, done, total: None,
             workers: int | None = None) -> dict[str, Any]:
    """A window held in memory whole (the database's backtest streams it by member:
    :mod:`stream`). ``workers`` processes replay parts of the members (:mod:`parallel`;
    default: one per CPU, one for a small window); the figures do not depend on it.
    ``progress`` is told ``("replaying", done, total)`` as the window's events are replayed:
    an event counts half once the rules in force have replayed it and whole once the
    candidate has too, so ``done`` runs from 0 to the window's events as the work does."""
    total = len(history.events)
    tick = progress_ticks(progress, total)
    old, new = replay_both(history, in_force, candidate, workers, tick=tick)
    whole = tally(old, new, history.homes, in_force, candidate, total)
    return report(whole, history.start, history.until, history.first_seq, history.recorded,
                  in_force, candidate)
