"""Every text field an event carries reaches HQ's ledger and reads back identical, on SQLite and on
PostgreSQL (psycopg 3, server-side parameters, UTF8): quotes, backslashes, parameter marks,
Chinese, emoji, anything but control characters (NUL among them) and lone surrogates, which
are refused as bad events (terminal.hq.validation)."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from peewee import PostgresqlDatabase

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import EncodingError, open_hq_database
from terminal.hq.models import HQ_MODELS
from terminal.hq.policy import TrustPolicy
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import MODELS, LedgerEntry, Member, Sale, SaleLine
from terminal.protocol import ids
from terminal.protocol.messages import Event
from tests.hq.test_postgres_collector import fresh_database
from tests.sync.harness import CARD_KEY, rules_data

HOSTILE = ["'", "''", "\\", "\\'", "%s", "%(name)s", "$1", "?", ";--", "伞 'x' \\%s", "张三",
           "😀", "👨‍👩‍👧", "\u200b", "\u202e", "O'Brien \\ 张 %s 😀"]
# Any character UTF-8 can carry but control characters (NUL: PostgreSQL refuses it in text)
# and lone surrogates (no UTF-8 form).
TEXT = st.one_of(st.sampled_from(HOSTILE), st.text(
    st.characters(exclude_categories=("Cc", "Cs")), max_size=40))
_events = itertools.count(1)


def event(kind: str, body: dict[str, Any], store: str = "S001") -> Event:
    seq = next(_events)
    return Event(id=str(uuid.uuid4()), kind=kind, store=store, terminal="T01", seq=seq, epoch=1,
                 wall_time=datetime.now(UTC) - timedelta(minutes=5), time_trusted=True,
                 body=body)


def carrying(texts: dict[str, str]) -> tuple[list[Event], str, str]:
    """A registration, a member sale and an adjustment holding ``texts``; the card hash and the
    till's sale id."""
    card = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    sale = str(uuid.uuid4())
    line = {"sku": "SKU1", "qty": 1, "price_fen": 1200, "paid_fen": 1200,
            "name": texts["line_name"], "category": texts["category"]}
    return [
        event("register", {"card_hash": card, "name": texts["member_name"], "birthday": None,
                           "referrer_card_hash": None, "bonus": 100, "phone_hash": None}),
        event("sale", {"sale": sale, "card_hash": card, "lines": [line], "tender": "cash",
                       "redeem_points": 0, "operator": texts["operator"], "online": True,
                       "list_fen": 1200, "paid_fen": 1200, "discount_fen": 0,
                       "deduction_fen": 0, "points_earned": 12}),
        event("adjust", {"card_hash": card, "points": 5, "reason": texts["reason"],
                         "operator": texts["adjust_operator"], "entry": str(uuid.uuid4())}),
    ], card, sale


def stored(ledger: ChainLedger, card: str, sale: str) -> dict[str, str]:
    def read() -> dict[str, str]:
        member = Member.get(Member.card_hash == card)
        sale_row = Sale.get(Sale.id == ids.chain_sale_id("S001", "T01", sale))
        line = SaleLine.get(SaleLine.sale == sale_row.id)
        adjust = LedgerEntry.get((LedgerEntry.member == member.id)
                                 & (LedgerEntry.kind == "adjust"))
        return {"member_name": member.name, "line_name": line.name, "category": line.category,
                "operator": sale_row.operator, "reason": adjust.reason.removesuffix(
                    " (at S001/T01)"), "adjust_operator": adjust.operator}
    return ledger.thread.call(read)


def test_any_text_reads_back_identical_on_sqlite_and_postgresql(postgres, tmp_path) -> None:
    rules = Rules.from_mapping(rules_data())
    ledgers = [ChainLedger(open_hq_database(url), rules, CARD_KEY)
               for url in (str(tmp_path / "hq.db"), fresh_database(postgres))]

    @settings(max_examples=40)
    @given(st.fixed_dictionaries({
        **{name: TEXT for name in ("member_name", "line_name", "category", "operator")},
        # An adjustment needs a reason and an operator (blank ones are refused): not this
        # test's subject.
        **{name: TEXT.filter(str.strip) for name in ("reason", "adjust_operator")}}))
    def round_trip(texts: dict[str, str]) -> None:
        events, card, sale = carrying(texts)
        for ledger in ledgers:
            # HQ's register names the adjustment's operator a manager of S001 (hq/policy.py).
            ledger.trust = TrustPolicy(operators={"S001": {texts["adjust_operator"]: "manager"}})
            outcomes = ledger.thread.call(ledger.apply, events)
            assert [o.result for o in outcomes] == ["applied"] * 3, outcomes
            # The store keeps a member's name without surrounding blanks, as a till does.
            assert stored(ledger, card, sale) == {**texts,
                                                  "member_name": texts["member_name"].strip()}

    try:
        round_trip()
        for ledger in ledgers:
            with ledger.db.bind_ctx(MODELS + HQ_MODELS):
                assert ledger.thread.call(ledger.store.check_invariants) == []
    finally:
        for ledger in ledgers:
            ledger.close()


def test_a_database_or_client_not_speaking_utf8_is_refused_by_name(postgres) -> None:
    url = fresh_database(postgres)
    with pytest.raises(EncodingError, match="client encoding LATIN1, database encoding UTF8"):
        open_hq_database(url + "?client_encoding=LATIN1")
    admin = PostgresqlDatabase("posterm", host="127.0.0.1", port=postgres.port, user="postgres")
    admin.execute_sql("CREATE DATABASE hq_latin1 ENCODING 'LATIN1' TEMPLATE template0 "
                      "LC_COLLATE 'C' LC_CTYPE 'C'")
    admin.close()
    latin1 = f"postgresql://postgres@127.0.0.1:{postgres.port}/hq_latin1"
    with pytest.raises(EncodingError, match="hq_latin1: client encoding UTF8, database "
                                            "encoding LATIN1; HQ needs UTF8"):
        open_hq_database(latin1)


@pytest.mark.parametrize("bad", ["\x00", "a\x00b", "\ud800", "张\udfff"])
def test_nul_and_lone_surrogates_are_refused_as_bad_events_on_both(bad, postgres,
                                                                    tmp_path) -> None:
    rules = Rules.from_mapping(rules_data())
    manager = TrustPolicy(operators={"S001": {"ok": "manager"}})
    ledgers = [ChainLedger(open_hq_database(url), rules, CARD_KEY, trust=manager)
               for url in (str(tmp_path / "hq.db"), fresh_database(postgres))]
    fields = ("member_name", "line_name", "category", "operator", "reason", "adjust_operator")
    try:
        for field in fields:
            events, card, _ = carrying({**dict.fromkeys(fields, "ok"), field: bad})
            for ledger in ledgers:
                outcomes = ledger.thread.call(ledger.apply, events)
                refused = [o for o in outcomes if o.result == "refused"]
                assert len(refused) == 1 and "holds a" in refused[0].detail, outcomes
                if field == "member_name":  # no member: the rest waits for a registration
                    assert ledger.thread.call(
                        lambda c=card: Member.get_or_none(Member.card_hash == c)) is None
    finally:
        for ledger in ledgers:
            ledger.close()
