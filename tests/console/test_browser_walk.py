"""The console in Chromium as each role sees it, in zh-CN: the fleet's printers in the page's
language (hostile words escaped), a date field in zh-CN order sending ISO dates, and each
role's pages. Each step saves a screenshot (var/test-artifacts/screenshots/walk-*.png)."""

from __future__ import annotations

import re

import pytest

from terminal.hq.console import accounts
from terminal.hq.console.db import ConsoleDb
from tests.console.chain import PASSWORD, console_app, signed_in
from tests.console.test_fleet import _seed_printers
from tests.support.browser import CHROMIUM, browser, date_parts, serving, shot

pytestmark = [pytest.mark.slow,  # Chromium
              pytest.mark.skipif(not CHROMIUM.exists(),
                                 reason="Debian's chromium is missing: run scripts/setup.sh")]


@pytest.fixture(scope="module")
def site(chain):
    db = ConsoleDb(chain.url)
    try:
        db.call(_seed_printers)
        db.call(accounts.add_user, "fin", "finance", (), PASSWORD)
        db.call(accounts.add_user, "itops", "it", (), PASSWORD)
    finally:
        db.close()
    with serving(console_app(chain, secure_cookies=False)) as url, browser() as chromium:
        yield url, chromium


def test_it_sees_each_printer_in_chinese_and_hostile_words_as_text(site) -> None:
    context, page = signed_in(site, "itops", "/fleet?store=S003")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    cells = {t: page.inner_text(f"#term-S003-{t} td.printer") for t in ("T01", "T02", "T03",
                                                                        "T04", "T05")}
    shot(page, "walk-fleet-printers")
    assert cells["T01"] == "缺纸，2 张小票待补打"
    assert cells["T02"] == "正常"
    assert cells["T03"] == "1 receipts waiting"  # a till from before the code: its words
    assert cells["T05"] == "未连接，1 张小票待补打"
    assert cells["T04"].startswith("<img src=x onerror=alert(1)>\\x1b[2J\\u202e纸纸")
    assert cells["T04"].endswith("…") and len(cells["T04"]) < 200
    assert page.locator("#term-S003-T04 td.printer img").count() == 0 and dialogs == []
    page.click("text=S003/T01")
    page.wait_for_selector("#device-printer")
    assert page.inner_text("#device-printer").startswith("缺纸，2 张小票待补打")
    assert "打印机" in page.inner_text("dl.profile")
    shot(page, "walk-fleet-terminal")
    context.close()


def test_a_date_field_shows_the_zh_cn_order_and_the_server_takes_what_it_sends(site) -> None:
    url, _ = site
    context, page = signed_in(site, "fin", "/reports")
    page.goto(f"{url}/reports?from=2026-10-01&to=2026-12-01")
    # Year, month, day: what a zh-CN person reads (en-US's Chromium showed mm/dd/yyyy).
    assert date_parts(page, "input[name=from]") == [("年", 2026), ("月", 10), ("日", 1)]
    shot(page, "walk-dates-zh-CN")
    # Rates as the cards show them (75.0%), not 0.75; the CSV keeps the number.
    rates = {row[0]: row[1] for row in (line.split("\t") for line in page.locator(
        "#table-kpis tbody tr").all_inner_texts()) if row[0] in ("回购率", "流失率")}
    assert len(rates) == 2 and all(re.fullmatch(r"\d{1,3}\.\d%", v) for v in rates.values())
    months = page.locator("#table-months tbody tr td:nth-child(2)").all_inner_texts()
    assert months and all(re.fullmatch(r"\d{1,3}\.\d%", v) for v in months), months
    csv = page.request.get(f"{url}/reports/dashboard.csv?from=2026-10-01&to=2026-12-01"
                           "&table=kpis").text()
    assert re.search(r"^回购率,(0|1)(\.\d+)?\r?$", csv, re.M), csv
    page.focus("input[name=from]")  # its first part: the year, in zh-CN order
    page.keyboard.type("2026")  # typed as shown: year (a year may have 6 digits: then on),
    page.keyboard.press("ArrowRight")
    page.keyboard.type("1102")  # month, day
    assert page.input_value("input[name=from]") == "2026-11-02"
    page.click("form.report-filters button[type=submit]")
    page.wait_for_url("**from=2026-11-02**")
    assert "to=2026-12-01" in page.url  # the ISO dates the browser sends, taken as they are
    assert date_parts(page, "input[name=from]") == [("年", 2026), ("月", 11), ("日", 2)]
    assert page.locator("[role=alert]").count() == 0
    shot(page, "walk-dates-sent")
    context.close()


WALK = {
    "mkt": ("/reports", "/reports/lists/dormant", "/care", "/members?q=张"),
    "svc": ("/members?q=张", "/fleet", "/care"),
    "mgr1": ("/members?q=张", "/reports", "/fleet"),
    "fin": ("/reports/settlement", "/reports/days", "/reports/expiring"),
    "aud": ("/audit", "/reports/points", "/fleet"),
    "itops": ("/fleet", "/enroll", "/fleet/S003/T05"),
}


@pytest.mark.parametrize("name", sorted(WALK))
def test_each_role_walks_its_pages(site, name: str) -> None:
    """The pages each role works in, for a person to look at (walk-ROLE-PAGE.png)."""
    url, _ = site
    context, page = signed_in(site, name, "/members")
    for path in WALK[name]:
        assert page.goto(f"{url}{path}").status == 200, path
        shot(page, f"walk-{name}-{path.strip('/').replace('/', '-').split('?')[0]}")
    context.close()


def test_bad_report_queries_say_what_is_wrong_in_chinese(site) -> None:
    url, _ = site
    context, page = signed_in(site, "fin", "/reports")
    page.goto(f"{url}/reports?from=2026-10-01&to=2026-12-01")
    page.focus("input[name=from]")  # the start after the end, typed in the date field
    page.keyboard.type("2026")
    page.keyboard.press("ArrowRight")
    page.keyboard.type("1215")
    page.click("form.report-filters button[type=submit]")
    page.wait_for_selector("[role=alert]")
    assert page.inner_text("[role=alert]") == \
        "开始日期 2026-12-15 应早于结束日期 2026-12-01（结束日当天不计入）。"
    assert page.locator(".chart, table.grid").count() == 0  # nothing read, nothing shown
    shot(page, "walk-report-error-order")
    page.goto(f"{url}/reports/expiring?at=12/06/2026")  # the order an en-US field shows
    assert page.inner_text("[role=alert]") == \
        "起算日：日期应为 年-月-日（如 2026-12-06），而不是“12/06/2026”。"
    shot(page, "walk-report-error-date")
    page.goto(f"{url}/reports?from=2025-01-01&to=2026-12-01")
    assert page.inner_text("[role=alert]") == "一次最多查询 366 天，现在是 699 天：请缩短日期范围。"
    context.close()
    context, page = signed_in(site, "mkt", "/reports")
    page.goto(f"{url}/reports/lists/dormant?dormant_days=abc")
    assert page.inner_text("[role=alert]") == "沉睡天数应为 1 到 3650 之间的整数，而不是“abc”。"
    page.goto(f"{url}/reports/points?by=year")
    alert = page.inner_text("[role=alert]")
    assert alert == "汇总方式“year”无效：请选择按日、按周或按月。" and "--" not in alert
    shot(page, "walk-report-error-by")
    context.close()


def test_an_auditor_reads_each_action_by_its_name_with_its_code(site) -> None:
    url, _ = site
    context, page = signed_in(site, "svc", "/members")  # signed in, a member viewed
    page.goto(f"{url}/members?q=张三丰")
    page.click("table.grid tbody td a")
    page.wait_for_selector("table.statement")
    context.close()
    context, page = signed_in(site, "aud", "/audit")
    page.goto(f"{url}/audit?actor=svc")
    actions = page.locator("table.grid tbody td.action").all_inner_texts()
    shot(page, "walk-audit-actions")
    assert "查看会员资料\nmember.view" in actions and "登录\nlogin" in actions
    # Each row's details in words (the search as typed, found by its name), not the stored
    # English ("name 张三丰: 1 found ...").
    details = page.locator("table.grid tbody td.detail").all_inner_texts()
    assert any(d.startswith("查询：姓名以“张三丰”开头；找到 1 位会员：") for d in details), details
    assert not [d for d in details if "found" in d or "before" in d], details
    assert set(page.locator("table.grid tbody td.via").all_inner_texts()) == {"网页"}
    # ...on one line each (a word of two characters was broken over two in session 15's walk)
    lines = page.eval_on_selector_all("table.grid tbody td.via", """cells => cells.map(cell => {
        const range = document.createRange(); range.selectNodeContents(cell);
        return range.getClientRects().length; })""")
    assert lines and set(lines) == {1}, lines
    page.goto(f"{url}/audit?action=user.add")
    assert set(page.locator("table.grid tbody td.action").all_inner_texts()) == {
        "添加后台用户\nuser.add"}
    context.close()


def test_a_refused_member_operation_says_why_in_chinese_and_changes_nothing(site) -> None:
    url, _ = site
    context, page = signed_in(site, "svc", "/members")
    page.goto(f"{url}/members?q=张三丰")
    page.click("table.grid tbody td a")
    page.wait_for_selector("form[action$='/op/adjust']")
    balance = page.inner_text(".stat .figure")
    page.fill("form[action$='/op/adjust'] input[name=points]", "0")
    page.fill("form[action$='/op/adjust'] input[name=reason]", "测试")
    page.click("form[action$='/op/adjust'] button[type=submit]")
    page.wait_for_selector("[role=alert]")
    assert page.inner_text("[role=alert]") == \
        "操作被拒绝，未做任何更改： 积分应为不为 0 的整数（可为负数）。"
    assert page.inner_text(".stat .figure") == balance
    shot(page, "walk-member-op-refused")
    page.focus("form[action$='/op/edit'] input[name=birthday]")  # 年 / 月 / 日, as shown
    page.keyboard.type("2099")
    page.keyboard.press("ArrowRight")
    page.keyboard.type("0101")
    page.fill("form[action$='/op/edit'] input[name=reason]", "测试")
    page.click("#op-edit")
    page.wait_for_selector("[role=alert]")
    assert page.inner_text("[role=alert]") == \
        "操作被拒绝，未做任何更改： 生日应为今天或以前的日期（年-月-日）。"
    assert "2099" not in page.inner_text("dl.profile")
    shot(page, "walk-member-birthday-refused")
    context.close()


def test_a_bad_member_import_lists_each_line_and_column_in_chinese(site, tmp_path) -> None:
    url, _ = site
    bad = tmp_path / "members.csv"
    bad.write_text("card,tier,points,name\n7500000001,member,12x,王芳\n"
                   "7500000002,<img src=x onerror=alert(1)>\u202e,5,赵六\n", encoding="utf-8")
    context, page = signed_in(site, "svc", "/members/import")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.fill("input[name=store]", "S001")
    page.fill("input[name=reason]", "迁移")
    page.set_input_files("input[name=file]", str(bad))
    page.click("#import-submit")
    page.wait_for_selector("table.import-problems")
    rows = page.locator("table.import-problems tbody tr").all_inner_texts()
    shot(page, "walk-import-problems")
    assert rows == ["2\t积分 (points)\t积分“12x”应为 0 到 10000000 之间的整数。",
                    "3\t等级 (tier)\t等级“<img src=x onerror=alert(1)>\\u202e”不存在，"
                    "应为以下之一：member, silver, gold, diamond。"]
    assert "发现 2 个问题，未导入任何会员" in page.inner_text("section[role=alert] h2")
    assert dialogs == [] and page.locator("table.import-problems img").count() == 0
    page.goto(f"{url}/members?q=王芳")  # nothing imported
    assert page.locator("table.grid tbody td a").count() == 0
    context.close()
