"""Payment card numbers (PANs): the Luhn rule and the payment IIN ranges.

Both the stripe reader's parser (:mod:`terminal.drivers.msr`) and the domain's card check
(:mod:`terminal.loyalty.cards`) refuse anything that looks like a payment card (DESIGN promise 9),
both with the one :class:`PaymentCardRefused`.
"""

from __future__ import annotations

from terminal.core.refusal import InputRefused

# Payment IIN ranges in use (ISO/IEC 7812 issuer identification numbers as the card schemes
# publish them): UATP; Mir 2200-2204 and Borica 2205; Mastercard's 2-series; Amex, Diners, JCB
# and the rest of 3; Visa; Mastercard and Maestro; Discover, UnionPay, Maestro, RuPay and the
# rest of 6; UnionPay's 81 and RuPay's 82; UzCard 8600; Belkart 9112; NAPAS 9704; Troy 9792;
# Humo 9860. Loyalty schemes sit elsewhere under 7, 8 and 9, or outside the Luhn rule.
PAYMENT_IIN_RANGES: tuple[tuple[str, str], ...] = (
    ("1", "1"),
    ("2200", "2205"),
    ("2221", "2720"),
    ("30", "39"),
    ("4", "4"),
    ("5", "5"),
    ("6", "6"),
    ("81", "82"),
    ("8600", "8600"),
    ("9112", "9112"),
    ("9704", "9704"),
    ("9792", "9792"),
    ("9860", "9860"),
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


class PaymentCardRefused(InputRefused):
    """A payment card number was offered as a member's card (or phone) number, swiped or keyed.
    The message never carries the number."""

    def __init__(self, message: str = "This is a payment card, not a member card: please use the "
                                      "member card", rule: str = "") -> None:
        super().__init__(message, rule)


# Lengths of the retail barcodes a till scans (EAN-8, UPC-A, EAN-13): a Chinese EAN-13 starts
# 69 and passes the Luhn check one time in ten, yet it is a product code to show in full.
_RETAIL_LENGTHS = (8, 12, 13)


def shown_code(code: str) -> str:
    """A code keyed or scanned, as a message may repeat it: a payment card number only by its
    last four digits (a retail barcode's length excepted)."""
    if len(code) not in _RETAIL_LENGTHS and is_payment_pan(code):
        return "****" + code[-4:]
    return code
