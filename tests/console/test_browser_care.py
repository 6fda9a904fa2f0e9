"""Member care in Chromium: member service records a member's SMS consent on the member's page;
marketing creates a win-back campaign from a segment, previews it, sends it; the real sender
(`posterm-hq campaign send`, its own process) delivers to the test gateway, and the campaign's
page shows each message delivered. Screenshots in var/test-artifacts/screenshots/."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.console.chain import console_app, signed_in
from tests.support.browser import CHROMIUM, browser, serving, shot
from tests.support.care_servers import Gateway, gateway
from tests.support.shared import EXAMPLES

pytestmark = [pytest.mark.slow,  # Chromium
              pytest.mark.skipif(not CHROMIUM.exists(),
                                 reason="Debian's chromium is missing: run scripts/setup.sh")]


def test_campaign_from_consent_to_delivery(fresh_chain, tmp_path) -> None:
    with serving(console_app(fresh_chain, secure_cookies=False)) as url, \
            browser() as chromium, gateway() as server:
        site = (url, chromium)
        context, page = signed_in(site, "svc")
        page.fill("input[name=q]", "张伟")
        page.press("input[name=q]", "Enter")
        page.click("table.grid >> text=张伟")
        page.click("text=营销消息同意")
        page.wait_for_selector("#consent-sms")
        page.fill("#consent-sms input[name=address]", "13800000001")
        page.check("#consent-sms input[value=yes]")
        page.click("#consent-sms button[type=submit]")
        page.wait_for_selector("[role=status]")
        assert "已同意" in page.inner_text("#consent-sms")
        shot(page, "care-consent")
        context.close()

        context, page = signed_in(site, "mkt")
        page.click("nav >> text=会员关怀")
        page.wait_for_selector("#new-campaign")
        page.fill("#new-campaign input[name=name]", "老会员唤醒")
        page.select_option("#new-campaign select[name=segment]", "dormant")
        page.fill("#new-campaign input[name=days]", "1")
        page.fill("#new-campaign input[name=bonus]", "20")
        shot(page, "care-new-campaign")
        page.click("#new-campaign button[type=submit]")
        page.wait_for_selector("#preview")
        assert "细分共 6 位会员，其中 1 位同意接收此渠道" in page.inner_text("#preview")
        # The message itself, before sending: the template filled with the member who agreed.
        text = page.inner_text("#preview-text")
        assert text.startswith("【会员中心】张伟，好久不见！您的积分余额")
        assert text.endswith("期待您再次光临。已赠送20积分。回复TD退订")
        assert "示例会员：张伟" in page.inner_text("#message-preview")
        assert "赠送积分" in page.inner_text("#preview-fields")
        shot(page, "care-campaign-draft")
        page.click("text=English")
        page.wait_for_selector("#message-preview >> text=Sample member: 张伟")
        assert page.inner_text("#preview-text") == text  # the message is the template's
        assert "Bonus points" in page.inner_text("#preview-fields")
        shot(page, "care-campaign-preview-english")
        page.click("text=中文")
        page.wait_for_selector("#message-preview >> text=示例会员")
        page.click("#send-campaign button[type=submit]")
        page.wait_for_selector("#message-list")
        assert page.locator("#message-list tbody tr").count() == 6
        shot(page, "care-campaign-queued")

        config = tmp_path / "care.toml"
        config.write_text(f'[sms]\nurl = "{server.url}"\napi_key = "{Gateway.API_KEY}"\n'
                          '[policy]\nquiet_start = "00:00"\nquiet_end = "00:00"\n',
                          encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "terminal.hq.cli", "campaign", "send",
                               "--db", fresh_chain.url, "--rules", str(EXAMPLES / "rules.toml"),
                               "--care-config", str(config)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert [body["to"] for body in server.delivered.values()] == ["13800000001"]
        # The page polls (htmx, every 5 s): wait for it to show the delivery.
        page.wait_for_selector("#message-list >> text=已送达", timeout=60_000)
        assert next(iter(server.delivered)) in page.inner_text("#message-list")
        shot(page, "care-campaign-delivered")
        page.click("text=English")
        page.wait_for_selector("#message-list >> text=Delivered")
        shot(page, "care-campaign-english")
        page.goto(f"{url}/care")
        page.wait_for_selector("#campaigns >> text=老会员唤醒")
        shot(page, "care-campaigns-english")
        context.close()
