"""Scripted cashier input for the simulation console: seeded, so a failing run replays."""

from __future__ import annotations

import random

SIGN_IN = "1 enter 1234 enter"


def sale_lines(rng: random.Random) -> list[str]:
    """One sale as console lines: maybe a member, one to three department lines, a redemption
    now and then, and cash (exact or with change) or card."""
    lines = ["s"] if rng.random() < 0.5 else []
    for _ in range(rng.randint(1, 3)):
        lines.append(f"{rng.randint(1, 300)}.{rng.randint(0, 99):02d} dept{rng.randint(1, 2)}")
    if lines[0] == "s" and rng.random() < 0.3:
        lines += ["subtotal", f"{rng.randint(1, 40)} redeem"]
    lines.append(rng.choice(["cash", "1000 cash", "card"]))
    return lines


def sales(rng: random.Random, count: int) -> list[str]:
    return [line for _ in range(count) for line in sale_lines(rng)]
