"""A member state is judged like a bundle (issue 16, break 8): a key whose delegation ended
before the terminal's latest trusted time signs nothing, however the state is backdated, and the
state's signed issue time moves no floor."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import Registration
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.loyalty.store.accounts import member_ref
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.card_states import CardUpdate
from terminal.loyalty.store.card_states import Profile as CardProfile
from terminal.loyalty.store.models import MODELS, CardState, Member
from terminal.protocol import bundle as b
from terminal.protocol.bundle import BundleRejected
from terminal.protocol.member_state import (
    MemberState,
    Profile,
    StatesNotice,
    signed,
    signed_notice,
)
from terminal.sync import member_states
from tests.sync.harness import CARD_KEY, now, rules_data

CARD = "a" * 64


@pytest.fixture
def till(tmp_path: Path):
    store = LedgerStore.open(tmp_path / "till.db", Rules.from_mapping(rules_data()), CARD_KEY,
                             Identity("S001", "T01"))
    yield store
    store.close()


def test_a_retired_key_signs_no_member_state_even_backdated(till: LedgerStore) -> None:
    root, signing = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ended = now() - timedelta(days=30)
    delegation = b.delegate(root, signing.public_key(), ended - timedelta(days=400),
                            ended).to_wire()
    trust = b.TrustStore.of([root.public_key()])
    backdated = MemberState(CARD, 1, ended - timedelta(days=1), "frozen", "stolen key",
                            card_last4="1122", tier="member", profile=Profile())
    wire = signed(backdated, signing, delegation)
    with pytest.raises(BundleRejected) as refused:
        member_states.receive(till, wire, CARD, trust, clock_trusted=True)
    assert refused.value.reason_code == "key_not_valid"
    # An untrusted clock knows no later time than the floor HQ's acks vouched for.
    till.observe_trusted_time(now() - timedelta(minutes=5))
    with pytest.raises(BundleRejected):
        member_states.receive(till, wire, CARD, trust, clock_trusted=False)


def test_a_member_state_issued_in_the_future_moves_no_floor(till: LedgerStore) -> None:
    root, signing = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    delegation = b.delegate(root, signing.public_key(), now() - timedelta(days=1),
                            now() + timedelta(days=200)).to_wire()
    trust = b.TrustStore.of([root.public_key()])
    acked = now() - timedelta(minutes=5)
    till.observe_trusted_time(acked)  # an HQ ack
    ahead = MemberState(CARD, 1, now() + timedelta(days=80), "frozen", "why", card_last4="1122",
                        tier="member", profile=Profile())
    assert member_states.receive(till, signed(ahead, signing, delegation), CARD, trust,
                                 clock_trusted=False) is not None
    assert till.floor == acked


def test_a_catch_up_page_applies_what_verifies_and_reports_the_rest(till: LedgerStore) -> None:
    """A catch-up page (member_states.receive_page) is judged state by state as the live
    messages are: a forged one is refused and reported, the others applied (a state the ledger
    holds already changes nothing), and the version the page covers is kept either way: HQ
    would answer the same page again."""
    root, signing = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    delegation = b.delegate(root, signing.public_key(), now() - timedelta(days=1),
                            now() + timedelta(days=200)).to_wire()
    trust = b.TrustStore.of([root.public_key()])

    def state(card: str, version: int, key: Ed25519PrivateKey = signing) -> bytes:
        return signed(MemberState(card, version, now(), "frozen", f"v{version}",
                                  card_last4="1122", tier="member", profile=Profile()),
                      key, delegation)

    assert member_states.held_through() == 0
    applied, refused = member_states.receive_page(
        till, [state("b" * 64, 3), state("c" * 64, 4, Ed25519PrivateKey.generate()),
               state(CARD, 5)], 0, 6, trust, clock_trusted=True)
    assert [(s.card_hash, s.version) for s in applied] == [("b" * 64, 3), (CARD, 5)]
    assert [exc.reason_code for exc in refused] == ["bad_signature"]
    assert member_states.held_through() == 6
    assert till.card_version("b" * 64) == 3 and till.card_version("c" * 64) == 0
    # Again (a page asked twice), and an older page: nothing changes, nothing goes back.
    applied, refused = member_states.receive_page(till, [state(CARD, 5)], 4, 5, trust,
                                                  clock_trusted=True)
    assert (applied, refused) == ([], [])
    assert member_states.held_through() == 6


def _keys() -> tuple[Ed25519PrivateKey, dict[str, str], b.TrustStore]:
    root, signing = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    delegation = b.delegate(root, signing.public_key(), now() - timedelta(days=1),
                            now() + timedelta(days=200)).to_wire()
    return signing, delegation, b.TrustStore.of([root.public_key()])


def _state(card: str, version: int, signing: Ed25519PrivateKey,
           delegation: dict[str, str]) -> bytes:
    return signed(MemberState(card, version, now(), "frozen", f"v{version}", card_last4="1122",
                              tier="member", profile=Profile()), signing, delegation)


def test_a_page_and_its_bookmark_are_kept_together_or_not_at_all(till: LedgerStore) -> None:
    """A page's states and the version it covers are one transaction: when the bookmark's
    write fails (a trigger refuses it, as a full disk or a crash between the two would), no
    state of the page is left applied, so the till never holds states past a bookmark it
    lacks, nor a bookmark past states it lacks; once writes succeed the page goes in whole."""
    signing, delegation, trust = _keys()
    page = [_state(f"{n:x}" * 64, n, signing, delegation) for n in (3, 4, 5)]
    till.db.execute_sql(
        "CREATE TRIGGER no_bookmark BEFORE INSERT ON meta "
        "WHEN NEW.key = 'member_states_through' BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(Exception, match="disk full"):
        member_states.receive_page(till, page, 0, 5, trust, clock_trusted=True)
    assert [till.card_version(f"{n:x}" * 64) for n in (3, 4, 5)] == [0, 0, 0]
    assert member_states.held_through() == 0
    till.db.execute_sql("DROP TRIGGER no_bookmark")
    applied, _ = member_states.receive_page(till, page, 0, 5, trust, clock_trusted=True)
    assert len(applied) == 3 and member_states.held_through() == 5


def test_a_reissue_notice_sets_the_bookmark_back_and_a_forged_one_nothing(
        till: LedgerStore) -> None:
    """HQ's notice of many states published (member_states.receive_notice): the till catches
    up only when it lacks some; a reissue's notice (``since``) sets its bookmark back, and a
    page asked before it does not move it on again; a notice not signed by HQ's key chain is
    refused and changes nothing."""
    signing, delegation, trust = _keys()
    member_states.receive_page(till, [_state(CARD, 5, signing, delegation)], 0, 6, trust,
                               clock_trusted=True)

    def notice(through: int, since: int | None, key: Ed25519PrivateKey = signing) -> bytes:
        return signed_notice(StatesNotice(through, now().replace(microsecond=0), since), key,
                             delegation)

    assert not member_states.receive_notice(till, notice(6, None), trust, clock_trusted=True)
    assert member_states.receive_notice(till, notice(9, None), trust, clock_trusted=True)
    with pytest.raises(BundleRejected) as refused:
        member_states.receive_notice(till, notice(9, 0, Ed25519PrivateKey.generate()), trust,
                                     clock_trusted=True)
    assert refused.value.reason_code == "bad_signature"
    assert member_states.held_through() == 6
    assert member_states.receive_notice(till, notice(6, 0), trust, clock_trusted=True)
    assert member_states.held_through() == 0
    member_states.receive_page(till, [], 6, 9, trust, clock_trusted=True)  # asked before it
    assert member_states.held_through() == 0
    member_states.receive_page(till, [_state(CARD, 5, signing, delegation)], 0, 6, trust,
                               clock_trusted=True)
    assert member_states.held_through() == 6


def _ledger(path: Path) -> LedgerStore:
    store = LedgerStore.open(path, Rules.from_mapping(rules_data()), CARD_KEY,
                             Identity("S001", "T01"))
    for number in range(4):
        store.register(Registration(card=f"81000000{number:02d}", name=f"m{number}",
                                    operator="ann"), Moment(now()))
    return store


def _page(store: LedgerStore) -> list[CardUpdate]:
    """A page as a catch-up brings it: cards no member here holds and the members' own, a
    freeze with profile and tier, a lost card replaced by a card no one holds, a merge into
    another member, and versions the ledger already holds."""
    held = [member_ref(CARD_KEY, f"81000000{number:02d}").hash for number in range(4)]
    other = [f"{n:x}" * 64 for n in range(1, 7)]
    profile = CardProfile("Ann Lee", "1990-02-03", None, "")
    return [
        CardUpdate(other[0], 3, "active", "bonus", tier="member", profile=CardProfile()),
        CardUpdate(held[0], 4, "frozen", "stolen", tier="member", profile=profile),
        CardUpdate(other[1], 5, "frozen", "fraud", tier="member", profile=CardProfile()),
        CardUpdate(held[1], 6, "retired", "lost", replaced_by=other[2], replaced_by_last4="0002"),
        CardUpdate(other[2], 6, "active", "", tier="member", profile=profile),
        CardUpdate(held[2], 7, "retired", "merged", replaced_by=held[3], forget_merged=True),
        CardUpdate(other[3], 8, "active", "bonus", tier="member", profile=CardProfile()),
        CardUpdate(other[0], 2, "frozen", "older", tier="member", profile=CardProfile()),
        CardUpdate(held[0], 4, "active", "again", tier="member", profile=CardProfile()),
    ]


def _rows(store: LedgerStore) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with bound(store.db, MODELS):
        return (sorted(CardState.select(CardState.card_hash, CardState.state, CardState.reason,
                                        CardState.replaced_by, CardState.version).tuples()),
                sorted(Member.select(Member.card_hash, Member.card_last4, Member.name,
                                     Member.birthday, Member.tier, Member.balance).tuples()))


def test_a_page_applies_as_its_states_one_by_one_would(tmp_path: Path) -> None:
    """``apply_card_updates`` (a catch-up page, set-based) leaves the ledger as
    ``apply_card_update`` for each state in turn does, and says the same of each."""
    paged, one_by_one = _ledger(tmp_path / "paged.db"), _ledger(tmp_path / "one.db")
    try:
        with bound(paged.db, MODELS):
            done = paged.apply_card_updates(_page(paged), Moment(now()))
        with bound(one_by_one.db, MODELS):
            each = [one_by_one.apply_card_update(update, Moment(now()))
                    for update in _page(one_by_one)]
        assert done == each == [True] * 7 + [False] * 2
        assert _rows(paged) == _rows(one_by_one)
    finally:
        paged.close()
        one_by_one.close()


def test_a_page_of_cards_no_member_here_holds_is_a_few_statements(tmp_path: Path) -> None:
    """A page of 200 states of cards this till holds no member of (a campaign's bonus at a
    till of another store) is read and written set-based: a few statements, not two or three
    a card (SQLite's trace of the ledger's connection counts them)."""
    store = _ledger(tmp_path / "till.db")
    statements: list[str] = []
    try:
        page = [CardUpdate(f"{n:064x}", n, "active", "bonus", tier="member",
                           profile=CardProfile()) for n in range(1, 201)]
        with bound(store.db, MODELS):
            store.db.connection().set_trace_callback(statements.append)
            try:
                assert store.apply_card_updates(page, Moment(now())) == [True] * 200
            finally:
                store.db.connection().set_trace_callback(None)
            assert store.card_version(f"{200:064x}") == 200
    finally:
        store.close()
    assert len(statements) < 20, len(statements)
