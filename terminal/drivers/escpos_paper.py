"""What a receipt printer puts on paper for a stream of ESC/POS bytes: the preview is the printout.

:class:`EscposPaper` interprets the commands posterm sends (python-escpos builds them; see
``document.render_escpos``) the way a thermal printer's firmware does: print modes and sizes
(``ESC !``, ``ESC E``, ``GS !``), alignment (``ESC a``), the Chinese mode and code pages (``FS &``
GB18030, ``FS .`` + ``ESC t``), raster images (``GS v 0``), barcodes (``GS k``: EAN-13/8, UPC-A,
Code 39 and Code 128 drawn module by module from the data, with the ``GS h/w/H`` settings), QR
codes (``GS ( k``, drawn from the stored data) and feeds and cuts. A command it does not know is an
error (:class:`PreviewError`), so a preview never silently differs from the paper.

Besides the image it keeps what was printed in a form tests can read: the text lines as decoded
from the bytes, the barcodes and QR codes with their data, the cuts and drawer pulses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terminal.drivers.textwidth import char_width

FONT_A = (12, 24)  # dots per half-width character cell
LINE_SPACING = 30  # ESC 2: the default line feed in dots (1/6 inch at 180 dpi)
_MARGIN = 8
_CODE_PAGES = {0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 16: "cp1252",
               17: "cp866", 19: "cp858"}


class PreviewError(ValueError):
    """Bytes the preview cannot print as the printer would (unknown or truncated command)."""


@dataclass(frozen=True)
class PrintedCode:
    kind: str  # EAN13, EAN8, UPC-A, CODE39, CODE128, QR
    data: str  # as the scanner reads it (Code 128: without the code-set selectors)
    box: tuple[int, int, int, int]  # left, top, right, bottom on the image, in dots


@dataclass
class _Mode:
    bold: bool = False
    underline: bool = False
    width: int = 1
    height: int = 1
    align: int = 0  # 0 left, 1 center, 2 right
    chinese: bool = False  # FS &: two-byte GB18030 characters
    code_page: str = "cp437"
    spacing: int = LINE_SPACING
    barcode_height: int = 162
    module: int = 3
    hri: int = 0  # 0 none, 1 above, 2 below, 3 both


@dataclass
class _Glyph:
    char: str
    width: int  # dots
    height: int
    bold: bool
    underline: bool


@dataclass
class EscposPaper:
    """Feed it bytes; ``image()`` is the paper, ``lines``/``codes``/``cuts`` what is on it."""

    paper_dots: int = 576
    lines: list[str] = field(default_factory=list)
    codes: list[PrintedCode] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)  # the y of each cut
    drawer_pulses: int = 0
    _mode: _Mode = field(default_factory=_Mode)
    _buffer: list[_Glyph] = field(default_factory=list)
    _y: int = _MARGIN
    _ops: list[Any] = field(default_factory=list)  # drawing operations, played in image()
    _qr: dict[str, Any] = field(default_factory=dict)

    # --- the byte stream ----------------------------------------------------------------------

    def feed(self, data: bytes) -> EscposPaper:
        pos = 0
        while pos < len(data):
            pos = self._step(data, pos)
        return self

    def finish(self) -> EscposPaper:
        """Print what is still in the line buffer (a printer does so at its next LF)."""
        if self._buffer:
            self._print_line()
        return self

    def _step(self, data: bytes, pos: int) -> int:
        byte = data[pos]
        if byte == 0x0A:
            self._print_line()
            return pos + 1
        if byte == 0x0D:
            return pos + 1
        if byte in (0x1B, 0x1C, 0x1D, 0x10):
            return self._command(data, pos)
        if byte < 0x20:
            raise PreviewError(f"control byte 0x{byte:02x} at {pos} is no command posterm sends")
        return self._text(data, pos)

    def _text(self, data: bytes, pos: int) -> int:
        byte = data[pos]
        if self._mode.chinese and byte >= 0x81:
            size = 4 if pos + 1 < len(data) and 0x30 <= data[pos + 1] <= 0x39 else 2
            chunk = data[pos:pos + size]
            try:
                char = chunk.decode("gb18030")
            except UnicodeDecodeError as exc:
                raise PreviewError(f"bytes {chunk!r} at {pos} are no GB18030 character") from exc
        else:
            size, char = 1, bytes([byte]).decode(self._mode.code_page, errors="replace")
        self._add_glyph(char)
        return pos + size

    def _add_glyph(self, char: str) -> None:
        mode = self._mode
        cell_w, cell_h = FONT_A
        width = cell_w * max(1, char_width(char)) * mode.width
        if sum(g.width for g in self._buffer) + width > self.paper_dots:
            self._print_line()  # the printer wraps a line that is full
        self._buffer.append(_Glyph(char, width, cell_h * mode.height, mode.bold, mode.underline))

    def _need(self, data: bytes, pos: int, size: int) -> bytes:
        if pos + size > len(data):
            raise PreviewError(f"command {data[pos:pos + 2]!r} at {pos} is cut short")
        return data[pos:pos + size]

    def _command(self, data: bytes, pos: int) -> int:
        head = self._need(data, pos, 2)
        handler = _COMMANDS.get(head)
        if handler is None:
            raise PreviewError(f"unknown command {head!r} at {pos}")
        return handler(self, data, pos)

    # --- commands -----------------------------------------------------------------------------

    def _init(self, data: bytes, pos: int) -> int:
        self._buffer.clear()
        self._mode = _Mode()
        return pos + 2

    def _print_mode(self, data: bytes, pos: int) -> int:
        n = self._need(data, pos, 3)[2]
        if n & 0x01:
            raise PreviewError("font B (ESC ! bit 0) is not used by posterm's receipts")
        self._mode.bold = bool(n & 0x08)
        self._mode.height = 2 if n & 0x10 else 1
        self._mode.width = 2 if n & 0x20 else 1
        self._mode.underline = bool(n & 0x80)
        return pos + 3

    def _bold(self, data: bytes, pos: int) -> int:
        self._mode.bold = bool(self._need(data, pos, 3)[2] & 1)
        return pos + 3

    def _underline(self, data: bytes, pos: int) -> int:
        self._mode.underline = self._need(data, pos, 3)[2] in (1, 2, 49, 50)
        return pos + 3

    def _size(self, data: bytes, pos: int) -> int:
        n = self._need(data, pos, 3)[2]
        self._mode.width, self._mode.height = (n >> 4) + 1, (n & 0x0F) + 1
        return pos + 3

    def _align(self, data: bytes, pos: int) -> int:
        n = self._need(data, pos, 3)[2]
        if n not in (0, 1, 2, 48, 49, 50):
            raise PreviewError(f"ESC a {n}: no such alignment")
        self._mode.align = n % 48
        return pos + 3

    def _chinese_on(self, data: bytes, pos: int) -> int:
        self._mode.chinese = True
        return pos + 2

    def _chinese_off(self, data: bytes, pos: int) -> int:
        self._mode.chinese = False
        return pos + 2

    def _code_page(self, data: bytes, pos: int) -> int:
        n = self._need(data, pos, 3)[2]
        if n not in _CODE_PAGES:
            raise PreviewError(f"ESC t {n}: code page not known to the preview")
        self._mode.code_page = _CODE_PAGES[n]
        return pos + 3

    def _default_spacing(self, data: bytes, pos: int) -> int:
        self._mode.spacing = LINE_SPACING
        return pos + 2

    def _set_spacing(self, data: bytes, pos: int) -> int:
        self._mode.spacing = self._need(data, pos, 3)[2]
        return pos + 3

    def _feed_lines(self, data: bytes, pos: int) -> int:
        n = self._need(data, pos, 3)[2]
        self.finish()
        self._y += n * self._mode.spacing
        return pos + 3

    def _feed_dots(self, data: bytes, pos: int) -> int:
        n = self._need(data, pos, 3)[2]
        self.finish()
        self._y += n
        return pos + 3

    def _drawer(self, data: bytes, pos: int) -> int:
        self._need(data, pos, 5)
        self.drawer_pulses += 1
        return pos + 5

    def _status_query(self, data: bytes, pos: int) -> int:
        self._need(data, pos, 3)  # DLE EOT n: answered by the printer, prints nothing
        return pos + 3

    def _cut(self, data: bytes, pos: int) -> int:
        m = self._need(data, pos, 3)[2]
        size = 4 if m in (65, 66) else 3
        self._need(data, pos, size)
        self.finish()
        self._y += 12
        self.cuts.append(self._y)
        self._ops.append(("cut", self._y))
        self._y += 12
        return pos + size

    def _barcode_setting(self, data: bytes, pos: int) -> int:
        command, n = self._need(data, pos, 3)[1:3]
        if command == ord("h"):
            self._mode.barcode_height = max(1, n)
        elif command == ord("w"):
            if not 1 <= n <= 6:
                raise PreviewError(f"GS w {n}: module width is 1-6 dots")
            self._mode.module = n
        elif command == ord("H"):
            self._mode.hri = n % 48
        return pos + 3  # GS f: the HRI font; font A is drawn either way

    def _barcode(self, data: bytes, pos: int) -> int:
        m = self._need(data, pos, 3)[2]
        if m <= 6:  # function A: data up to NUL
            end = data.find(b"\x00", pos + 3)
            if end < 0:
                raise PreviewError(f"GS k {m}: barcode data without its NUL")
            payload, after = data[pos + 3:end], end + 1
        else:  # function B: length byte
            size = self._need(data, pos, 4)[3]
            payload, after = self._need(data, pos, 4 + size)[4:], pos + 4 + size
        kind = _BARCODE_KINDS.get(m)
        if kind is None:
            raise PreviewError(f"GS k {m}: barcode system not known to the preview")
        modules, shown = _modules(kind, payload.decode("ascii", errors="replace"))
        self._draw_code(kind, shown, modules)
        return after

    def _qr_function(self, data: bytes, pos: int) -> int:
        head = self._need(data, pos, 7)
        size = head[3] | head[4] << 8
        body = self._need(data, pos, 5 + size)[5:]
        if body[:1] != b"1":
            raise PreviewError(f"GS ( k cn={body[:1]!r}: only QR (cn 49) is sent")
        function = body[1:2]
        if function == b"A":
            pass  # model 2
        elif function == b"C":
            self._qr["module"] = body[2]
        elif function == b"E":
            self._qr["ecc"] = body[2] - 48
        elif function == b"P":
            self._qr["data"] = bytes(body[3:])
        elif function == b"Q":
            self._print_qr()
        else:
            raise PreviewError(f"GS ( k QR function {function!r} is not sent by posterm")
        return pos + 5 + size

    def _raster(self, data: bytes, pos: int) -> int:
        head = self._need(data, pos, 8)
        if head[2] != ord("0"):
            raise PreviewError(f"GS v {head[2]:#x}: only GS v 0 rasters are sent")
        width_bytes, rows = head[4] | head[5] << 8, head[6] | head[7] << 8
        bits = self._need(data, pos, 8 + width_bytes * rows)[8:]
        self.finish()
        width = width_bytes * 8
        x = self._aligned_x(width)
        self._ops.append(("raster", x, self._y, width, rows, bytes(bits), head[3]))
        self._y += rows
        return pos + 8 + width_bytes * rows

    # --- drawing ------------------------------------------------------------------------------

    def _aligned_x(self, width: int) -> int:
        room = max(0, self.paper_dots - width)
        return _MARGIN + (0, room // 2, room)[self._mode.align]

    def _print_line(self) -> None:
        glyphs, self._buffer = self._buffer, []
        self.lines.append("".join(g.char for g in glyphs).rstrip())
        height = max((g.height for g in glyphs), default=FONT_A[1])
        x = self._aligned_x(sum(g.width for g in glyphs))
        for glyph in glyphs:
            # Characters sit on the line's baseline, as a double-height one beside normal ones.
            self._ops.append(("glyph", x, self._y + height - glyph.height, glyph))
            x += glyph.width
        self._y += max(self._mode.spacing, height)

    def _draw_code(self, kind: str, shown: str, modules: str) -> None:
        self.finish()
        mode = self._mode
        width = len(modules) * mode.module
        x, top = self._aligned_x(width), self._y
        if mode.hri in (1, 3):
            self._hri(shown, width)
        self._ops.append(("bars", x, self._y, mode.module, mode.barcode_height, modules))
        self._y += mode.barcode_height
        if mode.hri in (2, 3):
            self._hri(shown, width)
        self.codes.append(PrintedCode(kind, shown, (x, top, x + width, self._y)))

    def _hri(self, text: str, width: int) -> None:
        x = self._aligned_x(len(text) * FONT_A[0])
        for char in text:
            self._ops.append(("glyph", x, self._y + 2, _Glyph(char, FONT_A[0], FONT_A[1],
                                                              False, False)))
            x += FONT_A[0]
        self._y += FONT_A[1] + 4

    def _print_qr(self) -> None:
        import qrcode

        if "data" not in self._qr:
            raise PreviewError("GS ( k: QR print asked before its data was stored")
        levels = (qrcode.constants.ERROR_CORRECT_L, qrcode.constants.ERROR_CORRECT_M,
                  qrcode.constants.ERROR_CORRECT_Q, qrcode.constants.ERROR_CORRECT_H)
        code = qrcode.QRCode(error_correction=levels[self._qr.get("ecc", 0) % 4], border=0)
        code.add_data(self._qr["data"])
        code.make(fit=True)
        matrix = code.get_matrix()
        module = self._qr.get("module", 3)
        size = len(matrix) * module
        self.finish()
        x, top = self._aligned_x(size), self._y
        self._ops.append(("qr", x, top, module, matrix))
        self._y += size + 8
        self.codes.append(PrintedCode("QR", self._qr["data"].decode("utf-8", "replace"),
                                      (x, top, x + size, top + size)))

    def image(self) -> Any:
        """The paper as a PIL image (white, black print), as tall as what was printed."""
        from PIL import Image, ImageDraw

        self.finish()
        paper = Image.new("L", (self.paper_dots + 2 * _MARGIN, self._y + _MARGIN), 255)
        draw = ImageDraw.Draw(paper)
        for op in self._ops:
            _DRAW[op[0]](paper, draw, *op[1:])
        return paper

    def save_png(self, path: str | Path) -> Path:
        path = Path(path)
        self.image().save(path, format="PNG")
        return path


# --- module patterns ----------------------------------------------------------------------------

_BARCODE_KINDS = {0: "UPC-A", 65: "UPC-A", 2: "EAN13", 67: "EAN13", 3: "EAN8", 68: "EAN8",
                  4: "CODE39", 69: "CODE39", 73: "CODE128"}


def _modules(kind: str, data: str) -> tuple[str, str]:
    """The bars (1) and spaces (0) of one barcode, and the text a scanner reads from them."""
    if kind == "CODE128":
        return code128_modules(data)
    if kind == "CODE39":
        return _code39_modules(data), data
    return _ean_modules(kind, data)


def code128_modules(data: str) -> tuple[str, str]:
    """Code 128 as the printer encodes ``GS k 73`` data: ``{A``/``{B``/``{C`` pick the code set
    (the data must open with one), ``{{`` is a brace; the checksum and stop are added."""
    from barcode.charsets.code128 import CODES, STOP

    if data[:2] not in ("{A", "{B", "{C"):
        raise PreviewError(f"Code 128 data must open with a code set ({{A, {{B or {{C}}): {data!r}")
    values: list[int] = []
    shown: list[str] = []
    code_set = ""
    i = 0
    while i < len(data):
        if data[i] == "{" and data[i + 1:i + 2] in ("A", "B", "C"):
            new = data[i + 1]
            values.append({"A": 103, "B": 104, "C": 105}[new] if not values
                          else {"A": 101, "B": 100, "C": 99}[new])
            code_set, i = new, i + 2
            continue
        char = "{" if data[i:i + 2] == "{{" else data[i]
        step = 2 if data[i:i + 2] == "{{" else 1
        if code_set == "C":
            pair = data[i:i + 2]
            if len(pair) != 2 or not pair.isdigit():
                raise PreviewError(f"Code 128 set C takes digit pairs, not {pair!r}")
            values.append(int(pair))
            shown.append(pair)
            i += 2
            continue
        code = ord(char)
        if code_set == "B" and 32 <= code <= 127:
            values.append(code - 32)
        elif code_set == "A" and 0 <= code <= 95:
            values.append(code - 32 if code >= 32 else code + 64)
        else:
            raise PreviewError(f"{char!r} is not in Code 128 set {code_set}")
        shown.append(char)
        i += step
    checksum = (values[0] + sum(n * v for n, v in enumerate(values[1:], 1))) % 103
    bars = "".join(CODES[v] for v in [*values, checksum]) + STOP + "11"
    return bars, "".join(shown)


def _ean_modules(kind: str, digits: str) -> tuple[str, str]:
    from barcode.charsets.ean import CODES, EDGE, LEFT_PATTERN, MIDDLE

    from terminal.drivers.barcode import ean_check_digit

    lengths = {"EAN13": 12, "EAN8": 7, "UPC-A": 11}
    body = lengths[kind]
    if not digits.isdigit() or len(digits) not in (body, body + 1):
        raise PreviewError(f"{kind} needs {body} or {body + 1} digits, not {digits!r}")
    if len(digits) == body:
        digits += ean_check_digit(digits)
    elif ean_check_digit(digits[:-1]) != digits[-1]:
        raise PreviewError(f"{kind} {digits}: wrong check digit (the printer prints nothing)")
    if kind == "UPC-A":
        coded, pattern = "0" + digits, "AAAAAA"
    elif kind == "EAN13":
        coded, pattern = digits, LEFT_PATTERN[int(digits[0])]
    else:
        coded, pattern = "0" + digits, "AAAA"
    left = coded[1:1 + len(pattern)]
    right = coded[1 + len(pattern):]
    bars = (EDGE + "".join(CODES[p][int(d)] for p, d in zip(pattern, left, strict=True))
            + MIDDLE + "".join(CODES["C"][int(d)] for d in right) + EDGE)
    return bars, digits


def _code39_modules(data: str) -> str:
    from barcode.charsets.code39 import MAP

    text = data.upper() if data[:1] != "*" else data.strip("*")
    try:
        parts = [MAP["*"][1], *(MAP[c][1] for c in text), MAP["*"][1]]
    except KeyError as exc:
        raise PreviewError(f"{exc.args[0]!r} is not in Code 39") from exc
    return "0".join(parts)


# --- drawing operations -------------------------------------------------------------------------


def _draw_glyph(paper: Any, draw: Any, x: int, y: int, glyph: _Glyph) -> None:
    from PIL import Image, ImageDraw

    from terminal.drivers.fonts import cjk_font

    font = cjk_font(22)
    cell_w = FONT_A[0] * max(1, char_width(glyph.char))
    # A glyph wider than its cell (m, W) is drawn whole and narrowed, as a printer's font is.
    drawn_w = max(cell_w, int(font.getlength(glyph.char)) + 1)
    cell = Image.new("L", (drawn_w, FONT_A[1]), 255)
    pen = ImageDraw.Draw(cell)
    pen.text((0, 0), glyph.char, font=font, fill=0)
    if glyph.bold:  # emphasised: the printer strikes each dot twice, one dot apart
        pen.text((1, 0), glyph.char, font=font, fill=0)
    if glyph.underline:
        pen.line([(0, FONT_A[1] - 2), (drawn_w, FONT_A[1] - 2)], fill=0, width=2)
    if (glyph.width, glyph.height) != cell.size:
        cell = cell.resize((glyph.width, glyph.height), Image.Resampling.NEAREST)
    paper.paste(cell, (x, y))


def _draw_bars(paper: Any, draw: Any, x: int, y: int, module: int, height: int,
               modules: str) -> None:
    for index, bit in enumerate(modules):
        if bit == "1":
            left = x + index * module
            draw.rectangle([left, y, left + module - 1, y + height - 1], fill=0)


def _draw_qr(paper: Any, draw: Any, x: int, y: int, module: int, matrix: list[list[bool]]) -> None:
    for row, cells in enumerate(matrix):
        for col, dark in enumerate(cells):
            if dark:
                left, top = x + col * module, y + row * module
                draw.rectangle([left, top, left + module - 1, top + module - 1], fill=0)


def _draw_raster(paper: Any, draw: Any, x: int, y: int, width: int, rows: int, bits: bytes,
                 scale: int) -> None:
    from PIL import Image

    # GS v 0: 1 = a black dot; PIL's mode "1" reads 1 as white, hence the inversion.
    image = Image.frombytes("1", (width, rows), bytes(b ^ 0xFF for b in bits)).convert("L")
    paper.paste(image, (x, y))


def _draw_cut(paper: Any, draw: Any, y: int) -> None:
    for left in range(0, paper.width, 16):
        draw.line([(left, y), (left + 8, y)], fill=96, width=1)


_DRAW = {"glyph": _draw_glyph, "bars": _draw_bars, "qr": _draw_qr, "raster": _draw_raster,
         "cut": _draw_cut}

_COMMANDS = {
    b"\x1b@": EscposPaper._init,
    b"\x1b!": EscposPaper._print_mode,
    b"\x1bE": EscposPaper._bold,
    b"\x1b-": EscposPaper._underline,
    b"\x1ba": EscposPaper._align,
    b"\x1bt": EscposPaper._code_page,
    b"\x1b2": EscposPaper._default_spacing,
    b"\x1b3": EscposPaper._set_spacing,
    b"\x1bd": EscposPaper._feed_lines,
    b"\x1bJ": EscposPaper._feed_dots,
    b"\x1bp": EscposPaper._drawer,
    b"\x1c&": EscposPaper._chinese_on,
    b"\x1c.": EscposPaper._chinese_off,
    b"\x1d!": EscposPaper._size,
    b"\x1dV": EscposPaper._cut,
    b"\x1dh": EscposPaper._barcode_setting,
    b"\x1dw": EscposPaper._barcode_setting,
    b"\x1dH": EscposPaper._barcode_setting,
    b"\x1df": EscposPaper._barcode_setting,
    b"\x1dk": EscposPaper._barcode,
    b"\x1d(": EscposPaper._qr_function,
    b"\x1dv": EscposPaper._raster,
    b"\x10\x04": EscposPaper._status_query,
}


def preview(data: bytes, paper_dots: int) -> EscposPaper:
    """The paper after ``data``: what a printer ``paper_dots`` wide prints."""
    return EscposPaper(paper_dots).feed(data).finish()
