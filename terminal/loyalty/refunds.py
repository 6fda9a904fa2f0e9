"""Refunds: money handed back per line, and points taken back and given back in proportion.

As rules.toml's [refund] comment defines, on the sale as a whole so that refunds in several
parts add up exactly: after refunds totalling R fen of a sale that paid P fen, earned E points
and redeemed D points,

    points taken back so far = E - floor(E * (P - R) / P)
    points given back so far = D - floor(D * (P - R) / P)

A sale that paid nothing (P = 0, wholly paid with points) uses the same formulas on list
amounts (:func:`list_refunded`); one whose list amounts are 0 too moves its points with its
last unit.
"""

from __future__ import annotations

from dataclasses import dataclass

from terminal.loyalty.errors import InvalidInput, RefundRefused


@dataclass(frozen=True)
class SoldLine:
    line_no: int
    sku: str
    qty: int
    paid_fen: int
    refunded_qty: int = 0
    refunded_fen: int = 0

    @property
    def left(self) -> int:
        return self.qty - self.refunded_qty


@dataclass(frozen=True)
class RefundLine:
    line_no: int
    sku: str
    qty: int
    fen: int


def plan_refund_lines(
    sale_id: str, sold: list[SoldLine], request: list[tuple[str, object]] | None
) -> list[RefundLine]:
    """Which units of which lines a refund returns, and the money for each.

    ``request`` is a list of (sku, units); None refunds every unit not yet refunded. Units of a
    SKU sold on several lines come off the earliest line first.
    """
    left = {line.line_no: line.left for line in sold}
    wanted: list[tuple[SoldLine, int]] = []
    if request is None:
        wanted = [(line, line.left) for line in sold if line.left]
        if not wanted:
            raise RefundRefused(f"sale {sale_id} is already fully refunded", "refund",
                                sale=sale_id)
    else:
        if not request:
            raise InvalidInput("the refund names no lines", "refund.lines", why="refund.lines")
        for sku, units in request:
            if isinstance(units, bool) or not isinstance(units, int) or units < 1:
                raise InvalidInput(f"refund of {sku}: {units!r} is not a whole number of units",
                                   "refund.lines.qty", why="refund.lines.units", sku=sku,
                                   units=repr(units))
            matching = [line for line in sold if line.sku == sku]
            if not matching:
                raise RefundRefused(f"{sku} was not sold on sale {sale_id}", "refund.lines.sku",
                                    sku=sku, sale=sale_id)
            available = sum(left[line.line_no] for line in matching)
            if units > available:
                raise RefundRefused(
                    f"{sku}: {units} units asked, {available} left to refund on sale {sale_id}",
                    "refund.lines.qty", sku=sku, units=units, left=available, sale=sale_id,
                )
            for line in matching:
                take = min(units, left[line.line_no])
                if take:
                    wanted.append((line, take))
                    left[line.line_no] -= take
                    units -= take
    merged: dict[int, int] = {}
    for line, units in wanted:
        merged[line.line_no] = merged.get(line.line_no, 0) + units
    by_no = {line.line_no: line for line in sold}
    return [_refund_line(by_no[no], units) for no, units in sorted(merged.items())]


def _refund_line(line: SoldLine, units: int) -> RefundLine:
    if line.refunded_qty + units == line.qty:
        fen = line.paid_fen - line.refunded_fen  # the last units take what is left
    else:
        fen = line.paid_fen * units // line.qty
    return RefundLine(line.line_no, line.sku, units, fen)


def list_refunded(lines: list[tuple[int, int, int]], parts: list[list[tuple[int, int]]]) -> int:
    """The list amount of the units ``parts`` refunded, reckoned as the money is: each part of
    a line hands back its list amount * units / quantity rounded down, its last units what is
    left. ``lines`` are (line_no, qty, list_fen); ``parts`` each refund's (line_no, units), in
    the order they were made."""
    sold = {no: (qty, fen) for no, qty, fen in lines}
    units_done: dict[int, int] = {}
    fen_done: dict[int, int] = {}
    total = 0
    for part in parts:
        for no, units in part:
            qty, fen = sold[no]
            back = _refund_line(SoldLine(no, "", qty, fen, units_done.get(no, 0),
                                         fen_done.get(no, 0)), units).fen
            units_done[no] = units_done.get(no, 0) + units
            fen_done[no] = fen_done.get(no, 0) + back
            total += back
    return total


def proportional_so_far(points: int, paid_fen: int, refunded_fen: int, all_units: bool) -> int:
    """Points taken (or given) back after refunds totalling ``refunded_fen``."""
    if paid_fen == 0:
        return points if all_units else 0
    return points - points * (paid_fen - refunded_fen) // paid_fen
