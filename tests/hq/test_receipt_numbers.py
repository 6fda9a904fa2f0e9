"""Refunds and voids are numbered per terminal (S001-T01-R0001): printed with their own Code 128,
reprinted at the till by that number, carried by the event, and found at HQ by it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from terminal.drivers.escpos_paper import preview
from terminal.hq import cli as hq_cli
from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import open_hq_database
from terminal.hq.receipts import refund_by_number
from terminal.loyalty.store.models import Outbox
from terminal.protocol.messages import Event
from tests.app.conftest import TillBench
from tests.drivers.golden_util import check_image

CARD_KEY = b"test-card-key-0123456789abcdef"


@pytest.fixture
def till(tmp_path: Path, examples: Path):
    bench = TillBench(tmp_path, examples)
    bench.do("1 enter 1234 enter")
    yield bench
    bench.close()


def printed_codes(till: TillBench) -> list[str]:
    """The Code 128 barcodes on the paper, read from the bytes the printer was sent."""
    paper = preview(till.terminal.desk.printer.captured, 384)
    return [code.data for code in paper.codes if code.kind == "CODE128"]


def test_refunds_and_voids_are_numbered_printed_reprinted_and_found_at_hq(
        till: TillBench, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    till.do("s", "b 6900000000014", "b 6900000000021", "cash")  # sale 1: two lines
    till.do("12.5 dept1", "cash")  # sale 2
    till.do("refund", "2 enter 9999 enter", "1 enter", "2 enter")  # sale 1, line 2
    captured = till.terminal.desk.printer.captured
    # The refund receipt as printed: a picture drawn from the bytes the printer was sent.
    check_image("refund_receipt_58mm.png",
                preview(captured[captured.rindex(b"\x1b@"):], 384).image())
    till.do("refund", "2 enter 9999 enter", "2 enter", "void")  # sale 2, voided
    first, second = till.receipts[-2:]
    assert "退货 Refund S001-T01-R0001" in first and "原销售 Sale S001-T01-0001" in first
    assert "撤销 Void S001-T01-R0002" in second and "原销售 Sale S001-T01-0002" in second
    assert printed_codes(till)[-2:] == ["S001-T01-R0001", "S001-T01-R0002"]

    # At the till: "." and the number, then Reprint (with a manager), reprints that receipt.
    till.do(".1 reprint", "2 enter 9999 enter")
    assert till.receipts[-1].lstrip().startswith("*** 重印 COPY ***")
    assert "S001-T01-R0001" in till.receipts[-1]
    assert printed_codes(till)[-1] == "S001-T01-R0001"
    till.do(".9 reprint", "2 enter 9999 enter")
    assert till.till.refused == "No receipt kept for S001-T01-R0009"

    # The events carry the numbers; HQ records them and finds each by its number.
    rows = till.runner.run(till.terminal.ledger._run(
        lambda: [(r.kind, r.payload) for r in Outbox.select().order_by(Outbox.seq)]))
    events = [Event.from_json(payload) for _kind, payload in rows]
    assert [e.body["refund"] for e in events if e.kind in ("refund", "void")] == [
        "S001-T01-R0001", "S001-T01-R0002"]
    chain = ChainLedger(open_hq_database(str(tmp_path / "hq.db")), till.terminal.rules,
                        CARD_KEY)
    try:
        chain.thread.call(chain.apply, events)
        found = chain.thread.call(lambda: [
            (r.kind, r.refunded_fen) if (r := refund_by_number(n)) else None
            for n in ("S001-T01-R0001", "S001-T01-R0002", "S001-T01-R0003")])
        assert found == [("refund", 4000), ("void", 1250), None]
        with pytest.raises(ValueError, match="not a receipt number"):
            chain.thread.call(refund_by_number, "S001%")
    finally:
        chain.close()
    # And from HQ's command line, as a person at HQ asks for it.
    hq_db = str(tmp_path / "hq.db")
    assert hq_cli.main(["receipt", "S001-T01-R0002", "--db", hq_db]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["kind"], shown["refunded_fen"]) == ("void", 1250)
    assert hq_cli.main(["receipt", "S001-T01-R0003", "--db", hq_db]) == 1
    assert "HQ has no refund or void S001-T01-R0003" in capsys.readouterr().err
    assert hq_cli.main(["receipt", "x%", "--db", hq_db]) == 2
    assert json.loads(rows[-1][1])["body"]["refund"] == "S001-T01-R0002"
