"""A basket's money: list total, tier discount, points deduction, and each line's paid amount."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from terminal.loyalty.errors import InvalidInput
from terminal.loyalty.money import largest_remainder

MAX_QTY = 9_999
MAX_UNIT_PRICE_FEN = 10_000_000  # 100,000 yuan a unit: anything above is a keying error
MAX_LINES = 500


@dataclass(frozen=True)
class Line:
    sku: str
    qty: int
    price_fen: int  # unit list price
    name: str = ""
    category: str = ""

    @property
    def list_fen(self) -> int:
        return self.qty * self.price_fen


@dataclass(frozen=True)
class PricedLine:
    line: Line
    paid_fen: int


@dataclass(frozen=True)
class Pricing:
    lines: tuple[PricedLine, ...]
    list_fen: int
    discount_fen: int
    deduction_fen: int

    @property
    def due_fen(self) -> int:
        """What the customer owes before any points deduction."""
        return self.list_fen - self.discount_fen

    @property
    def paid_fen(self) -> int:
        return self.due_fen - self.deduction_fen


def check_lines(lines: list[Line]) -> None:
    """Refuse an impossible basket before anything is computed."""
    if not lines:
        raise InvalidInput("the sale has no lines", "sale.lines", why="sale.lines.none")
    if len(lines) > MAX_LINES:
        raise InvalidInput(f"the sale has {len(lines)} lines; at most {MAX_LINES}", "sale.lines",
                           count=len(lines), most=MAX_LINES)
    for number, line in enumerate(lines, 1):
        if not isinstance(line.sku, str) or not line.sku.strip():
            raise InvalidInput(f"line {number} has no SKU", "sale.lines.sku", line=number)
        if isinstance(line.qty, bool) or not isinstance(line.qty, int) or not (
            1 <= line.qty <= MAX_QTY
        ):
            raise InvalidInput(
                f"line {number} ({line.sku}): quantity {line.qty!r} is not a whole number "
                f"from 1 to {MAX_QTY}",
                "sale.lines.qty", line=number, sku=str(line.sku), qty=repr(line.qty), most=MAX_QTY,
            )
        if isinstance(line.price_fen, bool) or not isinstance(line.price_fen, int) or not (
            0 <= line.price_fen <= MAX_UNIT_PRICE_FEN
        ):
            raise InvalidInput(
                f"line {number} ({line.sku}): price {line.price_fen!r} fen is not a whole number "
                f"from 0 to {MAX_UNIT_PRICE_FEN}",
                "sale.lines.price_fen", line=number, sku=str(line.sku), fen=repr(line.price_fen),
                most=MAX_UNIT_PRICE_FEN,
            )


def price(lines: Sequence[Line], discount_percent: int, deduction_fen: int) -> Pricing:
    """Share the tier discount and the points deduction across the lines in proportion to their
    list amounts, in whole fen by the largest-remainder method (ties to the earlier line)."""
    list_fen = sum(line.list_fen for line in lines)
    discount = list_fen * discount_percent // 100  # rounded down to whole fen
    off = largest_remainder(discount + deduction_fen, [line.list_fen for line in lines])
    priced = tuple(PricedLine(line, line.list_fen - share) for line, share in zip(lines, off,
                                                                                   strict=True))
    return Pricing(priced, list_fen, discount, deduction_fen)
