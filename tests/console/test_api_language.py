"""The JSON API's refusals: a stable code (``error``) for programs, and the words
(``message``) in the caller's language: the language the pages were switched to, else
Accept-Language, else zh-CN."""

from __future__ import annotations

import pytest

from terminal.hq.console import accounts
from terminal.hq.console.i18n import accepted
from tests.console.chain import on_console_db
from tests.console.test_http import client, csrf, login, member_id


@pytest.fixture(scope="module")
def tokens(chain) -> dict[str, str]:
    return {name: on_console_db(chain.url, accounts.issue_token, name).secret
            for name in ("svc", "mkt")}


def bearer(token: str, language: str | None = None) -> dict[str, str]:
    headers = {"authorization": f"Bearer {token}"}
    if language is not None:
        headers["accept-language"] = language
    return headers


def test_a_token_callers_refusals_are_in_its_accept_language_with_the_code_beside(
        chain, tokens) -> None:
    svc = tokens["svc"]
    with client(chain) as c:
        mid = c.get("/api/v1/members", params={"q": "7100000001"},
                    headers=bearer(svc)).json()["members"][0]["id"]
        short = c.get("/api/v1/members", params={"q": "71"}, headers=bearer(svc))
        assert short.status_code == 400
        assert short.json() == {
            "error": "bad query",
            "message": "请输入姓名、卡号的至少 4 位，或手机号的至少 5 位数字。",
            "detail": "type a name, at least 4 characters of a card or 5 digits of a phone"}
        english = c.get("/api/v1/members", params={"q": "71"},
                        headers=bearer(svc, "en-GB,en;q=0.9,zh-CN;q=0.8"))
        assert english.json()["error"] == "bad query"
        assert english.json()["message"] == ("Type a name, at least 4 characters of a card or "
                                             "5 digits of a phone.")
        card = c.get("/api/v1/members", params={"q": "4111111111111111"},
                     headers=bearer(svc, "fr, zh-TW;q=0.5, en;q=0.1"))
        assert card.json()["message"] == "这是银行卡号，不是会员卡号（不会被保存或记录）。"
        refused = c.post(f"/api/v1/members/{mid}/op/adjust", headers=bearer(svc),
                         json={"points": "x", "reason": "r"})
        assert refused.status_code == 400 and refused.json()["error"] == "invalid"
        assert refused.json()["field"] == "points"
        assert refused.json()["message"] == "积分应为不为 0 的整数（可为负数）。"
        assert refused.json()["detail"]  # the service's words stay beside
        assert c.post(f"/api/v1/members/{mid}/op/adjust", headers=bearer(svc, "en"),
                      json={"points": "x", "reason": "r"}).json()["message"] == \
            "Points: a whole number other than 0 (negative to deduct)."
        not_json = c.post(f"/api/v1/members/{mid}/op/freeze", headers=bearer(svc),
                          content=b"[1]")
        assert not_json.json() == {"error": "invalid", "message": "请求体应为 JSON 对象。",
                                   "detail": "the body is a JSON object"}
        absent = c.get("/api/v1/members/nobody", headers=bearer(svc))
        assert absent.status_code == 404 and absent.json() == {
            "error": "not found", "message": "未找到：不存在，或不在你可查看的门店范围内。"}
        method = c.delete("/api/v1/members", headers=bearer(svc))
        assert method.status_code == 405 and method.json() == {
            "error": "Method Not Allowed", "message": "此地址不接受这种请求方法。"}
        forbidden = c.post(f"/api/v1/members/{mid}/op/freeze", json={"reason": "x"},
                           headers=bearer(tokens["mkt"]))
        assert forbidden.status_code == 403 and forbidden.json()["error"] == "forbidden"
        assert forbidden.json()["message"] == "你的角色（市场）无权执行此操作。"
        nobody = c.get("/api/v1/me", headers=bearer("pt_nope_x"))
        assert nobody.status_code == 401 and nobody.json() == {
            "error": "unauthenticated",
            "message": "请先登录，或在 Authorization 头中提供有效的 API 令牌（Bearer）。"}
        assert c.get("/api/v1/me", headers={"accept-language": "en"}).json()["message"] == \
            "Sign in, or give a valid API token (Authorization: Bearer)."
        bad = c.post("/api/v1/members/import?store=S001&reason=x",
                     headers={**bearer(svc), "content-type": "text/csv"},
                     content=b"card,tier,points\n7400000001,member,-5\n")
        assert bad.status_code == 400 and bad.json()["error"] == "import_rejected"
        assert bad.json()["message"] == "发现 1 个问题，未导入任何会员："
        assert bad.json()["problems"] == [{
            "line": 2, "field": "points", "code": "invalid",
            "problem": "points '-5' is not a whole number from 0 to 10000000",
            "message": "积分“-5”应为 0 到 10000000 之间的整数。"}]
        # Hostile or meaningless Accept-Language: the default, never an error of its own.
        for header in ("\x1b[2J\u202e" * 500, "en;q=abc", "en;q=0", ";;;,,,", "*"):
            answer = c.get("/api/v1/members", params={"q": "71"},
                           headers={**bearer(svc), "accept-language": header.encode()})
            assert answer.status_code == 400 and answer.json()["message"].startswith("请输入")


def test_a_browser_sessions_refusals_follow_the_language_its_pages_were_switched_to(
        chain) -> None:
    with client(chain) as c:
        login(c, "svc")
        mid = member_id(c, "7100000001")
        token = csrf(c, f"/members/{mid}")
        c.get(f"/lang/en?next=/members/{mid}")
        refused = c.post(f"/api/v1/members/{mid}/op/adjust", json={"points": 0, "reason": "x"},
                         headers={"x-csrftoken": token, "accept-language": "zh-CN"})
        assert refused.json()["error"] == "invalid"
        assert refused.json()["message"].startswith("Points: ")  # the pages' choice first


def test_accept_language_picks_the_consoles_language_by_weight() -> None:
    assert accepted("en-US,en;q=0.9") == "en"
    assert accepted("zh-Hant-TW, en;q=0.8") == "zh-CN"
    assert accepted("de, en;q=0.3, zh;q=0.7") == "zh-CN"
    assert accepted("de, fr") is None and accepted("") is None and accepted(None) is None
    assert accepted("en;q=0, zh;q=0.001") == "zh-CN"
    assert accepted("en;q=2") is None  # out of range
