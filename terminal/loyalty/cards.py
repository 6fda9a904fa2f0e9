"""Card numbers: what a loyalty card may look like, payment cards refused, keyed hashing.

A loyalty card number is stored only as a keyed hash (HMAC-SHA256 with the chain's card key), so
the database never holds it in clear and HQ can still match a card across stores. A number that
looks like a payment card (a Luhn-valid PAN in a payment range) is refused and never stored or
logged (DESIGN promise 9).
"""

from __future__ import annotations

import hmac
import re

from terminal.core.pan import is_payment_pan
from terminal.loyalty.errors import InvalidInput, PaymentCardRefused

CARD_PATTERN = re.compile(r"[0-9A-Za-z]{4,32}")


def check_card(number: object) -> str:
    """Return a usable loyalty card number or refuse it (the message never echoes a PAN)."""
    if not isinstance(number, str) or not number:
        raise InvalidInput("no card number was given", "card", why="card.missing")
    if is_payment_pan(number):
        raise PaymentCardRefused("this is a payment card, not a member card", "card")
    if not CARD_PATTERN.fullmatch(number):
        raise InvalidInput("a card number is 4 to 32 letters or digits", "card", why="card.form")
    return number


def card_hash(key: bytes, number: str) -> str:
    return hmac.digest(key, b"card:" + number.encode(), "sha256").hex()


def phone_hash(key: bytes, phone: str) -> str:
    return hmac.digest(key, b"phone:" + phone.encode(), "sha256").hex()

