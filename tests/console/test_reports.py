"""The report pages over HTTP, on SQLite and PostgreSQL: the dashboard's figures are `posterm-hq
report analytics`'s, every table downloads as a CSV that parses back (UTF-8 with a BOM, formula
cells guarded), the lists name the right members, and roles and stores scope what is read."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from urllib.parse import parse_qsl

import pytest
from starlette.testclient import TestClient

from terminal.hq.cli import main
from terminal.hq.console import insights, report_pages
from terminal.hq.console.audit import AuditQuery, search
from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.i18n import Translator
from tests.console.report_chain import FORMULA, PERIOD, report_app
from tests.console.test_http import BASE, login
from tests.hq.test_analytics import RULES

TABLES = {"/reports/dashboard.csv": ("kpis", "days", "months", "tiers"),
          "/reports/points.csv": ("flow",), "/reports/expiring.csv": ("expiring",),
          "/reports/settlement.csv": ("matrix", "net"), "/reports/days.csv": ("days", "terminals"),
          "/reports/lists/dormant.csv": ("members",), "/reports/lists/near_tier.csv": ("members",),
          "/reports/lists/birthdays.csv": ("members",)}
QUERY = {**PERIOD, "at": "2026-11-20", "by": "week"}


def client(chain) -> TestClient:
    return TestClient(report_app(chain), base_url=BASE, follow_redirects=False)


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    assert response.content.startswith("\ufeff".encode())  # Excel reads the Chinese right
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def table(c: TestClient, path: str, name: str, **query: str) -> list[dict[str, str]]:
    header, *rows = rows_of(c.get(path, params={**QUERY, **query, "table": name}))
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_the_dashboard_shows_report_analytics_figures(report_chain, capsys) -> None:
    assert main(["report", "analytics", "--db", report_chain.url, "--rules", str(RULES),
                 "--from", PERIOD["from"], "--to", PERIOD["to"], "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    with client(report_chain) as c:
        login(c, "admin")
        page = c.get("/reports", params=PERIOD)
        assert page.status_code == 200 and "经营看板" in page.text
        assert 'src="/static/echarts.min.js"' in page.text
        kpis = {row["指标"]: row["数值"] for row in table(c, "/reports/dashboard.csv", "kpis")}
        assert kpis["购买会员"] == str(expected["purchasers"]) == "4"
        assert kpis["回购率"] == str(expected["repeat_rate"])
        assert kpis["流失率"] == str(expected["churn_rate"])
        assert kpis["临近升级"] == str(expected["near_next_tier"]) == "1"  # 王芳
        days = table(c, "/reports/dashboard.csv", "days")
        assert len(days) == 61 and days[0]["日期"] == "2026-10-01"
        assert sum(int(day["新会员"]) for day in days) == expected["new_members"] == 4
        # 3 November (Shanghai): 王芳's 18 bags of rice.
        assert next(day for day in days if day["日期"] == "2026-11-03")["会员消费金额(元)"] \
            == "900.00"
        tiers = {row["等级"]: int(row["会员数"]) for row in table(c, "/reports/dashboard.csv",
                                                                "tiers")}
        zh = Translator("zh-CN")  # the rules' tier names, in the page's language
        assert tiers == {zh.tier(name): count for name, count in expected["tiers"].items()}
        assert set(tiers) == {"普通会员", "银卡会员", "金卡会员", "钻石会员"}
        months = table(c, "/reports/dashboard.csv", "months")
        assert [row["月份"] for row in months] == ["2026-06", "2026-07", "2026-08", "2026-09",
                                                  "2026-10", "2026-11"]


def test_every_table_downloads_as_csv_that_parses_back(report_chain) -> None:
    with client(report_chain) as c:
        login(c, "admin")
        for path, names in TABLES.items():
            page = c.get(path.removesuffix(".csv").replace("/dashboard", ""), params=QUERY)
            assert page.status_code == 200, path
            for name in names:
                header, *rows = rows_of(c.get(path, params={**QUERY, "table": name}))
                assert f'id="csv-{name}"' in page.text
                for cell in header:  # the page shows the same table (figures' heads on the right)
                    assert re.search(f'<th( class="num")?>{re.escape(cell)}</th>', page.text), (
                        path, cell)
                assert all(len(row) == len(header) for row in rows)
        matrix = table(c, "/reports/settlement.csv", "matrix")
        cell = next(row for row in matrix if (row["积分发放店"], row["兑换店"]) == ("S001", "S002"))
        # A's 500 points at S002 came from its lots soonest-expiring first: the 50 it earned
        # at S002 on 12 October, and 450 from lots earned at S001.
        assert (cell["积分"], cell["金额(元)"]) == ("450", "4.50")
        net = {row["门店"]: int(row["净额积分"]) for row in table(c, "/reports/settlement.csv",
                                                              "net")}
        assert net == {"S001": -450, "S002": 450}
        net_yuan = table(c, "/reports/settlement.csv", "net")[0]["净额(元)"]
        assert net_yuan == "-4.50"  # a number, not guarded as if it were a formula
        flow = table(c, "/reports/points.csv", "flow")
        assert {row["门店"] for row in flow} >= {"S001", "S002", "全部门店"}
        c.cookies.set("posterm_lang", "en")
        english = rows_of(c.get("/reports/points.csv", params={**QUERY, "table": "flow"}))
        assert english[0][:3] == ["From", "To (exclusive)", "Store"]
        assert c.get("/reports/points.csv", params={"table": "nope"}).status_code == 404


def test_the_terminals_day_reports_with_their_redemptions(report_chain) -> None:
    with client(report_chain) as c:
        login(c, "fin")
        page = c.get("/reports/days", params=PERIOD)
        assert page.status_code == 200 and "终端日结" in page.text
        terminals = table(c, "/reports/days.csv", "terminals")
        assert [(row["门店"], row["状态"]) for row in terminals] == [
            ("S001", "未日结(X)"), ("S002", "已日结(Z)")]
        s002 = terminals[1]
        # A's 500 points paid 5.00 yuan of its 50.00 yuan of rice at S002.
        assert (s002["销售笔数"], s002["实收(元)"], s002["积分抵扣(元)"], s002["打印次数"],
                s002["总部记录笔数"]) == ("1", "45.00", "5.00", "2", "1")
        [day] = table(c, "/reports/days.csv", "days")
        assert (day["日期"], day["积分抵扣(元)"]) == ("2026-11-05", "5.00")
    with client(report_chain) as c:
        login(c, "mgr1")
        terminals = table(c, "/reports/days.csv", "terminals")
        assert [row["门店"] for row in terminals] == ["S001"]


def test_the_lists_and_formula_names_in_their_csv(report_chain) -> None:
    with client(report_chain) as c:
        login(c, "svc")
        birthdays = rows_of(c.get("/reports/lists/birthdays.csv", params=QUERY))
        names = {row[0] for row in birthdays[1:]}
        assert names == {"王芳", "'" + FORMULA}  # a formula is text to a spreadsheet
        assert birthdays[0][-1] == "生日"
        near = table(c, "/reports/lists/near_tier.csv", "members")
        assert [(row["姓名"], row["下一等级"], row["还差(元)"]) for row in near] == [
            ("王芳", "银卡会员", "100.00")]
        dormant = table(c, "/reports/lists/dormant.csv", "members")
        assert [(row["卡号后四位"], row["最近消费日"]) for row in dormant] == [
            ("0005", "2026-06-05")]  # E; the others bought within 90 days of 20 November
        page = c.get("/reports/lists/near_tier", params=QUERY)
        assert "王芳" in page.text
        formula = c.get("/reports/lists/birthdays", params=QUERY)
        assert "=HYPERLINK(&#34;" in formula.text or "=HYPERLINK(&quot;" in formula.text
    db = ConsoleDb(report_chain.url)
    try:
        lists = db.call(search, AuditQuery(actor="svc", action="member.list"))
    finally:
        db.close()
    assert {row["subject"] for row in lists} == {"birthdays", "near_tier", "dormant"}


def test_a_list_pages_and_its_csv_streams_every_page(report_chain, monkeypatch) -> None:
    """A list shows a page at a time with a link to the next (a list of half a million is not
    rendered at once); its CSV streams every page (here pages of one member)."""
    monkeypatch.setattr(insights, "LIST_LIMIT", 1)
    monkeypatch.setattr(report_pages, "CSV_PAGE", 1)
    with client(report_chain) as c:
        login(c, "svc")
        for which, query in (("birthdays", QUERY), ("dormant", {**QUERY, "dormant_days": "1"})):
            whole = table(c, f"/reports/lists/{which}.csv", "members", **query)
            assert len(whole) >= 2
            seen, params = [], dict(query)
            while True:
                page = c.get(f"/reports/lists/{which}", params=params)
                assert page.status_code == 200
                assert f"共 {len(whole)} 位会员" in page.text
                shown = [row for row in whole if f">{row['卡号后四位']}<" in page.text]
                assert len(shown) == 1
                seen += shown
                link = re.search(r'id="next-page" href="\?([^"]+)"', page.text)
                if link is None:
                    break
                params = dict(parse_qsl(html.unescape(link.group(1))))
            assert seen == whole
        assert c.get("/reports/lists/dormant", params={"after": "x"}).status_code == 400


def test_roles_and_stores_scope_the_reports(report_chain) -> None:
    with client(report_chain) as c:
        login(c, "mgr1")  # S001's manager
        page = c.get("/reports", params=PERIOD)
        assert page.status_code == 200 and "经营看板 · S001" in page.text
        assert c.get("/reports", params={**PERIOD, "store": "S002"}).status_code == 404
        assert c.get("/reports/points.csv", params={**QUERY, "store": "S002"}).status_code == 404
        flow = table(c, "/reports/points.csv", "flow")
        assert {row["门店"] for row in flow} == {"S001"}  # not the chain's, not S002's
        net = table(c, "/reports/settlement.csv", "net")
        assert [row["门店"] for row in net] == ["S001"]
        matrix = table(c, "/reports/settlement.csv", "matrix")
        assert all("S001" in (row["积分发放店"], row["兑换店"]) for row in matrix)
        birthdays = table(c, "/reports/lists/birthdays.csv", "members")
        assert {row["所属门店"] for row in birthdays} == {"S001"}  # not 王芳 (S002)
        expiring = table(c, "/reports/expiring.csv", "expiring")
        assert [row["门店"] for row in expiring] == ["S001"]
    with client(report_chain) as c:
        login(c, "svc")  # service calls members: the lists, not the figures
        assert c.get("/reports").status_code == 403
        assert c.get("/reports/points.csv").status_code == 403
        assert c.get("/reports/lists/dormant").status_code == 200


def test_bad_queries_are_refused_with_the_reason(report_chain) -> None:
    with client(report_chain) as c:
        login(c, "admin")
        backwards = c.get("/reports", params={"from": "2026-12-01", "to": "2026-10-01"})
        assert backwards.status_code == 400 and \
            "开始日期 2026-12-01 应早于结束日期 2026-10-01" in backwards.text
        assert c.get("/reports/points", params={**PERIOD, "by": "year"}).status_code == 400
        assert c.get("/reports/expiring", params={"at": "soon"}).status_code == 400
        assert c.get("/reports/lists/dormant", params={"dormant_days": "0"}).status_code == 400
        assert c.get("/reports/lists/nobody").status_code == 404
        assert c.get("/reports", params={"store": "../x"}).status_code == 404
        csv_refusal = c.get("/reports/settlement.csv", params={"from": "x", "to": "y"})
        assert csv_refusal.status_code == 400 and "结束(不含)：日期应为 年-月-日" in \
            csv_refusal.text and "--to" not in csv_refusal.text
        # Only what a browser's date field sends: 20261201 is ISO 8601 too, but no browser's.
        assert c.get("/reports", params={"from": "20261001", "to": "2026-12-01"}).status_code \
            == 400


@pytest.mark.parametrize(("name", "lists"), [("fin", 403), ("mkt", 200), ("aud", 200)])
def test_chain_wide_roles_read_the_figures(report_chain, name: str, lists: int) -> None:
    with client(report_chain) as c:
        login(c, name)
        assert c.get("/reports/settlement", params=PERIOD).status_code == 200
        assert c.get("/reports/lists/dormant").status_code == lists
