"""Consent and contacts: who agreed to which channel, at which address (models bound by the
caller, inside its transaction).

An opt-in needs the address (a mobile number for ``sms``, an email address for ``email``); an
opt-out drops that address at once, and the sender checks consent again just before each message,
so an opt-out stops even a campaign already queued. Every change appends a ``care_consent`` row
(who, how, when). :func:`forget` is the erasure: the contact goes, and the member's messages not
yet sent are skipped.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from peewee import fn

from terminal.hq.care.models import (
    CHANNELS,
    CareConsent,
    CareContact,
    CareMessage,
    number_tail,
)
from terminal.hq.care.refusal import CareRefusal
from terminal.hq.local_time import shown_micros
from terminal.hq.member_ids import among
from terminal.loyalty.cards import phone_hash
from terminal.loyalty.clock import to_micros
from terminal.loyalty.store.members import PHONE
from terminal.loyalty.store.models import Member

SOURCES = ("till", "console", "cli", "reply")
# A member's text back that stops its SMS (the templates end 回复TD退订), case and spaces aside.
STOP_WORDS = ("TD", "T", "退订", "N", "STOP")
EMAIL = re.compile(r"[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9.-]{1,189}\.[A-Za-z]{2,63}")
OPEN = ("pending", "sending")


class ConsentError(CareRefusal):
    """A consent change that cannot be made (nothing was changed): :class:`CareRefusal`."""


def _check(channel: str, address: str | None, member: Member, card_key: bytes | None) -> str:
    if not address:
        raise ConsentError(f"agreeing to {channel} needs the "
                           f"{'mobile number' if channel == 'sms' else 'email address'}",
                           f"address_needed_{'sms' if channel == 'sms' else 'email'}")
    address = address.strip()
    if channel == "email":
        if len(address) > 254 or not EMAIL.fullmatch(address):
            raise ConsentError("the email address is not of the form name@domain.tld",
                               "bad_email")
        return address
    if not PHONE.fullmatch(address):
        raise ConsentError("the mobile number is not 5 to 15 digits", "bad_phone")
    if card_key is not None and member.phone_hash is not None \
            and phone_hash(card_key, address) != member.phone_hash:
        raise ConsentError(f"the number is not the member's registered phone (ending "
                           f"{member.phone_last4})", "not_members_phone",
                           last4=member.phone_last4)
    return address


def record(member_id: str, channel: str, granted: bool, *, source: str, actor: str,
           at: datetime, address: str | None = None, card_key: bytes | None = None,
           store: str | None = None, terminal: str | None = None) -> bool:
    """Record the member's yes (with ``address``) or no to ``channel``, given at ``at`` (at a
    till: ``store`` and ``terminal``). With ``card_key`` a mobile number must be the member's
    registered phone, when one is registered. An answer older than one already recorded (a
    till's, reaching HQ late) is kept as a record but changes nothing: returns False."""
    if channel not in CHANNELS:
        raise ConsentError(f"no channel {channel!r}; known: {', '.join(CHANNELS)}",
                           "unknown_channel", value=channel)
    if source not in SOURCES:
        raise ConsentError(f"no consent source {source!r}")
    member = Member.get_or_none(Member.id == member_id)
    if member is None:
        raise ConsentError("no such member", "no_member")
    value = _check(channel, address, member, card_key) if granted else None
    now = to_micros(at)
    newer = CareConsent.select().where((CareConsent.member == member_id)
                                       & (CareConsent.channel == channel)
                                       & (CareConsent.at_us > now)).exists()
    if not newer:
        values: dict[Any, Any] = ({CareContact.phone: value,
                                   CareContact.phone_tail: number_tail(value)}
                                  if channel == "sms" else {CareContact.email: value})
        (CareContact.insert({CareContact.member: member_id, CareContact.updated_us: now,
                             **values})
         .on_conflict(conflict_target=[CareContact.member],
                      update={**values, CareContact.updated_us: now}).execute())
    CareConsent.create(member=member_id, channel=channel, granted=granted, source=source,
                       actor=actor, at_us=now, store=store, terminal=terminal)
    return not newer


def stop_by_reply(phone: str, text: str, at: datetime) -> list[str]:
    """A reply to the gateway from ``phone``: when its text is a stop word, record the opt-out
    from SMS of the members who agreed at that number (source ``reply``), unless one of them
    answered again at or after ``at`` (a reply read twice, or a yes given since); the members
    opted out. The number is compared by its last 11 digits (the gateway may prefix +86)."""
    if text.strip().upper() not in STOP_WORDS:
        return []
    digits = number_tail(phone) or ""
    if not PHONE.fullmatch(digits):
        return []
    now = to_micros(at)
    # One query, through the index on the number's last digits (HQ migration 24): the contacts
    # at that number with no SMS answer at or after the reply's time.
    newer = CareConsent.select(CareConsent.id).where(
        (CareConsent.member == CareContact.member) & (CareConsent.channel == "sms")
        & (CareConsent.at_us >= now))
    members = [member for (member,) in CareContact.select(CareContact.member).where(
        (CareContact.phone_tail == digits) & ~fn.EXISTS(newer))
        .order_by(CareContact.member).tuples()]
    for member in members:
        record(member, "sms", False, source="reply", actor="sms-reply", at=at)
    return members


def granted(member_id: str, channel: str) -> bool:
    newest = (CareConsent.select(CareConsent.granted)
              .where((CareConsent.member == member_id) & (CareConsent.channel == channel))
              .order_by(CareConsent.at_us.desc(), CareConsent.id.desc()).first())
    return newest is not None and bool(newest.granted)


def address(member_id: str, channel: str) -> str | None:
    """Where to send ``channel``'s messages to the member: None without consent or address."""
    if not granted(member_id, channel):
        return None
    contact = CareContact.get_or_none(CareContact.member == member_id)
    if contact is None:
        return None
    return contact.phone if channel == "sms" else contact.email


def addresses(member_ids: list[str], channel: str) -> dict[str, str]:
    """:func:`address` for many members at once, in one query: those who agreed to ``channel``
    (their newest answer, as :func:`granted`) and gave its address, with the address."""
    if channel not in CHANNELS:
        raise ConsentError(f"no channel {channel!r}; known: {', '.join(CHANNELS)}")
    db = CareConsent._meta.database
    ids, param = among(db, "member", member_ids)
    column = "phone" if channel == "sms" else "email"
    newest = (f"SELECT member, granted, ROW_NUMBER() OVER (PARTITION BY member "
              f"ORDER BY at_us DESC, id DESC) AS n FROM {CareConsent._meta.table_name} "
              f"WHERE channel = {db.param} AND {ids}")
    rows = db.execute_sql(
        f"SELECT c.member, t.{column} FROM ({newest}) c JOIN {CareContact._meta.table_name} t "
        f"ON t.member = c.member WHERE c.n = 1 AND c.granted AND t.{column} IS NOT NULL",
        (channel, param)).fetchall()
    return {member: value for member, value in rows if value}


def reachable(member_ids: list[str], channel: str) -> set[str]:
    """Those of ``member_ids`` who agreed to ``channel`` and gave its address."""
    return set(addresses(member_ids, channel))


def state(member_id: str) -> dict[str, dict[str, object]]:
    """Per channel: agreed or not, and the address's last four characters (for the console)."""
    contact = CareContact.get_or_none(CareContact.member == member_id)
    result = {}
    for channel in CHANNELS:
        value = None if contact is None else (contact.phone if channel == "sms"
                                              else contact.email)
        result[channel] = {"granted": granted(member_id, channel) and bool(value),
                           "hint": _hint(value)}
    return result


def history(member_id: str, zone: Any) -> list[dict[str, Any]]:
    """Every answer the member gave, newest first: channel, yes or no, how (till, console,
    cli), where (a till's store and terminal), who recorded it and when (in ``zone``)."""
    rows = (CareConsent.select().where(CareConsent.member == member_id)
            .order_by(CareConsent.at_us.desc(), CareConsent.id.desc()))
    return [{"channel": row.channel, "granted": bool(row.granted), "source": row.source,
             "store": row.store, "terminal": row.terminal, "actor": row.actor,
             "at": shown_micros(row.at_us, zone)}
            for row in rows]


def _hint(value: str | None) -> str:
    """Enough of an address to recognise it: a number's last four digits, an email's first
    character and domain."""
    if not value:
        return ""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[0]}…@{domain}"
    return "…" + value[-4:]


def forget(member_id: str) -> int:
    """The member's data was erased: drop the contact, skip the messages not sent yet (their
    fields name the member). Returns how many messages were stopped."""
    CareContact.delete().where(CareContact.member == member_id).execute()
    return (CareMessage.update(state="skipped", why="erased", fields="{}")
            .where((CareMessage.member == member_id) & CareMessage.state.in_(OPEN)).execute())
