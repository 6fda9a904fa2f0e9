"""The structured receipt: built once, rendered to ESC/POS bytes, plain text or a PNG preview.

Layout happens once, in character cells (CJK counts double), so the printed receipt, its text form
in tests and logs, and the preview agree line for line. ESC/POS bytes come from python-escpos'
command builders (its ``Dummy`` printer records them); text bytes are encoded here because Chinese
printers take GB18030 in their Chinese mode (``FS &``) rather than an ESC/POS code page.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from terminal.drivers.barcode import ean_check_digit
from terminal.drivers.escpos_setup import prepare_escpos
from terminal.drivers.textwidth import align, columns, text_width, wrap
from terminal.drivers.transliterate import degrade

Align = Literal["left", "center", "right"]
Encoding = Literal["gb18030", "cp437"]
Fallback = Literal["image", "replace"]

# Font A is 12 dots wide: 384 dots on 58 mm paper, 576 on 80 mm.
DOT_PER_CHAR = 12
_BARCODES = {"EAN13": 13, "EAN8": 8, "UPC-A": 12, "CODE128": 0, "CODE39": 0}


class DocumentError(ValueError):
    """A receipt was built with content no printer can render."""


@dataclass(frozen=True)
class Text:
    text: str
    align: Align = "left"
    bold: bool = False
    big: bool = False  # double width and height


@dataclass(frozen=True)
class Columns:
    cells: tuple[str, ...]
    weights: tuple[int, ...]
    aligns: str


@dataclass(frozen=True)
class Separator:
    char: str = "-"


@dataclass(frozen=True)
class Barcode:
    code: str
    symbology: str


@dataclass(frozen=True)
class QrCode:
    data: str


@dataclass(frozen=True)
class Feed:
    lines: int


@dataclass(frozen=True)
class Cut:
    pass


Block = Text | Columns | Separator | Barcode | QrCode | Feed | Cut


@dataclass
class Document:
    """A receipt under construction; every builder method validates and returns ``self``."""

    blocks: list[Block] = field(default_factory=list)

    def title(self, text: str) -> Document:
        return self._add(Text(text, "center", bold=True, big=True))

    def line(self, text: str = "", align: Align = "left", bold: bool = False) -> Document:
        if align not in ("left", "center", "right"):
            raise DocumentError(f"alignment must be left, center or right, not {align!r}")
        return self._add(Text(text, align, bold))

    def columns(
        self, *cells: str, weights: Sequence[int] | None = None, aligns: str | None = None
    ) -> Document:
        """One row of cells; by default the first column takes what the others leave."""
        if not cells:
            raise DocumentError("a row needs at least one cell")
        weights = tuple(weights or (3,) + (1,) * (len(cells) - 1))
        aligns = aligns or "l" + "r" * (len(cells) - 1)
        if len(weights) != len(cells) or len(aligns) != len(cells):
            raise DocumentError(f"{len(cells)} cells need as many weights and alignments")
        if any(w < 1 for w in weights) or set(aligns) - set("lcr"):
            raise DocumentError("weights must be >= 1 and alignments among l, c, r")
        return self._add(Columns(tuple(cells), weights, aligns))

    def separator(self, char: str = "-") -> Document:
        if len(char) != 1 or text_width(char) != 1:
            raise DocumentError(f"a separator is one single-width character, not {char!r}")
        return self._add(Separator(char))

    def barcode(self, code: str, symbology: str = "EAN13") -> Document:
        if symbology not in _BARCODES:
            raise DocumentError(f"unknown barcode symbology {symbology!r}; use {list(_BARCODES)}")
        length = _BARCODES[symbology]
        if length and not (len(code) == length and code.isascii() and code.isdigit()):
            raise DocumentError(f"{symbology} needs {length} digits, got {code!r}")
        if length and ean_check_digit(code[:-1]) != code[-1]:
            raise DocumentError(f"{symbology} {code} has a wrong check digit")
        if not length and not (code and code.isascii() and code.isprintable()):
            raise DocumentError(f"{symbology} needs printable ASCII, got {code!r}")
        return self._add(Barcode(code, symbology))

    def qr(self, data: str) -> Document:
        if not data or len(data.encode()) > 500:
            raise DocumentError("a QR code needs 1 to 500 bytes of data")
        return self._add(QrCode(data))

    def feed(self, lines: int = 1) -> Document:
        if not 1 <= lines <= 10:
            raise DocumentError(f"feed 1 to 10 lines, not {lines}")
        return self._add(Feed(lines))

    def cut(self) -> Document:
        return self._add(Cut())

    def _add(self, block: Block) -> Document:
        self.blocks.append(block)
        return self


# --- layout: blocks -> lines of cells ------------------------------------------------------------


def _layout_text(block: Text, width: int) -> list[str]:
    cells = width // 2 if block.big else width
    return [align(part, cells, block.align).rstrip() for part in wrap(block.text, cells)]


def _layout_columns(block: Columns, width: int) -> str:
    usable = width - (len(block.cells) - 1)
    total = sum(block.weights)
    widths = [usable * w // total for w in block.weights]
    widths[0] += usable - sum(widths)
    return columns(block.cells, widths, block.aligns).rstrip()


def render_text(doc: Document, width_chars: int = 48) -> str:
    """The receipt as a person reads it, one string with a newline after every line."""
    lines: list[str] = []
    for block in doc.blocks:
        if isinstance(block, Text):
            lines += _layout_text(block, width_chars)
        elif isinstance(block, Columns):
            lines.append(_layout_columns(block, width_chars))
        elif isinstance(block, Separator):
            lines.append(block.char * width_chars)
        elif isinstance(block, Barcode):
            lines.append(align(f"|||| {block.code} ||||", width_chars, "center").rstrip())
        elif isinstance(block, QrCode):
            lines.append(align(f"[QR] {block.data}", width_chars, "center").rstrip())
        elif isinstance(block, Feed):
            lines += [""] * block.lines
        else:
            lines.append(align("- - - cut - - -", width_chars, "center").rstrip())
    return "".join(line + "\n" for line in lines)


# --- ESC/POS --------------------------------------------------------------------------------------


def render_escpos(
    doc: Document,
    width_chars: int = 48,
    encoding: Encoding = "gb18030",
    profile: str = "default",
    fallback: Fallback = "image",
) -> bytes:
    """ESC/POS bytes for ``doc``. ``encoding`` gb18030: Chinese firmware (FS & mode); cp437: a
    printer without Chinese fonts, where lines it cannot encode become a bitmap (``fallback``
    "image", needs the CJK font) or degrade to ASCII ("replace")."""
    prepare_escpos()
    from escpos.printer import Dummy

    printer = Dummy(profile=profile)
    # python-escpos prints notices (renderer choice, profile width) on stdout; doctor's report
    # and the daemon's journal should not carry them.
    with contextlib.redirect_stdout(io.StringIO()):
        _render_blocks(printer, doc, width_chars, encoding, fallback)
    return printer.output


def _render_blocks(
    printer: Any, doc: Document, width_chars: int, encoding: str, fallback: str
) -> None:
    printer.hw("INIT")
    printer._raw(b"\x1c&" if encoding == "gb18030" else b"\x1c.\x1bt\x00")  # FS & / FS . ESC t 0
    for block in doc.blocks:
        if isinstance(block, (Text, Columns, Separator)):
            big = isinstance(block, Text) and block.big
            bold = isinstance(block, Text) and block.bold
            if big or bold:
                printer.set(bold=bold, double_width=big, double_height=big)
            lines = render_text(Document([block]), width_chars).splitlines()
            for line in lines:
                _emit_line(printer, line, encoding, fallback, width_chars * DOT_PER_CHAR, big)
            if big or bold:
                printer.set(
                    bold=False, double_width=False, double_height=False, normal_textsize=True
                )
        elif isinstance(block, Barcode):
            code = code128_data(block.code) if block.symbology == "CODE128" else block.code
            printer.barcode(code, block.symbology, height=64, width=2)
            printer.set(align="left")
        elif isinstance(block, QrCode):
            printer.set(align="center")
            printer.qr(block.data, size=5, native=True)
            printer.set(align="left")
        elif isinstance(block, Feed):
            printer.print_and_feed(block.lines)
        else:
            printer.cut()


def code128_data(code: str) -> str:
    """``GS k`` data for Code 128: python-escpos sends it as given, so it opens with a code set
    (B holds every printable ASCII character the document allows), and a trailing run of digits
    goes in set C, two to a symbol. S001-T01-R0001 is then 13 symbols, 356 dots at two a
    module, leaving 58 mm paper's 384 a quiet zone either side, which scanners need."""
    digits = len(code) - len(code.rstrip("0123456789"))
    digits -= digits % 2
    if digits < 4:  # a switch costs a symbol: shorter runs save nothing
        return "{B" + code.replace("{", "{{")
    head, tail = code[:-digits], code[-digits:]
    return ("{B" + head.replace("{", "{{") if head else "") + "{C" + tail


def _emit_line(printer: Any, line: str, encoding: str, fallback: str, dots: int,
               big: bool = False) -> None:
    try:
        printer._raw(line.encode(encoding) + b"\n")
        return
    except UnicodeEncodeError:
        pass
    if fallback == "image":
        printer.image(_line_image(line, dots, big), impl="bitImageRaster")
    else:
        degraded = degrade(line, lambda c: _encodes(c, encoding), "*")
        printer._raw(degraded.encode(encoding) + b"\n")


def _encodes(char: str, encoding: str) -> bool:
    try:
        char.encode(encoding)
    except UnicodeEncodeError:
        return False
    return char.isprintable()


# --- PNG preview ---------------------------------------------------------------------------------


def _draw_cells(draw, line: str, x: int, y: int, font) -> None:
    # Draw cell by cell so columns line up exactly as on the printer.
    for char in line:
        draw.text((x, y), char, font=font, fill=0)
        x += DOT_PER_CHAR * text_width(char)


def _line_image(line: str, dots: int, big: bool = False):
    from PIL import Image, ImageDraw

    from terminal.drivers.fonts import cjk_font

    # A big line was laid out in half as many cells: drawn at double size it fills the paper.
    image = Image.new("1", (dots // 2 if big else dots, 24), 1)
    _draw_cells(ImageDraw.Draw(image), line, 0, 0, cjk_font(22))
    if big:
        image = image.resize((dots, 48), Image.Resampling.NEAREST)
    return image


def render_png(doc: Document, path: str | Path, width_chars: int = 48,
               encoding: Encoding = "gb18030", fallback: Fallback = "image") -> Path:
    """The receipt as a printer ``width_chars`` cells wide prints it: drawn by interpreting the
    very ESC/POS bytes :func:`render_escpos` sends (:mod:`terminal.drivers.escpos_paper`)."""
    from terminal.drivers.escpos_paper import preview

    data = render_escpos(doc, width_chars, encoding, fallback=fallback)
    return preview(data, width_chars * DOT_PER_CHAR).save_png(path)
