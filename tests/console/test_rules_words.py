"""The rules studio's refusals in the page's language: a Chinese page (and a zh-CN API answer)
words the engine's problem from its code and values; an English page, the API in English and
the command line keep the engine's English. What the author wrote is made safe."""

from __future__ import annotations

import re

import pytest

from terminal.hq.console import accounts
from terminal.hq.console.db import ConsoleDb
from terminal.hq.rules_studio.validate import validate
from tests.console.rules_studio import IN_FORCE_TEXT
from tests.console.test_http import csrf, login
from tests.console.test_rules_studio import client

HOSTILE = '<b>x</b>\\u202e\\u001b'  # in TOML: HTML, U+202E and ESC


def _line(text: str, start: str) -> int:
    return next(n for n, written in enumerate(text.splitlines(), 1) if written.startswith(start))


# (the candidate, what starts its faulty line, the Chinese words after 第 N 行：, the English's)
CASES = {
    "choice": (IN_FORCE_TEXT.replace('rounding = "floor"', 'rounding = "sideways"'), "rounding",
               "earn.rounding：'sideways' 不是可选的值（floor, round, ceil）",
               "earn.rounding: 'sideways' is not one of floor, round, ceil"),
    "range": (IN_FORCE_TEXT.replace("max_percent_of_sale = 50", "max_percent_of_sale = 150"),
              "max_percent_of_sale", "redeem.max_percent_of_sale：150 不在 0 到 100 之间",
              "redeem.max_percent_of_sale: 150 is outside 0..100"),
    "number": (IN_FORCE_TEXT.replace("points_per_yuan = 1 ", 'points_per_yuan = "三" '),
               "points_per_yuan", "earn.points_per_yuan：应为数字，这里是 '三'",
               "earn.points_per_yuan: '三' is not a number"),
    "toml": (IN_FORCE_TEXT.replace("[redeem]", "[redeem"), "[redeem",
             "不是有效的 TOML 文本（第 {column} 列附近）", "not valid TOML"),
}


def _problem(page: str) -> str:
    found = re.search(r'id="rules-problem">(.*?)</p>', page, re.S)
    assert found is not None, page
    return found.group(1)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_refused_rule_reads_in_chinese_on_a_chinese_page_and_english_on_an_english_one(
        chain, name: str) -> None:
    text, start, chinese, english = CASES[name]
    line = _line(text, start)
    problem = validate(text).problems[0]
    chinese = chinese.format(column=problem.values.get("column", ""))
    assert problem.code and english in problem.message  # the CLI's words stay the engine's
    with client(chain) as c:
        login(c, "mkt")
        token = csrf(c, "/rules")
        page = c.post("/rules/check", data={"rules": text, "days": "30", "csrftoken": token})
        assert page.status_code == 422
        words = _problem(page.text)
        assert words.replace("&#39;", "'") == f"第 {line} 行：{chinese}"
        c.cookies.set("posterm_lang", "en")
        page = c.post("/rules/check", data={"rules": text, "days": "30", "csrftoken": token})
        assert _problem(page.text).replace("&#39;", "'") == f"Line {line}: {problem.message}"


def test_what_the_author_wrote_is_shown_made_safe(chain) -> None:
    text = IN_FORCE_TEXT.replace('timezone = "Asia/Shanghai"', f'timezone = "{HOSTILE}"')
    with client(chain) as c:
        login(c, "mkt")
        token = csrf(c, "/rules")
        page = c.post("/rules/check", data={"rules": text, "days": "30", "csrftoken": token})
        words = _problem(page.text)
        assert words.endswith("program.timezone：没有 &#39;&lt;b&gt;x&lt;/b&gt;\\u202e\\x1b&#39; "
                              "这个时区"), words
        assert "\u202e" not in page.text and "\x1b" not in page.text and "<b>x" not in page.text


@pytest.fixture(scope="module")
def mkt_token(chain) -> str:
    db = ConsoleDb(chain.url)
    try:
        return db.call(accounts.issue_token, "mkt").secret
    finally:
        db.close()


def test_the_api_refuses_a_rules_text_in_the_callers_language(chain, mkt_token: str) -> None:
    text, start, chinese, english = CASES["choice"]
    line = _line(text, start)
    bearer = {"authorization": f"Bearer {mkt_token}"}
    with client(chain) as c:
        refused = c.post("/api/v1/rules/check", content=text.encode(), headers=bearer)
        assert refused.status_code == 422
        assert refused.json() == {
            "error": "rules_refused", "message": f"第 {line} 行：{chinese}",
            "problems": [{"key": "earn.rounding", "line": line, "code": "choice",
                          "values": {"key": "earn.rounding", "value": "'sideways'",
                                     "choices": "floor, round, ceil"},
                          "problem": english, "message": f"第 {line} 行：{chinese}"}]}
        in_english = c.post("/api/v1/rules/check", content=text.encode(),
                            headers={**bearer, "accept-language": "en-US,en;q=0.9"})
        assert in_english.json()["message"] == f"Line {line}: {english}"
        assert in_english.json()["error"] == "rules_refused"
        accepted = c.post("/api/v1/rules/check", content=IN_FORCE_TEXT.encode(), headers=bearer)
        assert accepted.status_code == 200 and accepted.json()["ok"] is True
        not_utf8 = c.post("/api/v1/rules/check", content=b"\xff\xfe", headers=bearer)
        assert not_utf8.status_code == 400
        assert not_utf8.json()["message"] == "规则文本须为 UTF-8 编码。"
