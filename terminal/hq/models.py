"""HQ's own tables, beside the loyalty store's in the same database (bound through ``db_proxy``
so an event's ledger changes and its ``applied_event`` row commit together)."""

from __future__ import annotations

from peewee import BigIntegerField, BooleanField, CompositeKey, IntegerField, TextField

from terminal.loyalty.store.models import BaseModel


class AppliedEvent(BaseModel):
    """One row per event id HQ has applied (or refused for good): the at-most-once guard."""

    id = TextField(primary_key=True)
    store = TextField()
    terminal = TextField()
    seq = BigIntegerField()
    epoch = IntegerField()
    kind = TextField()
    wall_us = BigIntegerField()
    applied_us = BigIntegerField()
    outcome = TextField()  # applied | refused
    detail = TextField(default="")
    points_in = IntegerField(default=0)  # what the event added to the chain ledger
    points_out = IntegerField(default=0)  # and took from it (as a positive number)

    class Meta:
        indexes = ((("store", "terminal", "seq"), False),)


class MemberHold(BaseModel):
    """Points set aside for a sale being rung up: pending, then posted (the sale's event) or
    voided (cancelled or timed out), in the manner of a two-phase transfer."""

    id = TextField(primary_key=True)
    card_hash = TextField(index=True)
    points = IntegerField()
    state = TextField()  # pending | posted | voided
    store = TextField()
    terminal = TextField()
    created_us = BigIntegerField()
    expires_us = BigIntegerField()
    settled_us = BigIntegerField(null=True)


class TerminalSeen(BaseModel):
    """The latest status each terminal published: what ``posterm-hq fleet`` shows."""

    store = TextField()
    terminal = TextField()
    online = BooleanField()
    epoch = IntegerField()
    version = TextField()
    rule_version = IntegerField()
    backlog = IntegerField()
    devices = TextField(default="{}")  # JSON
    rejected = TextField(default="")  # JSON of the latest refusal it reported, if any
    last_seen_us = BigIntegerField()

    class Meta:
        primary_key = CompositeKey("store", "terminal")


HQ_MODELS = (AppliedEvent, MemberHold, TerminalSeen)
