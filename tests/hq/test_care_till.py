"""Consent given at a till (issue 13): the till's ``consent`` event, applied by HQ's ledger as
the collector applies it, recorded in care's consent store with its source; a till without the
question (no event) leaves no consent; a late answer does not undo a later one; what is refused
never names the address; the till drops the number from its outbox once HQ has the event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from terminal.hq.care import consent
from terminal.hq.care.models import CareConsent, CareContact
from terminal.hq.care.service import Care
from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.console.roles import Principal
from terminal.hq.database import open_hq_database
from terminal.hq.member_ops.service import MemberOps
from terminal.hq.models import AppliedEvent
from terminal.loyalty.clock import Moment
from terminal.loyalty.errors import InvalidInput
from terminal.loyalty.operations import Registration
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.loyalty.store.binding import bound_call
from terminal.loyalty.store.models import Member, Outbox
from terminal.loyalty.store.outbox import mark_acked
from terminal.protocol.messages import Event
from tests.sync.harness import CARD_KEY, rules_data

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
YES, NO, SILENT = "7300000001", "7300000002", "7300000003"
PHONES = {YES: "13700000001", NO: "13700000002", SILENT: "13700000003"}


class Setting:
    """A till at S003/T02 on a SQLite file and HQ's ledger on another."""

    def __init__(self, tmp: Path, hq_url: str | None = None) -> None:
        self.rules = Rules.from_mapping(rules_data())
        self.till = LedgerStore.open(tmp / "till.db", self.rules, CARD_KEY,
                                     Identity("S003", "T02"))
        self.hq_db = open_hq_database(hq_url or str(tmp / "hq.db"))
        self.ledger = ChainLedger(self.hq_db, self.rules, CARD_KEY)
        self.sent = 0  # outbox rows already applied

    def register(self, card: str, at: datetime) -> None:
        bound_call(self.till.db, self.till.register, Registration(
            card=card, name="顾客", phone=PHONES[card], operator="cashier"), Moment(at))

    def consent(self, card: str, granted: bool, at: datetime, address: str | None = None,
                channel: str = "sms") -> None:
        """The member's answer at the till (a yes with their registered phone)."""
        address = address or (PHONES[card] if granted else None)
        bound_call(self.till.db, self.till.consent, card, channel, granted, address,
                   "cashier", Moment(at))

    def events(self) -> list[Event]:
        rows = bound_call(self.till.db, lambda: list(Outbox.select().order_by(Outbox.seq)))
        rows = rows[self.sent:]
        self.sent += len(rows)
        return [Event.from_json(row.payload) for row in rows]

    def apply(self, events: list[Event] | None = None) -> dict[str, tuple[str, str]]:
        """Apply the till's new events (or ``events``) at HQ: each consent event's outcome."""
        outcomes = self.ledger.thread.call(self.ledger.apply, events or self.events())
        return {o.event.body["card_hash"][-6:]: (o.result, o.detail) for o in outcomes
                if o.event.kind == "consent"}

    def hq(self, fn, *args):
        return bound_call(self.hq_db, fn, *args)

    def member(self, card: str) -> str:
        return self.hq(lambda: Member.get(Member.card_last4 == card[-4:]).id)

    def close(self) -> None:
        self.ledger.close()
        self.till.close()


@pytest.fixture
def setting(tmp_path: Path) -> Iterator[Setting]:
    made = Setting(tmp_path)
    yield made
    made.close()


@pytest.mark.slow  # PostgreSQL
def test_answers_at_the_till_on_postgresql(postgres, tmp_path: Path) -> None:
    """HQ's production database: the batch's member rows (kept in memory, written through the
    store's statements in pipeline mode) are what care's ORM reads find."""
    from tests.hq.test_postgres_collector import fresh_database

    made = Setting(tmp_path, fresh_database(postgres))
    try:
        test_answers_at_the_till_reach_care_with_their_source(made)
    finally:
        made.close()


def test_answers_at_the_till_reach_care_with_their_source(setting: Setting) -> None:
    for n, card in enumerate((YES, NO, SILENT)):
        setting.register(card, T0 + timedelta(minutes=n))
    setting.consent(YES, True, T0 + timedelta(minutes=5))
    setting.consent(NO, False, T0 + timedelta(minutes=6))
    # SILENT: the till did not ask (a till from before the question): no event at all.
    outcomes = setting.apply()
    assert sorted(result for result, _ in outcomes.values()) == ["applied", "applied"]
    assert any(detail == "sms opt-in at S003/T02" for _, detail in outcomes.values())
    yes, no, silent = (setting.member(card) for card in (YES, NO, SILENT))
    assert setting.hq(consent.state, yes)["sms"] == {"granted": True, "hint": "…0001"}
    assert setting.hq(consent.state, no)["sms"]["granted"] is False
    assert setting.hq(consent.state, silent)["sms"]["granted"] is False  # no answer: no
    rows = setting.hq(lambda: [(r.member, r.granted, r.source, r.store, r.terminal, r.actor)
                               for r in CareConsent.select().order_by(CareConsent.id)])
    assert rows == [(yes, True, "till", "S003", "T02", "cashier"),
                    (no, False, "till", "S003", "T02", "cashier")]
    history = setting.hq(consent.history, yes, setting.rules.zone)
    assert history[0]["at"] == "2026-12-01 10:05:00"  # the till's (trusted) time, in Shanghai
    assert setting.hq(lambda: CareContact.get_by_id(yes).phone) == PHONES[YES]
    assert setting.hq(lambda: CareContact.get_or_none(CareContact.member == no)) is not None
    assert setting.hq(lambda: CareContact.get_by_id(no).phone) is None
    # The same event again (a till publishing after a lost ack): applied once.
    again = [Event.from_json(row.payload) for row in bound_call(
        setting.till.db, lambda: list(Outbox.select().where(Outbox.kind == "consent")))]
    assert {r for r, _ in setting.apply(again).values()} == {"duplicate"}
    assert setting.hq(lambda: CareConsent.select().count()) == 2


def test_the_till_drops_the_number_once_hq_has_it(setting: Setting) -> None:
    setting.register(YES, T0)
    setting.consent(YES, True, T0)
    def body(kind: str) -> dict:
        return json.loads(bound_call(setting.till.db, lambda: Outbox.get(
            Outbox.kind == kind).payload))["body"]

    assert body("consent")["address"] == PHONES[YES]
    ids = bound_call(setting.till.db, lambda: [r.id for r in Outbox.select()])
    assert bound_call(setting.till.db, mark_acked, setting.till, ids, None) == len(ids)
    register, answer = body("register"), body("consent")
    assert "address" not in answer and answer["granted"] is True and answer["member"]
    assert register["phone_last4"] == "0001"  # other kinds are left as they were


def test_the_till_refuses_a_yes_without_the_registered_phone(setting: Setting) -> None:
    setting.register(YES, T0)
    with pytest.raises(InvalidInput, match="registered phone"):
        setting.consent(YES, True, T0, "13799999999")
    with pytest.raises(InvalidInput, match="no care channel"):
        setting.consent(YES, True, T0, "a@b.cn", channel="email")
    assert bound_call(setting.till.db, lambda: Outbox.select().where(
        Outbox.kind == "consent").exists()) is False


def test_a_late_answer_does_not_undo_a_later_one(setting: Setting) -> None:
    """The member said yes at an offline till, then no to member service; the till's yes
    arrives after: recorded as given, but the no stands."""
    setting.register(YES, T0)
    setting.apply()
    member = setting.member(YES)
    setting.consent(YES, True, T0 + timedelta(minutes=1))
    Care(setting.hq_db, setting.rules, CARD_KEY, lambda: T0 + timedelta(hours=1)).consent(
        Principal("svc", "service"), member, "sms", False)
    (result, detail), = setting.apply().values()
    assert result == "applied" and detail.endswith("recorded, a later answer stands")
    assert setting.hq(consent.state, member)["sms"] == {"granted": False, "hint": ""}
    assert [row["source"] for row in setting.hq(consent.history, member, setting.rules.zone)
            ] == ["console", "till"]


def test_forged_and_erased_answers(setting: Setting) -> None:
    setting.register(YES, T0)
    setting.register(NO, T0)
    setting.apply()
    setting.consent(YES, True, T0)
    (event,) = setting.events()
    forged = Event.from_json(event.to_json().replace(PHONES[YES].encode(), b"13799999999"))
    forged = Event.from_json(json.dumps({**json.loads(forged.to_json()),
                                         "id": "0" * 8 + event.id[8:]}).encode())
    (result, detail), = setting.apply([forged]).values()
    assert result == "refused" and "not the member's registered phone" in detail
    assert "13799999999" not in detail
    stored = setting.hq(lambda: AppliedEvent.get_by_id(forged.id).detail)
    assert "13799999999" not in stored and PHONES[YES] not in stored
    # An erased member's answer is not recorded.
    MemberOps(setting.hq_db, setting.rules, CARD_KEY).erase(NO, actor="svc", reason="asked")
    setting.consent(NO, True, T0)
    (result, detail), = setting.apply().values()
    assert result == "applied" and detail.endswith("not recorded, the member's data was erased")
    assert setting.hq(lambda: CareConsent.select().count()) == 0
    # A consent event before the member's registration reached HQ waits for it.
    setting.register(SILENT, T0)
    setting.consent(SILENT, False, T0)
    register, answer = setting.events()
    (result, _), = setting.apply([answer]).values()
    assert result == "deferred"
    setting.apply([register])
    (result, _), = setting.apply([answer]).values()
    assert result == "applied"
