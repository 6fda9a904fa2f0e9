"""The rules studio in Chromium, as marketing uses it: edit the rules, meet the engine's error on
its line, fix it, read the warnings and the diff, backtest and watch the job to its figures.
Each step saves a screenshot (var/test-artifacts/screenshots/rules-*)."""

from __future__ import annotations

import pytest

from tests.console.chain import PASSWORD, signed_in
from tests.console.rules_studio import IN_FORCE_TEXT, studio_app, studio_of
from tests.support.browser import CHROMIUM, browser, serving, shot

pytestmark = [pytest.mark.slow,  # Chromium
              pytest.mark.skipif(not CHROMIUM.exists(),
                                 reason="Debian's chromium is missing: run scripts/setup.sh")]


def test_edit_error_fix_diff_backtest(chain) -> None:
    with serving(studio_app(chain, studio_of(chain), secure_cookies=False)) as url, \
            browser() as chromium:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/rules")
        page.fill("input[name=name]", "mkt")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/rules")
        assert page.input_value("textarea[name=rules]") == IN_FORCE_TEXT
        shot(page, "rules-editor")

        broken = IN_FORCE_TEXT.replace("points_per_yuan = 1 ", 'points_per_yuan = "三" ')
        page.fill("textarea[name=rules]", broken)
        page.click("#rules-check")
        page.wait_for_selector("#rules-problem")
        line = next(n for n, text in enumerate(broken.splitlines(), 1) if '"三"' in text)
        problem = page.inner_text("#rules-problem")
        assert f"第 {line} 行" in problem and "earn.points_per_yuan" in problem
        assert page.input_value("textarea[name=rules]") == broken
        shot(page, "rules-error")

        fixed = IN_FORCE_TEXT.replace("points_per_yuan = 1 ", "points_per_yuan = 3 ")
        page.fill("textarea[name=rules]", fixed)
        page.click("#rules-check")
        page.wait_for_selector("#rules-diff")
        assert page.locator("#rules-problem").count() == 0
        assert "每元积分从 1 提高到 3" in page.inner_text("#rules-lint")
        assert "~ earn.points_per_yuan: 1 -> 3" in page.inner_text("#rules-diff")
        shot(page, "rules-lint-diff")

        page.fill("input[name=days]", "90")
        page.click("#rules-backtest")
        page.wait_for_url(f"{url}/rules/backtests/*")
        # htmx polls the job's fragment until its figures are in
        page.wait_for_selector("#backtest-chain", timeout=120_000)
        assert "校验通过" in page.inner_text("#backtest-check")
        chain_table = page.inner_text("#backtest-chain")
        assert "发放积分" in chain_table and "期末负债（元）" in chain_table
        assert page.locator("#backtest-members tbody tr").count() >= 1
        shot(page, "rules-backtest")
        context.close()


def _checked(page, text: str, faulty: str) -> tuple[str, int]:
    """``text`` checked in the studio: its problem as the page reads, and the line that starts
    with ``faulty``."""
    page.fill("textarea[name=rules]", text)
    page.click("#rules-check")
    page.wait_for_selector("#rules-problem")
    line = next(n for n, written in enumerate(text.splitlines(), 1)
                if written.startswith(faulty))
    return page.inner_text("#rules-problem"), line


def test_a_bad_rule_reads_in_chinese_with_what_was_written_made_safe(chain) -> None:
    """On a Chinese page the engine's problem is worded in Chinese from its code and values;
    a hostile value (HTML, U+202E, ESC) shows as text, its invisible characters as escapes."""
    hostile = IN_FORCE_TEXT.replace('timezone = "Asia/Shanghai"',
                                    'timezone = "<b>x</b>\\u202e\\u001b"')
    off_choice = IN_FORCE_TEXT.replace('rounding = "floor"', 'rounding = "sideways"')
    with serving(studio_app(chain, studio_of(chain), secure_cookies=False)) as url, \
            browser() as chromium:
        context, page = signed_in((url, chromium), "mkt", "/rules")
        problem, line = _checked(page, off_choice, "rounding")
        assert problem == (
            f"第 {line} 行：earn.rounding：'sideways' 不是可选的值（floor, round, ceil）")
        shot(page, "rules-error-zh")

        problem, line = _checked(page, hostile, "timezone")
        assert problem == f"第 {line} 行：program.timezone：没有 '<b>x</b>\\u202e\\x1b' 这个时区"
        assert page.locator("#rules-problem b").count() == 0  # the HTML is text
        assert "\u202e" not in page.inner_text("body")
        shot(page, "rules-error-zh-hostile")
        context.close()
