"""The sentences HQ refuses a hold with are the ones the till words in Chinese: HQ sends only its
English (MemberResponse.error), and terminal.app.refusal_words reads it by its pattern, so a
sentence HQ's bounds say otherwise would reach a Chinese LCD in English."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from terminal.app.refusal_words import hq_says_zh
from terminal.hq import holds
from terminal.hq.models import MemberHold
from terminal.hq.policy import HoldRules
from terminal.loyalty.rules import load_rules
from terminal.protocol.messages import MemberRequest
from tests.support.shared import EXAMPLES

LATIN = re.compile(r"[A-Za-z]")
CARD = "ab" * 32
REQUEST = MemberRequest("hold", member=CARD, points=500, hold_id="H1")
QUIET = holds.Read(None, None, "", None, till_count=0, till_points=0, member_count=0, asked=0,
                   pending=0, replaced=0, unswept=0)


@pytest.mark.parametrize(("read", "points", "chinese"), [
    (QUIET, 30_000, "冻结 30000 积分超过会员每天可兑换的 20000 积分"),
    (replace(QUIET, till_count=20), 500, "本机已有 20 笔冻结未结，达到上限"),
    (replace(QUIET, till_points=199_900), 500,
     "本机已冻结 199900 积分，再冻结 500 积分超过上限 200000"),
    (replace(QUIET, member_count=5), 500, "该会员已有 5 笔冻结未结，达到上限"),
    (replace(QUIET, asked=6), 500, "本机过去一小时已为该会员申请 6 笔冻结，达到上限"),
])
def test_each_bound_hq_refuses_a_hold_by_is_worded(read: holds.Read, points: int,
                                                   chinese: str) -> None:
    rules = load_rules(EXAMPLES / "rules.toml")
    said = holds.over_bounds(HoldRules(), rules, replace(REQUEST, points=points), read)
    assert said, "the bound did not refuse"
    assert hq_says_zh(said) == chinese
    assert not LATIN.search(hq_says_zh(said))


@pytest.mark.parametrize(("store", "points", "state", "chinese"), [
    ("S002", 500, "pending", "冻结编号属于另一台收银机"),
    ("S001", 400, "pending", "冻结编号已用于另一位会员或另一积分数"),
    ("S001", 500, "posted", "该冻结已入账"),
    ("S001", 500, "voided", "该冻结已作废"),
])
def test_a_hold_asked_again_and_refused_is_worded(store: str, points: int, state: str,
                                                  chinese: str) -> None:
    before = MemberHold(id="H1", store=store, terminal="T01", card_hash=CARD, points=points,
                        state=state, created_us=int(datetime.now(UTC).timestamp() * 1e6))
    said = holds.same_request(before, REQUEST, "S001", "T01")
    assert hq_says_zh(said) == chinese
