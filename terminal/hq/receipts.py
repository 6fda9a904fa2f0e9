"""A till's refund or void at HQ, found by the number on its receipt (``S001-T01-R0001``).

The till numbers its refunds and voids in its own series and the event carries the number;
HQ records the refund under an id derived from store, terminal and that number
(:func:`terminal.protocol.ids.chain_sale_id`), and keeps the number at the head of the applied
event's detail, which is how it is found again here.
"""

from __future__ import annotations

import re

from terminal.hq.models import AppliedEvent
from terminal.loyalty.store.models import Refund
from terminal.protocol.ids import chain_sale_id

RECEIPT_NUMBER = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,39}")


def refund_by_number(number: str) -> Refund | None:
    """The chain ledger's refund or void printed as ``number``, or None (on HQ's ledger thread).

    A number that is not one (wildcards, spaces) finds nothing, by a clear error."""
    if not RECEIPT_NUMBER.fullmatch(number):
        raise ValueError(f"{number!r} is not a receipt number such as S001-T01-R0001")
    applied = (AppliedEvent.select(AppliedEvent.store, AppliedEvent.terminal)
               .where(AppliedEvent.kind.in_(("refund", "void")),
                      AppliedEvent.outcome != "refused",
                      AppliedEvent.detail.startswith(f"{number}:"))
               .first())
    if applied is None:
        return None
    return Refund.get_or_none(
        Refund.id == chain_sale_id(applied.store, applied.terminal, f"refund:{number}"))
