"""Member care's tables, beside HQ's in the same database (bound with ``CARE_MODELS``).

- ``care_contact``: the address a member gave for care messages (a phone number, an email).
  HQ keeps a member's registered phone only as a keyed hash, so a number to text is kept here,
  and only for a member who agreed; an erasure removes the row.
- ``care_state``: named values kept across restarts: the SMS replies' cursor.
- ``care_consent``: every opt-in and opt-out, per channel, who recorded it, how and where (the
  store and terminal of an answer given at a till; append-only: the proof of consent). A
  member's consent for a channel is its newest row by the time it was given (``at_us``, then
  id): a till's answer that reaches HQ late does not undo a later one.
- ``care_campaign``: a campaign: its segment and parameters, channel, optional bonus, state.
- ``care_message``: the outbox. One row per member of the campaign's segment, minted with its id
  (a UUID the SMS gateway receives as ``Idempotency-Key``, the email as its ``Message-ID``) and
  the template's fields (name, points, dates) when the campaign is queued; its state moves
  pending -> sending -> sent, or to skipped or failed (with why); attempts are counted.
"""

from __future__ import annotations

import re

from peewee import AutoField, BigIntegerField, BooleanField, IntegerField, TextField

from terminal.loyalty.store.models import BaseModel

CHANNELS = ("sms", "email")
TAIL_DIGITS = 11  # a number is compared by its last 11 digits: a gateway may prefix +86


def number_tail(phone: str | None) -> str | None:
    """The last 11 digits of ``phone`` (``care_contact.phone_tail``), None without any."""
    if not phone:
        return None
    return re.sub(r"\D", "", phone)[-TAIL_DIGITS:] or None


class CareContact(BaseModel):
    member = TextField(primary_key=True)  # Member.id
    phone = TextField(null=True)
    email = TextField(null=True)
    updated_us = BigIntegerField()
    # The number's last 11 digits, indexed (HQ migration 24): what a reply is looked up by.
    phone_tail = TextField(null=True)


class CareState(BaseModel):
    """Small named values member care keeps across restarts (HQ migration 24), such as the SMS
    gateway's cursor of the replies already applied (``sms_replies_after``)."""

    key = TextField(primary_key=True)
    value = TextField()


class CareConsent(BaseModel):
    id = AutoField()
    member = TextField(index=True)
    channel = TextField()  # sms | email
    granted = BooleanField()
    source = TextField()  # till | console | cli
    actor = TextField()
    at_us = BigIntegerField()  # when the member answered (a till's: HQ's reckoning of it)
    store = TextField(null=True)  # source till: where (HQ migration 17)
    terminal = TextField(null=True)


class CareCampaign(BaseModel):
    id = AutoField()
    name = TextField()
    segment = TextField()  # birthday | expiring | next_tier | dormant
    params = TextField(default="{}")  # JSON: the segment's parameters (days, ...)
    channel = TextField()
    bonus_points = IntegerField(default=0)
    state = TextField(default="draft")  # draft | queued
    created_by = TextField()
    created_us = BigIntegerField()
    queued_by = TextField(null=True)
    queued_us = BigIntegerField(null=True)


class CareMessage(BaseModel):
    id = TextField(primary_key=True)  # UUID: what the gateway and the mail server see
    campaign = IntegerField(index=True)
    member = TextField(index=True)
    channel = TextField()
    fields = TextField(default="{}")  # JSON, the template's fields; blanked once final
    state = TextField(default="pending")  # pending | sending | sent | skipped | failed
    why = TextField(default="")  # skipped/failed: the reason code; pending: the last error
    attempts = IntegerField(default=0)
    due_us = BigIntegerField()  # not before (a retry waits)
    sent_us = BigIntegerField(null=True, index=True)
    bonus_op = BigIntegerField(null=True)  # the member_op seq of the campaign's bonus

    class Meta:
        indexes = ((("campaign", "member"), True), (("state", "due_us"), False))


CARE_MODELS = (CareContact, CareConsent, CareCampaign, CareMessage, CareState)
APPEND_ONLY = (CareConsent,)
