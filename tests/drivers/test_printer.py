from __future__ import annotations

from pathlib import Path

import pytest

from terminal.core.configfile import ConfigError, load_section
from terminal.drivers.document import Document, render_escpos
from terminal.drivers.drawer import CashDrawer, DrawerConfig, DrawerError
from terminal.drivers.printer import Printer, PrinterConfig, open_printer


def receipt() -> Document:
    return Document().title("测试").columns("可乐", "7.00").cut()


def started(**values: object) -> Printer:
    printer = open_printer(load_section(PrinterConfig, values, "test [printer]"))
    assert printer.start()
    return printer


def test_dummy_prints_exactly_the_rendered_bytes() -> None:
    printer = started(paper_mm=58)
    result = printer.print_document(receipt())
    assert result.printed and result.job == 1
    assert printer.captured.endswith(render_escpos(receipt(), 32, "gb18030"))
    assert printer.status().paper == "ok" and printer.status().online


@pytest.mark.parametrize(
    ("paper", "online", "expected"),
    [("near_end", True, ("near_end", True)), ("out", True, ("out", True)),
     ("ok", False, ("unknown", None))],
)
def test_status_read_back(paper: str, online: bool, expected: tuple) -> None:
    printer = started()
    printer.device.paper, printer.device.online = paper, online
    status = printer.status()
    assert (status.paper, status.online) == expected


def test_out_of_paper_keeps_receipt_for_reprint() -> None:
    printer = started()
    printer.device.paper = "out"
    before = printer.captured
    result = printer.print_document(receipt())
    assert not result.printed and "out of paper: receipt kept" in result.message
    assert [job for job, _doc in printer.pending] == [1]
    assert render_escpos(receipt()) not in printer.captured[len(before):]
    printer.device.paper = "ok"
    assert [r.printed for r in printer.reprint_pending()] == [True]
    assert not printer.pending and printer.captured.endswith(render_escpos(receipt()))


def test_unplugged_printer_keeps_receipt_and_reports_fix() -> None:
    printer = started()
    printer.device.connected = False
    result = printer.print_document(receipt())
    assert not result.printed and printer.pending
    assert "lost" in printer.last_error


def test_unreachable_network_printer_is_reported_not_raised() -> None:
    printer = open_printer(PrinterConfig(backend="network", host="127.0.0.1", port=9, timeout=0.2))
    assert not printer.start()
    assert "network printer absent (cannot open" in printer.last_error
    assert "nc -zv 127.0.0.1 9" in printer.fix_hint()
    assert not printer.print_document(receipt()).printed and len(printer.pending) == 1


def test_file_backend_writes_bytes_and_has_unknown_status(tmp_path: Path) -> None:
    target = tmp_path / "lp0"
    target.touch()
    printer = started(backend="file", file_path=str(target))
    assert printer.print_document(receipt()).printed
    printer.close()
    assert target.read_bytes() == render_escpos(receipt())
    assert printer.status().paper == "unknown"


def test_drawer_kick_bytes_pin_and_pulse() -> None:
    printer = started()
    CashDrawer(DrawerConfig(pin=5, pulse_ms=120), printer).kick()
    assert printer.captured.endswith(b"\x1bp\x01\x3c\x78")
    printer.device.drawer_open = True
    assert CashDrawer(DrawerConfig(), printer).is_open() is True
    with pytest.raises(DrawerError, match="no cash drawer is configured"):
        CashDrawer(DrawerConfig(enabled=False), printer).kick()
    printer.device.connected = False
    with pytest.raises(DrawerError, match="printer is unreachable"):
        CashDrawer(DrawerConfig(), printer).kick()
    with pytest.raises(ValueError, match="pin 2 or 5"):
        printer.kick_drawer(3, 100)


def test_printer_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"\[printer\] paper_mm: 76 is not one of 58, 80"):
        load_section(PrinterConfig, {"paper_mm": 76}, "posterm.toml [printer]")
    with pytest.raises(ConfigError, match=r"\[drawer\] pin: 3 is not one of 2, 5"):
        load_section(DrawerConfig, {"pin": 3}, "posterm.toml [drawer]")


def test_a_sale_id_prints_as_code_128_that_fits_58_mm_paper() -> None:
    # GS k, function B, type 73 (CODE128), length, then code set B for the letters and C for
    # the trailing digits: a scanner reads the id back for a refund. 12 symbols are 167
    # modules, 334 dots at width 2, a quiet zone of 25 dots either side of 384.
    data = render_escpos(Document().barcode("S001-T01-0001", "CODE128"), 32, "gb18030")
    assert b"\x1dw\x02" in data  # module width 2 dots
    assert b"\x1dkI\x11{BS001-T01-{C0001" in data


PRINT_ONCE = """
from terminal.drivers.document import Document
from terminal.drivers.printer import Printer, PrinterConfig
printer = Printer(PrinterConfig())
print(printer.start(), printer.print_document(Document().line("x")).printed, printer.fix_hint())
"""


@pytest.mark.parametrize("where", ["missing/deeper", "a-file/below"])
def test_printer_works_whatever_the_capabilities_cache_folder(tmp_path: Path, where: str) -> None:
    """A cache folder that does not exist is made; one that cannot be is replaced (logged)."""
    import os
    import subprocess
    import sys

    (tmp_path / "a-file").write_text("not a folder")
    env = {**os.environ, "ESCPOS_CAPABILITIES_PICKLE_DIR": str(tmp_path / where)}
    done = subprocess.run([sys.executable, "-c", PRINT_ONCE], env=env, capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).parents[2], check=True)
    assert done.stdout.split()[:2] == ["True", "True"], done.stderr
    if where == "missing/deeper":
        assert any((tmp_path / where).glob("*.capabilities.pickle"))
    else:
        assert "unusable" in done.stderr and "using" in done.stderr


def test_fault_hints_name_the_real_cause() -> None:
    printer = started()
    printer.device.paper = "out"
    assert not printer.print_document(receipt()).printed
    assert printer.fix_hint() == "out of paper: load a new roll and close the cover"
    printer.device.paper, printer.device.online = "ok", False
    printer.status()  # the simulated printer, like some real ones, is silent when offline
    assert "does not answer status queries" in printer.fix_hint()
    printer.device.online, printer.device.connected = True, False
    printer.print_document(receipt())
    assert not printer.present
    assert printer.fix_hint() == ("the simulated printer is unplugged (by a test or script): "
                                  "plug it back in")


def test_a_missing_file_posterm_needs_is_named_not_blamed_on_the_cable(tmp_path: Path) -> None:
    config = PrinterConfig(backend="file", file_path=str(tmp_path / "no-dir" / "lp0"))
    printer = open_printer(config)
    assert not printer.start()
    assert printer.fix_hint().startswith(f"check {tmp_path / 'no-dir' / 'lp0'} exists")
    printer.cause = FileNotFoundError(2, "No such file or directory", "/cache/3.11.pickle")
    assert printer.fix_hint() == ("posterm cannot use /cache/3.11.pickle (No such file or "
                                  "directory); the printer itself was not reached")
