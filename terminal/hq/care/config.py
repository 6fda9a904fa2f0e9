"""HQ's member-care configuration: one TOML file (``--care-config``), strict like every config.

    [sms]                       # an HTTP gateway: POST JSON {"id", "to", "text"}
    url = "https://sms.example.cn/v1/send"
    api_key = "..."             # sent as "Authorization: Bearer ..."
    [email]
    host = "smtp.example.cn"
    port = 587
    starttls = true
    username = "care@example.cn"
    password = "..."
    sender = "会员服务 <care@example.cn>"
    [policy]
    quiet_start = "21:00"       # no message from 21:00 to 09:00 in the chain's zone
    quiet_end = "09:00"
    cap_messages = 2            # at most 2 messages a member in any 7 days
    cap_days = 7
    [templates]
    brand = "好邻居"
    birthday = "【${brand}】${name}，生日快乐！..."   # string.Template: ${name} ${points} ...

A template names its fields as ``${name}``; a field it does not know is an error at load time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from string import Template
from typing import Any

from terminal.core.configfile import ConfigError, load_toml, section_from, setting

# What a template may name (segments.py fills them).
FIELDS = frozenset({"brand", "name", "points", "date", "multiplier", "window", "tier",
                    "spend_yuan", "bonus"})
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class SmsSection:
    url: str = setting("", doc="the SMS gateway's send URL (http or https); empty: no SMS")
    api_key: str = setting("", doc="the gateway's key, sent as Authorization: Bearer")
    timeout: float = setting(10.0, doc="seconds to wait for the gateway", min=0.5, max=120)
    replies_url: str = setting("", doc="the gateway's URL of members' replies (GET, JSON: "
                                       "replies after a cursor); empty: replies not read, so "
                                       "a 回复TD退订 reply is not taken as an opt-out")


@dataclass(frozen=True)
class EmailSection:
    host: str = setting("", doc="the SMTP server; empty: no email")
    port: int = setting(587, doc="its port", min=1, max=65535)
    starttls: bool = setting(True, doc="upgrade the connection with STARTTLS")
    username: str = setting("", doc="SMTP login name; empty: no login")
    password: str = setting("", doc="SMTP password")
    sender: str = setting("care@localhost", doc="the From address")
    timeout: float = setting(10.0, doc="seconds to wait for the server", min=0.5, max=120)


@dataclass(frozen=True)
class PolicySection:
    quiet_start: str = setting("21:00", doc="quiet hours start, HH:MM in the chain's zone")
    quiet_end: str = setting("09:00", doc="quiet hours end, HH:MM (equal to start: none)")
    cap_messages: int = setting(2, doc="messages a member may receive in cap_days", min=1,
                                max=100)
    cap_days: int = setting(7, doc="the frequency cap's window, days", min=1, max=365)
    max_attempts: int = setting(5, doc="tries per message before it is failed", min=1, max=50)
    retry_seconds: int = setting(60, doc="wait before retrying a message the channel refused "
                                 "for now", min=0, max=86400)


@dataclass(frozen=True)
class TemplatesSection:
    brand: str = setting("会员中心", doc="the chain's name in messages")
    subject: str = setting("【${brand}】会员关怀", doc="the email subject")
    birthday: str = setting(
        "【${brand}】${name}，生日快乐！生日${window}内消费享${multiplier}倍积分。${bonus}"
        "回复TD退订", doc="birthday greeting")
    expiring: str = setting(
        "【${brand}】${name}，您有${points}积分将于${date}到期，请及时使用。${bonus}回复TD退订",
        doc="points expiring")
    next_tier: str = setting(
        "【${brand}】${name}，再消费${spend_yuan}元即可升级为${tier}会员。${bonus}回复TD退订",
        doc="spend to the next tier")
    dormant: str = setting(
        "【${brand}】${name}，好久不见！您的积分余额${points}，期待您再次光临。${bonus}回复TD退订",
        doc="win-back for dormant members")


@dataclass(frozen=True)
class CareConfig:
    sms: SmsSection = SmsSection()
    email: EmailSection = EmailSection()
    policy: PolicySection = PolicySection()
    templates: TemplatesSection = TemplatesSection()

    @property
    def quiet(self) -> tuple[time, time]:
        return clock(self.policy.quiet_start), clock(self.policy.quiet_end)

    def template(self, segment: str) -> Template:
        return Template(getattr(self.templates, segment))

    def render(self, segment: str, fields: dict[str, str]) -> tuple[str, str]:
        """The email subject and the message text of ``segment``'s template filled with a
        member's ``fields`` (as queued: ``bonus`` is the points granted, or empty)."""
        fields = {"brand": self.templates.brand, **fields}
        if fields.get("bonus"):
            fields["bonus"] = f"已赠送{fields['bonus']}积分。"
        return (Template(self.templates.subject).safe_substitute(fields),
                self.template(segment).safe_substitute(fields))


SECTIONS = {"sms": SmsSection, "email": EmailSection, "policy": PolicySection,
            "templates": TemplatesSection}


def clock(text: str) -> time:
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise ConfigError(f"{text!r} is not a time of day HH:MM")
    return time(int(match.group(1)), int(match.group(2)))


def parse(data: dict[str, Any], source: str) -> CareConfig:
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{source}: unknown section [{unknown[0]}]; known: "
                          f"{', '.join(SECTIONS)}")
    config = CareConfig(**{name: section_from(data, name, cls, source)
                           for name, cls in SECTIONS.items()})
    for name in ("quiet_start", "quiet_end"):
        try:
            clock(getattr(config.policy, name))
        except ConfigError as exc:
            raise ConfigError(f"{source} [policy] {name}: {exc}") from None
    for name in ("subject", "birthday", "expiring", "next_tier", "dormant"):
        text = getattr(config.templates, name)
        try:
            named = {m.group("named") or m.group("braced")
                     for m in Template.pattern.finditer(text)} - {None}
        except ValueError:
            named = set()
        bad = sorted(named - FIELDS)
        if bad or not Template(text).is_valid():
            raise ConfigError(f"{source} [templates] {name}: unknown field ${{{bad[0]}}}; known: "
                              f"{', '.join(sorted(FIELDS))}" if bad else
                              f"{source} [templates] {name}: a lone $ (write $$ for one)")
    return config


def load(path: Path | None) -> CareConfig:
    """The config at ``path``; None: the defaults (no channel configured)."""
    return CareConfig() if path is None else parse(load_toml(path), str(path))
