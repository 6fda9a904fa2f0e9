"""Requests the till makes of the ledger, and what it answers: plain data, no storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from terminal.loyalty.earning import EarnSteps
from terminal.loyalty.pricing import Line

TENDERS = ("cash", "card", "other")


@dataclass(frozen=True)
class SaleRequest:
    id: str
    lines: list[Line]
    card: str | None = None  # None: an anonymous sale, recorded, no points
    tender: str = "cash"
    redeem_points: int = 0
    operator: str = ""


@dataclass(frozen=True)
class Registration:
    card: str
    name: str = ""
    phone: str | None = None
    birthday: date | None = None
    referrer_card: str | None = None
    operator: str = ""


@dataclass(frozen=True)
class Expiring:
    points: int
    expires_at: datetime


@dataclass(frozen=True)
class Balance:
    """What the till shows the moment a card is read: one indexed read, no history."""

    name: str
    tier: str
    balance: int
    debt: int


@dataclass(frozen=True)
class MemberView:
    id: str
    card_last4: str
    name: str
    phone_last4: str
    birthday: date | None
    tier: str
    balance: int
    debt: int
    qualifying_spend_fen: int
    next_tier: str | None
    spend_to_next_fen: int | None
    expiring: list[Expiring] = field(default_factory=list)


@dataclass(frozen=True)
class Quote:
    """What the till shows at subtotal, before the cashier keys a redemption."""

    list_fen: int
    discount_fen: int
    due_fen: int
    balance: int
    max_redeem_points: int
    max_deduction_fen: int


@dataclass(frozen=True)
class SaleResult:
    id: str
    seq: int
    list_fen: int
    discount_fen: int
    deduction_fen: int
    paid_fen: int
    points_earned: int
    points_redeemed: int
    why: str
    promotion: str | None
    birthday: bool
    line_paid_fen: list[int]
    member: MemberView | None
    earned: EarnSteps | None = None  # how the points were earned, for the receipt

@dataclass(frozen=True)
class RefundResult:
    id: str
    sale: str
    kind: str
    refunded_fen: int
    points_reversed: int
    points_restored: int
    lines: list[tuple[str, int, int]]  # (sku, units, fen)
    member: MemberView | None
    repeated: bool = False  # True when this refund id was already recorded: nothing changed


@dataclass(frozen=True)
class ExchangeResult:
    id: str
    sku: str
    name: str
    qty: int
    points: int
    member: MemberView


@dataclass(frozen=True)
class ExpiryResult:
    lots: int
    points: int
    members: int
    as_of: datetime | None
    skipped: str = ""
