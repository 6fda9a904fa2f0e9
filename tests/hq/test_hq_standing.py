"""HQ shows what the engine shows: the tier every review due by now decided, even with no sale
since, and balances without lots expired by now, swept or not (issue 15 bug 1 and the expiry
reading, at HQ on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import open_hq_database
from terminal.loyalty.cards import card_hash
from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import Registration, SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.loyalty.store.models import Outbox
from terminal.protocol.messages import Event, MemberRequest
from tests.hq.test_ingest_batches import new_url  # noqa: F401  (the fixture)
from tests.sync.harness import CARD_KEY, rules_data

CARD = "6200000000000018"


def _events_of_a_year_ago(tmp_path: Path) -> list[Event]:
    """A member registered 14 months ago who bought 1,200 yuan then and nothing since: silver
    at the time, every point earned then expired by now."""
    till = LedgerStore.open(tmp_path / "till.db", Rules.from_mapping(rules_data()), CARD_KEY,
                            Identity("S001", "T01"))
    then = datetime.now(UTC) - timedelta(days=430)
    till.register(Registration(card=CARD, operator="ann"), Moment(then))
    sold = till.sale(SaleRequest("s1", [Line("H1", 1, 120_000, "item", "household")], card=CARD,
                                 operator="ann"), Moment(then + timedelta(minutes=5)))
    assert sold.member is not None and sold.member.tier == "silver"
    with till.db.bind_ctx([Outbox]):
        events = [Event.from_json(row.payload) for row in Outbox.select().order_by(Outbox.seq)]
    till.close()
    return events


def test_hq_lookup_shows_the_reviewed_tier_and_the_unexpired_balance(
        new_url: Callable[[], str], tmp_path: Path) -> None:  # noqa: F811
    ledger = ChainLedger(open_hq_database(new_url()), Rules.from_mapping(rules_data()), CARD_KEY)
    try:
        outcomes = ledger.thread.call(ledger.apply, _events_of_a_year_ago(tmp_path))
        assert [o.result for o in outcomes] == ["applied", "applied"]
        lookup = MemberRequest(op="lookup", member=card_hash(CARD_KEY, CARD))
        answer = ledger.thread.call(ledger.answer, lookup, "S001", "T01")
        # No sale since, no sweep: the last review saw no spend, and every lot has expired.
        assert (answer.ok, answer.tier, answer.balance) == (True, "member", 0)
        assert ledger.thread.call(ledger.store.check_invariants) == []
    finally:
        ledger.close()
