"""The report pages in Chromium: each page's charts drawn by ECharts from the figures the server
sent (read back from the chart instances), the CSV link a real download, a store manager's
pages scoped to its store, English selectable; on SQLite and on PostgreSQL (the pages read the
roll-ups, kept by each engine's own means). Screenshots in var/test-artifacts/screenshots/,
those of PostgreSQL's pages named ``...-postgresql``."""

from __future__ import annotations

import csv
import io

import pytest

from tests.console.chain import signed_in
from tests.console.report_chain import PERIOD, report_app
from tests.support.browser import CHROMIUM, browser, serving
from tests.support.browser import shot as browser_shot

pytestmark = [pytest.mark.slow,  # Chromium
              pytest.mark.skipif(not CHROMIUM.exists(),
                                 reason="Debian's chromium is missing: run scripts/setup.sh"),
              pytest.mark.parametrize("report_chain", ["sqlite", "postgresql"], indirect=True)]
QUERY = f"from={PERIOD['from']}&to={PERIOD['to']}"
ENGINE = {"suffix": ""}  # the screenshots' suffix for the database the site in use reads


@pytest.fixture(scope="module")
def site(report_chain):
    ENGINE["suffix"] = "-postgresql" if report_chain.url.startswith("postgresql") else ""
    with serving(report_app(report_chain, secure_cookies=False)) as url, browser() as chromium:
        yield url, chromium


def shot(page, name: str) -> None:
    browser_shot(page, name + ENGINE["suffix"])


def charts(page, *names: str) -> dict[str, list]:
    """Wait until each chart is drawn; each one's series data as ECharts holds it."""
    for name in names:
        page.wait_for_selector(f"#{name}-chart[data-rendered='1'] canvas")
    return page.evaluate("""names => Object.fromEntries(names.map(name => [name,
        echarts.getInstanceByDom(document.getElementById(name + '-chart'))
            .getOption().series.map(s => s.data)]))""", list(names))


def test_dashboard_charts_and_csv_download(site) -> None:
    url, _ = site
    context, page = signed_in(site, "admin")
    errors: list[str] = []  # script errors, and any asset not served (the site has no favicon)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", lambda response: response.status >= 400
            and not response.url.endswith("/favicon.ico") and errors.append(response.url))
    page.goto(f"{url}/reports?{QUERY}")
    drawn = charts(page, "new-members", "sales", "rates", "tiers")
    assert sum(drawn["new-members"][0]) == 4  # B, D (October), 王芳 and the formula (November)
    assert len(drawn["sales"][0]) == 61
    assert [point["name"] for point in drawn["tiers"][0]][:2] == ["普通会员", "银卡会员"]
    assert page.inner_text("#kpi-purchasers .figure") == "4"
    # A column of figures is headed on the right, where its figures stand; a date column left.
    aligned = page.evaluate("""() => [...document.querySelectorAll('#table-days th')]
        .map(th => getComputedStyle(th).textAlign)""")
    assert aligned == ["left", "right", "right", "right"]
    shot(page, "reports-dashboard")
    with page.expect_download() as download:
        page.click("#csv-days")
    path = download.value.path()
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert rows[0][0] == "日期" and len(rows) == 62
    assert download.value.suggested_filename == "dashboard-days.csv"
    page.click("text=English")
    page.wait_for_selector("text=Repeat and churn by month")
    charts(page, "rates")
    shot(page, "reports-dashboard-english")
    assert errors == []
    context.close()


def test_points_expiring_settlement_days_and_lists(site) -> None:
    url, _ = site
    context, page = signed_in(site, "admin")
    page.goto(f"{url}/reports/points?{QUERY}&by=week")
    flow = charts(page, "flow")["flow"]
    assert len(flow) == 7  # six flows stacked and the liability line
    shot(page, "reports-points-by-week")
    page.goto(f"{url}/reports/expiring?at=2026-11-20")
    charts(page, "expiring")
    shot(page, "reports-expiring")
    page.goto(f"{url}/reports/settlement?{QUERY}")
    matrix = charts(page, "matrix")["matrix"][0]
    assert [0, 0, 450] in matrix or any(cell[2] == 450 for cell in matrix)
    shot(page, "reports-settlement")
    page.goto(f"{url}/reports/days?{QUERY}")
    days = charts(page, "days")["days"]
    assert days[1] == [5.0]  # the points deduction of 5 November, in yuan
    shot(page, "reports-days")
    for name, who in (("dormant", "0005"), ("near_tier", "王芳"), ("birthdays", "王芳")):
        page.goto(f"{url}/reports/lists/{name}?at=2026-11-20")
        page.wait_for_selector(f"#table-members >> text={who}")
        shot(page, f"reports-list-{name}")
    context.close()


def test_a_store_manager_sees_its_store(site) -> None:
    url, _ = site
    context, page = signed_in(site, "mgr2")
    page.goto(f"{url}/reports?{QUERY}")
    charts(page, "new-members", "tiers")
    assert "S002" in page.inner_text("h1")
    assert page.locator("select[name=store] option").all_inner_texts() == ["S002"]
    shot(page, "reports-dashboard-store-manager")
    response = page.goto(f"{url}/reports?{QUERY}&store=S001")
    assert response.status == 404
    context.close()
