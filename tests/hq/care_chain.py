"""A hand-made chain for member care's tests (the analytics suite's tills and HQ ledger), and
HQ's clock for them: 2026-12-10 03:00 UTC, 11:00 in Shanghai, outside the quiet hours.

- C1 张伟, 13800000001, born 12-12; 5,000 fen on 2025-12-20: birthday (within 7 days),
  expiring (within 30), dormant (90);
- C2 李娜, 13900000002, born 29 February; 95,000 fen on 2026-11-01: next_tier (silver);
- C3 王芳, 13700000003, born 12-10 (today); 350 fen on 2026-12-01: birthday;
- C4 赵六, 13600000004, born 12-11; 800 fen on 2025-12-20: birthday, expiring, dormant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from terminal.hq.database import open_hq_database
from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import Registration
from terminal.loyalty.rules import Rules, load_rules
from terminal.loyalty.store.binding import bound_call
from terminal.loyalty.store.models import Member
from tests.hq.test_analytics import COLA, RICE, RULES, SOAP, Chain, line

NOW = datetime(2026, 12, 10, 3, 0, tzinfo=UTC)
PEOPLE = {  # card -> (name, phone, birthday)
    "8100000001": ("张伟", "13800000001", date(1990, 12, 12)),
    "8100000002": ("李娜", "13900000002", date(1992, 2, 29)),
    "8100000003": ("王芳", "13700000003", date(1985, 12, 10)),
    "8100000004": ("赵六", "13600000004", date(1980, 12, 11)),
}
C1, C2, C3, C4 = PEOPLE


def clock() -> datetime:
    return NOW


def moment(year: int, month: int, day: int) -> Moment:
    return Moment(datetime(year, month, day, 4, 0, tzinfo=UTC))


class CareChain(Chain):
    def member(self, card: str, when: Moment) -> None:
        name, phone, birthday = PEOPLE[card]
        till = self.tills["S001"]
        till.call(till.store.register, Registration(card=card, name=name, phone=phone,
                                                    birthday=birthday, operator="cashier"),
                  when)
        till.known.add(card)
        self._to_hq(till)


def build_care_chain(directory: Path, url: str | None = None) -> str:
    """HQ's database at ``url`` (default: SQLite in ``directory``) holding the chain; its URL."""
    url = url or str(directory / "hq.db")
    (directory / "tills").mkdir()
    chain = CareChain(url, directory / "tills")
    try:
        chain.member(C1, moment(2025, 12, 20))
        chain.sell("S001", C1, moment(2025, 12, 20), line(RICE, 1))
        chain.member(C4, moment(2025, 12, 20))
        chain.sell("S001", C4, moment(2025, 12, 20), line(SOAP, 1))
        chain.member(C2, moment(2026, 10, 1))
        chain.sell("S001", C2, moment(2026, 11, 1), line(RICE, 19))
        chain.member(C3, moment(2026, 11, 1))
        chain.sell("S001", C3, moment(2026, 12, 1), line(COLA, 1))
    finally:
        chain.close()
    return url


def member_id(url: str, card: str) -> str:
    db = open_hq_database(url)
    try:
        return bound_call(db, lambda: Member.get(Member.card_last4 == card[-4:]).id)
    finally:
        db.close()


def rules() -> Rules:
    return load_rules(RULES)
