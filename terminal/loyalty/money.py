"""Money is integer fen (1 yuan = 100 fen). Nothing here uses binary floating point."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Share ``total`` whole units across ``weights`` in proportion to them.

    Each share is first rounded down; the units left over go one each to the largest remainders,
    ties to the earlier index, so the shares always add up to ``total`` exactly.
    """
    if total < 0:
        raise ValueError("total must not be negative")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    if total == 0:
        return [0] * len(weights)
    whole = sum(weights)
    if whole == 0:
        if total:
            raise ValueError("cannot share a non-zero total over zero weights")
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    left = total - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        shares[index] += 1
    return shares


def yuan(fen: int) -> str:
    """Format fen as yuan for people: 1250 -> '12.50', -5 -> '-0.05'."""
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 100)
    return f"{sign}{whole}.{part:02d}"


def round_points(value: Fraction, mode: str) -> int:
    """Round a non-negative exact point amount once: floor, ceil, or round (half up)."""
    if mode == "floor":
        return value.numerator // value.denominator
    if mode == "ceil":
        return -((-value.numerator) // value.denominator)
    if mode == "round":
        return (2 * value.numerator + value.denominator) // (2 * value.denominator)
    raise ValueError(f"unknown rounding {mode!r}")
