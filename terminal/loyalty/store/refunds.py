"""Refunds and voids of a recorded sale: the refunded units and the points reversed and
restored, by the proportional formulas of :mod:`terminal.loyalty.refunds`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from terminal.loyalty import ledger, refunds
from terminal.loyalty.clock import Moment
from terminal.loyalty.errors import DuplicateId, InvalidInput, UnknownSale
from terminal.loyalty.ids import new_id
from terminal.loyalty.operations import RefundResult
from terminal.loyalty.store import hotpath
from terminal.loyalty.store.hotpath import MemberRow
from terminal.loyalty.store.members import Members
from terminal.loyalty.store.models import Member, Refund, RefundLine, SaleLine
from terminal.loyalty.store.writer import ID, Writer


@dataclass(frozen=True, slots=True)
class SaleToRefund:
    """A recorded sale as a refund reads it (hotpath.SALE_TO_REFUND)."""

    id: str
    member_id: str | None
    wall_us: int
    paid_fen: int
    list_fen: int
    points_earned: int
    points_redeemed: int
    earn_entry: str | None
    redeem_entry: str | None


class Refunds(Members):
    """Refunding and voiding sales."""

    def refund(
        self,
        sale_id: str,
        lines: list[tuple[str, object]] | None,
        moment: Moment,
        operator: str = "",
        refund_id: str | None = None,
        kind: str = "refund",
    ) -> RefundResult:
        """Refund units of a recorded sale (all that is left when ``lines`` is None).

        A ``refund_id`` already recorded makes this a no-op that answers what was recorded.
        ``kind="void"`` cancels what is left of the sale, by the same formulas.
        """
        if refund_id is not None and not ID.fullmatch(refund_id):
            raise InvalidInput(f"refund id {refund_id!r} is not 1-64 letters, digits or ._:-",
                               "refund.id")
        if kind not in ("refund", "void"):
            raise InvalidInput(f"unknown refund kind {kind!r}", "refund.kind")
        # A repeated refund id answers what was recorded and writes nothing at all.
        if refund_id is not None and self.sql.one(hotpath.REFUND_EXISTS, (refund_id,)):
            return self._refund_result(Refund.get_by_id(refund_id), moment, repeated=True)
        # Read through the store's statements, not the ORM: HQ's batches answer them from rows
        # read for all their refunds at once (terminal.hq.kept).
        with self._writing(moment) as w:
            if refund_id is not None and self.sql.one(hotpath.REFUND_EXISTS, (refund_id,)):
                raise DuplicateId(f"refund {refund_id} was recorded meanwhile", "refund.id",
                                  refund=refund_id)
            found = self.sql.one(hotpath.SALE_TO_REFUND, (sale_id,))
            if found is None:
                raise UnknownSale(f"sale {sale_id} is not recorded on this terminal", "refund.sale",
                                  sale=sale_id)
            sale = SaleToRefund(*found)
            before = self.sql.run(hotpath.REFUNDS_OF_SALE, (sale.id,)).fetchall()
            given = {} if not before else {  # units refunded before (one query fewer if none)
                line_no: (int(qty), int(fen)) for line_no, qty, fen  # PostgreSQL: numeric sums
                in self.sql.run(hotpath.REFUNDED_LINES, (sale.id,)).fetchall()
            }
            sold = [
                refunds.SoldLine(line_no, sku, qty, paid, *given.get(line_no, (0, 0)))
                for line_no, sku, qty, paid
                in self.sql.run(hotpath.SALE_LINES_TO_REFUND, (sale.id,)).fetchall()
            ]
            plan = refunds.plan_refund_lines(sale.id, sold, lines)
            refunded_before = sum(fen for _, fen, _, _ in before)
            refunded_after = refunded_before + sum(line.fen for line in plan)
            planned = {line.line_no: line.qty for line in plan}
            all_units = all(s.left == planned.get(s.line_no, 0) for s in sold)
            whole, part = sale.paid_fen, refunded_after
            if whole == 0:  # paid wholly with points: the same formulas on list amounts
                whole, part = self._list_reckoning(sale, plan)
            reverse = restore = 0
            if self.rules.refund.reverse_earned:
                reverse = refunds.proportional_so_far(
                    sale.points_earned, whole, part, all_units
                ) - sum(reversed_ for _, _, reversed_, _ in before)
            if self.rules.refund.restore_redeemed:
                restore = refunds.proportional_so_far(
                    sale.points_redeemed, whole, part, all_units
                ) - sum(restored for _, _, _, restored in before)
            refund_row_id = refund_id or new_id()
            refunded_fen = refunded_after - refunded_before
            self.sql.run(hotpath.INSERT_REFUND, (
                refund_row_id, w.next_seq(), sale.id, kind, w.us, moment.trusted, refunded_fen,
                reverse, restore, operator))
            for p in plan:
                self.sql.run(hotpath.INSERT_REFUND_LINE, (refund_row_id, p.line_no, p.qty, p.fen))
            member = self._member_by_id(sale.member_id) if sale.member_id else None
            if member is not None:
                self._expire_due(w, member)
            if member is not None and (reverse or restore):
                self._move_refund_points(w, member, sale, reverse, restore, operator)
            self._event(w, kind, {
                "refund": refund_row_id,
                "sale": sale.id,
                "member": member.id if member else None,
                "card_hash": member.card_hash if member else None,
                "lines": [{"line_no": p.line_no, "sku": p.sku, "qty": p.qty, "fen": p.fen}
                          for p in plan],
                "refunded_fen": refunded_fen,
                "points_reversed": reverse,
                "points_restored": restore,
                "operator": operator,
            })
            self._audit(w, operator, kind, sale.id, f"{refund_row_id} {refunded_fen} fen")
        # From what this call holds, not read again: on HQ's PostgreSQL each read is a round
        # trip (four of a refund's fourteen).
        return RefundResult(
            id=refund_row_id, sale=sale.id, kind=kind, refunded_fen=refunded_fen,
            points_reversed=reverse, points_restored=restore,
            lines=[(p.sku, p.qty, p.fen) for p in sorted(plan, key=lambda p: p.line_no)],
            member=self.member_view(Member.get_by_id(member.id), moment)
            if member is not None and self.views else None,
        )

    @staticmethod
    def _list_reckoning(sale: SaleToRefund, plan: list[refunds.RefundLine]) -> tuple[int, int]:
        """The sale's list total and the list amount refunded so far, this refund included (a
        sale paid wholly with points, rare: read through the ORM)."""
        lines = [(line.line_no, line.qty, line.list_fen)
                 for line in SaleLine.select().where(SaleLine.sale == sale.id)]
        before = Refund.select().where(Refund.sale == sale.id).order_by(Refund.seq)
        parts = [[(line.line_no, line.qty)
                  for line in refund.lines.order_by(RefundLine.line_no)]
                 for refund in before]
        parts.append([(line.line_no, line.qty) for line in plan])
        return sale.list_fen, refunds.list_refunded(lines, parts)

    def _member_by_id(self, member_id: str) -> MemberRow | None:
        row = self.sql.one(hotpath.MEMBER_BY_ID, (member_id,))
        return MemberRow(*row) if row is not None else None

    def _move_refund_points(
        self, w: Writer, member: MemberRow, sale: SaleToRefund, reverse: int, restore: int,
        operator: str,
    ) -> None:
        taken: dict[str, int] = defaultdict(int)
        if restore:
            # What this sale's redemption took from each lot, less what refunds gave back.
            for lot_id, points in self.sql.run(hotpath.TAKEN_BY_SALE, (sale.id,)).fetchall():
                taken[lot_id] -= points
        account = self._account(member, also=[*taken, sale.earn_entry or ""])
        if reverse:
            entry = account.debit(
                ledger.Entry(kind=ledger.REVERSE, points=-reverse, sale_id=sale.id,
                             reverses=sale.earn_entry, operator=operator),
                allow_debt=True,
                first_from=sale.earn_entry,
            )
            self._write_entry(w, member, entry)
        if restore:
            entry = account.restore(
                ledger.Entry(kind=ledger.RESTORE, points=restore, sale_id=sale.id,
                             reverses=sale.redeem_entry, operator=operator),
                [(lot_id, room) for lot_id, room in taken.items() if room > 0],
            )
            self._write_entry(w, member, entry)
        self._save_account(member, account)

    def _refund_result(self, row: Refund, moment: Moment, repeated: bool = False) -> RefundResult:
        sale = row.sale
        skus = {line.line_no: line.sku for line in sale.lines}
        member = Member.get_by_id(sale.member_id) if sale.member_id else None
        return RefundResult(
            id=row.id,
            sale=sale.id,
            kind=row.kind,
            refunded_fen=row.refunded_fen,
            points_reversed=row.points_reversed,
            points_restored=row.points_restored,
            lines=[(skus[line.line_no], line.qty, line.fen)
                   for line in row.lines.order_by(RefundLine.line_no)],
            member=self.member_view(member, moment) if member and self.views else None,
            repeated=repeated,
        )
