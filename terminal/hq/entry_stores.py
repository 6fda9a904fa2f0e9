"""Which store wrote each entry of HQ's chain ledger.

An applied event's span of the chain ledger's sequence (``applied_event.first_seq .. last_seq``)
names the store whose event wrote those rows; the spans never overlap, so a bisection over their
starts finds a sequence number's store without a range join the databases cannot index. Rows in
no span HQ wrote itself (the expiry sweep, member operations): they belong to ``HQ``.
"""

from __future__ import annotations

import bisect

from terminal.hq.models import AppliedEvent

HQ = "HQ"


class EntryStores:
    """The spans, read once (run with the models bound, inside the reader's snapshot); with
    ``since``, only those reaching it (a backtest's window: the chain's every span is millions
    of rows at chain scale, its last month a twentieth of them)."""

    def __init__(self, since: int | None = None) -> None:
        rows = (AppliedEvent.select(AppliedEvent.first_seq, AppliedEvent.last_seq,
                                    AppliedEvent.store)
                .where(AppliedEvent.first_seq.is_null(False),
                       *([AppliedEvent.last_seq >= since] if since is not None else []))
                .order_by(AppliedEvent.first_seq).tuples().iterator())
        self.firsts: list[int] = []
        self.spans: list[tuple[int, str]] = []
        for first, last, store in rows:
            self.firsts.append(int(first))
            self.spans.append((int(last), store))

    def of(self, seq: int) -> str:
        at = bisect.bisect_right(self.firsts, seq) - 1
        if at >= 0 and seq <= self.spans[at][0]:
            return self.spans[at][1]
        return HQ
