"""One test per bad input: each gets its own message on the display and changes nothing."""

from __future__ import annotations

import pytest

from .conftest import TillBench

# (what the cashier does first, the bad input, words the message must carry)
CASES = {
    "wrong_pin": ("", "0000 enter", "PIN not recognised"),
    "key_while_signed_out": ("", "subtotal", "does nothing here"),
    "swipe_while_signed_out": ("", "s", "Sign in first"),
    "payment_card": ("1234 enter", "t %B4111111111111111^TEST/CARD^2812101?", "payment card"),
    "partial_swipe": ("1234 enter", "t ;80001234", "swipe again"),
    "garbled_scan": ("1234 enter", "b 6901234567890", "check digit"),
    "unknown_product_scan": ("1234 enter", "b 4006381333931", "Unknown product"),
    "unknown_product_keyed": ("1234 enter", "42 add", "Unknown product 42"),
    "amount_three_decimals": ("1234 enter", "1.234 dept1", "more than 2 decimals"),
    "amount_zero": ("1234 enter", "0 dept1", "above 0.00"),
    "amount_too_large": ("1234 enter", "200000 dept1", "over the limit"),
    "two_decimal_points": ("1234 enter", "1.2.3 dept1", "two decimal points"),
    "quantity_without_line": ("1234 enter", "3 quantity", "No item to change"),
    "quantity_zero": ("1234 enter\n5 dept1", "0 quantity", "quantity 0"),
    "void_missing_line": ("1234 enter\n5 dept1", "7 void", "line no. 7"),
    "void_nothing": ("1234 enter", "void", "Nothing to void"),
    "subtotal_without_items": ("1234 enter\ns", "subtotal", "No items"),
    "redeem_below_minimum": ("1234 enter\ns\n90 dept1\nsubtotal", "200 redeem", "min_points"),
    "redeem_off_step": ("1234 enter\ns\n90 dept1\nsubtotal", "550 redeem", "step_points"),
    "redeem_over_half": ("1234 enter\ns\n12 dept1\nsubtotal", "1000 redeem", "max_percent"),
    "redeem_anonymous": ("1234 enter\n90 dept1\nsubtotal", "500 redeem", "No member"),
    "cash_short": ("1234 enter\n90 dept1\nsubtotal", "50 cash", "less than the 90.00 due"),
    "refund_unknown_sale": ("1234 enter\nrefund\n9999 enter", "77 enter", "not recorded"),
    "refund_during_sale": ("1234 enter\n5 dept1", "refund", "Finish or void"),
    "manager_pin_wrong": ("1234 enter\n5 dept1\nvoid", "1234 enter", "not a manager PIN"),
    "sign_out_during_sale": ("1234 enter\n5 dept1", "sign", "before signing out"),
    "reprint_nothing": ("1234 enter", "reprint", "No receipt printed yet"),
    "exchange_without_member": ("1234 enter", "redeem", "Swipe the member card first"),
    "exchange_too_few_points": ("1234 enter\ns\nredeem", "1 enter", "more than the balance"),
    "register_bad_phone": ("1234 enter\ns 8000999999", "12 enter", "phone"),
    "register_taken_phone": ("1234 enter\ns 8000999999", "13800000001 enter",
                             "already registered"),
    "department_without_amount": ("1234 enter", "KEY_F12", "key the amount first"),
    "card_with_keyed_amount": ("1234 enter\n5 dept1\nsubtotal", "9 card", "clear the keyed"),
}


def _state(bench: TillBench) -> tuple[object, ...]:
    till = bench.till
    return (till.mode, list(till.draft.lines), till.draft.card, till.redeem_points,
            bench.balance(), len(bench.receipts))


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_refused_and_changes_nothing(bench: TillBench, name: str) -> None:
    before_lines, bad, words = CASES[name]
    bench.do(*[line for line in before_lines.split("\n") if line])
    assert bench.till.refused is None, bench.till.refused
    before = _state(bench)
    bench.do(bad)
    assert bench.till.refused is not None and words.lower() in bench.till.refused.lower()
    assert any(bench.pole), "the refusal is on the pole display"
    assert _state(bench)[1:] == before[1:]
