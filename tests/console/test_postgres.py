"""The console on PostgreSQL (a chain's HQ): the same chain built by real tills' events into a
real PostgreSQL server, then search (Chinese prefix, card, phone), the member page and its
statement origins, store scoping, an operation, the CSV, and the append-only audit log."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from terminal.hq.console.db import ConsoleDb
from tests.console.chain import add_users, build_chain, console_app
from tests.console.test_http import BASE, csrf, login, member_id
from tests.hq.test_postgres_collector import fresh_database


@pytest.fixture(scope="module")
def pg_chain(postgres, tmp_path_factory):
    built = build_chain(tmp_path_factory.mktemp("pg"), fresh_database(postgres))
    add_users(built)
    return built


def client(chain) -> TestClient:
    return TestClient(console_app(chain), base_url=BASE, follow_redirects=False)


def test_search_page_and_statement_on_postgresql(pg_chain) -> None:
    assert pg_chain.url.startswith("postgresql://")
    with client(pg_chain) as c:
        login(c, "svc")
        names = sorted(m["name"] for m in c.get("/api/v1/members", params={"q": "张"}).json()[
            "members"])
        assert names == sorted(["张伟", "张三丰", "张丽"])
        assert c.get("/api/v1/members", params={"q": "张_"}).json()["members"] == []
        assert [m["name"] for m in c.get("/api/v1/members", params={"q": "13900000001"})
                .json()["members"]] == ["李娜"]
        mid = member_id(c, "7100000002")
        data = c.get(f"/api/v1/members/{mid}").json()
        entries = data["statement"]["entries"]
        assert {e["origin"] for e in entries} == {"S001/T01"}
        assert sum(e["points"] for e in entries) == data["balance"] == entries[0][
            "balance_after"]
        page = c.get(f"/members/{mid}")
        assert "张三丰" in page.text and "王小明" in page.text
        hostile = c.get("/members", params={"q": "'; DROP"})
        assert "&#39;; DROP TABLE member; --" in hostile.text
        token = csrf(c, f"/members/{mid}")
        assert c.post(f"/members/{mid}/op/freeze", data={"csrftoken": token,
                                                         "reason": "PG"}).status_code == 303
        assert c.get(f"/api/v1/members/{mid}").json()["state"] == "frozen"
        csv_text = c.get(f"/members/{mid}/statement.csv").content.decode("utf-8-sig")
        assert csv_text.splitlines()[-1].endswith(f",{data['balance']}")
    with client(pg_chain) as c:
        login(c, "mgr2")
        assert c.get(f"/members/{mid}").status_code == 404
        assert [m["name"] for m in c.get("/api/v1/members", params={"q": "张"}).json()[
            "members"]] == ["张丽"]


def test_the_audit_log_is_append_only_on_postgresql(pg_chain) -> None:
    db = ConsoleDb(pg_chain.url)
    try:
        for sql in ("UPDATE console_audit SET actor = 'x'", "DELETE FROM console_audit",
                    "TRUNCATE console_audit"):
            with pytest.raises(Exception, match="append-only"):
                db.call(lambda sql=sql: db.db.execute_sql(sql))
    finally:
        db.close()
