"""What a Chinese user reads on the console's pages: words in zh-CN where English words or raw
codes were shown (the audit log's channel and unnamed actions, a member's HQ operations, a
refused search, a terminal's latest refusal and its command errors, a release's scopes), the
codes still where a program or a search needs them, a till's words escaped."""

from __future__ import annotations

import html
import re

from terminal.hq.collector import _record_status
from terminal.hq.console.i18n import Translator
from terminal.protocol.messages import Status
from terminal.protocol.topics import TerminalTopic
from tests.console.chain import on_console_db
from tests.console.test_http import client, csrf, login, member_id

HOSTILE = "<img src=x onerror=alert(1)>\x1b[2J\u202e"


def cells(page: str, css: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(
        rf'<(?:td|dd) class="[^"]*\b{css}\b[^"]*"[^>]*>(.*?)</(?:td|dd)>', page, re.S)]


def _seed_refusal() -> None:
    _record_status(TerminalTopic("S001", "T09", "status"), Status(
        "online", 1, "1.5.0", 9, 0, {}, rejected={
            "what": "bundle", "reason": "bad_signature", "detail": HOSTILE, "ref": "x",
            "at": "2026-12-06T08:00:00+00:00"}))


def test_a_chinese_user_reads_words_where_codes_were_shown(fresh_chain) -> None:
    on_console_db(fresh_chain.url, _seed_refusal)
    with client(fresh_chain) as c:
        assert c.post("/login", data={"name": "svc", "password": "wrong",
                                      "csrftoken": csrf(c)}).status_code == 401
        login(c, "svc")
        short = c.get("/members", params={"q": "71"})
        assert "请输入姓名、卡号的至少 4 位，或手机号的至少 5 位数字。" in short.text
        assert "type a name" not in short.text
        card = c.get("/members", params={"q": "4111111111111111"}).text
        assert "这是银行卡号，不是会员卡号" in card and "payment card" not in card
        mid = member_id(c, "7100000001")
        token = csrf(c, f"/members/{mid}")
        assert c.post(f"/members/{mid}/op/adjust", data={
            "points": "7", "reason": "补偿", "csrftoken": token}).status_code == 303
        page = c.get(f"/members/{mid}").text
        assert cells(page, "op-detail") == ["积分 +7"]
        assert "points: 7" not in page
    with client(fresh_chain) as c:
        login(c, "aud")
        audit = c.get("/audit").text
        assert set(cells(audit, "via")) == {"网页", "命令行"}
        actions = cells(audit, "action")
        assert "登录失败login.failed" in [a.replace("\n", "").replace(" ", "") for a in actions]
        c.cookies.set("posterm_lang", "en")
        assert set(cells(c.get("/audit").text, "via")) == {"Web", "Command line"}
    with client(fresh_chain) as c:
        login(c, "admin")
        terminal = c.get("/fleet/S001/T09").text
        panel = terminal.split('<h2>最近拒绝</h2>')[1].split("</section>")[0]
        labels = [html.unescape(label) for label in re.findall(r"<dt>(.*?)</dt>", panel)]
        assert labels == ["时间", "详情", "原因代码", "来源", "被拒绝的内容"]
        assert "<dd class=\"small\">规则包</dd>" in panel
        assert "&lt;img src=x onerror=alert(1)&gt;\\x1b[2J\\u202e" in panel
        assert "\u202e" not in terminal and "\x1b" not in terminal
        assert "<code class=\"muted small\">bad_signature</code>" in panel
        assert "签名无效" in panel
        listed = c.get("/fleet", params={"store": "S001"}).text
        row = listed.split('id="term-S001-T09"')[1].split("</tr>")[0]
        assert cells(row, "rejected") == ["规则包：签名无效 <img src=x onerror=alert(1)>"
                                          "\\x1b[2J\\u202e"]
        assert "\u202e" not in listed and "\x1b" not in listed and "<img" not in listed
        sent = c.post("/fleet/S001/T09/cmd/resync", data={"csrftoken": csrf(c, "/fleet")})
        assert sent.status_code == 503
        assert "此后台未连接消息服务器，不能发送指令" in sent.text
        assert "this console has no broker" not in sent.text


def test_a_releases_scopes_and_an_imports_operation_read_as_words() -> None:
    zh, en = Translator("zh-CN"), Translator("en")
    assert [zh.scope(s) for s in ("chain", "store/S001", "<b>\u202e")] == [
        "全连锁", "门店 S001", "<b>\\u202e"]
    assert en.scope("store/S002") == "store S002"
    assert zh.op_detail([("line", 2), ("points", 100), ("store", None), ("tier", "gold")]) == \
        "文件第 2 行；积分 +100；未指定所属门店；等级 金卡会员"
    assert zh.op_detail([("lost_card", "****1122"), ("new_card", "****9977")]) == \
        "挂失卡 ****1122；新卡 ****9977"
    assert zh.op_detail([]) == "—"
    assert [zh.action(a) for a in ("login.failed", "login.throttled", "member.import",
                                   "member.import.refused", "rules.backtest")] == [
        "登录失败", "登录被限制（失败次数过多）", "导入会员", "导入会员（被拒绝）", "规则回测"]


def test_a_releases_rollout_names_scopes_and_refusals_in_words_and_escapes_a_tills() -> None:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from terminal.hq.console.web import PACKAGE
    from terminal.hq.shown_text import shown

    env = Environment(loader=FileSystemLoader(str(PACKAGE.joinpath("templates"))),
                      autoescape=select_autoescape(["html"]))
    env.globals.update(shown=shown)
    release = {"version": 3, "counts": {"applied": 0, "refused": 1, "pending": 0, "newer": 0},
               "terminals": [{"store": "S001", "terminal": "T01", "scope": "store/S001",
                              "state": "refused", "held": 2, "reason": "bad_signature",
                              "detail": HOSTILE}]}
    page = env.get_template("rules/_rollout.html").render(
        t=Translator("zh-CN"), release=release, in_fleet=True)
    assert cells(page, "scope") == ["门店 S001"]
    assert cells(page, "why") == ["签名无效 bad_signature <img src=x onerror=alert(1)>"
                                  "\\x1b[2J\\u202e"]
    assert "<img" not in page and "\u202e" not in page and "\x1b" not in page
