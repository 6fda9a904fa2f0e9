from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from terminal.drivers.document import (
    Document,
    DocumentError,
    render_escpos,
    render_png,
    render_text,
)
from terminal.drivers.lcd import LcdConfig, LcdFrame, open_lcd, render_frame
from terminal.drivers.pole import PoleConfig, PoleDecoder, open_pole
from terminal.drivers.textwidth import text_width, yuan

from .golden_util import check_bytes, check_image


def sample_receipt() -> Document:
    return (
        Document()
        .title("好又多 Store 001")
        .line("终端 T01  2026-03-04 10:00")
        .separator()
        .columns("商品 Item", "数量", "金额")
        .columns("可口可乐 Coca-Cola 330ml", "2", yuan(700))
        .columns("Bread", "1", yuan(1250))
        .separator("=")
        .columns("合计 Total", yuan(1950), weights=(1, 1))
        .line("会员 王小明  积分 +19", bold=True)
        .barcode("6901234567892")
        .qr("https://example.com/r/S001-T01-1")
        .feed(2)
        .cut()
    )


@pytest.mark.parametrize("width", [32, 48])
def test_receipt_text_golden(width: int) -> None:
    text = render_text(sample_receipt(), width)
    assert all(text_width(line) <= width for line in text.splitlines())
    check_bytes(f"receipt_{width}.txt", text.encode())


@pytest.mark.parametrize(
    ("name", "encoding", "fallback"),
    [("gb18030", "gb18030", "image"), ("cp437_replace", "cp437", "replace"),
     ("cp437_image", "cp437", "image")],
)
def test_receipt_escpos_golden(name: str, encoding: str, fallback: str) -> None:
    data = render_escpos(sample_receipt(), 32, encoding, fallback=fallback)  # type: ignore[arg-type]
    check_bytes(f"receipt_58mm_{name}.bin", data)
    assert data.startswith(b"\x1b@") and data.endswith(b"\x1dV\x00")
    if encoding == "gb18030":
        assert "王小明".encode("gb18030") in data and b"\x1c&" in data
    else:
        assert "王小明".encode("gb18030") not in data  # no Chinese bytes on a code-page printer


def test_receipt_png_preview(tmp_path: Path) -> None:
    path = render_png(sample_receipt(), tmp_path / "receipt.png", 32)
    with Image.open(path) as image:
        check_image("receipt_58mm.png", image)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda d: d.barcode("6901234567893"), "wrong check digit"),
        (lambda d: d.barcode("123", "EAN8"), "EAN8 needs 8 digits"),
        (lambda d: d.barcode("X", "PDF417"), "unknown barcode symbology"),
        (lambda d: d.columns("a", "b", weights=(1,)), "2 cells need as many"),
        (lambda d: d.separator("=="), "one single-width character"),
        (lambda d: d.line("x", align="middle"), "alignment must be"),
        (lambda d: d.feed(0), "feed 1 to 10"),
        (lambda d: d.qr(""), "QR code needs"),
    ],
)
def test_document_refuses_bad_blocks(build, message: str) -> None:
    doc = Document().line("kept")
    with pytest.raises(DocumentError, match=message):
        build(doc)
    assert len(doc.blocks) == 1  # the bad block changed nothing


def test_yuan_formatting() -> None:
    assert [yuan(1250), yuan(5), yuan(-1950), yuan(0)] == ["12.50", "0.05", "-19.50", "0.00"]
    with pytest.raises(TypeError):
        yuan(12.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("command_set", ["escpos", "cd5220"])
def test_pole_lines_golden(command_set: str) -> None:
    display = open_pole(PoleConfig(backend="pty", command_set=command_set))
    display.start()
    try:
        shown = []
        for line1, line2 in [("欢迎光临 Welcome", ""), ("王小明 Gold", "积分 Points 1,234"),
                             ("可乐 Cola x2", "¥14.00"), ("Café ＴＯＴＡＬ", "１９．５０"),
                             ("A very long product name that overflows", "Total 19.50")]:
            display.show(line1, line2)
            shown.append("|".join(display.simulator.lines))
        display.brightness(2)
        display.simulator.pump()
        assert display.simulator.decoder.brightness == 2
        assert display.simulator.decoder.unknown == []  # only commands the display knows
        check_bytes("pole_lines.txt", ("\n".join(shown) + "\n").encode())
    finally:
        display.close()


def test_pole_decoder_flags_mojibake_and_unknown_commands() -> None:
    decoder = PoleDecoder()
    decoder.feed(b"\x1b@AB\xe7\x8e\x8b\x1b\x7f")
    assert decoder.lines[0].startswith("AB\ufffd")
    assert b"\x1b\x7f" in decoder.unknown
    decoder.feed(b"\x1f$")  # incomplete command waits for its arguments
    decoder.feed(b"\x05\x02Z")
    assert decoder.lines[1] == "    Z"


def test_pole_refuses_bad_brightness_and_unstarted_use() -> None:
    display = open_pole(PoleConfig())
    with pytest.raises(OSError, match="not started"):
        display.show("x")
    with pytest.raises(ValueError, match="brightness is 1"):
        display.brightness(9)


@pytest.mark.parametrize(
    ("name", "frame", "size"),
    [
        ("lcd_welcome.png", LcdFrame(None, None, None, "请刷会员卡 Swipe card"), (160, 128)),
        ("lcd_member.png", LcdFrame("王小明", "金卡 Gold", 1234, "请付款 Please pay"), (160, 128)),
        ("lcd_member_240.png",
         LcdFrame("A member with a very long name", "Silver", 0, "Thank you"), (240, 240)),
    ],
)
def test_lcd_frames_golden(name: str, frame: LcdFrame, size: tuple[int, int]) -> None:
    check_image(name, render_frame(frame, size))


def test_lcd_dummy_shows_and_saves(tmp_path: Path) -> None:
    lcd = open_lcd(LcdConfig(backend="dummy"))
    with pytest.raises(OSError, match="not started"):
        lcd.show(LcdFrame(None, None, None, "x"))
    lcd.start()
    frame = LcdFrame("王小明", "金卡 Gold", 1234, "请付款 Please pay")
    lcd.show(frame)
    assert lcd.device.image.tobytes() == render_frame(frame, (160, 128)).tobytes()
    with Image.open(lcd.save_png(tmp_path / "frame.png")) as saved:
        check_image("lcd_member.png", saved)
    lcd.close()
