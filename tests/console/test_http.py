"""The console over HTTP (Starlette's TestClient on the real app and a real SQLite HQ): sign-in,
sessions, CSRF, roles and store scoping, member search and pages, the API and its tokens."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from terminal.hq.console import accounts
from terminal.hq.console.db import ConsoleDb
from tests.console.chain import PASSWORD, Chain, console_app, on_console_db

BASE = "https://console.test"


def client(chain: Chain) -> TestClient:
    return TestClient(console_app(chain), base_url=BASE, follow_redirects=False)


def csrf(c: TestClient, path: str = "/login") -> str:
    page = c.get(path)
    if page.status_code == 303:  # signed in already: the next page has a form too
        page = c.get(page.headers["location"])
    return re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)


def login(c: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in; the session's Set-Cookie header."""
    response = c.post("/login", data={"name": name, "password": password,
                                      "csrftoken": csrf(c)})
    assert response.status_code == 303, response.text
    return next(v for v in response.headers.get_list("set-cookie")
                if v.startswith("posterm_session="))


def member_id(c: TestClient, query: str) -> str:
    found = c.get("/api/v1/members", params={"q": query}).json()["members"]
    assert len(found) == 1, found
    return found[0]["id"]


def test_unauthenticated_requests_get_only_the_login_page(chain) -> None:
    with client(chain) as c:
        for path in ("/", "/members", "/members?q=张", "/members/x", "/audit",
                     "/members/x/statement.csv", "/no-such-page"):
            response = c.get(path)
            assert response.status_code == 303 and response.headers["location"].startswith(
                "/login"), (path, response.status_code)
        for path in ("/api/v1/members?q=张", "/api/v1/me", "/api/v1/openapi.json",
                     "/api/v1/audit"):
            response = c.get(path)
            assert response.status_code == 401 and response.json() == {
                "error": "unauthenticated",  # the code; the words in the caller's language
                "message": "请先登录，或在 Authorization 头中提供有效的 API 令牌（Bearer）。"}, path
        page = c.get("/login")
        assert page.status_code == 200 and 'name="password"' in page.text
        assert "张伟" not in page.text


def test_sign_in_sets_hardened_cookies_and_security_headers(chain) -> None:
    with client(chain) as c:
        attributes = {part.strip().lower() for part in login(c, "svc").split(";")[1:]}
        assert {"secure", "httponly", "samesite=strict"} <= attributes
        page = c.get("/members")
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"


def test_wrong_password_is_refused_and_repeated_failures_are_throttled(fresh_chain) -> None:
    with client(fresh_chain) as c:
        for _ in range(accounts.THROTTLE_PER_NAME):
            response = c.post("/login", data={"name": "mkt", "password": "wrong password!",
                                              "csrftoken": csrf(c)})
            assert response.status_code == 401 and "posterm_session" not in c.cookies
        # Now even the right password is refused, without being checked.
        response = c.post("/login", data={"name": "mkt", "password": PASSWORD,
                                          "csrftoken": csrf(c)})
        assert response.status_code == 429
        assert c.get("/members").status_code == 303
        login(c, "svc")  # another account from the same address still signs in
        c.post("/logout", data={"csrftoken": csrf(c, "/members")})
        login(c, "aud")
        actions = [e["action"] for e in c.get("/api/v1/audit", params={"actor": "mkt"}).json()[
            "entries"]]
        assert actions == ["login.throttled"] + ["login.failed"] * accounts.THROTTLE_PER_NAME
        assert "logout" in {e["action"] for e in c.get(
            "/api/v1/audit", params={"actor": "svc"}).json()["entries"]}


def test_csrf_is_refused_on_every_form(chain) -> None:
    with client(chain) as c:
        csrf(c)  # the CSRF cookie is set
        response = c.post("/login", data={"name": "svc", "password": PASSWORD})
        assert response.status_code == 403
        response = c.post("/login", data={"name": "svc", "password": PASSWORD,
                                          "csrftoken": "forged"})
        assert response.status_code == 403
        login(c, "svc")
        # Signing out without the token is refused and the session stays.
        assert c.post("/logout", data={}).status_code == 403
        assert c.get("/members").status_code == 200
        # A login form posted cross-site carries no cookie at all: still refused.
        with TestClient(console_app(chain), base_url=BASE) as fresh:
            refused = fresh.post("/login", data={"name": "svc", "password": PASSWORD})
            assert refused.status_code == 403


def test_a_session_id_from_before_sign_in_is_worthless_after_it(chain) -> None:
    with client(chain) as attacker:
        login(attacker, "mgr1")
        planted = attacker.cookies.get("posterm_session")
    with client(chain) as victim:
        victim.cookies.set("posterm_session", planted, domain="console.test")
        login(victim, "admin")  # the victim signs in on the planted session
        assert victim.cookies.get("posterm_session") != planted
        assert victim.get("/api/v1/me").json()["name"] == "admin"
    with client(chain) as attacker:
        attacker.cookies.set("posterm_session", planted, domain="console.test")
        assert attacker.get("/members").status_code == 303  # ended by the victim's sign-in
        assert attacker.get("/api/v1/me").status_code == 401


def test_sign_out_ends_the_session_on_the_server(chain) -> None:
    with client(chain) as c:
        login(c, "svc")
        kept = c.cookies.get("posterm_session")
        assert c.post("/logout", data={"csrftoken": csrf(c, "/members")}).status_code == 303
    with client(chain) as replay:
        replay.cookies.set("posterm_session", kept, domain="console.test")
        assert replay.get("/members").status_code == 303


def test_search_by_card_phone_and_chinese_name(chain) -> None:
    with client(chain) as c:
        login(c, "svc")
        by_card = c.get("/api/v1/members", params={"q": "7100000001"}).json()["members"]
        assert [m["name"] for m in by_card] == ["张伟"]
        assert by_card[0]["card_last4"] == "0001" and by_card[0]["home_store"] == "S001"
        by_phone = c.get("/api/v1/members", params={"q": "13900000001"}).json()["members"]
        assert [m["name"] for m in by_phone] == ["李娜"]
        assert by_phone[0]["phone_last4"] == "0001"
        by_name = c.get("/api/v1/members", params={"q": "张"}).json()["members"]
        assert sorted(m["name"] for m in by_name) == sorted(["张伟", "张三丰", "张丽"])
        # A wildcard typed is a character, not a wildcard.
        assert c.get("/api/v1/members", params={"q": "%"}).json()["members"] == []
        page = c.get("/members", params={"q": "张三"})
        assert page.status_code == 200 and "张三丰" in page.text and "张伟" not in page.text


def test_a_payment_card_number_is_refused_and_never_logged(chain) -> None:
    with client(chain) as c:
        login(c, "admin")
        response = c.get("/api/v1/members", params={"q": "4111111111111111"})
        assert response.status_code == 400 and "payment card" in response.json()["detail"]
        log = c.get("/api/v1/audit", params={"action": "member.search"}).json()["entries"]
        assert all("4111" not in entry["detail"] for entry in log)


def test_member_page_shows_profile_tier_expiry_and_statement(chain) -> None:
    with client(chain) as c:
        login(c, "svc")
        mid = member_id(c, "7100000002")
        data = c.get(f"/api/v1/members/{mid}").json()
        entries = data["statement"]["entries"]
        assert data["name"] == "张三丰" and data["home_store"] == "S001"
        assert [e["kind"] for e in entries][::-1][:2] == ["bonus", "earn"]
        assert {e["origin"] for e in entries} == {"S001/T01"}
        assert entries[0]["balance_after"] == data["balance"]
        assert entries[-1]["balance_after"] == entries[-1]["points"]
        assert sum(e["points"] for e in entries) == data["balance"]
        assert sum(m["points"] for m in data["expiring_by_month"]) == data["balance"]
        assert data["qualifying_spend_fen"] == 12800 + 12900 + 13000
        page = c.get(f"/members/{mid}")
        assert page.status_code == 200
        for text in ("张三丰", "王小明", "S001/T01", "积分明细", "按月到期积分"):
            assert text in page.text
        english = c.get(f"/lang/en?next=/members/{mid}")
        assert english.status_code == 303
        assert "Statement" in c.get(f"/members/{mid}").text


def test_statement_csv_is_the_whole_ledger_with_running_balance(chain) -> None:
    with client(chain) as c:
        login(c, "svc")
        mid = member_id(c, "7200000001")
        csv_text = c.get(f"/members/{mid}/statement.csv").content.decode("utf-8-sig")
        rows = [line.split(",") for line in csv_text.strip().splitlines()]
        assert rows[0][:3] == ["seq", "time", "store_terminal"]
        balance = c.get(f"/api/v1/members/{mid}").json()["balance"]
        assert int(rows[-1][-1]) == balance and all(r[2] == "S002/T01" for r in rows[1:])


def test_hostile_names_render_as_text(chain) -> None:
    with client(chain) as c:
        login(c, "svc")
        page = c.get("/members", params={"q": "<script>"})
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "<script>alert(1)" not in page.text
        dropped = c.get("/members", params={"q": "'; DROP"})
        assert "&#39;; DROP TABLE member; --" in dropped.text
        # ...and the table it names is still there.
        assert len(c.get("/api/v1/members", params={"q": "张"}).json()["members"]) == 3


@pytest.mark.parametrize("who", ["mgr1", "mgr2"])
def test_a_store_manager_sees_its_stores_only_and_forged_urls_get_404(chain, who) -> None:
    own, other = ("7100000001", "7200000001") if who == "mgr1" else ("7200000001", "7100000001")
    with client(chain) as admin:
        login(admin, "admin")
        other_id = member_id(admin, other)
    with client(chain) as c:
        login(c, who)
        assert len(c.get("/api/v1/members", params={"q": own}).json()["members"]) == 1
        assert c.get("/api/v1/members", params={"q": other}).json()["members"] == []
        names = {m["name"] for m in c.get("/api/v1/members", params={"q": "张"}).json()[
            "members"]}
        assert names == ({"张伟", "张三丰"} if who == "mgr1" else {"张丽"})
        for path in (f"/members/{other_id}", f"/members/{other_id}/statement.csv",
                     f"/members/{other_id}/statement?before=999999999"):
            response = c.get(path)
            assert response.status_code == 404, path
            assert "张" not in response.text and "李" not in response.text
        for path in (f"/api/v1/members/{other_id}", f"/api/v1/members/{other_id}/statement.csv"):
            assert c.get(path).status_code == 404
        assert c.get("/members/no-such-member").status_code == 404
        assert c.get("/audit").status_code == 403


def test_api_tokens_authenticate_and_revocation_stops_them(chain) -> None:
    token = on_console_db(chain.url, accounts.issue_token, "aud")
    with client(chain) as c:
        headers = {"authorization": f"Bearer {token.secret}"}
        assert c.get("/api/v1/me", headers=headers).json() == {
            "name": "aud", "role": "auditor", "stores": []}
        spec = c.get("/api/v1/openapi.json", headers=headers).json()
        assert spec["openapi"].startswith("3.") and "/members/{id}" in spec["paths"]
        assert c.get("/api/v1/members", params={"q": "李娜"}, headers=headers).status_code == 200
        # A token is for the API: pages want a session.
        assert c.get("/members", headers=headers).status_code == 303
        assert c.get("/api/v1/me", headers={"authorization": "Bearer pt_x_nope"}
                     ).status_code == 401
        on_console_db(chain.url, accounts.revoke_token, token.id)
        assert c.get("/api/v1/me", headers=headers).status_code == 401


def test_every_read_of_personal_data_is_audited_and_the_auditor_searches_it(chain) -> None:
    with client(chain) as c:
        login(c, "svc")
        mid = member_id(c, "7100000001")
        c.get(f"/members/{mid}")
        c.get(f"/members/{mid}/statement.csv")
    with client(chain) as c:
        login(c, "aud")
        entries = c.get("/api/v1/audit", params={"subject": mid, "actor": "svc"}).json()[
            "entries"]
        assert {"member.view", "member.export"} <= {e["action"] for e in entries}
        searches = c.get("/api/v1/audit", params={"actor": "svc", "action": "member.search"}
                         ).json()["entries"]
        assert any("card ending 0001" in e["detail"] for e in searches)
        assert all("7100000001" not in e["detail"] for e in searches)
        page = c.get("/audit", params={"subject": mid})
        assert page.status_code == 200 and "member.view" in page.text
        # The auditor reads; it changes nothing and exports nothing it may not.
        assert c.get("/api/v1/audit").status_code == 200
    with client(chain) as c:
        login(c, "mkt")
        assert c.get("/api/v1/audit").status_code == 403
        assert c.get("/members/" + mid + "/statement.csv").status_code == 403


def test_the_audit_log_refuses_update_and_delete(chain) -> None:
    db = ConsoleDb(chain.url)
    try:
        with pytest.raises(Exception, match="append-only"):
            db.call(lambda: db.db.execute_sql("UPDATE console_audit SET actor = 'x'"))
        with pytest.raises(Exception, match="append-only"):
            db.call(lambda: db.db.execute_sql("DELETE FROM console_audit"))
    finally:
        db.close()


def test_member_operations_are_role_checked_audited_and_refusals_change_nothing(
        fresh_chain) -> None:
    with client(fresh_chain) as c:
        login(c, "svc")
        mid = member_id(c, "7100000001")
        before = c.get(f"/api/v1/members/{mid}").json()
        token = csrf(c, f"/members/{mid}")
        # No reason: refused, nothing changed.
        refused = c.post(f"/members/{mid}/op/adjust", data={"points": "50", "reason": "",
                                                             "csrftoken": token})
        assert refused.status_code == 400 and "reason" in refused.text
        assert c.get(f"/api/v1/members/{mid}").json()["balance"] == before["balance"]
        bad = c.post(f"/api/v1/members/{mid}/op/adjust", json={"points": "x", "reason": "r"},
                     headers={"x-csrftoken": token})
        assert bad.status_code == 400 and bad.json()["field"] == "points"
        done = c.post(f"/members/{mid}/op/adjust", data={"points": "50", "reason": "投诉补偿",
                                                         "csrftoken": token})
        assert done.status_code == 303 and done.headers["location"].endswith("?done=adjust")
        after = c.get(f"/api/v1/members/{mid}").json()
        assert after["balance"] == before["balance"] + 50
        assert after["statement"]["entries"][0]["kind"] == "adjust"
        assert after["statement"]["entries"][0]["origin"] == "HQ"
        assert after["operations"][0]["reason"] == "投诉补偿"
        frozen = c.post(f"/api/v1/members/{mid}/op/freeze", json={"reason": "card misuse"},
                        headers={"x-csrftoken": token})
        assert frozen.status_code == 200 and frozen.json()["state"] == "frozen"
        again = c.post(f"/api/v1/members/{mid}/op/freeze", json={"reason": "twice"},
                       headers={"x-csrftoken": token})
        assert again.status_code == 409 and again.json()["error"] == "wrong_state"
        page = c.get(f"/members/{mid}")
        assert "已冻结" in page.text and "card misuse" in page.text
        assert c.post(f"/members/{mid}/op/nonsense", data={"reason": "x", "csrftoken": token}
                      ).status_code == 404
    for who in ("mkt", "aud", "mgr1"):
        with client(fresh_chain) as c:
            login(c, who)
            token = csrf(c, "/members")
            response = c.post(f"/members/{mid}/op/unfreeze",
                              data={"reason": "x", "csrftoken": token})
            assert response.status_code == 403, who
    with client(fresh_chain) as c:
        login(c, "aud")
        log = c.get("/api/v1/audit", params={"subject": mid, "action": "member."}).json()[
            "entries"]
        actions = [entry["action"] for entry in log]
        assert {"member.adjust", "member.adjust.refused", "member.freeze",
                "member.freeze.refused"} <= set(actions)
        assert next(e for e in log if e["action"] == "member.adjust")["why"] == "投诉补偿"


def test_replace_edit_merge_and_erase_from_the_console(fresh_chain) -> None:
    with client(fresh_chain) as c:
        login(c, "admin")
        mid, other = member_id(c, "7100000001"), member_id(c, "7100000002")
        token = csrf(c, f"/members/{mid}")
        kept = c.get(f"/api/v1/members/{mid}").json()

        def op(member: str, operation: str, **fields: str) -> object:
            return c.post(f"/members/{member}/op/{operation}",
                          data={"csrftoken": token, "reason": "客户来电", **fields})

        assert op(mid, "replace", new_card="7100000099").status_code == 303
        assert c.get("/api/v1/members", params={"q": "7100000001"}).json()["members"] == []
        assert member_id(c, "7100000099") == mid
        assert c.get(f"/api/v1/members/{mid}").json()["balance"] == kept["balance"]
        # A card someone holds cannot be the new one: refused, nothing changed.
        refused = op(mid, "replace", new_card="7100000002")
        assert refused.status_code == 400 and member_id(c, "7100000099") == mid
        # Edit sends only what changed (the page's unchanged name stays out).
        assert op(mid, "edit", name="张伟伟", was_name="张伟", birthday="1990-05-01",
                  was_birthday="").status_code == 303
        edited = c.get(f"/api/v1/members/{mid}").json()
        assert (edited["name"], edited["birthday"]) == ("张伟伟", "1990-05-01")
        assert edited["operations"][0]["detail"] == [["fields", ["birthday", "name"]]]
        moved = c.get(f"/api/v1/members/{other}").json()["balance"]
        assert op(mid, "merge", duplicate_card="7100000002").status_code == 303
        assert c.get(f"/api/v1/members/{mid}").json()["balance"] == kept["balance"] + moved
        gone = c.get(f"/members/{other}")
        assert "已停用" in gone.text and 'id="op-freeze"' not in gone.text
        assert op(mid, "erase").status_code == 303
        erased = c.get(f"/api/v1/members/{mid}").json()
        assert (erased["name"], erased["phone_last4"], erased["birthday"]) == ("", "", None)
        assert erased["balance"] == kept["balance"] + moved
        log = c.get("/api/v1/audit", params={"subject": mid, "action": "member."}).json()
        assert {"member.replace", "member.replace.refused", "member.edit", "member.merge",
                "member.erase"} <= {e["action"] for e in log["entries"]}


def test_members_imported_from_csv_belong_to_the_chosen_store(fresh_chain) -> None:
    good = "card,tier,points,name,phone\n7300000001,member,1200,王芳,13700000001\n" \
           "7300000002,member,0,赵六,\n"
    duplicate = good + "7100000001,member,5,重复,\n"
    with client(fresh_chain) as c:
        login(c, "svc")
        token = csrf(c, "/members/import")

        def upload(text: bytes, store: str = "S002") -> object:
            return c.post("/members/import", data={"csrftoken": token, "store": store,
                                                   "reason": "迁移"},
                          files={"file": ("members.csv", text, "text/csv")})

        # A multipart form is CSRF-checked too (the token before the file).
        forged = c.post("/members/import", data={"store": "S002", "reason": "x"},
                        files={"file": ("members.csv", good.encode(), "text/csv")})
        assert forged.status_code == 403
        refused = upload(duplicate.encode())
        assert refused.status_code == 400 and "nothing was imported" not in refused.text
        assert "未导入任何会员" in refused.text and "7300" not in refused.text.split("<h2>")[0]
        assert c.get("/api/v1/members", params={"q": "王芳"}).json()["members"] == []
        assert upload("card\n".encode("utf-16")).status_code == 400
        assert upload(good.encode(), store="S/1").status_code == 400
        done = upload(good.encode())
        assert done.status_code == 200 and "已导入 2 位会员" in done.text
    with client(fresh_chain) as c:
        login(c, "mgr2")
        found = c.get("/api/v1/members", params={"q": "王芳"}).json()["members"]
        assert [(m["balance"], m["home_store"]) for m in found] == [(1200, "S002")]
    with client(fresh_chain) as c:
        login(c, "mgr1")
        assert c.get("/api/v1/members", params={"q": "13700000001"}).json()["members"] == []


def test_the_api_imports_csv_all_or_nothing(fresh_chain) -> None:
    token = on_console_db(fresh_chain.url, accounts.issue_token, "svc").secret
    headers = {"authorization": f"Bearer {token}", "content-type": "text/csv"}
    with client(fresh_chain) as c:
        bad = c.post("/api/v1/members/import?store=S001&reason=x", headers=headers,
                     content=b"card,tier,points\n7400000001,member,-5\n")
        assert bad.status_code == 400 and bad.json()["problems"][0]["line"] == 2
        good = c.post("/api/v1/members/import?store=S001&reason=迁移", headers=headers,
                      content="card,tier,points,name\n7400000001,member,50,钱七\n".encode())
        assert good.json() == {"members": 1, "points": 50}
        found = c.get("/api/v1/members", params={"q": "钱七"}, headers=headers).json()
        assert [m["home_store"] for m in found["members"]] == ["S001"]


def test_hq_moves_a_member_to_another_home_store(fresh_chain) -> None:
    with client(fresh_chain) as c:
        login(c, "svc")
        mid = member_id(c, "7100000001")
        token = csrf(c, f"/members/{mid}")
        assert c.post(f"/members/{mid}/home", data={"csrftoken": token, "store": "S/2",
                                                    "reason": "x"}).status_code == 400
        assert c.post(f"/members/{mid}/home", data={"csrftoken": token, "store": "S002",
                                                    "reason": ""}).status_code == 400
        assert c.post(f"/members/{mid}/home", data={"csrftoken": token, "store": "S002",
                                                    "reason": "搬家"}).status_code == 303
    with client(fresh_chain) as c:
        login(c, "mgr2")
        assert c.get(f"/members/{mid}").status_code == 200
        token = csrf(c, "/members")
        assert c.post(f"/members/{mid}/home", data={"csrftoken": token, "store": "S002",
                                                    "reason": "x"}).status_code == 403
    with client(fresh_chain) as c:
        login(c, "mgr1")
        assert c.get(f"/members/{mid}").status_code == 404


def test_sign_in_never_sends_the_browser_off_site(chain) -> None:
    with client(chain) as c:
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            response = c.post("/login", data={"name": "svc", "password": PASSWORD,
                                              "next": target, "csrftoken": csrf(c)})
            assert response.headers["location"] == "/members", target
            c.post("/logout", data={"csrftoken": csrf(c, "/members")})
