"""Member care in the console over HTTP: the campaigns page (create from a segment, preview
the count, send, each message's delivery after the sender ran against the test gateway), a
member's consent, and who may do what."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from starlette.testclient import TestClient

from terminal.hq.care.channels import SmsGateway
from terminal.hq.care.config import CareConfig, PolicySection, SmsSection
from terminal.hq.care.dispatch import Dispatcher
from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.models import ConsoleAudit
from terminal.hq.console.web import LANG_COOKIE
from tests.console.chain import console_app, on_console_db
from tests.console.test_http import BASE, csrf, login, member_id
from tests.support.care_servers import Gateway, gateway

NO_QUIET = PolicySection(quiet_start="00:00", quiet_end="00:00", retry_seconds=0)


def deliver(url: str, rules, server: Gateway) -> dict:
    """What ``posterm-hq campaign send`` does, here against the test gateway."""
    config = replace(CareConfig(), sms=SmsSection(url=server.url, api_key=Gateway.API_KEY),
                     policy=NO_QUIET)
    db = ConsoleDb(url)
    try:
        run = Dispatcher(db.db, rules, config, {"sms": SmsGateway(config.sms)},
                         lambda: datetime.now(UTC)).run()
    finally:
        db.close()
    return run.as_dict()


def test_a_campaign_from_the_console(fresh_chain) -> None:
    app = console_app(fresh_chain)
    with TestClient(app, base_url=BASE, follow_redirects=False) as svc, \
            TestClient(app, base_url=BASE, follow_redirects=False) as mkt:
        login(svc, "svc")
        login(mkt, "mkt")
        zhang = member_id(svc, "13800000001")
        token = csrf(svc, f"/care/consent/{zhang}")
        wrong = svc.post(f"/care/consent/{zhang}", data={
            "channel": "sms", "answer": "yes", "address": "13800000002", "csrftoken": token})
        assert wrong.status_code == 422 and "registered phone" not in wrong.text
        assert "该号码不是会员登记的手机号（尾号 0001）。" in wrong.text  # in the page's language
        done = svc.post(f"/care/consent/{zhang}", data={
            "channel": "sms", "answer": "yes", "address": "13800000001", "csrftoken": token})
        assert done.status_code == 303
        page = svc.get(done.headers["location"])
        assert "已记录" in page.text and "…0001" in page.text and "13800000001" not in page.text
        assert svc.get("/care").status_code == 200  # service reads campaigns
        assert svc.post("/care/campaigns", data={"csrftoken": csrf(svc, "/care")}
                        ).status_code == 403  # and does not run them

        listing = mkt.get("/care")
        assert listing.status_code == 200 and "会员关怀" in listing.text
        token = csrf(mkt, "/care")
        bad = mkt.post("/care/campaigns", data={"name": "x", "segment": "everyone",
                                                "channel": "sms", "csrftoken": token})
        assert bad.status_code == 422 and "没有“everyone”这个细分。" in bad.text
        created = mkt.post("/care/campaigns", data={
            "name": "老会员唤醒", "segment": "dormant", "days": "1", "channel": "sms",
            "bonus": "20", "csrftoken": token})
        assert created.status_code == 303
        where = created.headers["location"]
        draft = mkt.get(where)
        assert "细分共 6 位会员，其中 1 位同意接收此渠道" in draft.text
        # The message the sample member (the one who agreed) would get, filled in.
        assert "示例会员：张伟" in draft.text
        assert "【会员中心】张伟，好久不见！您的积分余额" in draft.text
        assert "期待您再次光临。已赠送20积分。回复TD退订" in draft.text
        assert "13800000001" not in draft.text
        mkt.cookies.set(LANG_COOKIE, "en")
        english = mkt.get(where)
        mkt.cookies.delete(LANG_COOKIE)
        assert "Sample member: 张伟" in english.text
        assert "【会员中心】张伟，好久不见" in english.text
        # One store's members: S002's two.
        local = mkt.post("/care/campaigns", data={
            "name": "二店唤醒", "segment": "dormant", "days": "1", "channel": "sms",
            "store": "S002", "csrftoken": token})
        assert local.status_code == 303
        local_page = mkt.get(local.headers["location"])
        assert "细分共 2 位会员，其中 0 位同意接收此渠道" in local_page.text
        assert "门店 S002 的会员" in local_page.text
        assert "门店 S002 的会员" in mkt.get("/care").text
        unknown = mkt.post("/care/campaigns", data={
            "name": "x", "segment": "dormant", "channel": "sms", "store": "S404",
            "csrftoken": token})
        assert unknown.status_code == 422
        assert "门店 S404 没有所属会员：请检查门店编号。" in unknown.text
        sent = mkt.post(f"{where}/send", data={"csrftoken": csrf(mkt, where)})
        assert sent.status_code == 303
        again = mkt.post(f"{where}/send", data={"csrftoken": csrf(mkt, where)})
        assert again.status_code == 422 and "此活动已提交发送，不能再次发送。" in again.text
        queued = mkt.get(where)
        assert queued.text.count("待发送") >= 2 and queued.text.count("未同意接收") == 5
        with gateway() as server:
            assert deliver(fresh_chain.url, fresh_chain.rules, server)["sent"] == 1
            assert [body["to"] for body in server.delivered.values()] == ["13800000001"]
            assert "已赠送20积分" in next(iter(server.delivered.values()))["text"]
        fragment = mkt.get(where, headers={"hx-request": "true"})
        assert "<html" not in fragment.text and "已送达" in fragment.text
        assert next(iter(server.delivered)) in fragment.text  # the id the gateway saw
    actions = on_console_db(fresh_chain.url, lambda: [
        row.action for row in ConsoleAudit.select()
        .where(ConsoleAudit.action.startswith("care.")).order_by(ConsoleAudit.id)])
    assert actions == ["care.consent", "care.campaign.create", "care.campaign.create",
                       "care.campaign.queue", "care.campaign.bonus"]


def test_store_managers_and_auditors(chain) -> None:
    app = console_app(chain)
    with TestClient(app, base_url=BASE, follow_redirects=False) as mgr, \
            TestClient(app, base_url=BASE, follow_redirects=False) as aud:
        login(mgr, "mgr1")
        assert mgr.get("/care").status_code == 403
        assert "会员关怀" not in mgr.get("/members").text  # not in the navigation
        login(aud, "aud")
        assert aud.get("/care").status_code == 200
        assert 'id="new-campaign"' not in aud.get("/care").text
        assert aud.get("/care/campaigns/999").status_code == 404
        assert aud.get("/care/consent/x").status_code == 403
