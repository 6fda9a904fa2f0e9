"""Barcode scanner input -> a typed scan, with EAN/UPC check digits verified.

A scanner in keyboard mode types the code and Enter; some are set to add a symbology identifier
(AIM ``]E0`` for EAN-13, ``]E4`` for EAN-8, ...). A numeric code of length 8, 12 or 13 is taken as
EAN-8, UPC-A or EAN-13 and must carry a correct check digit; anything else is kept as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from terminal.drivers.msr import InputRefused

__all__ = ["Scan", "ScanError", "ean_check_digit", "parse_scan"]


class ScanError(InputRefused):
    """A scan not read: ``reason`` in English, ``why`` and ``values`` naming it for other
    languages."""

    def __init__(self, reason: str, why: str, **values: str) -> None:
        super().__init__(f"Barcode not read ({reason}), please scan again", why=why, **values)
        self.reason = reason


@dataclass(frozen=True)
class Scan:
    symbology: str  # "EAN-13", "EAN-8", "UPC-A" or "TEXT"
    code: str


_AIM_PREFIX = re.compile(r"\](?P<id>[A-Za-z][0-9A-Za-z])")
_AIM_RETAIL = {"E0": "EAN-13", "E4": "EAN-8"}
_BY_LENGTH = {13: "EAN-13", 8: "EAN-8", 12: "UPC-A"}
_MAX_LENGTH = 256


def ean_check_digit(body: str) -> str:
    """The GS1 mod-10 check digit for ``body`` (the code without its last digit)."""
    total = sum((3 if index % 2 == 0 else 1) * int(d) for index, d in enumerate(reversed(body)))
    return str(-total % 10)


def parse_scan(text: str) -> Scan:
    code = text.rstrip("\r\n")
    aim = _AIM_PREFIX.match(code)
    symbology: str | None = None
    if aim:
        code = code[aim.end():]
        symbology = _AIM_RETAIL.get(aim.group("id"))
    if not code:
        raise ScanError("empty scan", "scan.empty")
    if len(code) > _MAX_LENGTH:
        raise ScanError("scan too long", "scan.too_long")
    if not code.isprintable():
        raise ScanError("unreadable characters", "scan.unreadable")
    if code.isascii() and code.isdigit() and len(code) in _BY_LENGTH:
        symbology = _BY_LENGTH[len(code)] if symbology is None else symbology
        if ean_check_digit(code[:-1]) != code[-1]:
            raise ScanError(f"{symbology} check digit wrong", "scan.check_digit",
                            symbology=symbology)
        return Scan(symbology, code)
    if symbology is not None:
        raise ScanError(f"not a valid {symbology}", "scan.not_valid", symbology=symbology)
    return Scan("TEXT", code)
