"""The printer's state a till's status carries as a code beside its words
(``ReceiptDesk.printer_state``, ``Status.printer_state``), from the simulated printer as the
driver sees it: paper out, offline, unplugged, receipts kept for a reprint, and back."""

from __future__ import annotations

from terminal.app.printing import ReceiptDesk
from terminal.core.configfile import load_section
from terminal.drivers.document import Document
from terminal.drivers.printer import PrinterConfig, PrinterStatus, open_printer


def receipt() -> Document:
    return Document().title("测试").columns("可乐", "7.00").cut()


def test_the_printers_code_follows_what_the_driver_knows() -> None:
    printer = open_printer(load_section(PrinterConfig, {}, "test [printer]"))
    desk = ReceiptDesk(printer, None, None)
    assert desk.printer_state == {"code": "absent", "waiting": 0}  # not opened yet
    assert printer.start()
    assert (desk.printer_state, desk.health) == ({"code": "ok", "waiting": 0}, "ok")
    printer.device.paper = "out"
    assert not printer.print_document(receipt()).printed
    assert (desk.printer_state, desk.health) == ({"code": "paper_out", "waiting": 1},
                                                 "1 receipts waiting")
    # A real printer's answer with its offline bit set (cover open); the simulated one stays
    # silent when offline, which the driver takes as "does not answer status".
    printer.last_status = PrinterStatus(False, "ok", False, "printer offline")
    assert desk.printer_state == {"code": "offline", "waiting": 1}
    printer.device.paper = "near_end"
    assert all(result.printed for result in printer.reprint_pending())
    assert desk.printer_state == {"code": "paper_low", "waiting": 0}
    simulated = printer.device
    simulated.connected = False  # unplugged: the receipt is kept
    assert not printer.print_document(receipt()).printed
    assert desk.printer_state == {"code": "absent", "waiting": 1}
    assert desk.health.startswith("absent (lost")  # the words stay as older HQs show them
    simulated.connected, simulated.paper = True, "ok"
    assert all(result.printed for result in printer.reprint_pending())
    assert desk.printer_state == {"code": "ok", "waiting": 0}
    printer.close()
