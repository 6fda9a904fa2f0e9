"""The sale being rung up: its lines and member, before anything is written."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from terminal.app.hqlink import RemoteBalance
from terminal.loyalty.errors import InvalidInput
from terminal.loyalty.operations import MemberView, SaleRequest
from terminal.loyalty.pricing import MAX_LINES, Line, check_lines


@dataclass
class Draft:
    lines: list[Line] = field(default_factory=list)
    card: str | None = None  # the member's card number, kept only in memory for this sale
    member: MemberView | None = None  # as shown: HQ's balance and tier when HQ answered
    remote: RemoteBalance | None = None  # HQ's answer to the lookup at identification

    @property
    def total_fen(self) -> int:
        return sum(line.list_fen for line in self.lines)

    @property
    def empty(self) -> bool:
        return not self.lines and self.card is None

    def add(self, line: Line) -> None:
        """Add a line; the engine's own check refuses an impossible one before it is kept."""
        check_lines([line])
        if len(self.lines) >= MAX_LINES:
            raise InvalidInput(f"a sale has at most {MAX_LINES} lines", "sale.lines",
                               why="sale.lines.most", most=MAX_LINES)
        self.lines.append(line)

    def set_quantity(self, index: int, qty: int) -> Line:
        changed = dataclasses.replace(self.lines[index], qty=qty)
        check_lines([changed])
        self.lines[index] = changed
        return changed

    def remove(self, index: int) -> Line:
        return self.lines.pop(index)

    def request(self, sale_id: str, tender: str, redeem_points: int, operator: str) -> SaleRequest:
        return SaleRequest(id=sale_id, lines=list(self.lines), card=self.card, tender=tender,
                           redeem_points=redeem_points, operator=operator)
