"""Payment card numbers (PANs): the Luhn rule and the payment IIN ranges.

Both the stripe reader's parser (:mod:`terminal.drivers.msr`) and the domain's card check
(:mod:`terminal.loyalty.cards`) refuse anything that looks like a payment card (DESIGN promise 9).
"""

from __future__ import annotations

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
