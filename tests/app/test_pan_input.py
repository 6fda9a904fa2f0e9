"""PAN-shaped input at the till: payment cards of every IIN range in use are refused as member
cards, a payment card number is refused as a phone number, and no refusal shows more than the
last four digits on the pole display (issue 16, break 10)."""

from __future__ import annotations

import re

import pytest

from terminal.core.pan import luhn_valid

from .conftest import TillBench


def pan(prefix: str, length: int = 16) -> str:
    """The Luhn-valid number of ``length`` digits starting with ``prefix``."""
    body = prefix + "0" * (length - len(prefix) - 1)
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


AMEX = "378282246310005"  # 15 digits, Luhn-valid: a phone number's length too
CARDS = {"MIR": pan("2200"), "MIR 2204": pan("2204", 19), "UzCard": pan("8600"),
         "NAPAS": pan("9704", 19), "Humo": pan("9860"), "Visa": "4111111111111111",
         "Amex": AMEX}


def _echoes(bench: TillBench, number: str) -> list[str]:
    """Runs of five or more of the number's digits on the pole or in the last refusal."""
    shown = " ".join([*bench.pole, bench.till.refused or ""])
    return [run for run in re.findall(r"\d{5,}", shown) if run in number]


@pytest.mark.parametrize("scheme", sorted(CARDS))
def test_payment_cards_keyed_as_member_numbers_are_refused_unechoed(cashier: TillBench,
                                                                    scheme: str) -> None:
    number = CARDS[scheme]
    cashier.do(f"{number} member")
    assert "payment card" in (cashier.till.refused or "")
    assert cashier.till.draft.card is None
    assert _echoes(cashier, number) == []


@pytest.mark.parametrize("scheme", ["MIR", "UzCard", "NAPAS"])
def test_payment_cards_swiped_are_refused_unechoed(cashier: TillBench, scheme: str) -> None:
    number = CARDS[scheme]
    cashier.do(f"s {number}")
    assert cashier.till.draft.card is None
    assert _echoes(cashier, number) == []


def test_a_payment_card_number_is_no_phone_number(cashier: TillBench) -> None:
    cashier.do("s 8000999999")  # an unknown card: the till asks for a phone number
    cashier.do(f"{AMEX} enter")
    assert "payment card" in (cashier.till.refused or "")
    assert _echoes(cashier, AMEX) == []
    cashier.do("13900000002 enter")  # a real phone number still registers the card
    assert cashier.balance("8000999999") == 100


def test_a_phone_lookup_by_a_payment_card_number_is_refused_unechoed(cashier: TillBench) -> None:
    cashier.do(f"{AMEX} balance", "2 enter 9999 enter")
    assert "payment card" in (cashier.till.refused or "")
    assert _echoes(cashier, AMEX) == []


@pytest.mark.parametrize("scheme", ["MIR", "UzCard", "Visa"])
def test_a_payment_card_number_keyed_or_scanned_as_a_product_is_not_echoed(
        cashier: TillBench, scheme: str) -> None:
    number = CARDS[scheme]
    cashier.do(f"{number} add")
    assert f"****{number[-4:]}" in (cashier.till.refused or "")
    assert _echoes(cashier, number) == []
    cashier.do(f"b {number}")  # a barcode on the card: neither a product nor a member card
    assert _echoes(cashier, number) == []
    cashier.do(f"{number} price_check")
    assert _echoes(cashier, number) == []
