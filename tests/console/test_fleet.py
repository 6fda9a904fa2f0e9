"""The fleet page and API over HTTP: statuses recorded by the collector's own code, alerts,
store scoping of terminals, and commands refused without a broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from terminal.hq.collector import _record_status
from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.fleet import record_sample
from terminal.hq.models import TerminalSeen
from terminal.loyalty.clock import to_micros
from terminal.protocol.messages import Status
from terminal.protocol.topics import TerminalTopic
from tests.console.chain import console_app, on_console_db
from tests.console.test_http import BASE, csrf, login


@pytest.fixture(scope="module")
def fleet_chain(chain):
    """S001/T01 online with a growing backlog, S001/T02 on old rules, S002/T01 offline for an
    hour with a refusal; as the collector records them."""
    db = ConsoleDb(chain.url)
    long_ago = to_micros(datetime.now(UTC) - timedelta(hours=1))

    def seed() -> None:
        for store, terminal, status in (
                ("S001", "T01", Status("online", 2, "1.4.0", 9, 40, {"printer": "ok"})),
                ("S001", "T02", Status("online", 1, "1.3.9", 8, 0, {"printer": "out of paper"})),
                ("S002", "T01", Status("offline", 5, "1.4.0", 9, 3, {"printer": "ok"},
                                       {"what": "bundle", "reason": "expired", "detail": "x",
                                        "at": "2026-12-01T00:00:00+00:00", "ref": ""}))):
            _record_status(TerminalTopic(store, terminal, "status"), status)
        TerminalSeen.update(last_seen_us=long_ago).where(TerminalSeen.store == "S002").execute()
        for n, backlog in enumerate((3, 9, 20, 40)):
            record_sample("S001", "T01", long_ago + n, backlog)

    try:
        db.call(seed)
    finally:
        db.close()
    return chain


def client(chain) -> TestClient:
    return TestClient(console_app(chain), base_url=BASE, follow_redirects=False)


def test_fleet_shows_every_terminal_with_its_alerts(fleet_chain) -> None:
    with client(fleet_chain) as c:
        login(c, "admin")
        rows = {f"{r['store']}/{r['terminal']}": r
                for r in c.get("/api/v1/fleet").json()["terminals"]}
        assert set(rows) == {"S001/T01", "S001/T02", "S002/T01"}
        assert rows["S001/T01"]["alerts"] == ["backlog_growing"]
        assert rows["S001/T02"]["alerts"] == ["stale_rules"]
        assert rows["S001/T02"]["printer"] == "out of paper"
        assert rows["S002/T01"]["alerts"] == ["offline"]
        assert rows["S002/T01"]["rejected"]["reason"] == "expired"
        fleet = c.get("/api/v1/fleet", params={"store": "S001", "alerts": "1"}).json()
        assert [t["terminal"] for t in fleet["terminals"]] == ["T01", "T02"]
        assert (fleet["total"], fleet["online"], fleet["alerting"], fleet["matching"]) == (
            3, 2, 3, 2)
        page = c.get("/fleet")
        for text in ("离线过久", "规则过旧", "积压增长", "out of paper", "S002/T01"):
            assert text in page.text
        # htmx's refresh gets the table alone.
        fragment = c.get("/fleet", headers={"hx-request": "true"}).text
        assert "<table" in fragment and "<html" not in fragment


def test_a_store_manager_sees_its_terminals_and_forged_urls_get_404(fleet_chain) -> None:
    with client(fleet_chain) as c:
        login(c, "mgr2")
        rows = c.get("/api/v1/fleet").json()["terminals"]
        assert [(r["store"], r["terminal"]) for r in rows] == [("S002", "T01")]
        assert c.get("/fleet/S002/T01").status_code == 200
        for path in ("/fleet/S001/T01", "/fleet/S001/T02", "/fleet/S009/T01",
                     "/api/v1/fleet/S001/T01"):
            assert c.get(path).status_code == 404, path
        token = csrf(c, "/fleet")
        assert c.post("/fleet/S001/T01/cmd/print_status",
                      data={"csrftoken": token}).status_code == 404
        assert c.post("/api/v1/fleet/S001/T01/cmd/resync",
                      headers={"x-csrftoken": token}).status_code == 404


def test_commands_need_the_role_and_a_broker(fleet_chain) -> None:
    with client(fleet_chain) as c:
        login(c, "svc")  # service reads the fleet, sends nothing
        token = csrf(c, "/fleet")
        assert c.post("/fleet/S001/T01/cmd/print_status",
                      data={"csrftoken": token}).status_code == 403
    with client(fleet_chain) as c:
        login(c, "admin")
        token = csrf(c, "/fleet")
        response = c.post("/api/v1/fleet/S001/T01/cmd/print_status",
                          headers={"x-csrftoken": token})
        assert response.status_code == 503 and "no broker" in response.json()["detail"]
        assert response.json()["error"] == "unavailable"  # the code, and the words in zh-CN
        assert response.json()["message"].startswith("此后台未连接消息服务器，不能发送指令")
        assert c.post("/api/v1/fleet/S001/T01/cmd/format_disk",
                      headers={"x-csrftoken": token}).status_code == 404


HOSTILE_WORDS = "<img src=x onerror=alert(1)>\x1b[2J\u202e" + "纸" * 5000


def _seed_printers() -> None:
    """As the collector records them: a till with each code, an older till (words only), and
    hostile ones (an unknown code, control characters, huge words)."""
    for terminal, status in (
            ("T01", Status("online", 1, "1.5.0", 9, 0, {"printer": "2 receipts waiting"},
                           printer_state={"code": "paper_out", "waiting": 2})),
            ("T02", Status("online", 1, "1.5.0", 9, 0, {"printer": "ok"},
                           printer_state={"code": "ok", "waiting": 0})),
            ("T03", Status("online", 1, "1.3.0", 9, 0, {"printer": "1 receipts waiting"})),
            ("T04", Status("online", 1, "1.5.0", 9, 0, {"printer": HOSTILE_WORDS},
                           printer_state={"code": "<b>jam\x07</b>", "waiting": 3})),
            ("T05", Status("online", 1, "1.5.0", 9, 0, {"printer": "absent (lost: gone)"},
                           printer_state={"code": "absent", "waiting": 1}))):
        _record_status(TerminalTopic("S003", terminal, "status"), status)
    # What no collector writes, as a broken or older database could hold it.
    TerminalSeen.insert(store="S003", terminal="T06", online=True, epoch=1, version="x",
                        rule_version=9, backlog=0, devices='{"printer": "ok"}',
                        printer_state='["not", "an object"]', last_seen_us=1).execute()


def test_the_printer_is_shown_in_the_pages_language_and_hostile_words_safely(
        fresh_chain) -> None:
    on_console_db(fresh_chain.url, _seed_printers)
    with client(fresh_chain) as c:
        login(c, "admin")
        api = {r["terminal"]: r for r in c.get("/api/v1/fleet").json()["terminals"]}
        assert api["T01"]["printer_state"] == {"code": "paper_out", "waiting": 2}
        assert api["T03"]["printer_state"] is None and api["T03"]["printer"] == \
            "1 receipts waiting"
        assert api["T06"]["printer_state"] is None
        page = c.get("/fleet")
        assert page.status_code == 200

        def cell(terminal: str, text: str) -> str:
            row = text.split(f'id="term-S003-{terminal}"')[1].split("</tr>")[0]
            return row.split('<td class="printer">')[1].split("</td>")[0]
        assert "缺纸，2 张小票待补打" in cell("T01", page.text)
        assert ">正常<" in cell("T02", page.text) and "device-ok" in cell("T02", page.text)
        assert "1 receipts waiting" in cell("T03", page.text)  # an older till's own words
        assert "未连接，1 张小票待补打" in cell("T05", page.text)
        hostile = cell("T04", page.text)  # an unknown code: the words, escaped and cut
        assert "<img" not in hostile and "&lt;img src=x" in hostile and "jam" not in hostile
        assert "\x1b" not in hostile and "\\x1b[2J\\u202e" in hostile
        assert len(hostile) < 2000 and "…" in hostile and "device-bad" in hostile
        assert ">ok<" in cell("T06", page.text)
        one = c.get("/fleet/S003/T01").text
        assert "打印机" in one and "缺纸，2 张小票待补打" in one and ">printer<" not in one
        assert "会员卡读卡器" not in one  # T01 reported no reader
        c.get("/lang/en?next=/fleet")
        english = c.get("/fleet").text
        assert "Out of paper; receipts waiting for a reprint: 2" in cell("T01", english)
        assert "Not connected; receipts waiting for a reprint: 1" in cell("T05", english)


def test_the_fleet_command_shows_a_tills_chinese_words_and_escapes_only_the_invisible() -> None:
    """`posterm-hq fleet`'s printer cell takes the console's escaping (shown_text.shown): an
    escape sequence or a bidi override is written as its code, the Chinese beside it as it is
    (it used to go through unicode_escape whole as soon as one character was unprintable)."""
    from terminal.hq.fleet import _printer

    words = {"printer_state": None, "printer": "缺纸\x1b[2J\u202e"}
    assert _printer(words) == "缺纸\\x1b[2J\\u202e"
    assert _printer({"printer_state": {"code": "paper_out", "waiting": 2},
                     "printer": "x"}) == "paper_out+2"
