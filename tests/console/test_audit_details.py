"""The audit log's details as an auditor reads them: each action's in the page's language
(zh-CN first), the stored row as it was written, anyone's words made safe."""

from __future__ import annotations

import html
import re

from terminal.hq.console.i18n import Translator
from tests.console.test_http import client, csrf, login, member_id

HOSTILE = "<img src=x onerror=alert(1)>\u202e\x1b[2J"


def details(page: str) -> list[str]:
    """The detail cells of an audit page, as text."""
    return [html.unescape(cell) for cell in re.findall(
        r'<td class="small detail"[^>]*>(.*?)</td>', page, re.S)]


def test_each_actions_details_are_words_in_the_pages_language(fresh_chain) -> None:
    with client(fresh_chain) as c:
        assert c.post("/login", data={"name": HOSTILE, "password": "x",
                                      "csrftoken": csrf(c)}).status_code == 401
        login(c, "svc")
        mid = member_id(c, "7100000001")  # a search by card (and phone) ending 0001
        token = csrf(c, f"/members/{mid}")
        assert c.post(f"/members/{mid}/op/adjust", data={
            "points": "5", "reason": "补偿", "csrftoken": token}).status_code == 303
        assert c.post(f"/members/{mid}/op/adjust", data={
            "points": "0", "reason": "补偿", "csrftoken": token}).status_code == 400
        assert c.get(f"/members/{mid}/statement", params={"before": "3"}).status_code == 200
    with client(fresh_chain) as c:
        login(c, "aud")
        raw = c.get("/api/v1/audit", params={"actor": "svc"}).json()["entries"]
        by_action = {entry["action"]: entry["detail"] for entry in raw}
        # The stored rows keep their writers' words (append-only; the API gives them as is).
        assert by_action["member.search"].startswith("card ending 0001 or phone ending 0001: ")
        assert re.fullmatch(r"op \d+: \{'points': 5\}", by_action["member.adjust"])
        assert by_action["member.adjust.refused"].startswith("[invalid/points] ")
        zh = details(c.get("/audit", params={"actor": "svc"}).text)
        assert any(re.fullmatch(r"查询：卡号尾号 0001 或手机尾号 0001；找到 1 位会员：[0-9a-f-]+",
                                cell) for cell in zh), zh
        assert any(re.fullmatch(r"操作 \d+；积分 \+5", cell) for cell in zh), zh
        assert "积分应为不为 0 的整数（可为负数）。" in zh
        assert "序号 3 之前的明细" in zh
        assert not [cell for cell in zh if re.search(
            r"[{}']|\bfound\b|\bop \d|\bbefore\b|ending", cell)], zh
        failed = c.get("/audit", params={"action": "login.failed"}).text
        assert "来自 testclient" in details(failed)
        # The name typed at the sign-in, shown as text with its invisible characters escaped.
        assert "&lt;img src=x onerror=alert(1)&gt;\\u202e\\x1b[2J" in failed
        assert "<img" not in failed and "\u202e" not in failed and "\x1b" not in failed
        c.cookies.set("posterm_lang", "en")
        en = details(c.get("/audit", params={"actor": "svc"}).text)
        assert any(re.fullmatch(r"operation \d+; points \+5", cell) for cell in en), en
        assert "Points: a whole number other than 0 (negative to deduct)." in en
        assert "entries before No. 3" in en
    with client(fresh_chain) as c:  # reading the log changed none of it
        login(c, "aud")
        again = c.get("/api/v1/audit", params={"actor": "svc"}).json()["entries"]
        assert again == raw


# Every writer's detail, as it writes it, and what an auditor reads in zh-CN.
WRITTEN = [
    ("login.throttled", "from 10.0.0.7", "来自 10.0.0.7"),
    ("audit.search", "actor='svc' action='member.' before=None",
     "操作人“svc”；动作以“member.”开头"),
    ("audit.search", "actor='' action='' before=None", "全部记录"),
    ("member.search", "name 张: 3 found a1,b2,c3",
     "查询：姓名以“张”开头；找到 3 位会员：a1, b2, c3"),
    ("member.search", "name x: 9 found : 0 found ", "查询：姓名以“x: 9 found ”开头；找到 0 位会员"),
    ("member.view", "care campaign 3: message preview", "关怀活动 3 的消息预览"),
    ("member.statement", "before None", "最新一页"),
    ("member.import", "3 members, 300 points, ops 7-9",
     "导入 3 位会员，期初积分共 300（操作 7–9）"),
    ("member.move", "home store - -> S002", "所属门店 — → S002"),
    ("member.list", "chain 2026-11-06..2026-12-06 csv: 20 of 25 members",
     "全连锁，2026-11-06 至 2026-12-06，导出 CSV：20 位会员（名单共 25 位）"),
    ("member.freeze", "op 8: {}", "操作 8"),
    ("member.edit", "op 9: {'fields': ['birthday', 'name']}", "操作 9；修改了生日、姓名"),
    ("member.replace", "op 10: {'lost_card': '****1234', 'lost_card_hash': 'ab12', "
     "'new_card': '****5678'}", "操作 10；挂失卡 ****1234；新卡 ****5678"),
    ("member.merge", "op 11: {'debt': 0, 'merged_card': '****0002', 'merged_card_hash': 'x', "
     "'merged_member': 'abc', 'points': 30}", "操作 11；欠分 0；被合并的卡 ****0002；"
     "被合并的会员 abc；积分 +30"),
    ("member.erase", "op 12: {'merged_members': 1}", "操作 12；一并删除 1 个已合并会员的个人信息"),
    ("member.freeze.refused", "[wrong_state/card] the card is frozen already",
     "该卡当前的状态不允许此操作：已冻结的卡不能再冻结，未冻结的卡不能解冻。"),
    ("enroll.issue", "ref 0123456789ab, valid until 2026-12-07T17:00:00+00:00",
     "登记码 0123456789ab，有效期至 2026-12-07 17:00 +0000"),
    ("enroll.revoke", "ref 0123456789ab", "登记码 0123456789ab"),
    ("terminal.revoke", "serials 1a, 2b; register removed; broker 1234",
     "吊销证书 1a, 2b；登记表：已移除；消息服务器已重新加载（进程 1234）"),
    ("terminal.revoke", "serials 1a; register no register; broker not reloaded",
     "吊销证书 1a；登记表：未配置登记表；消息服务器未重新加载"),
    ("terminal.command", "resync 1b4e28ba-2fa1-11d2-883f-0016d3cca427",
     "重新同步（指令编号 1b4e28ba-2fa1-11d2-883f-0016d3cca427）"),
    ("rules.backtest", "30 days", "回测最近 30 天"),
    ("rules.policy", "off", "全连锁推送由一名管理员批准即可"),
    ("rules.stage", "store/S001 sha256 0123456789abcdef",
     "范围 门店 S001，内容摘要 0123456789abcdef"),
    ("rules.rollback", "chain sha256 0123456789abcdef from v3",
     "范围 全连锁，内容摘要 0123456789abcdef；内容来自 v3"),
    ("rules.push", "store/S002 sha256 0123456789abcdef key hq-1",
     "范围 门店 S002，内容摘要 0123456789abcdef，签名密钥 hq-1"),
    ("user.add", "role store_manager, stores S001,S002", "角色：店长；门店 S001,S002"),
    ("token.issue", "for li", "用户 li 的令牌"),
    ("token.revoke", "of li", "用户 li 的令牌"),
    ("care.campaign.create", "dormant days=90 email bonus=50 store=S001",
     "沉睡唤醒；90 天；邮件；每人赠送 50 积分；门店 S001"),
    ("care.campaign.create", "birthday days=None sms bonus=0", "生日祝福；默认天数；短信"),
    ("care.campaign.queue", "members 3, pending 2, skipped 1",
     "细分共 3 位会员；待发送 2；未发送 1"),
    ("care.campaign.bonus", "bonus of 50 points to 2 members; 1 member refused (merged, erased, "
     "frozen or retired since queueing)",
     "向 2 位会员各赠送 50 积分；1 位会员在提交后已合并、注销、冻结或换卡，未发放"),
    ("care.consent", "sms opt-out (reply)", "短信：退订（来源：短信回复退订）"),
]


def test_every_writers_detail_reads_as_chinese_words() -> None:
    zh, en = Translator("zh-CN"), Translator("en")
    for action, written, said in WRITTEN:
        assert zh.detail(action, written) == said, action
        assert en.detail(action, written) not in ("", said), action
    # A row no reader knows (an older writer's, another action's), shown as stored, made safe.
    for action, written in (("member.freeze.refused", "the card is frozen already"),
                            ("tea.time", "<b>\u202e\x1b</b>"),
                            ("member.move", "home store\u202e S001"),
                            ("login.failed", "from " + "\u202e" * 3000)):
        assert "\u202e" not in zh.detail(action, written)
    assert zh.detail("tea.time", "<b>\u202e\x1b</b>") == "<b>\\u202e\\x1b</b>"
    assert zh.detail("member.adjust", "op 7: {'points': (1,) * 9**9}") == \
        "操作 7；{'points': (1,) * 9**9}"
    assert zh.detail("login", "") == ""


BAD_IMPORT = (
    "card,tier,points,name,phone,birthday,expires,store\n"
    "7300000001,member,12x,王芳,,,,\n"                          # line 2: points
    "7300000002,<b>铂金\u202e</b>,5,赵六,,,,\n"                  # line 3: tier, hostile
    "7300000003,member,5,,137,,,\n"                             # line 4: phone
    "7300000004,member,5,,,1990/05/01,,\n"                      # line 5: birthday
    "7300000005,member,5,,,,2020-01-01,\n"                      # line 6: expires
    "7300000006,member,5,,,,,S/1\n"                             # line 7: store
    "4111111111111111,member,5,,,,,\n"                          # line 8: a payment card
    "7100000001,member,5,,,,,\n"                                # line 9: already a member
    "7300000009,member,5,,,,,\n"
    "7300000009,member,5,,,,,\n"                                # line 11: twice in the file
    "7300000012,member\n"                                       # line 12: columns
)


def import_problems(page: str) -> list[tuple[str, str, str]]:
    rows = re.findall(r'<tr><td class="num">(.*?)</td><td class="column">(.*?)</td>'
                      r'<td class="problem">(.*?)</td></tr>', page, re.S)
    return [(line, html.unescape(column), html.unescape(problem))
            for line, column, problem in rows]


def test_a_bad_member_import_says_each_line_and_column_in_chinese_and_changes_nothing(
        fresh_chain) -> None:
    with client(fresh_chain) as c:
        login(c, "svc")
        token = csrf(c, "/members/import")

        def upload(text: bytes) -> str:
            response = c.post("/members/import", data={"csrftoken": token, "store": "S002",
                                                       "reason": "迁移"},
                              files={"file": ("members.csv", text, "text/csv")})
            assert response.status_code == 400
            return response.text

        page = upload(BAD_IMPORT.encode())
        assert import_problems(page) == [
            ("2", "积分 (points)", "积分“12x”应为 0 到 10000000 之间的整数。"),
            ("3", "等级 (tier)", "等级“<b>铂金\\u202e</b>”不存在，应为以下之一："
                                 "member, silver, gold, diamond。"),
            ("4", "手机 (phone)", "手机号“137”应为 5 到 15 位数字。"),
            ("5", "生日 (birthday)", "生日“1990/05/01”不是日期，应为 年-月-日（如 1990-05-01）。"),
            ("6", "积分到期日 (expires)", "到期日 2020-01-01 应晚于今天。"),
            ("7", "所属门店 (store)", "门店编号“S/1”无效（如 S001：字母、数字、- 或 _）。"),
            ("8", "卡号 (card)", "这是银行卡号，不是会员卡号（银行卡号不会被保存）。"),
            ("9", "卡号 (card)", "重复：尾号 0001 的卡在总部已是会员。"),
            ("11", "卡号 (card)", "重复：尾号 0009 的卡号在第 10 行也出现了。"),
            ("12", "整行", "应有 8 列，与首行列名一一对应。"),
        ]
        assert "发现 10 个问题，未导入任何会员" in page
        assert "<b>" not in page and "\u202e" not in page and "4111" not in page
        assert not re.search(r"\b(is not|duplicate|expected|line)\b", page.split("<h1>")[1])
        assert "文件不是 UTF-8 编码的文本" in upload("card,tier,points\n".encode("utf-16"))
        assert import_problems(upload(b"card,tier,colour\n"))[0][:2] == ("1", "表头")
        assert import_problems(upload(b"card,tier,points\n")) == [
            ("1", "文件", "文件中没有会员。")]
        # Nothing of the bad files was imported: not one of its good rows.
        for card in ("7300000001", "7300000009"):
            assert c.get("/api/v1/members", params={"q": card}).json()["members"] == []
        c.cookies.set("posterm_lang", "en")
        english = import_problems(upload(BAD_IMPORT.encode()))
        assert english[0] == ("2", "points", "Points “12x” must be a whole number from 0 to "
                                             "10000000.")
        assert english[-1] == ("12", "whole row",
                               "8 columns expected, one for each column of the header.")
    with client(fresh_chain) as c:
        login(c, "aud")
        assert [e["action"] for e in c.get("/api/v1/audit", params={
            "action": "member.import"}).json()["entries"]] == ["member.import.refused"] * 4
        refused = details(c.get("/audit", params={"action": "member.import.refused"}).text)
        assert refused[-1].startswith("发现 10 个问题，未导入任何会员： 第 2 行（积分 (points)）、"
                                      "第 3 行（等级 (tier)）"), refused
