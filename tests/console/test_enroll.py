"""The enrollment page over HTTP (Starlette's TestClient on the real app, a real SQLite HQ): IT
issues a code that is shown once, lists codes by state, revokes an unused one; each is audited;
bad input and other roles change nothing; a revoked code no longer enrolls a box. With HQ's CA
(--revoke-ca), IT cuts a terminal off: its certificates revoked, its grants gone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from starlette.testclient import TestClient

from terminal.hq.broker_acl import BrokerAcl
from terminal.hq.console import audit
from terminal.hq.console.app import build
from terminal.hq.console.db import ConsoleDb
from terminal.hq.enrollment import codes
from terminal.hq.models import EnrollmentCode
from terminal.hq.pki import authority
from terminal.hq.pki.revocation import Revoker
from tests.console.chain import add_user, on_console_db
from tests.console.test_http import client, csrf, login
from tests.hq.test_ca import request
from tests.support.mosquitto import SHIPPED_ACL
from tests.sync.harness import CARD_KEY


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
    return on_console_db(chain.url, lambda: list(EnrollmentCode.select()))


def audit_rows(chain, action: str) -> list[dict]:
    return on_console_db(chain.url, audit.search, audit.AuditQuery(action=action))


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


# --- cutting a terminal off (the console started with --revoke-ca) ---------------------------

def cut_site(chain, tmp_path: Path, pid_file: Path | None = None):
    """HQ's CA with two certificates of S001/T05 (a box enrolled twice) and one of S001/T06, the
    register and ACL files, and a console with that revoker."""
    ca_dir = tmp_path / "ca"
    ca = authority.init(ca_dir)
    for name in ("S001/T05", "S001/T05", "S001/T06"):
        ca.sign(authority.load_request(request(tmp_path, name, name="t").read_bytes(), "t.csr"))
    register = tmp_path / "terminals"
    register.write_text("S001/T05\nS001/T06\n")
    broker = BrokerAcl(register, SHIPPED_ACL, tmp_path / "acl", pid_file)
    revoker = Revoker(ca_dir, tmp_path / "crl.pem", broker, "posterm/v1")
    app = build(chain.url, chain.rules, CARD_KEY, revoker=revoker)
    return TestClient(app, base_url="https://console.test", follow_redirects=False), revoker


def cut(c, store: str, terminal: str, why: str = "stolen from the store"):
    return c.post("/enroll/terminal/revoke", data={"store": store, "terminal": terminal,
                                                   "why": why,
                                                   "csrftoken": csrf(c, "/enroll")})


def test_it_cuts_a_terminal_off_every_certificate_and_its_grants(it_chain, tmp_path) -> None:
    c, revoker = cut_site(it_chain, tmp_path)
    with c:
        login(c, "itops")
        assert 'id="cut-form"' in c.get("/enroll").text
        done = cut(c, "S001", "T05")
        assert done.status_code == 200, done.text
        assert "已撤销 S001/T05 的证书" in done.text and "已移出终端登记表" in done.text
    ca = authority.load(revoker.ca_dir)
    assert len(ca.revoked) == 2 and ca.current("S001/T05") == []
    crl = x509.load_pem_x509_crl(revoker.crl.read_bytes())
    assert all(crl.get_revoked_certificate_by_serial_number(r.serial) for r in ca.revoked)
    assert [t.identity for t in revoker.broker.registered()] == ["S001/T06"]
    assert "user S001/T05" not in revoker.broker.output.read_text()
    entry = next(a for a in audit_rows(it_chain, "terminal.revoke") if a["subject"] == "S001/T05")
    assert entry["actor"] == "itops" and entry["why"] == "stolen from the store"
    assert "register removed" in entry["detail"]


def test_cutting_off_refuses_without_a_reason_an_unknown_terminal_or_a_ca(it_chain,
                                                                          tmp_path) -> None:
    c, revoker = cut_site(it_chain, tmp_path)
    with c:
        login(c, "itops")
        assert cut(c, "S001", "T06", why=" ").status_code == 400
        assert cut(c, "S0/01", "T06").status_code == 400
        unknown = cut(c, "S001", "T99")
        assert unknown.status_code == 409 and "has no valid certificate" in unknown.text
    assert authority.load(revoker.ca_dir).revoked == []
    assert len(revoker.broker.registered()) == 2 and not revoker.crl.exists()
    with client(it_chain) as plain:  # a console without --revoke-ca
        login(plain, "itops")
        assert 'id="cut-form"' not in plain.get("/enroll").text
        assert cut(plain, "S001", "T06").status_code == 503
    with client(it_chain) as other:
        login(other, "svc")
        assert cut(other, "S001", "T06").status_code == 403
