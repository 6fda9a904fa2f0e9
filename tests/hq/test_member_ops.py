"""HQ's member operations on a real chain database: what each writes, and what each refuses
(changing nothing)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from terminal.hq.cli import main
from terminal.hq.member_ops.errors import (
    CardInUse,
    CardRetired,
    ImportRejected,
    InvalidRequest,
    LedgerRefused,
    UnknownMember,
    WrongState,
)
from terminal.hq.member_ops.publish import pending
from terminal.hq.member_ops.service import MemberOps
from terminal.hq.models import HQ_MODELS, MemberHome, MemberOp
from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import Registration
from terminal.loyalty.store.accounts import CardRef
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.models import MODELS, CardState, LedgerEntry, Lot, Member
from tests.support.shared import EXAMPLES

KEY = b"chain-card-key-0123456789abcdef"
CARD, OTHER = "8000123456", "8000654321"
AT = datetime(2026, 3, 4, 2, tzinfo=UTC)


def _service(url: str, tmp_path: Path) -> MemberOps:
    service = MemberOps.open(url, EXAMPLES / "rules.toml", _key(tmp_path))
    service.clock = lambda: AT
    with bound(service.db, MODELS + HQ_MODELS):
        for card, phone in ((CARD, "13900001111"), (OTHER, "13900002222")):
            service.store.register(Registration(card=card, name="张三", phone=phone),
                                   Moment(AT))
    return service


@pytest.fixture(params=["sqlite", "postgresql"])
def ops(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The service on a chain database with two members, on each kind of database."""
    url = str(tmp_path / "hq.db")
    if request.param == "postgresql":
        from tests.hq.test_postgres_collector import fresh_database

        url = fresh_database(request.getfixturevalue("postgres"))
    service = _service(url, tmp_path)
    yield service
    service.close()


@pytest.fixture
def sqlite_ops(tmp_path: Path) -> Any:
    """The service on ``tmp_path/hq.db``, the file the command-line tests name."""
    service = _service(str(tmp_path / "hq.db"), tmp_path)
    yield service
    service.close()


def _key(tmp_path: Path) -> Path:
    path = tmp_path / "card.key"
    path.write_bytes(KEY)
    return path


def _rows(ops: MemberOps) -> dict[str, list[tuple[Any, ...]]]:
    with bound(ops.db, MODELS + HQ_MODELS):
        return {
            "ops": list(MemberOp.select().order_by(MemberOp.seq).tuples()),
            "entries": list(LedgerEntry.select().order_by(LedgerEntry.seq).tuples()),
            "members": list(Member.select().order_by(Member.id).tuples()),
            "cards": list(CardState.select().order_by(CardState.card_hash).tuples()),
        }


def test_freeze_adjust_unfreeze_are_ordered_recorded_and_pending_for_the_tills(ops) -> None:
    frozen = ops.freeze(CARD, actor="ann", reason="卡片被盗")
    assert (frozen.seq, frozen.kind, frozen.state) == (1, "freeze", "frozen")
    adjusted = ops.adjust(CARD, 500, actor="bob", reason="goodwill: late delivery")
    assert (adjusted.seq, adjusted.state, adjusted.balance) == (2, "frozen", 100 + 500)
    with bound(ops.db, MODELS + HQ_MODELS):
        card = CardState.get_by_id(frozen.card_hash)
        assert (card.state, card.reason, card.version) == ("frozen", "卡片被盗", 2)
        entry = LedgerEntry.select().order_by(LedgerEntry.seq.desc()).first()
        assert (entry.kind, entry.points, entry.reason, entry.operator) == (
            "adjust", 500, "goodwill: late delivery", "bob")
        states = pending()
        assert [(s.card_hash, s.version, s.state, s.reason, s.tier) for s in states] == [
            (frozen.card_hash, 2, "frozen", "卡片被盗", "member")]
        assert states[0].profile is not None and states[0].profile.name == "张三"
    thawed = ops.unfreeze(CARD, actor="ann", reason="card found")
    assert (thawed.seq, thawed.state) == (3, "active")
    with bound(ops.db, MODELS + HQ_MODELS):
        kinds = [(op.seq, op.kind, op.actor, op.reason) for op in MemberOp.select()
                 .order_by(MemberOp.seq)]
    assert kinds == [(1, "freeze", "ann", "卡片被盗"), (2, "adjust", "bob",
                                                       "goodwill: late delivery"),
                     (3, "unfreeze", "ann", "card found")]


@pytest.mark.parametrize(("call", "error"), [
    (lambda ops: ops.adjust(CARD, 100, actor="ann", reason="  "), InvalidRequest),
    (lambda ops: ops.adjust(CARD, 100, actor="", reason="why"), InvalidRequest),
    (lambda ops: ops.adjust(CARD, 0, actor="ann", reason="why"), InvalidRequest),
    (lambda ops: ops.adjust(CARD, True, actor="ann", reason="why"), InvalidRequest),
    (lambda ops: ops.adjust(CARD, 1.5, actor="ann", reason="why"), InvalidRequest),
    (lambda ops: ops.adjust(CARD, -101, actor="ann", reason="why"), LedgerRefused),
    (lambda ops: ops.adjust(CARD, 10**9, actor="ann", reason="why"), LedgerRefused),
    (lambda ops: ops.adjust("8000999999", 5, actor="ann", reason="why"), UnknownMember),
    (lambda ops: ops.adjust("4111111111111111", 5, actor="ann", reason="why"), InvalidRequest),
    (lambda ops: ops.freeze(CARD, actor="ann", reason="x" * 201), InvalidRequest),
    (lambda ops: ops.freeze(CARD, actor="ann\x00", reason="why"), InvalidRequest),
    (lambda ops: ops.unfreeze(CARD, actor="ann", reason="not frozen"), WrongState),
])
def test_a_refused_operation_changes_nothing(ops, call, error) -> None:
    before = _rows(ops)
    with pytest.raises(error):
        call(ops)
    assert _rows(ops) == before


def test_freezing_twice_is_refused(ops) -> None:
    ops.freeze(CARD, actor="ann", reason="stolen")
    before = _rows(ops)
    with pytest.raises(WrongState, match="already frozen"):
        ops.freeze(CARD, actor="ann", reason="stolen again")
    assert _rows(ops) == before


def test_a_retired_card_is_named_as_such(ops) -> None:
    with bound(ops.db, MODELS + HQ_MODELS):
        member = Member.get(Member.card_last4 == CARD[-4:])
        CardState.create(card_hash="f" * 64, state="retired", reason="lost",
                         replaced_by=member.card_hash, version=1, updated_us=0)
    with pytest.raises(CardRetired, match="retired"):
        ops.freeze(CardRef("f" * 64, "ffff"), actor="ann", reason="why")


def test_the_command_line_prints_the_result_and_refuses_with_the_reason(
        tmp_path: Path, sqlite_ops, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--actor", "ann", "--db", str(tmp_path / "hq.db"), "--rules",
              str(EXAMPLES / "rules.toml"), "--card-key-file", str(tmp_path / "card.key")]
    assert main(["member", "adjust", CARD, "250", "--reason", "补积分", *common]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["kind"], printed["balance"], printed["detail"]) == (
        "adjust", 350, {"points": 250})
    assert main(["member", "unfreeze", CARD, "--reason", "why", *common]) == 1
    assert "refused (wrong_state): card ****3456 is not frozen" in capsys.readouterr().err


NEW = "8000777788"


def _member(ops: MemberOps, last4: str) -> Member:
    with bound(ops.db, MODELS + HQ_MODELS):
        return Member.get(Member.card_last4 == last4)


def _lots(ops: MemberOps, member_id: str) -> list[tuple[Any, ...]]:
    with bound(ops.db, MODELS + HQ_MODELS):
        return sorted((lot.earned_us, lot.expires_us, lot.remaining)
                      for lot in Lot.select().where((Lot.member == member_id)
                                                    & (Lot.remaining > 0)))


def _sound(ops: MemberOps) -> None:
    with bound(ops.db, MODELS + HQ_MODELS):
        assert ops.store.check_invariants() == []


def test_a_lost_card_is_replaced_with_everything_the_member_had(ops) -> None:
    ops.adjust(CARD, 400, actor="ann", reason="goodwill")
    ops.freeze(CARD, actor="ann", reason="reported lost")
    before = _member(ops, CARD[-4:])
    lots = _lots(ops, before.id)
    result = ops.replace_card(CARD, NEW, actor="bob", reason="挂失补卡")
    after = _member(ops, NEW[-4:])
    assert (after.id, after.balance, after.tier, after.name) == (
        before.id, before.balance, before.tier, before.name)
    assert (result.kind, result.state, result.card_last4) == ("replace", "active", "7788")
    assert _lots(ops, after.id) == lots
    with bound(ops.db, MODELS + HQ_MODELS):
        old = CardState.get_by_id(before.card_hash)
        assert (old.state, old.replaced_by) == ("retired", after.card_hash)
        states = {s.card_hash: s for s in pending()}
    assert states[before.card_hash].replaced_by_last4 == "7788"
    assert states[after.card_hash].state == "active"
    assert states[after.card_hash].profile.name == "张三"
    for call in (lambda: ops.adjust(CARD, 5, actor="ann", reason="why"),
                 lambda: ops.replace_card(CARD, "8000111100", actor="ann", reason="why")):
        with pytest.raises(CardRetired):
            call()
    snapshot = _rows(ops)
    with pytest.raises(CardInUse):
        ops.replace_card(NEW, OTHER, actor="ann", reason="why")
    with pytest.raises(CardInUse):
        ops.replace_card(NEW, CARD, actor="ann", reason="a retired card never comes back")
    assert _rows(ops) == snapshot
    _sound(ops)


def test_a_merge_sums_the_points_keeps_each_lot_expiry_and_retires_the_duplicate(ops) -> None:
    ops.import_members("card,tier,points,expires\n8000300001,gold,300,2027-01-31\n"
                       "8000300002,member,200,2026-12-31\n", actor="ann", reason="move")
    kept, gone = _member(ops, "0001"), _member(ops, "0002")
    with bound(ops.db, MODELS + HQ_MODELS):  # the duplicate owes points (a refund's debt)
        ops.store.adjust(CardRef(gone.card_hash), -250, "refund of spent points", "hq",
                         Moment(AT), reconcile="test")
    gone = _member(ops, "0002")
    assert (gone.balance, gone.debt) == (-50, 50)
    expected = sorted(_lots(ops, kept.id) + _lots(ops, gone.id))
    result = ops.merge("8000300001", "8000300002", actor="bob", reason="同一人两张卡")
    assert (result.balance, result.tier) == (300 - 50, "gold")
    assert result.detail["points"] == -50 and result.detail["debt"] == 50
    assert sorted(_lots(ops, kept.id)) != expected  # the debt paid from the kept lots ...
    assert sum(r for _, _, r in _lots(ops, kept.id)) == 250
    assert {e for _, e, _ in _lots(ops, kept.id)} == {e for _, e, _ in expected}  # ... expiries
    gone = _member(ops, "0002")
    assert (gone.balance, gone.debt) == (0, 0)
    with bound(ops.db, MODELS + HQ_MODELS):
        card = CardState.get_by_id(gone.card_hash)
        assert (card.state, card.replaced_by) == ("retired", kept.card_hash)
        reasons = [e.reason for e in LedgerEntry.select().where(LedgerEntry.member == gone.id)]
    assert any(r.startswith("merged into card ****0001: 同一人两张卡") for r in reasons)
    with pytest.raises(CardRetired):
        ops.merge("8000300001", "8000300002", actor="bob", reason="again")
    with pytest.raises(InvalidRequest, match="itself"):
        ops.merge("8000300001", "8000300001", actor="bob", reason="self")
    _sound(ops)


def test_a_merge_moves_every_lot_with_its_own_expiry(ops) -> None:
    ops.import_members("card,tier,points,expires\n8000300003,member,70,2027-03-31\n",
                       actor="ann", reason="move")
    kept, gone = _member(ops, CARD[-4:]), _member(ops, "0003")
    expected = sorted(_lots(ops, kept.id) + _lots(ops, gone.id))
    ops.merge(CARD, "8000300003", actor="bob", reason="dup")
    assert _lots(ops, kept.id) == expected
    assert _member(ops, CARD[-4:]).balance == 100 + 70
    _sound(ops)


def test_a_profile_edit_records_the_fields_never_their_values(ops) -> None:
    result = ops.edit_profile(CARD, actor="ann", reason="customer called", name="李四",
                              phone="13911112222", birthday="1990-05-01")
    member = _member(ops, CARD[-4:])
    assert (member.name, member.phone_last4, member.birthday) == ("李四", "2222", "1990-05-01")
    assert result.detail == {"fields": ["birthday", "name", "phone"]}
    with bound(ops.db, MODELS + HQ_MODELS):
        assert "李四" not in MemberOp.get(MemberOp.seq == result.seq).detail
    snapshot = _rows(ops)
    for bad in ({"phone": "13900002222"},  # OTHER's phone
                {"phone": "12"}, {"birthday": "2999-01-01"}, {"birthday": "May 1"},
                {"name": "x" * 65}, {}):
        with pytest.raises(InvalidRequest):
            ops.edit_profile(CARD, actor="ann", reason="why", **bad)
    assert _rows(ops) == snapshot


def test_erasure_blanks_the_person_and_keeps_the_anonymous_ledger(ops) -> None:
    ops.adjust(CARD, 40, actor="ann", reason="goodwill")
    before = _rows(ops)
    member = _member(ops, CARD[-4:])
    result = ops.erase(CARD, actor="ann", reason="erasure request")
    erased = _member(ops, CARD[-4:])
    assert (erased.name, erased.phone_hash, erased.phone_last4, erased.birthday) == (
        "", None, "", None)
    assert (erased.id, erased.balance, erased.card_hash) == (member.id, 140, member.card_hash)
    assert _rows(ops)["entries"] == before["entries"]
    assert result.kind == "erase"
    with bound(ops.db, MODELS + HQ_MODELS):
        state = next(s for s in pending() if s.card_hash == member.card_hash)
    assert state.profile is not None and state.profile.erased and state.profile.name == ""
    _sound(ops)


GOOD = ("card,name,phone,birthday,tier,points,expires,store\n"
        "8000400001,王芳,13800000001,1985-02-03,gold,1200,2027-06-30,S002\n"
        "8000400002,,,,member,0,,\n"
        "8000400003,\"Zhao, Lei\",13800000003,,silver,55,,S001\n")


def test_an_import_opens_each_member_with_tier_and_balance_and_no_bonus(ops) -> None:
    result = ops.import_members(GOOD, actor="ann", reason="从旧系统迁移")
    assert (result.members, result.points) == (3, 1255)
    wang = _member(ops, "0001")
    assert (wang.name, wang.tier, wang.balance, wang.phone_last4, wang.birthday) == (
        "王芳", "gold", 1200, "0001", "1985-02-03")
    assert [e for _, e, _ in _lots(ops, wang.id)] == [
        int(datetime(2027, 6, 30, tzinfo=ops.rules.zone).timestamp() * 1_000_000)]
    assert (_member(ops, "0002").balance, _member(ops, "0003").name) == (0, "Zhao, Lei")
    with bound(ops.db, MODELS + HQ_MODELS):
        homes = {home.member: home.store for home in MemberHome.select()}
    assert homes == {wang.id: "S002", _member(ops, "0003").id: "S001"}
    with bound(ops.db, MODELS + HQ_MODELS):
        imported = [(op.seq, op.kind) for op in MemberOp.select().order_by(MemberOp.seq)]
    assert imported == [(1, "import"), (2, "import"), (3, "import")]
    _sound(ops)


@pytest.mark.parametrize(("text", "problems"), [
    (GOOD + "8000400001,again,,,member,1,,\n", ["line 5: duplicate: card ****0001 is also on "
                                                 "line 2"]),
    (GOOD + f"{CARD},dup,,,member,1,,\n", ["line 5: duplicate: card ****3456 is already a member"
                                          " at HQ"]),
    (GOOD + "8000400009,x,13900001111,,member,1,,\n", ["line 5: duplicate: phone ending 1111 is "
                                                      "already registered at HQ"]),
    (GOOD + "8000400009,x,13800000003,,member,1,,\n", ["line 5: duplicate: phone ending 0003 is "
                                                      "also on line 4"]),
    (GOOD + "8000400009,x,,,platinum,1,,\n", ["line 5: tier 'platinum' is not one of"]),
    (GOOD + "8000400009,x,,,member,-5,,\n", ["line 5: points '-5' is not a whole number"]),
    (GOOD + "8000400009,x,,,member,1.5,,\n", ["line 5: points '1.5'"]),
    (GOOD + "8000400009,x,,2999-01-01,member,1,,\n", ["line 5: birthday 2999-01-01"]),
    (GOOD + "8000400009,x,,,member,1,2020-01-01,\n", ["line 5: expires 2020-01-01"]),
    (GOOD + "4111111111111111,x,,,member,1,,\n", ["line 5: card: "]),
    (GOOD + "8000400009,x\n", ["line 5: 8 columns expected"]),
    (GOOD + "8000400009,x,,,member,1,,S/001\n", ["line 5: store id 'S/001' must be"]),
    (GOOD + "8000400009,x,,,member,1,,S001,extra\n", ["line 5: 8 columns expected"]),
    ("card,tier\n8000400001,gold\n", ["line 1: the header must name"]),
    ("card,tier,points,colour\n", ["line 1: the header must name"]),
    ("card,tier,points\n", ["line 1: no members in the file"]),
    ("", ["line 1: the header must name"]),
])
def test_a_bad_import_reports_every_problem_and_imports_nothing(ops, text, problems) -> None:
    before = _rows(ops)
    with pytest.raises(ImportRejected) as refused:
        ops.import_members(text, actor="ann", reason="move")
    shown = [f"line {p.line}: {p.message}" for p in refused.value.problems]
    assert len(shown) == len(problems)
    for seen, wanted in zip(shown, problems, strict=True):
        assert seen.startswith(wanted), seen
    assert _rows(ops) == before


def test_the_import_command_lists_every_problem_with_its_line(
        tmp_path: Path, sqlite_ops, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "members.csv"
    path.write_text(GOOD + "8000400001,again,,,member,1,,\n8000400009,x,,,gold,x,,\n",
                    encoding="utf-8")
    common = ["--actor", "ann", "--reason", "move", "--db", str(tmp_path / "hq.db"), "--rules",
              str(EXAMPLES / "rules.toml"), "--card-key-file", str(tmp_path / "card.key")]
    assert main(["member", "import", str(path), *common]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "member import: refused, nothing imported: 2 problem(s)"
    assert err[1] == f"{path}:5: duplicate: card ****0001 is also on line 2"
    assert err[2].startswith(f"{path}:6: points 'x'")
    path.write_text(GOOD, encoding="utf-8")
    assert main(["member", "import", str(path), *common]) == 0
    assert json.loads(capsys.readouterr().out)["members"] == 3


def test_the_operations_log_is_append_only_in_the_database(ops) -> None:
    from peewee import DatabaseError

    ops.freeze(CARD, actor="ann", reason="stolen")
    before = _rows(ops)
    for change in (lambda: MemberOp.update(reason="nothing happened").execute(),
                   lambda: MemberOp.delete().execute()):
        with bound(ops.db, MODELS + HQ_MODELS), \
                pytest.raises(DatabaseError, match="append-only"), ops.db.atomic():
            change()
    assert _rows(ops) == before
