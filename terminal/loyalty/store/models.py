"""Peewee models of the terminal's ledger, bound late to a database (``db_proxy``).

Times are whole microseconds since the Unix epoch in UTC (``*_us``), each beside a ``trusted``
flag and, on every append-only record, the terminal's monotonic sequence number ``seq``.
Append-only tables are listed in ``APPEND_ONLY``: triggers refuse UPDATE and DELETE on them.
``lot`` (remaining points), ``member`` (materialised balance), ``member_day`` (day counters),
``outbox`` (ack marks) and ``meta`` are the only rows that change.
"""

from __future__ import annotations

from peewee import (
    BigIntegerField,
    BooleanField,
    CompositeKey,
    DatabaseProxy,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

db_proxy = DatabaseProxy()


class BaseModel(Model):
    class Meta:
        database = db_proxy
        legacy_table_names = False


class Meta(BaseModel):
    key = TextField(primary_key=True)
    value = TextField()


class Member(BaseModel):
    id = TextField(primary_key=True)
    card_hash = TextField(unique=True)
    card_last4 = TextField()
    name = TextField(default="")
    phone_hash = TextField(null=True, index=True)
    phone_last4 = TextField(default="")
    birthday = TextField(null=True)  # YYYY-MM-DD
    referrer = ForeignKeyField("self", null=True, backref="referred")
    referral_paid = BooleanField(default=False)
    registered_us = BigIntegerField()
    tier = TextField()
    tier_reviewed_us = BigIntegerField(null=True)
    balance = IntegerField(default=0)
    debt = IntegerField(default=0)  # points owed: balance = sum(lot.remaining) - debt


class LedgerEntry(BaseModel):
    id = TextField(primary_key=True)
    seq = BigIntegerField(unique=True)
    member = ForeignKeyField(Member, backref="entries")
    kind = TextField()
    points = IntegerField()
    debt_delta = IntegerField(default=0)
    sale_id = TextField(null=True, index=True)
    reverses = TextField(null=True)
    reason = TextField(default="")
    operator = TextField(default="")
    wall_us = BigIntegerField()
    trusted = BooleanField()

    class Meta:
        indexes = ((("member", "seq"), False),)


class Lot(BaseModel):
    id = TextField(primary_key=True)  # the id of the entry that created it
    member = ForeignKeyField(Member, backref="lots")
    earned_us = BigIntegerField()
    expires_us = BigIntegerField(null=True)
    points = IntegerField()
    remaining = IntegerField()
    dated_trusted = BooleanField(default=True)  # False: earned on an untrusted clock

    class Meta:
        indexes = ((("member", "expires_us"), False),)


class Allocation(BaseModel):
    entry = ForeignKeyField(LedgerEntry, backref="allocations")
    lot = ForeignKeyField(Lot, backref="allocations")
    points = IntegerField()


class Sale(BaseModel):
    id = TextField(primary_key=True)
    seq = BigIntegerField(unique=True)
    member = ForeignKeyField(Member, null=True, backref="sales")
    wall_us = BigIntegerField()
    trusted = BooleanField()
    tender = TextField()
    list_fen = BigIntegerField()
    discount_fen = BigIntegerField()
    deduction_fen = BigIntegerField()
    paid_fen = BigIntegerField()
    points_earned = IntegerField()
    points_redeemed = IntegerField()
    earn_entry = TextField(null=True)
    redeem_entry = TextField(null=True)
    tier = TextField(default="")
    operator = TextField(default="")
    detail = TextField(default="{}")  # JSON: why, promotion, birthday

    class Meta:
        indexes = ((("member", "wall_us"), False), (("wall_us",), False))


class SaleLine(BaseModel):
    sale = ForeignKeyField(Sale, backref="lines")
    line_no = IntegerField()
    sku = TextField()
    name = TextField(default="")
    category = TextField(default="")
    qty = IntegerField()
    price_fen = BigIntegerField()
    list_fen = BigIntegerField()
    paid_fen = BigIntegerField()

    class Meta:
        primary_key = CompositeKey("sale", "line_no")


class Refund(BaseModel):
    id = TextField(primary_key=True)
    seq = BigIntegerField(unique=True)
    sale = ForeignKeyField(Sale, backref="refunds")
    kind = TextField()  # refund | void
    wall_us = BigIntegerField()
    trusted = BooleanField()
    refunded_fen = BigIntegerField()
    points_reversed = IntegerField()
    points_restored = IntegerField()
    operator = TextField(default="")


class RefundLine(BaseModel):
    refund = ForeignKeyField(Refund, backref="lines")
    line_no = IntegerField()
    qty = IntegerField()
    fen = BigIntegerField()

    class Meta:
        primary_key = CompositeKey("refund", "line_no")


class Exchange(BaseModel):
    id = TextField(primary_key=True)
    seq = BigIntegerField(unique=True)
    member = ForeignKeyField(Member, backref="exchanges")
    sku = TextField()
    qty = IntegerField()
    points = IntegerField()
    wall_us = BigIntegerField()
    trusted = BooleanField()
    operator = TextField(default="")


class MemberDay(BaseModel):
    """Per member and programme-zone day: what the daily caps count."""

    member = ForeignKeyField(Member)
    day = TextField()  # YYYY-MM-DD in the programme's zone
    earned = IntegerField(default=0)
    redeemed = IntegerField(default=0)
    offline_redeemed = IntegerField(default=0)

    class Meta:
        primary_key = CompositeKey("member", "day")


class Outbox(BaseModel):
    """Events for HQ, written in the same transaction as what they report (DESIGN promise 3)."""

    id = TextField(primary_key=True)
    seq = BigIntegerField(unique=True)
    epoch = IntegerField()
    kind = TextField()
    payload = TextField()
    created_us = BigIntegerField()
    trusted = BooleanField()
    acked_us = BigIntegerField(null=True, index=True)


class Audit(BaseModel):
    seq = BigIntegerField(unique=True)
    wall_us = BigIntegerField()
    trusted = BooleanField()
    actor = TextField()
    action = TextField()
    subject = TextField()
    detail = TextField(default="")


class DailyReport(BaseModel):
    """End-of-day reports as printed (X) and closed (Z); a Z report is written once a day."""

    id = TextField(primary_key=True)
    seq = BigIntegerField(unique=True)
    kind = TextField()  # X | Z
    day = TextField()
    wall_us = BigIntegerField()
    trusted = BooleanField()
    body = TextField()


class Operator(BaseModel):
    """A cashier or manager who signs in with their number and PIN (``store.operators``)."""

    name = TextField(primary_key=True)
    number = IntegerField(unique=True)  # keyed at sign-in, 1-9999
    role = TextField()  # cashier | manager
    pin_mac = TextField(null=True)  # HMAC-SHA256(the terminal's PIN key, "number:PIN")
    pin_salt = TextField(null=True)  # a scrypt hash from before schema 3, until first sign-in
    pin_hash = TextField(null=True)
    failures = IntegerField(default=0)  # wrong PINs in a row
    locked_until_us = BigIntegerField(null=True)
    active = BooleanField(default=True)


class OperatorName(BaseModel):
    """The name an operator is greeted by at the till (``store.operators.set_operator``'s
    ``shown``: a person's name, Chinese or Latin), beside their id (``Operator.name``, what
    events and the audit carry). An operator with no row is greeted by their id. A terminal's
    table (schema 6): HQ's databases never use it."""

    name = TextField(primary_key=True)  # Operator.name
    shown = TextField()


class CardState(BaseModel):
    """What HQ last said about a card (frozen, retired and replaced, active again), applied from
    its signed member-state messages (``version`` is HQ's operation sequence; an older version
    never overwrites a newer one). A card with no row is active. At HQ the same table holds the
    authoritative state its member operations set."""

    card_hash = TextField(primary_key=True)
    state = TextField()  # active | frozen | retired
    reason = TextField(default="")  # why, in the words HQ's operator gave (shown at the till)
    replaced_by = TextField(null=True)  # retired: the card that carries the member on
    version = BigIntegerField()
    updated_us = BigIntegerField()


class Product(BaseModel):
    """The catalogue HQ pushes: what a scanned code or a keyed SKU sells as."""

    sku = TextField(primary_key=True)
    barcode = TextField(null=True, unique=True)
    name = TextField()
    category = TextField(default="")
    price_fen = BigIntegerField()


class HeldBundle(BaseModel):
    """The signed bundle a terminal holds for one scope (queried in ``held_bundles``, verified
    and applied by terminal.sync.bundle_store); replaced only by a verified higher version. A
    terminal's table: HQ's databases never use it."""

    scope = TextField(primary_key=True)
    version = IntegerField()
    issued_us = BigIntegerField()
    expires_us = BigIntegerField()
    wire = TextField()  # the message as received: verifiable again at any time
    applied_us = BigIntegerField()


MODELS: tuple[type[BaseModel], ...] = (
    Meta,
    Member,
    LedgerEntry,
    Lot,
    Allocation,
    Sale,
    SaleLine,
    Refund,
    RefundLine,
    Exchange,
    MemberDay,
    Outbox,
    Audit,
    DailyReport,
    Operator,
    Product,
    CardState,
)

APPEND_ONLY: tuple[type[BaseModel], ...] = (
    LedgerEntry,
    Allocation,
    Sale,
    SaleLine,
    Refund,
    RefundLine,
    Exchange,
    Audit,
    DailyReport,
)
