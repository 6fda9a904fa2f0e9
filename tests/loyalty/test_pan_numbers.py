"""The engine's side of PAN-shaped input (issue 16, break 10): the payment IIN ranges in use,
phone numbers that are payment card numbers, and messages that echo at most four digits."""

from __future__ import annotations

import pytest

from terminal.core.pan import is_payment_pan, luhn_valid
from terminal.loyalty.errors import InvalidInput, PaymentCardRefused, UnknownCard
from terminal.loyalty.operations import Registration
from terminal.loyalty.store import LedgerStore

from .conftest import at, register


def pan(prefix: str, length: int = 16) -> str:
    body = prefix + "0" * (length - len(prefix) - 1)
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


@pytest.mark.parametrize("prefix", ["2200", "2201", "2204", "8600", "9704", "9860", "9792",
                                    "2221", "2720", "34", "37", "4", "51", "55", "62", "81"])
def test_payment_iin_ranges_in_use_are_payment_cards(prefix: str) -> None:
    for length in (16, 19):
        assert is_payment_pan(pan(prefix, length))


@pytest.mark.parametrize("number", [pan("2206"), pan("8000"), pan("9999"), pan("70"),
                                    "8000123456", pan("2200", 11)])
def test_loyalty_numbers_are_not_payment_cards(number: str) -> None:
    assert not is_payment_pan(number)


def test_a_phone_number_that_is_a_payment_card_is_refused(store: LedgerStore) -> None:
    amex = "378282246310005"  # 15 digits: a valid length for a phone number
    with pytest.raises(PaymentCardRefused) as refused:
        register(store, "8000000001", phone=amex)
    assert "3782822" not in str(refused.value) and "0005" not in str(refused.value)
    with pytest.raises(PaymentCardRefused):
        register(store, "8000000001", phone="+" + amex)
    register(store, "8000000001", phone="13800000001")
    with pytest.raises(PaymentCardRefused):
        store.member_by_phone(amex, "manager", store.moment(at("2026-03-02 12:00")))


def test_refusals_echo_at_most_four_digits_of_a_phone(store: LedgerStore) -> None:
    with pytest.raises(InvalidInput) as bad:
        register(store, "8000000001", phone="1380000000123456789")
    assert "13800000" not in str(bad.value)
    register(store, "8000000001", phone="13800000001")
    with pytest.raises(UnknownCard) as unknown:
        store.member_by_phone("13900000009", "manager", store.moment(at("2026-03-02 12:00")))
    assert "1390000" not in str(unknown.value) and "0009" in str(unknown.value)


def test_an_unknown_long_card_is_named_by_its_last_four_digits(store: LedgerStore) -> None:
    with pytest.raises(UnknownCard) as unknown:
        store.member("80001234567890123", store.moment(at("2026-03-02 12:00")))
    assert "800012345" not in str(unknown.value) and "0123" in str(unknown.value)
    with pytest.raises(Exception) as again:
        register(store, "80001234567890123")
        store.register(Registration(card="80001234567890123"),
                       store.moment(at("2026-03-02 12:00")))
    assert "800012345" not in str(again.value)



def test_one_payment_card_refusal_for_the_domain_and_the_stripe_reader() -> None:
    from terminal.core.refusal import InputRefused, Refused
    from terminal.drivers import msr

    assert msr.PaymentCardRefused is PaymentCardRefused
    assert issubclass(PaymentCardRefused, Refused) and issubclass(PaymentCardRefused, InputRefused)
    with pytest.raises(PaymentCardRefused, match="payment card") as refused:
        msr.parse_swipe(";4111111111111111=2812?")
    assert refused.value.rule == "" and "4111" not in str(refused.value)
