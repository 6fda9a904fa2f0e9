"""Every cashier flow on simulated hardware, with golden receipts and pole lines."""

from __future__ import annotations

import json

from terminal.loyalty.store.eod import reports_for

from .conftest import TillBench, check_golden


def outbox_events(bench: TillBench, kind: str) -> list[dict]:
    """The till's outbox events of ``kind``, oldest first, as they are published."""
    store = bench.terminal.ledger.store
    rows = bench.runner.run(bench.terminal.ledger.executor.run(
        lambda: store.db.execute_sql("SELECT payload FROM outbox WHERE kind = ? ORDER BY seq",
                                     (kind,)).fetchall()))
    return [json.loads(payload) for (payload,) in rows]


def test_sign_in_and_out(bench: TillBench) -> None:
    assert bench.till.mode == "locked"
    bench.do("1 enter 1234 enter")
    assert bench.till.operator.name == "cashier"
    assert bench.pole[0] == "Signed in"
    bench.do("sign")
    assert bench.till.operator is None and bench.till.mode == "locked"


def test_member_sale_with_redemption(cashier: TillBench) -> None:
    displays = []
    for line in ("s", "b 6900000000014", "2 quantity", "40 dept2", "subtotal", "500 redeem",
                 "100 cash"):
        cashier.do(line)
        displays.append(f"{line:<16} | {cashier.pole[0]:<20} | {cashier.pole[1]}")
    check_golden("member_sale_display.txt", "\n".join(displays) + "\n")
    assert cashier.till.refused is None
    (receipt,) = cashier.receipts
    check_golden("member_sale_receipt.txt", receipt)
    # 1100 + earned on (25 fresh x2 + 40 household x1.5, less the 5 yuan deduction) - 500
    assert "-500" in receipt and "S001-T01-0001" in receipt
    assert cashier.balance() == 1100 - 500 + int(receipt.split("+")[1].split()[0])
    assert cashier.terminal.desk.printer.captured.count(b"\x1bp") == 1  # the drawer opened


def test_card_tender_needs_no_change(cashier: TillBench) -> None:
    cashier.do("12.5 dept1", "card")
    assert cashier.pole == ("PAID           12.50", "Thank you")
    assert "银行卡 Card" in cashier.receipts[0]
    assert b"\x1bp" not in cashier.terminal.desk.printer.captured


def test_keyed_product_quantity_and_line_removal(cashier: TillBench) -> None:
    cashier.do("1001 add", "6901234567892 enter", "3 quantity")
    assert [line.qty for line in cashier.till.draft.lines] == [1, 3]
    assert cashier.pole == ("3x Coca-Cola   10.50", "TOTAL          18.50")
    cashier.do("1 void")
    assert [line.sku for line in cashier.till.draft.lines] == ["6901234567892"]
    assert cashier.pole[1] == "TOTAL          10.50"


def test_keyed_member_number_and_statement(cashier: TillBench) -> None:
    cashier.do("8000123456 member")
    assert cashier.pole == ("Hi WangXiaoMing", "Points 1100 member")  # 王小明 in pinyin
    cashier.do("balance")
    assert "积分明细 Statement" in cashier.receipts[0]
    assert "+1000" in cashier.receipts[0]


def test_unknown_card_registers_with_bonus(cashier: TillBench) -> None:
    cashier.do("s 8000999999")
    assert cashier.till.mode == "register"
    cashier.do("13900000002 enter")
    assert cashier.balance("8000999999") == 100
    # Member care's question, on the pole for the customer (ASCII here) and the cashier.
    assert cashier.till.mode == "consent"
    assert cashier.pole == ("Member SMS offers?", "1=yes 0=no, Enter")
    assert cashier.till.message.startswith("Registered: 100 points welcome bonus.")
    cashier.do("1 enter")
    assert cashier.till.mode == "ready" and cashier.till.refused is None
    assert cashier.pole == ("SMS offers: yes", "reply TD to stop")
    (consent,) = outbox_events(cashier, "consent")
    assert consent["body"]["granted"] is True and consent["body"]["channel"] == "sms"
    assert consent["body"]["address"] == "13900000002"
    assert consent["body"]["operator"] == "cashier"
    register = outbox_events(cashier, "register")[-1]  # after the demo's own members
    assert consent["body"]["member"] == register["body"]["member"]
    assert consent["body"]["card_hash"] == register["body"]["card_hash"]
    assert consent["seq"] > register["seq"]
    # The member is the sale's, as before the question.
    cashier.do("b 6900000000014", "cash")
    assert cashier.till.refused is None and cashier.balance("8000999999") > 100


def test_the_consent_answer_no_a_wrong_key_and_skipping(cashier: TillBench) -> None:
    cashier.do("s 8000999999", "13900000002 enter", "5 enter")
    assert cashier.till.mode == "consent"  # only 1 or 0 answers
    assert cashier.till.refused.startswith("The customer's answer: 1 = yes")
    assert cashier.pole == ("Key 1 = yes", "or 0 = no, Enter")
    cashier.do("enter")
    assert cashier.till.mode == "consent" and outbox_events(cashier, "consent") == []
    cashier.do("0 enter")
    assert cashier.till.mode == "ready" and cashier.pole == ("Noted: no SMS", "offers will be sent")
    (consent,) = outbox_events(cashier, "consent")
    assert consent["body"]["granted"] is False and consent["body"].get("address") is None
    # Clear skips the question: nothing is sent, and no answer is no consent at HQ.
    cashier.do("s 8000888888", "13900000003 enter", "clear")
    assert cashier.till.mode == "ready" and cashier.till.care_phone is None
    assert len(outbox_events(cashier, "consent")) == 1
    assert cashier.balance("8000888888") == 100


def test_the_question_in_chinese_on_a_gb18030_pole(tmp_path, examples) -> None:
    bench = TillBench(tmp_path, examples, {"pole": {"backend": "pty", "charset": "gb18030"}})
    try:
        bench.do("1 enter 1234 enter", "s 8000999999", "13900000002 enter")
        assert bench.pole == ("接收会员关怀短信？", "按1同意 按0不同意")
        bench.do("1 enter")
        assert bench.pole == ("已同意接收短信", "回复TD可退订")
    finally:
        bench.close()


def test_refund_whole_and_by_line_with_manager(cashier: TillBench) -> None:
    cashier.do("s", "b 6900000000014", "b 6900000000021", "cash")
    cashier.do("refund")
    assert cashier.till.mode == "manager"
    cashier.do("2 enter 9999 enter", "1 enter")  # manager PIN, then sale no. 1
    assert cashier.till.mode == "refund_lines"
    cashier.do("2 enter")  # line 2: the detergent
    refund = cashier.receipts[-1]
    check_golden("refund_line_receipt.txt", refund)
    assert "40.00" in refund
    # the rest, by its barcode
    cashier.do("refund", "2 enter 9999 enter", "b S001-T01-0001", "enter")
    assert "12.50" in cashier.receipts[-1]
    printed = len(cashier.receipts)
    cashier.do("refund", "2 enter 9999 enter", "1 enter", "enter")
    assert "already fully refunded" in (cashier.till.refused or "")
    assert len(cashier.receipts) == printed  # and no refund slip


def test_void_sale_in_progress_needs_a_manager(cashier: TillBench) -> None:
    cashier.do("b 6901234567892", "void")
    assert cashier.till.mode == "manager"
    cashier.do("1 enter 1234 enter")  # the cashier's own PIN is not a manager's
    assert "not a manager PIN" in cashier.till.refused
    assert len(cashier.till.draft.lines) == 1
    cashier.do("2 enter 9999 enter")
    assert cashier.till.draft.lines == [] and cashier.pole[0].startswith("Sale voided")


def test_reprint_last_and_older_receipt(cashier: TillBench) -> None:
    cashier.do("5 dept1", "cash", "6 dept1", "cash", "reprint")
    assert cashier.receipts[-1].startswith("       *** 重印 COPY ***")
    assert "S001-T01-0002" in cashier.receipts[-1]
    cashier.do("1 reprint")
    assert cashier.till.mode == "manager"
    cashier.do("2 enter 9999 enter")
    assert "6.00" not in cashier.receipts[-1] and "S001-T01-0001" in cashier.receipts[-1]


def test_phone_lookup_needs_a_manager(cashier: TillBench) -> None:
    cashier.do("13800000001 balance")
    assert cashier.till.mode == "manager"
    cashier.do("2 enter 9999 enter")
    assert cashier.pole == ("Member ****3456", "Points 1100 member")


def test_goods_exchange(cashier: TillBench) -> None:
    cashier.do("s", "discount", "2 enter 9999 enter", "2000 enter")  # adjust +2000 first
    assert cashier.balance() == 3100
    cashier.do("redeem", "1 enter")
    assert cashier.balance() == 100
    assert "折叠伞" in cashier.receipts[-1]


def test_manual_adjustment_takes_points_off(cashier: TillBench) -> None:
    cashier.do("s", "discount", "2 enter 9999 enter", "100 discount")
    assert cashier.balance() == 1000
    assert "-100" in cashier.receipts[-1]


def test_x_and_z_reports_are_printed_and_stored(cashier: TillBench) -> None:
    cashier.do("12.5 dept1", "cash", "balance", "2 enter 9999 enter")
    x_report = cashier.receipts[-1]
    check_golden("x_report.txt", x_report)
    cashier.do("subtotal", "2 enter 9999 enter", "enter")
    assert "Z report" in cashier.receipts[-1]
    cashier.do("subtotal", "2 enter 9999 enter", "enter")
    assert "already printed" in cashier.till.refused
    kinds = cashier.runner.run(cashier.terminal.ledger.executor.run(
        reports_for, cashier.now.date()))
    assert [r.kind for r in kinds] == ["X", "Z"]


def test_printer_out_of_paper_keeps_the_receipt(cashier: TillBench) -> None:
    cashier.do("5 dept1")
    cashier.terminal.desk.printer.device.paper = "out"
    cashier.do("cash")
    assert cashier.till.mode == "ready" and cashier.till.draft.lines == []
    assert "out of paper" in cashier.till.message
    # The customer's change stays up; the second line tells the cashier what to do.
    assert cashier.pole == ("CHANGE          0.00", "Receipt kept:Reprint")
    assert cashier.terminal.desk.pending == 1
    cashier.terminal.desk.printer.device.paper = "ok"
    cashier.do("reprint")
    assert cashier.terminal.desk.pending == 0 and cashier.receipts[-1]


def test_price_check_adds_nothing(cashier: TillBench) -> None:
    cashier.do("price_check", "b 6901234567892")
    assert cashier.pole == ("Coca-Cola", "PRICE           3.50")
    assert cashier.till.draft.lines == []
