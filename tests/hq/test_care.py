"""Member care (issue 13): segments, consent, quiet hours, the frequency cap, erasure, and whole
campaigns against a real HTTP gateway and SMTP server on loopback (tests/support/care_servers).

The chain and HQ's clock are tests/hq/care_chain's: 2026-12-10 11:00 in Shanghai.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from peewee import Database

from terminal.hq import migrations, rollup
from terminal.hq.care import campaigns, consent, segments
from terminal.hq.care import service as care_service
from terminal.hq.care.channels import SmsGateway, SmtpMail
from terminal.hq.care.config import CareConfig, ConfigError, EmailSection, SmsSection, parse
from terminal.hq.care.consent import ConsentError
from terminal.hq.care.dispatch import ALL_MODELS, Dispatcher, quiet_until
from terminal.hq.care.models import CareConsent, CareContact, CareMessage, CareState
from terminal.hq.care.service import Care
from terminal.hq.console.models import ConsoleAudit
from terminal.hq.console.roles import Principal
from terminal.hq.database import open_hq_database
from terminal.hq.member_ops.publish import pending
from terminal.hq.member_ops.service import MemberOps
from terminal.hq.models import MemberHome, MemberOp
from terminal.loyalty.clock import from_micros, to_micros
from terminal.loyalty.store.binding import bound, bound_call
from terminal.loyalty.store.models import Member
from tests.hq.care_chain import C1, C2, C3, C4, NOW, PEOPLE, build_care_chain, clock, rules
from tests.hq.test_analytics import KEY, RULES
from tests.support.care_servers import Gateway, gateway, smtp_server

SHANGHAI = ZoneInfo("Asia/Shanghai")
ANN = Principal("ann", "marketing")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("care")
    build_care_chain(directory)
    return directory / "hq.db"


@pytest.fixture
def db(built: Path, tmp_path: Path) -> Iterator[Database]:
    """A copy of the built chain's database for this test to change."""
    copy = tmp_path / "hq.db"
    copy.write_bytes(built.read_bytes())
    handle = open_hq_database(str(copy))
    yield handle
    handle.close()


def ids(db: Database) -> dict[str, str]:
    """card -> member id."""
    return bound_call(db, lambda: {card: Member.get(Member.card_last4 == card[-4:]).id
                                   for card in PEOPLE})


def select(db: Database, name: str, days: int | None = None, at: datetime = NOW,
           store: str | None = None) -> dict:
    rollup.catch_up(db, rules().zone)  # the dormant segment reads the roll-ups, as Care does
    found = bound_call(db, segments.select, rules(), name, days, at, store)
    names = {member: PEOPLE[card][0] for card, member in ids(db).items()}
    return {names[target.member]: target.fields for target in found}


def care(db: Database, **kwargs) -> Care:
    return Care(db, rules(), KEY, clock, **kwargs)


def opt_in_all(service: Care, db: Database, channel: str = "sms") -> None:
    for card, member in ids(db).items():
        address = PEOPLE[card][1] if channel == "sms" else f"m{card[-4:]}@example.cn"
        service.consent(ANN, member, channel, True, address)


# -- segments --------------------------------------------------------------------------------


def test_birthday_segment_names_the_rules_multiplier(db: Database) -> None:
    found = select(db, "birthday")
    assert sorted(found) == ["张伟", "王芳", "赵六"]  # 12-12, today, 12-11; not 29 February
    assert found["王芳"]["date"] == "2026-12-10"
    assert found["张伟"] == {**found["张伟"], "date": "2026-12-12", "multiplier": "2",
                            "window": "当天"}
    assert sorted(select(db, "birthday", days=2)) == ["王芳", "赵六"]  # 10th and 11th only
    # A day boundary in Shanghai: at 16:00 UTC on the 11th it is already the 12th there.
    late = datetime(2026, 12, 11, 16, 0, tzinfo=UTC)
    assert sorted(select(db, "birthday", days=1, at=late)) == ["张伟"]


def test_29_february_is_the_28th_in_a_common_year() -> None:
    leap = date(1992, 2, 29)
    assert segments._anniversary(leap, date(2027, 2, 20)) == date(2027, 2, 28)
    assert segments._anniversary(leap, date(2028, 2, 20)) == date(2028, 2, 29)
    assert segments._anniversary(leap, date(2027, 3, 1)) == date(2028, 2, 29)


def test_expiring_next_tier_and_dormant_segments(db: Database) -> None:
    expiring = select(db, "expiring", 30)
    assert sorted(expiring) == ["张伟", "赵六"]  # earned 2025-12-20, 12 months
    assert expiring["张伟"]["date"] == "2026-12-20"
    assert int(expiring["张伟"]["points"]) > 0
    assert select(db, "expiring", 9) == {}  # the 20th is 10 days away
    near = select(db, "next_tier")
    assert list(near) == ["李娜"]
    assert near["李娜"]["tier"] == "silver" and near["李娜"]["spend_yuan"] == "50.00"
    dormant = select(db, "dormant")
    assert sorted(dormant) == ["张伟", "赵六"]
    assert sorted(select(db, "dormant", 10)) == ["张伟", "李娜", "赵六"]  # 王芳: 9 days ago
    with pytest.raises(segments.SegmentError):
        select(db, "dormant", 0)
    with pytest.raises(segments.SegmentError):
        select(db, "nobody")


def test_a_store_s_members_are_those_at_home_there(db: Database) -> None:
    """All four registered at S001; HQ moves 李娜 to S002 (her home store from then on)."""
    with bound(db, ALL_MODELS):
        MemberHome.update(store="S002").where(MemberHome.member == ids(db)[C2]).execute()
    assert sorted(select(db, "dormant", 10)) == ["张伟", "李娜", "赵六"]
    assert sorted(select(db, "dormant", 10, store="S001")) == ["张伟", "赵六"]
    assert list(select(db, "dormant", 10, store="S002")) == ["李娜"]
    assert list(select(db, "next_tier", store="S002")) == ["李娜"]
    assert select(db, "next_tier", store="S001") == {}
    with pytest.raises(segments.SegmentError, match="no member is at home in store 'S009'"):
        select(db, "dormant", 10, store="S009")
    assert bound_call(db, segments.stores) == ["S001", "S002"]
    # A campaign kept to S002 reaches 李娜 only, and says so.
    service = care(db)
    opt_in_all(service, db)
    campaign = service.create(ANN, "二店唤醒", "dormant", 10, "sms", store="S002")
    assert service.status(campaign)["params"] == {"days": 10, "store": "S002"}
    preview = service.preview(campaign)
    assert (preview["segment"], preview["reachable"], preview["sample"]["name"]) == (
        1, 1, "李娜")
    assert service.queue(ANN, campaign)["members"] == 1
    assert list(messages(db)) == ["李娜"]
    from terminal.hq.care.campaigns import CampaignError
    with pytest.raises(CampaignError, match="S009"):
        service.create(ANN, "x", "dormant", 10, "sms", store="S009")


def test_the_preview_fills_the_configured_template_and_audits_the_sample(db: Database) -> None:
    config = replace(CareConfig(), templates=replace(
        CareConfig().templates, brand="好邻居",
        expiring="【${brand}】${name}：${points}分${date}到期。${bonus}"))
    service = care(db, config=config)
    campaign = service.create(ANN, "到期提醒", "expiring", 30, "email", bonus=50)
    preview = service.preview(campaign, ANN)
    sample = preview["sample"]
    assert (preview["segment"], preview["reachable"]) == (2, 0)  # 张伟, 赵六; no one agreed
    assert not sample["reachable"]  # so the first of the segment, by member id
    fields = sample["fields"]
    assert fields["date"] == "2026-12-20" and fields["bonus"] == "50"
    assert sample["text"] == (f"【好邻居】{fields['name']}：{fields['points']}分2026-12-20到期。"
                              "已赠送50积分。")
    assert sample["subject"] == "【好邻居】会员关怀"
    with bound(db, (*ALL_MODELS, ConsoleAudit)):
        viewed = [(row.actor, row.action, row.subject) for row in ConsoleAudit.select()
                  .where(ConsoleAudit.action == "member.view")]
    assert viewed == [("ann", "member.view", sample["member"])]
    empty = service.create(ANN, "无人", "expiring", 1, "sms")
    assert service.preview(empty)["sample"] is None


def test_an_erased_member_is_in_no_segment(db: Database) -> None:
    MemberOps(db, rules(), KEY, clock).erase(C4, actor="ann", reason="erasure request")
    assert "赵六" not in select(db, "birthday")
    assert sorted(select(db, "expiring", 30)) == ["张伟"]


# -- consent, quiet hours, the cap -----------------------------------------------------------


def test_consent_needs_the_address_and_an_opt_out_drops_it(db: Database) -> None:
    service, member = care(db), ids(db)[C1]
    with pytest.raises(ConsentError, match="needs the mobile number"):
        service.consent(ANN, member, "sms", True)
    with pytest.raises(ConsentError, match="not the member's registered phone"):
        service.consent(ANN, member, "sms", True, "13999999999")
    with pytest.raises(ConsentError, match="email address"):
        service.consent(ANN, member, "email", True, "not-an-address")
    assert service.consent_state(member)["sms"]["granted"] is False
    service.consent(ANN, member, "sms", True, "13800000001")
    service.consent(ANN, member, "email", True, "zw@example.cn", source="cli")
    assert service.consent_state(member) == {"sms": {"granted": True, "hint": "…0001"},
                                             "email": {"granted": True, "hint": "z…@example.cn"}}
    service.consent(ANN, member, "sms", False)
    with bound(db, ALL_MODELS):
        contact = CareContact.get_by_id(member)
        assert contact.phone is None and contact.email == "zw@example.cn"
        assert [(r.channel, r.granted, r.source) for r in CareConsent.select()
                .order_by(CareConsent.id)] == [("sms", True, "console"), ("email", True, "cli"),
                                               ("sms", False, "console")]
    with bound(db, (*ALL_MODELS, ConsoleAudit)):
        details = [row.detail for row in ConsoleAudit.select().where(
            ConsoleAudit.action == "care.consent")]
    assert details == ["sms opt-in (console)", "email opt-in (cli)", "sms opt-out (console)"]


def test_quiet_hours_in_shanghai() -> None:
    start, end = time(21), time(9)
    at = lambda h, m=0: datetime(2026, 12, 10, h, m, tzinfo=UTC)  # noqa: E731
    assert quiet_until(at(12, 59), start, end, SHANGHAI) is None  # 20:59
    assert quiet_until(at(13), start, end, SHANGHAI) == datetime(2026, 12, 11, 9,
                                                                 tzinfo=SHANGHAI)  # 21:00
    assert quiet_until(at(0, 59), start, end, SHANGHAI) == datetime(2026, 12, 10, 9,
                                                                    tzinfo=SHANGHAI)
    assert quiet_until(at(1), start, end, SHANGHAI) is None  # 09:00
    assert quiet_until(at(5), time(12), time(14), SHANGHAI) is not None  # 13:00, same-day span
    assert quiet_until(at(13), time(0), time(0), SHANGHAI) is None  # none


def test_config_is_strict() -> None:
    assert parse({}, "care.toml") == CareConfig()
    with pytest.raises(ConfigError, match="unknown section"):
        parse({"smss": {}}, "care.toml")
    with pytest.raises(ConfigError, match="unknown key 'urll'"):
        parse({"sms": {"urll": "x"}}, "care.toml")
    with pytest.raises(ConfigError, match=r"unknown field \$\{phone\}"):
        parse({"templates": {"birthday": "${phone}"}}, "care.toml")
    with pytest.raises(ConfigError, match="quiet_start"):
        parse({"policy": {"quiet_start": "25:00"}}, "care.toml")


# -- whole campaigns against the test gateway and SMTP server ----------------------------------


def sms_config(server: Gateway, **policy) -> CareConfig:
    base = CareConfig()
    return replace(base, sms=SmsSection(url=server.url, api_key=Gateway.API_KEY),
                   policy=replace(base.policy, retry_seconds=0, **policy))


def dispatcher(db: Database, config: CareConfig, at=clock) -> Dispatcher:
    channels = {}
    if config.sms.url:
        channels["sms"] = SmsGateway(config.sms)
    if config.email.host:
        channels["email"] = SmtpMail(config.email)
    return Dispatcher(db, rules(), config, channels, at)


def messages(db: Database) -> dict[str, CareMessage]:
    names = {member: PEOPLE[card][0] for card, member in ids(db).items()}
    with bound(db, ALL_MODELS):
        return {names[row.member]: row for row in CareMessage.select()}


def test_sms_birthday_campaign_end_to_end(db: Database,
                                          caplog: pytest.LogCaptureFixture) -> None:
    service = care(db)
    opt_in_all(service, db)
    service.consent(ANN, ids(db)[C4], "sms", False)  # 赵六 says no
    campaign = service.create(ANN, "十二月生日", "birthday", 7, "sms")
    preview = service.preview(campaign)
    assert {key: preview[key] for key in ("campaign", "segment", "reachable")} == {
        "campaign": campaign, "segment": 3, "reachable": 2}
    # The message the first reachable member of the segment (by id) would get, rendered.
    sample = preview["sample"]
    assert sample["reachable"] and sample["name"] in ("张伟", "王芳")
    assert sample["text"] == (f"【会员中心】{sample['name']}，生日快乐！生日当天内消费享2倍积分。"
                              "回复TD退订")
    assert service.queue(ANN, campaign) == {"members": 3, "pending": 2, "skipped": 1,
                                            "bonus_ops": 0}
    caplog.set_level(logging.INFO)  # what HQ logs (peewee's DEBUG log shows SQL parameters)
    caplog.set_level(logging.DEBUG, logger="terminal")
    with gateway() as server:
        server.fail(1)  # the first request: 503, tried again with the same id
        run = dispatcher(db, sms_config(server)).run()
        assert run.sent == 2 and run.retrying == 1 and run.failed == 0
        rows = messages(db)
        assert {name: row.state for name, row in rows.items()} == {
            "张伟": "sent", "王芳": "sent", "赵六": "skipped"}
        assert rows["赵六"].why == "no_consent"
        assert len(server.requests) == 3
        assert {r.key for r in server.requests} == {rows["张伟"].id, rows["王芳"].id}
        assert set(server.delivered) == {rows["张伟"].id, rows["王芳"].id}
        assert all(r.authorization == f"Bearer {Gateway.API_KEY}" for r in server.requests)
        text = server.delivered[rows["张伟"].id]
        assert text["to"] == "13800000001" and text["id"] == rows["张伟"].id
        assert "张伟" in text["text"] and "2倍积分" in text["text"] and "生日" in text["text"]
        assert rows["张伟"].fields == "{}"  # the name is not kept once sent
        again = dispatcher(db, sms_config(server)).run()  # nothing due: nothing sent again
        assert again.sent == 0 and len(server.requests) == 3
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert rows["张伟"].id in logged
    for name, phone, _ in PEOPLE.values():
        assert phone not in logged and name not in logged


def test_email_expiring_campaign_with_a_bonus(db: Database,
                                              caplog: pytest.LogCaptureFixture) -> None:
    service = care(db)
    opt_in_all(service, db, "email")
    before = bound_call(db, lambda: {m.id: m.balance for m in Member.select()})
    campaign = service.create(ANN, "积分到期提醒", "expiring", 30, "email", bonus=50)
    counts = service.queue(ANN, campaign)
    assert counts == {"members": 2, "pending": 2, "bonus_ops": 2}
    member_ids = ids(db)
    with bound(db, (*ALL_MODELS, ConsoleAudit)):
        ops = list(MemberOp.select().where(MemberOp.kind == "adjust"))
        assert sorted(op.member for op in ops) == sorted([member_ids[C1], member_ids[C4]])
        assert all(op.actor == "ann" and "campaign" in op.reason for op in ops)
        assert ConsoleAudit.get(ConsoleAudit.action == "care.campaign.queue").actor == "ann"
    after = bound_call(db, lambda: {m.id: m.balance for m in Member.select()})
    assert after[member_ids[C1]] == before[member_ids[C1]] + 50
    # The bonus reaches every till: the changed cards wait for the member-state publisher.
    waiting = bound_call(db, pending)
    assert {state.tier for state in waiting} and len(waiting) >= 2
    caplog.set_level(logging.INFO)  # what HQ logs (peewee's DEBUG log shows SQL parameters)
    caplog.set_level(logging.DEBUG, logger="terminal")
    with smtp_server() as (port, mailbox):
        config = replace(CareConfig(), email=EmailSection(host="127.0.0.1", port=port,
                                                          starttls=False,
                                                          sender="care@example.cn"))
        run = dispatcher(db, config).run()
        assert run.sent == 2
        rows = messages(db)
        by_id = {mail["Message-ID"]: mail for mail in mailbox.messages}
        mail = by_id[f"<{rows['张伟'].id}@care.posterm>"]
        assert mail["To"] == "m0001@example.cn"
        body = mail.get_payload(decode=True).decode("utf-8")
        assert "张伟" in body and "2026-12-20" in body and "已赠送50积分" in body
    ours = " ".join(r.getMessage() for r in caplog.records if r.name != "mail.log")
    assert rows["张伟"].id in ours  # (mail.log is the test's SMTP server)
    for card, (name, _, _) in PEOPLE.items():
        assert f"m{card[-4:]}@example.cn" not in ours and name not in ours


def test_a_bonus_is_granted_in_chunks_exactly_once_and_a_cut_off_grant_goes_on(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A campaign's bonus is granted a chunk of members to a transaction (never the whole
    segment's locks in one), each message recording its member's operation: cut off after the
    first chunk, the granted member's message may go out and the others wait; a member merged
    away meanwhile gets no bonus (and no message); run again, the grant goes on and no member
    gets the bonus twice."""
    service = care(db)
    opt_in_all(service, db)
    before = bound_call(db, lambda: {m.id: m.balance for m in Member.select()})
    campaign = service.create(ANN, "生日", "birthday", 7, "sms", bonus=30)
    monkeypatch.setattr(campaigns, "GRANT_CHUNK", 1)
    assert service.ops is not None
    adjust, calls = campaigns.adjust_many, []

    def cut_after_one(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return adjust(*args, **kwargs)

    monkeypatch.setattr(campaigns, "adjust_many", cut_after_one)
    with pytest.raises(RuntimeError, match="power cut"):
        service.queue(ANN, campaign)
    monkeypatch.setattr(campaigns, "adjust_many", adjust)
    rows = messages(db)
    granted = [name for name, row in rows.items() if row.bonus_op]
    waiting = [name for name, row in rows.items() if row.bonus_op is None]
    assert len(granted) == 1 and len(waiting) == 2  # the first chunk's commit stands
    # The audit log holds what committed: the first chunk's row, in its own transaction.
    assert bonus_audit(db) == ["bonus of 30 points to 1 member"]
    with gateway() as server:
        run = dispatcher(db, sms_config(server)).run()
        assert run.sent == 1 and len(server.delivered) == 1  # only the granted member's
    cards = {PEOPLE[card][0]: card for card in PEOPLE}
    service.ops.merge(C2, cards[waiting[0]], actor="ann", reason="one person, two cards")
    assert service.grant(ANN, campaign) == 2 and service.grant(ANN, campaign) == 0
    rows = messages(db)
    assert (rows[waiting[0]].state, rows[waiting[0]].why) == ("skipped", "bonus_refused")
    assert rows[waiting[0]].bonus_op == campaigns.NOT_GRANTED
    with bound(db, (*ALL_MODELS, ConsoleAudit)):
        bonuses = list(MemberOp.select().where((MemberOp.kind == "adjust")
                                               & MemberOp.reason.contains("campaign")))
        assert sorted(op.member for op in bonuses) == sorted(
            rows[name].member for name in (granted[0], waiting[1]))  # once each
    # A row a chunk: the cut-off run's, then the resumption's (the merged member refused).
    assert bonus_audit(db) == [
        "bonus of 30 points to 1 member",
        "bonus of 30 points to 0 members; 1 member refused (merged, erased, frozen or retired "
        "since queueing)",
        "bonus of 30 points to 1 member"]
    after = bound_call(db, lambda: {m.id: m.balance for m in Member.select()})
    for name in (granted[0], waiting[1]):
        assert after[rows[name].member] == before[rows[name].member] + 30
    with gateway() as server:
        run = dispatcher(db, sms_config(server)).run()
        assert run.sent == 1 and len(server.delivered) == 1  # the rest, the merged one not


def bonus_audit(db: Database) -> list[str]:
    """The details of the ``care.campaign.bonus`` audit rows, oldest first."""
    with bound(db, (ConsoleAudit,)):
        return [row.detail for row in ConsoleAudit.select().where(
            ConsoleAudit.action == "care.campaign.bonus").order_by(ConsoleAudit.id)]


def test_a_grant_without_bonus_waiting_takes_no_write_transaction(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """``campaign send ID`` runs :meth:`Care.grant` on a queued campaign: with no bonus, or
    every member granted, that is a read alone (no write transaction, on PostgreSQL no
    chain-wide lock), and no audit row."""
    service = care(db)
    opt_in_all(service, db)
    plain = service.create(ANN, "生日", "birthday", 7, "sms")
    service.queue(ANN, plain)
    generous = service.create(ANN, "生日礼", "birthday", 7, "sms", bonus=5)
    assert service.queue(ANN, generous)["bonus_ops"] == 3

    def no_write(_db: Database) -> None:
        raise AssertionError("a write transaction was taken")

    monkeypatch.setattr(care_service, "writing", no_write)
    assert service.grant(ANN, plain) == 0 and service.grant(ANN, generous) == 0
    assert bonus_audit(db) == ["bonus of 5 points to 3 members"]


def test_opt_out_and_erasure_stop_queued_messages(db: Database) -> None:
    service = care(db)
    opt_in_all(service, db)
    campaign = service.create(ANN, "唤醒", "dormant", 90, "sms")
    service.queue(ANN, campaign)
    service.consent(ANN, ids(db)[C1], "sms", False)  # after queueing: honoured at once
    MemberOps(db, rules(), KEY, clock).erase(C4, actor="ann", reason="erasure request")
    with gateway() as server:
        run = dispatcher(db, sms_config(server)).run()
        assert server.requests == []
    assert run.sent == 0 and run.skipped == {"opted_out": 1}
    rows = messages(db)
    assert (rows["张伟"].state, rows["张伟"].why) == ("skipped", "opted_out")
    erased = bound_call(db, lambda: CareMessage.get(CareMessage.member == ids(db)[C4]))
    assert (erased.state, erased.why, erased.fields) == ("skipped", "erased", "{}")
    assert bound_call(db, lambda: CareContact.get_or_none(
        CareContact.member == ids(db)[C4])) is None


def test_a_td_reply_to_the_gateway_opts_the_member_out(db: Database) -> None:
    """A member texting 回复TD退订's TD back (from +86 and its number, any case) is opted out of
    SMS before the sender sends anything, its number dropped, recorded as a reply; a reply of
    other words changes nothing; a reply read again, or one older than a yes given since,
    changes nothing; a gateway whose replies cannot be read leaves them for the next run."""
    service = care(db)
    opt_in_all(service, db)
    campaign = service.create(ANN, "唤醒", "dormant", 90, "sms")
    service.queue(ANN, campaign)
    member = ids(db)
    later = to_micros(NOW) + 60_000_000  # a minute after the yes each gave
    with gateway() as server:
        config = replace(sms_config(server),
                         sms=replace(sms_config(server).sms, replies_url=server.replies_url))
        server.reply("+8613800000001", " td ", later)  # 张伟: stop
        server.reply("13900000002", "谢谢", later)  # 李娜: thanks, nothing else
        server.reply("13700000003", "退订", later - 86_400_000_000)  # 王芳, before her yes
        sender = dispatcher(db, config)
        run = sender.run()
        # The dormant are 张伟 and 赵六: only 赵六 is texted.
        assert [r.body["to"] for r in server.requests] == ["13600000004"]
        assert run.skipped == {"opted_out": 1}
        assert not bound_call(db, consent.granted, member[C1], "sms")
        newest = bound_call(db, lambda: CareConsent.select().where(
            CareConsent.member == member[C1]).order_by(CareConsent.id.desc()).get())
        assert (newest.granted, newest.source, newest.at_us) == (False, "reply", later)
        assert bound_call(db, lambda: CareContact.get(CareContact.member == member[C1]).phone
                          ) is None
        for card in (C2, C3):
            assert bound_call(db, consent.granted, member[card], "sms")
        rows = bound_call(db, lambda: CareConsent.select().count())
        assert sender.read_replies() == 0  # read on from the saved cursor: nothing new
        assert dispatcher(db, config).read_replies() == 0
        assert server.reads[-1] == "3"
        bound_call(db, lambda: CareState.delete().execute())  # the cursor lost: read again
        assert dispatcher(db, config).read_replies() == 0  # from the start, changing nothing
        assert server.reads[-3:] == ["", "2", "3"]
        assert bound_call(db, lambda: CareConsent.select().count()) == rows
        with bound(db, ALL_MODELS), db.atomic():  # yes again, after the reply
            consent.record(member[C1], "sms", True, source="console", actor="ann",
                           at=from_micros(later + 60_000_000), address="13800000001")
        server.reply("13800000001", "TD", later)  # an old reply arriving late
        assert dispatcher(db, config).read_replies() == 0
        assert bound_call(db, consent.granted, member[C1], "sms")
    with gateway() as gone:
        url = gone.replies_url
    broken = replace(config, sms=replace(config.sms, replies_url=url))
    assert dispatcher(db, broken).read_replies() == 0  # unreachable: logged, nothing changed


def test_the_replies_cursor_is_kept_across_a_restart(db: Database, monkeypatch) -> None:
    """The gateway's cursor of the replies applied is saved with their opt-outs: a sender
    killed while applying a page leaves that page to the next one, which reads on from the last
    page saved (not from the first reply) and applies each reply once; another replies URL is
    read from its first reply."""
    service = care(db)
    opt_in_all(service, db)
    member = ids(db)
    later = to_micros(NOW) + 60_000_000
    with gateway() as server:
        config = replace(sms_config(server),
                         sms=replace(sms_config(server).sms, replies_url=server.replies_url))
        server.reply("13800000001", "TD", later)  # 张伟
        server.reply("13900000002", "谢谢", later)  # 李娜: nothing
        server.reply("+86 137-0000-0003", "STOP", later)  # 王芳, on the second page
        applying = consent.stop_by_reply

        def dies_at_wang(phone: str, text: str, at: datetime) -> list[str]:
            if phone.endswith("0003"):
                raise RuntimeError("killed")
            return applying(phone, text, at)

        monkeypatch.setattr(consent, "stop_by_reply", dies_at_wang)
        with pytest.raises(RuntimeError):
            dispatcher(db, config).read_replies()
        assert server.reads == ["", "2"]
        assert not bound_call(db, consent.granted, member[C1], "sms")
        assert bound_call(db, consent.granted, member[C3], "sms")  # its page rolled back
        monkeypatch.setattr(consent, "stop_by_reply", applying)
        server.reply("13600000004", "退订", later)  # 赵六, while HQ was down
        restarted = dispatcher(db, config)  # a new process: nothing in memory
        assert restarted.replies_after() == "2"
        assert restarted.read_replies() == 2
        assert server.reads[2:] == ["2", "4"]  # on from the saved page, then nothing new
        for card in (C1, C3, C4):
            assert not bound_call(db, consent.granted, member[card], "sms")
        replies = bound_call(db, lambda: CareConsent.select().where(
            CareConsent.source == "reply").count())
        assert replies == 3  # one each, none applied twice
        with gateway() as other:  # another gateway: its replies from the first
            moved = replace(config, sms=replace(config.sms, replies_url=other.replies_url))
            assert dispatcher(db, moved).replies_after() == ""
            dispatcher(db, moved).read_replies()
            assert other.reads == [""]
        assert dispatcher(db, config).replies_after() == "4"


def test_a_reply_finds_its_contacts_by_the_number_s_last_digits(db: Database) -> None:
    """The number a reply comes from is compared by its last 11 digits through
    ``care_contact.phone_tail`` (HQ migration 24), kept as the contact's number changes; a
    number of other digits or a contact without a number is not matched."""
    service = care(db)
    opt_in_all(service, db)
    member = ids(db)
    tails = bound_call(db, lambda: dict(CareContact.select(CareContact.member,
                                                           CareContact.phone_tail).tuples()))
    assert tails[member[C1]] == "13800000001"
    at = from_micros(to_micros(NOW) + 60_000_000)
    with bound(db, ALL_MODELS), db.atomic():
        assert consent.stop_by_reply("+86 139 0000 0001", "TD", at) == []  # other digits
        assert consent.stop_by_reply("0013800000001", "td", at) == [member[C1]]
        assert consent.stop_by_reply("13800000001", "TD", at) == []  # answered at that time
        assert CareContact.get(CareContact.member == member[C1]).phone_tail is None
        consent.record(member[C2], "sms", True, source="console", actor="ann",
                       at=from_micros(to_micros(NOW) + 1), address="+8613900000009")
    assert bound_call(db, lambda: CareContact.get(CareContact.member == member[C2]).phone_tail
                      ) == "13900000009"
    with bound(db, ALL_MODELS), db.atomic():
        assert consent.stop_by_reply("13900000002", "TD", at) == []  # the old number
        assert consent.stop_by_reply("13900000009", "TD", at) == [member[C2]]


def test_migration_24_fills_the_number_tails_of_the_contacts_kept(db: Database) -> None:
    """Contacts kept before HQ migration 24 get their numbers' last 11 digits; run again, it
    changes nothing."""
    service = care(db)
    opt_in_all(service, db)
    db.execute_sql("UPDATE care_contact SET phone_tail = NULL")
    db.execute_sql("UPDATE care_contact SET phone = '+8613900000002' "
                   "WHERE phone = '13900000002'")  # as a console yes may keep it
    upgrade = next(m for m in migrations.history() if m.name == "v0024_care_replies")
    for _ in range(2):
        with db.atomic():
            upgrade.run(db)
        assert dict(db.execute_sql("SELECT phone, phone_tail FROM care_contact").fetchall()) == {
            "13800000001": "13800000001", "+8613900000002": "13900000002",
            "13700000003": "13700000003", "13600000004": "13600000004"}


def test_frequency_cap_and_quiet_hours(db: Database) -> None:
    service = care(db)
    opt_in_all(service, db)
    first = service.create(ANN, "生日", "birthday", 7, "sms")
    second = service.create(ANN, "到期", "expiring", 30, "sms")
    service.queue(ANN, first)
    service.queue(ANN, second)
    night = datetime(2026, 12, 10, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai
    with gateway() as server:
        quiet = dispatcher(db, sms_config(server), lambda: night).run()
        assert quiet.sent == 0 and server.requests == []
        assert quiet.quiet_until == datetime(2026, 12, 11, 9, tzinfo=SHANGHAI)
        run = dispatcher(db, sms_config(server, cap_messages=1)).run()
    # 张伟 and 赵六 are in both: one message each in 7 days, the second is skipped.
    assert run.sent == 3 and run.skipped == {"cap": 2}
    with bound(db, ALL_MODELS):
        capped = [(row.campaign, row.why) for row in CareMessage.select()
                  .where(CareMessage.state == "skipped")]
    assert sorted(capped) == [(second, "cap"), (second, "cap")]


def test_a_gateway_refusing_for_good_fails_the_message(db: Database) -> None:
    service = care(db)
    opt_in_all(service, db)
    campaign = service.create(ANN, "升级", "next_tier", None, "sms")
    service.queue(ANN, campaign)
    with gateway() as server:
        server.fail(1, 400)
        run = dispatcher(db, sms_config(server)).run()
        assert run.failed == 1 and len(server.requests) == 1 and server.delivered == {}
    row = messages(db)["李娜"]
    assert (row.state, row.why, row.attempts) == ("failed", "http_400", 1)


def test_bad_campaigns_are_refused_and_change_nothing(db: Database) -> None:
    from terminal.hq.care.campaigns import CampaignError

    service = care(db)
    for args in (("", "birthday", 7, "sms"), ("x", "everyone", 7, "sms"),
                 ("x", "birthday", 7, "fax"), ("x", "birthday", 0, "sms")):
        with pytest.raises(CampaignError):
            service.create(ANN, *args)
    with pytest.raises(CampaignError):
        service.create(ANN, "x", "birthday", 7, "sms", bonus=-5)
    campaign = service.create(ANN, "x", "birthday", 7, "sms", bonus=10)
    service.queue(ANN, campaign)
    with pytest.raises(CampaignError, match="already queued"):
        service.queue(ANN, campaign)
    assert service.status(campaign)["messages"]["skipped"] == 3  # no one agreed
    assert json.loads(json.dumps(service.campaigns()))[0]["id"] == campaign
    with pytest.raises(CampaignError, match="needs HQ's member operations"):
        Care(db, rules(), None, clock).queue(ANN, Care(db, rules(), None, clock).create(
            ANN, "y", "birthday", 7, "sms", bonus=10))


@pytest.mark.slow  # PostgreSQL
def test_a_campaign_with_a_bonus_on_postgresql(postgres, tmp_path: Path) -> None:
    """HQ's production database: the queue's bonus operations nest in its transaction under
    the advisory lock, and the sender's states move as on SQLite."""
    from tests.hq.test_postgres_collector import fresh_database

    url = build_care_chain(tmp_path, fresh_database(postgres))
    pg = open_hq_database(url)
    try:
        service = care(pg)
        opt_in_all(service, pg)
        before = bound_call(pg, lambda: {m.id: m.balance for m in Member.select()})
        campaign = service.create(ANN, "生日", "birthday", 7, "sms", bonus=30)
        assert service.queue(ANN, campaign) == {"members": 3, "pending": 3, "bonus_ops": 3}
        with gateway() as server:
            server.fail(2)
            run = dispatcher(pg, sms_config(server)).run()
            assert run.sent == 3 and run.retrying == 2
            assert len(server.delivered) == 3 and len(server.requests) == 5
        status = service.status(campaign)
        assert status["messages"]["sent"] == 3
        assert all(row["bonus_op"] for row in status["message_list"])
        after = bound_call(pg, lambda: {m.id: m.balance for m in Member.select()})
        members = ids(pg)
        assert {card: after[members[card]] - before[members[card]] for card in PEOPLE} == {
            C1: 30, C2: 0, C3: 30, C4: 30}
        assert len(bound_call(pg, pending)) >= 3  # to every till, by the publisher
        from terminal.hq.care.dispatch import SenderBusy, one_sender

        other = open_hq_database(url)  # another session, as another sender's process
        try:
            with one_sender(pg), pytest.raises(SenderBusy), one_sender(other):
                pass
            with one_sender(other):
                pass
        finally:
            other.close()
    finally:
        pg.close()


def test_the_command_refuses_bad_input_and_changes_nothing(
        db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from terminal.hq.cli import main

    url = db.database
    db.close()
    common = ["--db", url, "--rules", str(RULES)]
    assert main(["campaign", "preview", "99", *common]) == 1
    assert "no campaign 99" in capsys.readouterr().err
    config = tmp_path / "care.toml"
    config.write_text('[sms]\nurll = "http://127.0.0.1:9/"\n', encoding="utf-8")
    assert main(["campaign", "create", "--name", "x", "--segment", "birthday", "--channel",
                 "sms", *common]) == 0
    created = json.loads(capsys.readouterr().out)["id"]
    assert main(["campaign", "send", str(created), "--care-config", str(config), *common]) == 1
    assert "unknown key 'urll'" in capsys.readouterr().err
    config.write_text('[email]\nhost = "127.0.0.1"\n', encoding="utf-8")
    assert main(["campaign", "send", str(created), "--care-config", str(config), *common]) == 1
    assert "configures no [sms]" in capsys.readouterr().err
    assert main(["campaign", "consent", C1, "--channel", "sms", "--yes", "--address",
                 "13800000001", *common]) == 1
    assert "--card-key-file" in capsys.readouterr().err
    assert main(["campaign", "status", str(created), *common]) == 0
    assert "(birthday, sms, draft)" in capsys.readouterr().out  # not queued by the bad send


def test_campaign_send_reads_the_campaign_not_its_messages(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``campaign send ID`` needs the campaign's channel and state, not the status of each of
    its messages (Care.status reads them all, in a write transaction)."""
    from terminal.hq.cli import main

    service = care(db)
    opt_in_all(service, db)
    campaign = service.create(ANN, "生日", "birthday", 7, "sms")
    service.queue(ANN, campaign)
    assert service.campaign(campaign) == {
        "id": campaign, "name": "生日", "segment": "birthday", "channel": "sms",
        "state": "queued", "bonus_points": 0}
    with pytest.raises(campaigns.CampaignError, match="no campaign 99"):
        service.campaign(99)

    def no_status(*_: object) -> None:
        raise AssertionError("campaign send read every message's status")

    monkeypatch.setattr(Care, "status", no_status)
    config = tmp_path / "care.toml"
    config.write_text('[sms]\nurl = "http://127.0.0.1:9/"\n[policy]\nquiet_start = "00:00"\n'
                      'quiet_end = "00:00"\n', encoding="utf-8")
    url = db.database
    db.close()
    assert main(["campaign", "send", str(campaign), "--care-config", str(config), "--db", url,
                 "--rules", str(RULES)]) == 0
    assert json.loads(capsys.readouterr().out)["run"]


def test_a_second_sender_is_refused(db: Database, capsys: pytest.CaptureFixture[str],
                                    tmp_path: Path) -> None:
    from terminal.hq.care.dispatch import SenderBusy, one_sender
    from terminal.hq.cli import main

    config = tmp_path / "care.toml"
    config.write_text('[sms]\nurl = "http://127.0.0.1:9/"\n', encoding="utf-8")
    send = ["campaign", "send", "--care-config", str(config), "--db", db.database,
            "--rules", str(RULES)]
    with one_sender(db):
        with pytest.raises(SenderBusy), one_sender(db):
            pass
        assert main(send) == 1
        assert "another posterm-hq campaign send is running" in capsys.readouterr().err
    assert main(send) == 0  # the lock goes with its holder
