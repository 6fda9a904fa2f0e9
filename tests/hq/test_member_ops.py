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
    CardRetired,
    InvalidRequest,
    LedgerRefused,
    UnknownMember,
    WrongState,
)
from terminal.hq.member_ops.publish import pending
from terminal.hq.member_ops.service import MemberOps
from terminal.hq.models import HQ_MODELS, MemberOp
from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import Registration
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.models import MODELS, CardState, LedgerEntry, Member
from tests.support.shared import EXAMPLES

KEY = b"chain-card-key-0123456789abcdef"
CARD, OTHER = "8000123456", "8000654321"
AT = datetime(2026, 3, 4, 2, tzinfo=UTC)


@pytest.fixture
def ops(tmp_path: Path) -> Any:
    service = MemberOps.open(str(tmp_path / "hq.db"), EXAMPLES / "rules.toml", _key(tmp_path))
    service.clock = lambda: AT
    with bound(service.db, MODELS + HQ_MODELS):
        for card, phone in ((CARD, "13900001111"), (OTHER, "13900002222")):
            service.store.register(Registration(card=card, name="张三", phone=phone),
                                   Moment(AT))
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
    from terminal.loyalty.store.accounts import CardRef

    with pytest.raises(CardRetired, match="retired"):
        ops.freeze(CardRef("f" * 64, "ffff"), actor="ann", reason="why")


def test_the_command_line_prints_the_result_and_refuses_with_the_reason(
        tmp_path: Path, ops, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--actor", "ann", "--db", str(tmp_path / "hq.db"), "--rules",
              str(EXAMPLES / "rules.toml"), "--card-key-file", str(tmp_path / "card.key")]
    assert main(["member", "adjust", CARD, "250", "--reason", "补积分", *common]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["kind"], printed["balance"], printed["detail"]) == (
        "adjust", 350, {"points": 250})
    assert main(["member", "unfreeze", CARD, "--reason", "why", *common]) == 1
    assert "refused (wrong_state): card ****3456 is not frozen" in capsys.readouterr().err
