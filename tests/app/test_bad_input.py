"""One test per bad input: each gets its own message on the display and changes nothing."""

from __future__ import annotations

import pytest

from .conftest import TillBench

CASHIER, MANAGER = "1 enter 1234 enter", "2 enter 9999 enter"  # number, then PIN
# (what the cashier does first, the bad input, words the message must carry)
CASES = {
    "wrong_pin": ("1 enter", "0000 enter", "PIN not recognised"),
    "unknown_operator": ("", "7 enter", "Operator 7 is not known"),
    "operator_zero": ("", "0 enter", "operator no. 0"),
    "key_while_signed_out": ("", "subtotal", "does nothing here"),
    "swipe_while_signed_out": ("", "s", "Sign in first"),
    "payment_card": (CASHIER, "t %B4111111111111111^TEST/CARD^2812101?", "payment card"),
    "partial_swipe": (CASHIER, "t ;80001234", "swipe again"),
    "garbled_scan": (CASHIER, "b 6901234567890", "check digit"),
    "unknown_product_scan": (CASHIER, "b 4006381333931", "Unknown product"),
    "unknown_product_keyed": (CASHIER, "42 add", "Unknown product 42"),
    "amount_three_decimals": (CASHIER, "1.234 dept1", "more than 2 decimals"),
    "amount_zero": (CASHIER, "0 dept1", "above 0.00"),
    "amount_too_large": (CASHIER, "200000 dept1", "over the limit"),
    "two_decimal_points": (CASHIER, "1.2.3 dept1", "two decimal points"),
    "quantity_without_line": (CASHIER, "3 quantity", "No item to change"),
    "quantity_zero": (f"{CASHIER}\n5 dept1", "0 quantity", "quantity 0"),
    "void_missing_line": (f"{CASHIER}\n5 dept1", "7 void", "line no. 7"),
    "void_nothing": (CASHIER, "void", "Nothing to void"),
    "subtotal_without_items": (f"{CASHIER}\ns", "subtotal", "No items"),
    "redeem_below_minimum": (f"{CASHIER}\ns\n90 dept1\nsubtotal", "200 redeem", "min_points"),
    "redeem_off_step": (f"{CASHIER}\ns\n90 dept1\nsubtotal", "550 redeem", "step_points"),
    "redeem_over_half": (f"{CASHIER}\ns\n12 dept1\nsubtotal", "1000 redeem", "max_percent"),
    "redeem_anonymous": (f"{CASHIER}\n90 dept1\nsubtotal", "500 redeem", "No member"),
    "cash_short": (f"{CASHIER}\n90 dept1\nsubtotal", "50 cash", "less than the 90.00 due"),
    "refund_unknown_sale": (f"{CASHIER}\nrefund\n{MANAGER}", "77 enter", "not recorded"),
    "refund_during_sale": (f"{CASHIER}\n5 dept1", "refund", "Finish or void"),
    "manager_pin_wrong": (f"{CASHIER}\n5 dept1\nvoid", CASHIER, "not a manager PIN"),
    "sign_out_during_sale": (f"{CASHIER}\n5 dept1", "sign", "before signing out"),
    "reprint_nothing": (CASHIER, "reprint", "No receipt printed yet"),
    "exchange_without_member": (CASHIER, "redeem", "Swipe the member card first"),
    "exchange_too_few_points": (f"{CASHIER}\ns\nredeem", "1 enter", "more than the balance"),
    "register_bad_phone": (f"{CASHIER}\ns 8000999999", "12 enter", "phone"),
    "register_taken_phone": (f"{CASHIER}\ns 8000999999", "13800000001 enter",
                             "already registered"),
    "department_without_amount": (CASHIER, "KEY_F12", "key the amount first"),
    "card_with_keyed_amount": (f"{CASHIER}\n5 dept1\nsubtotal", "9 card", "clear the keyed"),
}


def _state(bench: TillBench) -> dict[str, object]:
    """Everything a refused input must leave as it was: the till's mode and sale, what it holds
    or waits for, the member's balance and the receipts. Not the keyed digits or the display."""
    till = bench.till
    return {
        "mode": till.mode, "lines": list(till.draft.lines), "card": till.draft.card,
        "member": till.draft.member, "quote": till.quote, "redeem_points": till.redeem_points,
        "hold": till.hold, "sale_id": till.sale_id, "pending": till.pending,
        "operator": till.operator, "refund_sale": till.refund_sale,
        "refund_lines": list(till.refund_lines), "units": till.units,
        "balance": bench.balance(), "receipts": len(bench.receipts),
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_refused_and_changes_nothing(bench: TillBench, name: str) -> None:
    before_lines, bad, words = CASES[name]
    bench.do(*[line for line in before_lines.split("\n") if line])
    assert bench.till.refused is None, bench.till.refused
    before = _state(bench)
    bench.do(bad)
    assert bench.till.refused is not None and words.lower() in bench.till.refused.lower()
    assert any(bench.pole), "the refusal is on the pole display"
    assert _state(bench) == before
