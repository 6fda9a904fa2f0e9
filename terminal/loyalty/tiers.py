"""Tiers from qualifying spend over a rolling window ([tiers]).

Qualifying spend is what the member paid (net of refunds) over the last ``window_months``.
Upgrades take effect at once, from the next sale; downgrades wait for the monthly review at
00:00 on the 1st in the programme's zone, when the tier is set from the spend over the window
that ends at that review.
"""

from __future__ import annotations

from datetime import datetime

from terminal.loyalty.calendar import month_start
from terminal.loyalty.rules import Rules, Tier


def qualifying_tier(rules: Rules, spend_fen: int) -> Tier:
    best = rules.tiers[0]
    for level in rules.tiers:
        if spend_fen >= level.qualify_spend_fen:
            best = level
    return best


def rank(rules: Rules, name: str) -> int:
    for index, level in enumerate(rules.tiers):
        if level.name == name:
            return index
    return 0  # a tier the rules no longer have counts as the lowest


def due_review(rules: Rules, reviewed_at: datetime | None, now: datetime) -> datetime | None:
    """The review boundary to apply now, if one has passed since ``reviewed_at``."""
    boundary = month_start(now, rules.zone)
    if reviewed_at is None or reviewed_at < boundary:
        return boundary
    return None


def upgraded(rules: Rules, current: str, spend_fen: int) -> Tier | None:
    """The higher tier the member now qualifies for, if any (upgrades only)."""
    level = qualifying_tier(rules, spend_fen)
    return level if rank(rules, level.name) > rank(rules, current) else None


def next_tier(rules: Rules, current: str) -> Tier | None:
    index = rank(rules, current)
    return rules.tiers[index + 1] if index + 1 < len(rules.tiers) else None
