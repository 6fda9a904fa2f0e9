"""The enrollment page in Chromium: IT issues a code (shown once, with its expiry), finds it
pending in the list, revokes it; then the same in English. Screenshots in
var/test-artifacts/screenshots/enroll-*.png."""

from __future__ import annotations

import re

import pytest

from tests.console.chain import add_user, console_app, signed_in
from tests.support.browser import CHROMIUM, browser, serving, shot

pytestmark = [pytest.mark.slow,  # Chromium
              pytest.mark.skipif(not CHROMIUM.exists(),
                                 reason="Debian's chromium is missing: run scripts/setup.sh")]


@pytest.fixture(scope="module")
def site(chain):
    add_user(chain, "itops", "it")
    with serving(console_app(chain, secure_cookies=False)) as url, browser() as chromium:
        yield url, chromium


def test_it_issues_and_revokes_an_enrollment_code(site) -> None:
    url, _ = site
    context, page = signed_in(site, "itops")
    page.click("nav >> text=终端登记")
    page.wait_for_url(f"{url}/enroll")
    page.wait_for_selector("text=还没有签发过登记码")
    shot(page, "enroll-empty")
    page.fill("input[name=store]", "S001")
    page.fill("input[name=terminal]", "T03")
    page.select_option("select[name=lifetime]", "3d")
    page.click("#issue-form button[type=submit]")
    page.wait_for_selector("#issued-code")
    code = page.inner_text("#issued-code")
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code)
    assert "S001/T03 的登记码" in page.inner_text("main")
    row = page.locator("#enroll-codes tbody tr").first
    assert "待使用" in row.inner_text() and "S001/T03" in row.inner_text()
    shot(page, "enroll-issued")
    page.goto(f"{url}/enroll")
    assert code not in page.content()  # shown once only
    assert page.title() == "终端登记码 · posterm 总部后台"  # the title, not the page's markup
    page.locator("#enroll-codes tbody tr").first.locator("button.danger").click()
    page.wait_for_selector("p.notice[role=status]")
    assert "已作废" in page.locator("#enroll-codes tbody tr").first.inner_text()
    shot(page, "enroll-revoked")
    context.close()


def test_the_page_in_english(site) -> None:
    url, _ = site
    context, page = signed_in(site, "itops", lang="en")
    page.goto(f"{url}/lang/en?next=/enroll")
    page.wait_for_selector("text=Terminal enrollment codes")
    page.fill("input[name=store]", "S002")
    page.fill("input[name=terminal]", "T05")
    page.click("#issue-form button[type=submit]")
    page.wait_for_selector("#issued-code")
    assert "Enrollment code for S002/T05" in page.inner_text("main")
    shot(page, "enroll-issued-en")
    context.close()
