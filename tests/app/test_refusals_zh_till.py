"""Every other refusal a cashier meets on a Chinese LCD says its facts in Chinese: signing in,
a card, a scan, a keyed number, a key not used now, and HQ refusing a hold. The English (the log,
an English LCD) stays the engine's own words."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from terminal.app.hqlink import Hold, Standalone
from terminal.app.refusal_words import hq_zh
from terminal.protocol.hq_refusals import ENGLISH, Refusal, refusal
from terminal.protocol.messages import MemberResponse
from terminal.protocol.topics import Topics
from terminal.sync.members import MemberClient

from .conftest import TillBench

CASHIER = "1 enter 1234 enter"
LATIN = re.compile(r"[A-Za-z]")

# (what is done, the Chinese LCD's words, the English's); ``CASHIER`` first where signed in
CASES: dict[str, tuple[list[str], str, str]] = {
    "wrong_pin": (["1 enter 1111 enter"], "密码不对：请重新输入密码后按确认（还可试 4 次）",
                  "PIN not recognised: key your PIN again, then Enter (4 tries left)"),
    "locked": (["1 enter 1111 enter"] * 5,
               "工号已锁定：工号 1 连续 5 次密码错误，锁定到 18:45：请等待，或请店长解锁（撤销键）",
               "Operator 1 is locked after 5 wrong PINs until 18:45"),
    "operator_out_of_range": (["99999 enter"], "工号 99999 不在 1 到 9999 之间：请输入工号后按确认",
                              "operator no. 99999 is not from 1 to 9999"),
    "card_too_short": ([CASHIER, "s 12"], "卡号不对：卡号为 4 到 32 位字母或数字",
                       "a card number is 4 to 32 letters or digits"),
    "swipe_damaged": ([CASHIER, "t ;8000"], "读卡失败（磁道损坏或不完整），请重新刷卡",
                      "Card not read (damaged or incomplete track)"),
    "two_decimal_points": ([CASHIER, "1.2.3 dept1"], "1.2.3 不是金额：有两个小数点，然后按部门键",
                           "1.2.3 is not an amount: two decimal points"),
    "amount_zero": ([CASHIER, "0 dept1"], "金额须大于 0.00，然后按部门键",
                    "the amount must be above 0.00"),
    "amount_over": ([CASHIER, "999999999 dept1"], "999999999 元超过上限 100000 元，然后按部门键",
                    "999999999 yuan is over the limit of 100000 yuan"),
    "quantity_zero": ([CASHIER, "10 dept1", "0 quantity"],
                      "数量 0 不在 1 到 9999 之间；要删除一行请输入行号后按撤销",
                      "quantity 0 is not from 1 to 9999"),
    "void_nothing": ([CASHIER, "5 void"], "输入不对：这笔销售没有可删除的行",
                     "the sale has no lines to remove"),
    "void_no_such_line": ([CASHIER, "10 dept1", "9 void"], "输入不对：行号 9 不在 1 到 1 之间",
                          "line no. 9 is not from 1 to 1"),
    "key_not_here": ([CASHIER, "subtotal", "redeem"],
                     "兑换键在此不可用：请输入店长工号后按确认（清除键取消）",
                     "Redeem does nothing here"),
}


def _chinese_lcd(tmp_path: Path, examples: Path, link: object = None) -> TillBench:
    return TillBench(tmp_path, examples, {"lcd": {"backend": "dummy", "language": "zh"}},
                     link=link)


def _said_in_chinese(bench: TillBench, chinese: str, english: str) -> None:
    assert bench.till.refused is not None and english in bench.till.refused  # the log's
    frame = bench.terminal.displays.frame
    assert frame is not None
    assert frame.prompt == chinese
    assert not LATIN.search(frame.prompt), frame.prompt  # no English left on the Chinese LCD


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_refusal_at_the_till_is_said_in_chinese_on_a_chinese_lcd(
        tmp_path: Path, examples: Path, name: str) -> None:
    done, chinese, english = CASES[name]
    bench = _chinese_lcd(tmp_path, examples)
    try:
        bench.do(*done)
        _said_in_chinese(bench, chinese, english)
    finally:
        bench.close()


def test_a_scan_not_read_names_its_symbology_and_the_rest_in_chinese(
        tmp_path: Path, examples: Path) -> None:
    bench = _chinese_lcd(tmp_path, examples)
    try:
        bench.do(CASHIER, "b 6901234567891")
        assert bench.terminal.displays.frame.prompt == (  # type: ignore[union-attr]
            "条码读取失败（EAN-13 条码校验位不对），请重新扫描")
        assert bench.till.refused == ("Barcode not read (EAN-13 check digit wrong), please "
                                      "scan again")
    finally:
        bench.close()


class _HqAnswers:
    """An MQTT client whose every request HQ answers with ``response``."""

    def __init__(self, response: MemberResponse) -> None:
        self.response = response

    async def request(self, topic: str, payload: bytes, **_: object) -> SimpleNamespace:
        return SimpleNamespace(payload=self.response.to_json())


class _HqRefusesHolds(Standalone):
    """The standalone ledger, with holds asked of an HQ that refuses them with ``why`` (HQ's
    own refusal: its English, code and values), through the till's own MemberClient, as an
    MQTT link asks; ``coded=False``: an HQ before codes, saying only its English."""

    def __init__(self, why: Refusal, coded: bool = True) -> None:
        answer = MemberResponse("hold", False, datetime.now(UTC), error=why.error,
                                code=why.code if coded else None,
                                values=(why.values or None) if coded else None)
        self.client = MemberClient(_HqAnswers(answer), Topics(),  # type: ignore[arg-type]
                                   "S001", "T01")

    async def hold(self, card_hash: str, points: int, sale_id: str, kind: str = "sale") -> Hold:
        return await self.client.hold(card_hash, points, sale_id, kind)


def _redeem(bench: TillBench) -> None:
    bench.do(CASHIER, "s", "90 dept1", "subtotal", "500 redeem")


def _prompt_after_redeem(tmp_path: Path, examples: Path, why: Refusal, coded: bool = True,
                         language: str = "zh") -> str:
    """What the LCD says after a redemption whose hold HQ refused with ``why``."""
    bench = TillBench(tmp_path, examples, {"lcd": {"backend": "dummy", "language": language}},
                      link=_HqRefusesHolds(why, coded))
    try:
        _redeem(bench)
        frame = bench.terminal.displays.frame
        assert frame is not None
        return frame.prompt
    finally:
        bench.close()


@pytest.mark.parametrize(("why", "chinese"), [
    (refusal("hold.points", available=300), "积分不够，可用 300 积分"),
    (refusal("card.frozen", reason="reported lost"), "此卡已在总部冻结（reported lost）"),
    (refusal("holds.max_per_member", count=3), "该会员已有 3 笔冻结未结，达到上限"),
    (refusal("redeem.per_member_per_day", points=3000, cap=2000),
     "冻结 3000 积分超过会员每天可兑换的 2000 积分"),
    (refusal("hold.settled", state="voided"), "该冻结已作废"),
    (refusal("hq.database", problem="OperationalError: server closed the connection"),
     "总部数据库出错（详情见日志）"),
])
def test_a_hold_hq_refused_is_said_in_chinese_by_its_code(
        tmp_path: Path, examples: Path, why: Refusal, chinese: str) -> None:
    """HQ's reason (what HQ staff typed, as a card's freezing reason, is data: shown as typed);
    the log and an English LCD keep HQ's English sentence."""
    bench = _chinese_lcd(tmp_path, examples, link=_HqRefusesHolds(why))
    try:
        _redeem(bench)
        frame = bench.terminal.displays.frame
        assert frame is not None and frame.prompt == f"总部拒绝：积分冻结：{chinese}"
        assert bench.till.refused == f"HQ refused the hold: {why.error}"
        if "reported lost" not in why.error:
            assert not LATIN.search(frame.prompt), frame.prompt
    finally:
        bench.close()


def test_a_hold_hq_refused_keeps_hqs_english_on_an_english_lcd(
        tmp_path: Path, examples: Path) -> None:
    assert _prompt_after_redeem(tmp_path, examples, refusal("hold.points", available=300),
                                language="en") == (
        "HQ refused the hold: insufficient points: 300 available")


@pytest.mark.parametrize("why", [
    Refusal("hold.wobbly", {"n": 2}, "a reason not known yet"),  # a newer HQ's code
    Refusal("hold.points", {"points": 300}, "insufficient points: 300 available"),  # values short
    Refusal("hold.settled", {"state": "melted"}, "the hold was melted"),  # a value not known
])
def test_a_code_not_known_here_keeps_hqs_english(tmp_path: Path, examples: Path,
                                                 why: Refusal) -> None:
    assert _prompt_after_redeem(tmp_path, examples, why) == (
        f"总部拒绝：HQ refused the hold: {why.error}")


def test_an_hq_before_codes_is_followed_in_its_english(tmp_path: Path, examples: Path) -> None:
    """An HQ that sends no code: its English sentence, as it said it (the rollout upgrades HQ
    before the tills, so this till meets one only when that order was not kept)."""
    assert _prompt_after_redeem(tmp_path, examples, refusal("hold.points", available=300),
                                coded=False) == (
        "总部拒绝：HQ refused the hold: insufficient points: 300 available")


def test_hqs_values_never_take_the_tills_own_names(tmp_path: Path, examples: Path) -> None:
    """A value HQ names ``why``, ``said`` or ``code`` does not choose the till's words."""
    why = Refusal("hold.points", {"available": 300, "why": "sign_in.key", "said": "x",
                                  "code": "member.unknown"}, "insufficient points: 300 available")
    assert _prompt_after_redeem(tmp_path, examples, why) == (
        "总部拒绝：积分冻结：积分不够，可用 300 积分")


@pytest.mark.parametrize("code", sorted(ENGLISH))
def test_every_code_hq_may_send_has_chinese_words(code: str) -> None:
    """terminal.protocol.hq_refusals is HQ's one table of codes: the till words each, with no
    English left (values as HQ makes them; a reason typed at HQ aside)."""
    sample: dict[str, int | str] = {"reason": "挂失", "state": "posted", "problem": "x"}
    names = set(re.findall(r"{(\w+)}", ENGLISH[code]))
    why = refusal(code, **{name: sample.get(name, 7) for name in names})
    words = hq_zh({**why.values, "code": why.code})
    assert words and not LATIN.search(words), (code, words)
