"""Card numbers: what a loyalty card may look like, payment cards refused, keyed hashing.

A loyalty card number is stored only as a keyed hash (HMAC-SHA256 with the chain's card key), so
the database never holds it in clear and HQ can still match a card across stores. A number that
looks like a payment card (a Luhn-valid PAN in a payment range) is refused and never stored or
logged (DESIGN promise 9).
"""

from __future__ import annotations

import hmac
import re

from terminal.loyalty.errors import InvalidInput, PaymentCardRefused

CARD_PATTERN = re.compile(r"[0-9A-Za-z]{4,32}")

# Payment IIN ranges (ISO/IEC 7812 major industry identifiers 1-6 as card schemes use them):
# UATP, Mastercard 2-series, Amex/Diners/JCB, Visa, Mastercard/Maestro, Discover/UnionPay/Maestro/
# RuPay, and UnionPay's 81 series. Loyalty schemes sit under 7, 80 and 9 or outside the Luhn rule.
PAYMENT_IIN_RANGES: tuple[tuple[str, str], ...] = (
    ("1", "1"),
    ("2221", "2720"),
    ("30", "39"),
    ("4", "4"),
    ("5", "5"),
    ("6", "6"),
    ("81", "81"),
)
_PAN_LENGTHS = range(12, 20)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def is_payment_pan(digits: str) -> bool:
    """A Luhn-valid number of a payment length whose prefix lies in a payment IIN range."""
    if len(digits) not in _PAN_LENGTHS or not digits.isascii() or not digits.isdigit():
        return False
    in_range = any(low <= digits[: len(low)] <= high for low, high in PAYMENT_IIN_RANGES)
    return in_range and luhn_valid(digits)


def check_card(number: object) -> str:
    """Return a usable loyalty card number or refuse it (the message never echoes a PAN)."""
    if not isinstance(number, str) or not number:
        raise InvalidInput("no card number was given", "card")
    if is_payment_pan(number):
        raise PaymentCardRefused("this is a payment card, not a member card", "card")
    if not CARD_PATTERN.fullmatch(number):
        raise InvalidInput("a card number is 4 to 32 letters or digits", "card")
    return number


def card_hash(key: bytes, number: str) -> str:
    return hmac.digest(key, b"card:" + number.encode(), "sha256").hex()


def phone_hash(key: bytes, phone: str) -> str:
    return hmac.digest(key, b"phone:" + phone.encode(), "sha256").hex()

