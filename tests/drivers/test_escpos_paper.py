"""The preview is drawn from the ESC/POS bytes: every command posterm sends is understood, the
barcodes are real bars a scanner would read, and the golden previews are pictures of the paper."""

from __future__ import annotations

import pytest

from terminal.drivers.document import Document, render_escpos, render_text
from terminal.drivers.escpos_paper import EscposPaper, PreviewError, code128_modules, preview
from terminal.drivers.printer import Printer, PrinterConfig

from .golden_util import check_image
from .test_output_goldens import sample_receipt


def read_row(paper: EscposPaper, index: int) -> str:
    """The bars and spaces of one printed barcode, read across its middle like a scanner."""
    image = paper.image()
    left, top, right, bottom = paper.codes[index].box
    y = (top + bottom) // 2 if paper.codes[index].kind == "QR" else top + 10
    return "".join("1" if image.getpixel((x, y)) < 128 else "0" for x in range(left, right))


def decode_code128(row: str, module: int) -> str:
    """A Code 128 decoder working from the widths of the bars, as a scanner does (sets B and
    C, the switch between them, the checksum)."""
    from barcode.charsets.code128 import CODES

    modules = row[::module]
    symbols = [modules[i:i + 11] for i in range(0, len(modules) - 13, 11)]
    values = [CODES.index(symbol) for symbol in symbols]
    start, *data, checksum = values
    assert checksum == (start + sum(n * v for n, v in enumerate(data, 1))) % 103
    code_set, text = {104: "B", 105: "C"}[start], ""
    for value in data:
        if value in (99, 100):
            code_set = "C" if value == 99 else "B"
        else:
            text += f"{value:02d}" if code_set == "C" else chr(value + 32)
    return text


@pytest.mark.parametrize("encoding", ["gb18030", "cp437"])
def test_every_byte_of_a_receipt_is_understood(encoding: str) -> None:
    data = render_escpos(sample_receipt(), 32, encoding)  # type: ignore[arg-type]
    paper = preview(data, 384)
    assert [(c.kind, c.data) for c in paper.codes] == [
        ("EAN13", "6901234567892"), ("QR", "https://example.com/r/S001-T01-1")]
    assert len(paper.cuts) == 1
    if encoding == "gb18030":  # the text read back from the bytes is the laid-out receipt
        assert paper.lines == render_text(Document(sample_receipt().blocks[:9]), 32).splitlines()


@pytest.mark.parametrize(("name", "encoding"), [("gb18030", "gb18030"), ("cp437", "cp437")])
def test_receipt_preview_golden(name: str, encoding: str) -> None:
    data = render_escpos(sample_receipt(), 32, encoding)  # type: ignore[arg-type]
    check_image(f"paper_58mm_{name}.png", preview(data, 384).image())


def test_code128_bars_scan_back_to_the_sale_id() -> None:
    doc = Document().line("x").barcode("S001-T01-R0001", "CODE128").cut()
    paper = preview(render_escpos(doc, 32), 384)
    (code,) = paper.codes
    assert code.kind == "CODE128" and code.data == "S001-T01-R0001"
    # Its digits in set C: 356 dots, a quiet zone of 14 dots (7 modules) either side on 58 mm.
    assert code.box[2] - code.box[0] == 356
    assert decode_code128(read_row(paper, 0), module=2) == "S001-T01-R0001"


def test_ean13_bars_match_the_standard() -> None:
    paper = preview(render_escpos(Document().barcode("6901234567892"), 32), 384)
    row = read_row(paper, 0)[::2]  # GS w 2
    assert row.startswith("101") and row.endswith("101") and len(row) == 95
    assert row[45:50] == "01010"  # the centre guard


def test_sizes_and_alignment_are_drawn_as_sent() -> None:
    paper = EscposPaper(384).feed(b"\x1b@\x1c&\x1b!\x30AB\n\x1b!\x00\x1ba\x02CD\n")
    paper.finish()
    image = paper.image()
    dark = [x for x in range(image.width) for y in range(8, 56) if image.getpixel((x, y)) < 128]
    assert max(dark) - min(dark) > 24  # two double-width letters: wider than two normal ones
    right = [x for x in range(image.width) if image.getpixel((x, 66)) < 128]
    assert right and min(right) > 384 - 2 * 12  # CD right-aligned
    assert paper.lines == ["AB", "CD"]


def test_gb18030_four_byte_characters_and_code_pages() -> None:
    rare = "\U00020000"  # a four-byte GB18030 character
    paper = preview(b"\x1b@\x1c&" + f"a{rare}中".encode("gb18030") + b"\n"
                    + b"\x1c.\x1bt\x00\x9c\n", 384)
    assert paper.lines == [f"a{rare}中", "£"]


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"\x1b\x7f", "unknown command"), (b"\x1dk\x02123", "without its NUL"),
     (b"\x1dkI\x05ABCDE", "must open with a code set"), (b"\x1bt\x63", "code page"),
     (b"\x1c&\xff\xff", "no GB18030"), (b"\x1dv0\x00\x01\x00\x05\x00\x00", "cut short"),
     (b"\x07", "control byte"), (b"\x1d(k\x03\x001Q0", "before its data")],
)
def test_bytes_a_printer_would_not_print_as_previewed_are_refused(data: bytes,
                                                                  message: str) -> None:
    with pytest.raises(PreviewError, match=message):
        preview(data, 384)


def test_code128_set_c_and_shift_between_sets() -> None:
    bars, shown = code128_modules("{C1234{BAB")
    assert shown == "1234AB" and bars.endswith("1100011101011")


def test_printer_preview_is_of_the_bytes_it_sent(tmp_path) -> None:
    printer = Printer(PrinterConfig(paper_mm=58))
    assert printer.start()
    try:
        before = len(printer.captured)
        assert printer.print_document(sample_receipt()).printed
        sent = printer.captured[before:]
        assert sent.endswith(printer.render(sample_receipt()))  # after its status queries
        assert preview(sent, printer.paper_dots).image().tobytes() == \
            preview(printer.render(sample_receipt()), 384).image().tobytes()
    finally:
        printer.close()
