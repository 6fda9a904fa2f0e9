"""HQ's own tables, beside the loyalty store's in the same database (bound through ``db_proxy``
so an event's ledger changes and its ``applied_event`` row commit together)."""

from __future__ import annotations

from peewee import AutoField, BigIntegerField, BooleanField, CompositeKey, IntegerField, TextField

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
    outcome = TextField()  # applied | flagged (applied, noted for review in detail) | refused
    detail = TextField(default="")
    points_in = IntegerField(default=0)  # what the event added to the chain ledger
    points_out = IntegerField(default=0)  # and took from it (as a positive number)
    # The span of the chain ledger's sequence the event wrote (null: it wrote nothing), so a
    # statement names the store and terminal behind each entry.
    first_seq = BigIntegerField(null=True)
    last_seq = BigIntegerField(null=True, index=True)

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
    bundles = TextField(default="{}")  # JSON {scope: version held} (HQ migration 9)
    # JSON of the status's printer_state, {"code", "waiting"}; "": its till sent none (an older
    # till: the printer's state is devices["printer"]'s words alone) (HQ migration 32)
    printer_state = TextField(default="")

    class Meta:
        primary_key = CompositeKey("store", "terminal")


class BundleRefusal(BaseModel):
    """A bundle a terminal refused, as its status reported it (``rejected`` with ``what`` =
    ``bundle``): the scope of the topic it came on, the reason code and the terminal's words.
    The rules studio names the pushed version it refused: the newest of that scope pushed
    before the refusal (a retained topic carries only the newest)."""

    id = AutoField()
    store = TextField()
    terminal = TextField()
    scope = TextField()
    reason = TextField()
    detail = TextField()
    at = TextField()  # the terminal's time of the refusal, ISO, as reported
    received_us = BigIntegerField(index=True)

    class Meta:
        indexes = ((("store", "terminal", "at"), True),)


class MemberOp(BaseModel):
    """One member operation made at HQ (adjust, freeze, replace, merge, edit, erase, import):
    who, when, what and why, in HQ's order (``seq``, which is also the version of the member
    states it sets). Append-only: nothing ever updates or deletes a row."""

    seq = BigIntegerField(primary_key=True)
    kind = TextField()
    member = TextField(index=True)  # the member's id in the chain ledger
    card_hash = TextField()
    actor = TextField()
    reason = TextField()
    detail = TextField(default="{}")  # JSON: what the operation changed
    at_us = BigIntegerField()


class PublishedState(BaseModel):
    """The newest member-state version of each card published to the tills; a card
    whose ``card_state.version`` is above it waits for the publisher. ``payload``: the signed
    state as published, which a till's catch-up is answered with."""

    card_hash = TextField(primary_key=True)
    version = BigIntegerField()
    published_us = BigIntegerField()
    payload = TextField(null=True)


class MemberHome(BaseModel):
    """The store a member belongs to: where it registered, until HQ moves it. A store manager
    sees the members of its stores only."""

    member = TextField(primary_key=True)  # Member.id
    store = TextField(index=True)
    since_us = BigIntegerField()


class LookupAudit(BaseModel):
    """Who looked up which member, and when: one row per member lookup a till asked of HQ
    (issue 16: a till pipelining lookups must leave a trace, not only a load)."""

    store = TextField()
    terminal = TextField()
    card_hash = TextField(index=True)
    at_us = BigIntegerField(index=True)
    found = BooleanField()


class EnrollmentCode(BaseModel):
    """A one-time enrollment code HQ issued for one terminal (terminal.hq.enrollment): only its
    SHA-256 is kept; ``used_us`` and ``serial`` are set when a box redeemed it, ``revoked_us``
    and ``revoked_by`` when a person revoked it unused."""

    code_hash = TextField(primary_key=True)
    store = TextField()
    terminal = TextField()
    issued_us = BigIntegerField()
    expires_us = BigIntegerField()
    used_us = BigIntegerField(null=True)
    serial = TextField(null=True)  # the certificate signed for it, hex
    revoked_us = BigIntegerField(null=True)  # revoked unused by a person at HQ (the console)
    revoked_by = TextField(null=True)

    class Meta:
        indexes = ((("store", "terminal"), False),)


class DayReport(BaseModel):
    """A terminal's X or Z report as the till printed it, collected at HQ (its ``day_report``
    event): the till's own figures for its day, beside what HQ applied of that terminal."""

    id = TextField(primary_key=True)  # the report's id on the till
    store = TextField()
    terminal = TextField()
    kind = TextField()  # X | Z
    day = TextField()  # YYYY-MM-DD in the programme's zone, as the till reckoned it
    wall_us = BigIntegerField()  # when it was printed (HQ's reckoning of the till's clock)
    operator = TextField(default="")
    sales_count = BigIntegerField()
    paid_fen = BigIntegerField()
    deduction_fen = BigIntegerField()  # what points paid: the day's redemptions in fen
    refunds_count = BigIntegerField()
    refunded_fen = BigIntegerField()
    points_issued = BigIntegerField()
    points_redeemed = BigIntegerField()
    body = TextField()  # every figure as printed, JSON

    class Meta:
        table_name = "hq_day_report"
        indexes = ((("day", "store", "terminal"), False),)


HQ_MODELS = (AppliedEvent, MemberHold, TerminalSeen, MemberOp, PublishedState, MemberHome,
             LookupAudit, EnrollmentCode, BundleRefusal, DayReport)
# Tables whose rows are a record: the database refuses to change them (database.append_only).
HQ_APPEND_ONLY = (AppliedEvent, MemberOp, LookupAudit)
