"""The enrollment page over HTTP (Starlette's TestClient on the real app, a real SQLite HQ): IT
issues a code that is shown once, lists codes by state, revokes an unused one; each is audited;
bad input and other roles change nothing; a revoked code no longer enrolls a box."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from terminal.hq.console import audit
from terminal.hq.console.db import ConsoleDb
from terminal.hq.enrollment import codes
from terminal.hq.models import EnrollmentCode
from tests.console.chain import add_user
from tests.console.test_http import client, csrf, login


@pytest.fixture(scope="module")
def it_chain(chain):
    add_user(chain, "itops", "it")
    return chain


def issue(c, store: str, terminal: str, lifetime: str = "24h"):
    return c.post("/enroll", data={"store": store, "terminal": terminal, "lifetime": lifetime,
                                   "csrftoken": csrf(c, "/enroll")})


def shown_code(html: str) -> str:
    return re.search(r'id="issued-code">([A-Z0-9-]+)<', html).group(1)


def rows(chain) -> list[EnrollmentCode]:
    db = ConsoleDb(chain.url)
    try:
        return db.call(lambda: list(EnrollmentCode.select()))
    finally:
        db.close()


def audit_rows(chain, action: str) -> list[dict]:
    db = ConsoleDb(chain.url)
    try:
        return db.call(audit.search, audit.AuditQuery(action=action))
    finally:
        db.close()


def test_it_issues_a_code_shown_once_listed_by_reference_and_audited(it_chain) -> None:
    with client(it_chain) as c:
        login(c, "itops")
        assert 'href="/enroll"' in c.get("/members").text  # in the navigation
        page = issue(c, "S001", "T07", "3d")
        assert page.status_code == 200, page.text
        code = shown_code(page.text)
        assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code)
        assert "S001/T07 的登记码" in page.text and "只在此显示一次" in page.text
        ref = codes.code_hash(code)[:codes.REF_LENGTH]
        listed = c.get("/enroll").text
        assert code not in listed and code.replace("-", "") not in listed
        assert f'id="code-{ref}"' in listed and "待使用" in listed
        assert c.get("/enroll?store=S002").text.count(f"code-{ref}") == 0
    row = next(r for r in rows(it_chain) if r.code_hash == codes.code_hash(code))
    assert (row.store, row.terminal, row.used_us, row.revoked_us) == ("S001", "T07", None, None)
    assert row.expires_us - row.issued_us == 3 * 86_400_000_000
    entry = next(a for a in audit_rows(it_chain, "enroll.issue") if ref in a["detail"])
    assert (entry["actor"], entry["subject"]) == ("itops", "S001/T07")
    assert code not in str(audit_rows(it_chain, "enroll."))


def test_revoking_a_pending_code_stops_it_enrolling_and_is_audited(it_chain) -> None:
    with client(it_chain) as c:
        login(c, "itops")
        code = shown_code(issue(c, "S002", "T09").text)
        ref = codes.code_hash(code)[:codes.REF_LENGTH]
        done = c.post(f"/enroll/{ref}/revoke", data={"csrftoken": csrf(c, "/enroll")})
        assert done.status_code == 303 and done.headers["location"] == f"/enroll?revoked={ref}"
        listed = c.get(done.headers["location"]).text
        assert "已作废" in listed and f"登记码 {ref} 已作废" in listed
        again = c.post(f"/enroll/{ref}/revoke", data={"csrftoken": csrf(c, "/enroll")})
        assert again.status_code == 409 and "is revoked, not pending" in again.text
    row = next(r for r in rows(it_chain) if r.code_hash == codes.code_hash(code))
    assert row.revoked_by == "itops" and row.used_us is None
    assert [a["subject"] for a in audit_rows(it_chain, "enroll.revoke")
            if ref in a["detail"]] == ["S002/T09"]
    db = ConsoleDb(it_chain.url)
    try:
        with pytest.raises(codes.Refused) as refused:
            db.call(codes.check, _request("S002", "T09", code), datetime.now(UTC))
        assert refused.value.reason == "code_unknown" and "revoked" in refused.value.detail
        with pytest.raises(codes.Refused):  # a redemption racing the revocation loses
            db.call(codes.mark_used, row, 1, datetime.now(UTC))
    finally:
        db.close()


def test_a_used_code_is_listed_used_and_cannot_be_revoked(it_chain) -> None:
    with client(it_chain) as c:
        login(c, "itops")
        code = shown_code(issue(c, "S001", "T11").text)
        digest = codes.code_hash(code)
        db = ConsoleDb(it_chain.url)
        try:
            db.call(lambda: codes.mark_used(EnrollmentCode.get_by_id(digest), 0xBEEF,
                                            datetime.now(UTC)))
        finally:
            db.close()
        listed = c.get("/enroll?store=S001").text
        assert "证书序列号 beef" in listed and f'id="revoke-{digest[:12]}"' not in listed
        refused = c.post(f"/enroll/{digest[:12]}/revoke", data={"csrftoken": csrf(c, "/enroll")})
        assert refused.status_code == 409 and "is used, not pending" in refused.text
        unknown = c.post("/enroll/0123456789ab/revoke", data={"csrftoken": csrf(c, "/enroll")})
        assert unknown.status_code == 409 and "no code 0123456789ab" in unknown.text


def test_bad_input_other_roles_and_missing_csrf_change_nothing(it_chain) -> None:
    before = len(rows(it_chain))
    with client(it_chain) as c:
        login(c, "itops")
        for store, terminal, lifetime in (("S/01", "T1", "24h"), ("S001", "", "24h"),
                                          ("S001", "T 1", "24h"), ("S001", "T1", "99d")):
            refused = issue(c, store, terminal, lifetime)
            assert refused.status_code == 400 and 'role="alert"' in refused.text
            assert 'id="issued-code"' not in refused.text
        assert c.post("/enroll", data={"store": "S001", "terminal": "T1"}).status_code == 403
    with client(it_chain) as c:
        login(c, "svc")
        assert c.get("/enroll").status_code == 403
        assert 'href="/enroll"' not in c.get("/members").text
        assert issue(c, "S001", "T1").status_code == 403
    assert len(rows(it_chain)) == before


def test_english_page(it_chain) -> None:
    with client(it_chain) as c:
        login(c, "itops")
        c.cookies.set("posterm_lang", "en")
        page = issue(c, "S003", "T01", "30m")
        assert "Enrollment code for S003/T01" in page.text and "shown only now" in page.text


def _request(store: str, terminal: str, code: str):
    from terminal.protocol.enrollment import EnrollRequest

    return EnrollRequest(store, terminal, code, "-----BEGIN CERTIFICATE REQUEST-----")
