"""The console in Chromium: sign-in, Chinese search, a member's page, role scoping, hostile
names, language switch. Each step saves a screenshot (var/test-artifacts/screenshots/)."""

from __future__ import annotations

import pytest

from tests.console.chain import PASSWORD, console_app, signed_in
from tests.support.browser import CHROMIUM, browser, serving, shot

pytestmark = [pytest.mark.slow,  # Chromium
              pytest.mark.skipif(not CHROMIUM.exists(),
                                 reason="Debian's chromium is missing: run scripts/setup.sh")]


@pytest.fixture(scope="module")
def site(chain):
    with serving(console_app(chain, secure_cookies=False)) as url, browser() as chromium:
        yield url, chromium


def test_sign_in_and_search_members_in_chinese(site) -> None:
    url, chromium = site
    context = chromium.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{url}/")
    page.wait_for_selector("input[name=password]")
    shot(page, "login")
    page.fill("input[name=name]", "svc")
    page.fill("input[name=password]", "wrong password!")
    page.click("button[type=submit]")
    page.wait_for_selector("[role=alert]")
    assert "用户名或密码错误" in page.inner_text("[role=alert]")
    shot(page, "login-failed")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/members")
    page.fill("input[name=q]", "张")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("table.grid >> text=张三丰")
    rows = page.locator("table.grid tbody tr")
    assert rows.count() == 3
    assert "q=" in page.url  # htmx pushed the search into the address bar
    shot(page, "members-search-zhang")
    page.click("text=张三丰")
    page.wait_for_selector("text=积分明细")
    assert page.locator("table.statement tbody tr").count() >= 4
    statement = page.inner_text("table.statement")
    assert "王小明" in statement and "注册奖励" in statement and "registration" not in statement
    assert page.inner_text("h1 .tier") == "普通会员"  # the rules' "member", in Chinese
    shot(page, "member-page")
    context.close()


def test_store_manager_sees_only_its_store(site) -> None:
    url, _ = site
    context, page = signed_in(site, "mgr2")
    page.fill("input[name=q]", "张")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("table.grid >> text=张丽")
    assert page.locator("table.grid tbody tr").count() == 1
    shot(page, "store-manager-search")
    assert page.locator("nav >> text=审计日志").count() == 0
    response = page.goto(f"{url}/audit")
    assert response.status == 403
    shot(page, "store-manager-audit-forbidden")
    context.close()


def test_hostile_names_render_as_text_and_english_is_selectable(site) -> None:
    url, _ = site
    context, page = signed_in(site, "admin")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{url}/members?q=%3Cscript%3E")
    page.wait_for_selector("table.grid")
    assert page.inner_text("table.grid tbody td a") == "<script>alert(1)</script>"
    page.click("table.grid tbody td a")
    page.wait_for_selector("table.statement")
    assert dialogs == []
    shot(page, "hostile-name")
    page.click("text=English")
    page.wait_for_selector("text=Statement")
    shot(page, "member-page-english")
    page.goto(f"{url}/audit")
    page.wait_for_selector("text=member.view")
    shot(page, "audit-log")
    context.close()
