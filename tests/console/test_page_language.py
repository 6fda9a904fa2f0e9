"""A page's language, as the API's: the language the pages were switched to (the posterm_lang
cookie), else the browser's Accept-Language, else zh-CN."""

from __future__ import annotations

import re

import pytest

from tests.console.test_http import client, login

TITLE = re.compile(r"<html lang=\"([^\"]+)\"")


def _language(page: str) -> str:
    found = TITLE.search(page)
    assert found is not None, page[:200]
    return found.group(1)


@pytest.mark.parametrize(("cookie", "header", "shown"), [
    (None, None, "zh-CN"),
    (None, "en-GB,en;q=0.9,zh-CN;q=0.8", "en"),
    (None, "zh-TW,zh;q=0.9,en;q=0.8", "zh-CN"),
    (None, "fr, en;q=0.1", "en"),
    (None, "fr-FR", "zh-CN"),  # none the console speaks
    (None, "en;q=abc, <script>;q=1", "zh-CN"),  # malformed: the default
    ("zh-CN", "en-US,en;q=0.9", "zh-CN"),  # switched on the pages: the switch holds
    ("en", "zh-CN", "en"),
    ("xx", "en", "en"),  # a cookie naming no language counts as none
])
def test_a_page_speaks_the_cookies_language_else_the_browsers_else_chinese(
        chain, cookie: str | None, header: str | None, shown: str) -> None:
    with client(chain) as c:
        if cookie is not None:
            c.cookies.set("posterm_lang", cookie)
        headers = {"accept-language": header} if header is not None else {}
        page = c.get("/login", headers=headers)
        assert page.status_code == 200
        assert _language(page.text) == shown
        assert ("Sign in" in page.text) is (shown == "en")


def test_a_signed_in_page_and_the_api_agree_on_the_language(chain) -> None:
    with client(chain) as c:
        login(c, "svc")
        english = {"accept-language": "en-GB,en;q=0.9"}
        assert _language(c.get("/members", headers=english).text) == "en"
        refused = c.get("/api/v1/members", params={"q": "71"}, headers=english)
        assert refused.json()["message"].startswith("Type a name")
        c.cookies.set("posterm_lang", "zh-CN")
        assert _language(c.get("/members", headers=english).text) == "zh-CN"
