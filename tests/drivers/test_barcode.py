from __future__ import annotations

import pytest

from terminal.drivers.barcode import Scan, ScanError, ean_check_digit, parse_scan
from terminal.drivers.msr import InputRefused


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6901234567892\n", Scan("EAN-13", "6901234567892")),
        ("96385074\r\n", Scan("EAN-8", "96385074")),
        ("036000291452", Scan("UPC-A", "036000291452")),
        ("]E06901234567892\n", Scan("EAN-13", "6901234567892")),
        ("]C1ABC-123\n", Scan("TEXT", "ABC-123")),
        ("https://example.com/m/8000123456", Scan("TEXT", "https://example.com/m/8000123456")),
        ("12345", Scan("TEXT", "12345")),
    ],
)
def test_scans(text: str, expected: Scan) -> None:
    assert parse_scan(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("6901234567893\n", "EAN-13 check digit wrong"),
        ("96385075", "EAN-8 check digit wrong"),
        ("036000291453", "UPC-A check digit wrong"),
        ("]E0ABC", "not a valid EAN-13"),
        ("\n", "empty scan"),
        ("12\x0034", "unreadable characters"),
        ("9" * 300, "scan too long"),
    ],
)
def test_bad_scans(text: str, reason: str) -> None:
    with pytest.raises(ScanError) as caught:
        parse_scan(text)
    assert caught.value.reason == reason and "scan again" in str(caught.value)
    assert isinstance(caught.value, InputRefused)


def test_check_digit() -> None:
    assert ean_check_digit("690123456789") == "2"
    assert ean_check_digit("9638507") == "4"
