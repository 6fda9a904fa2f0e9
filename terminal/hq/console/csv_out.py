"""CSV downloads: UTF-8 with a byte-order mark (so Excel on a Chinese Windows reads the names
right), and no cell a spreadsheet would run as a formula (OWASP CSV injection: a text cell
starting with ``= + - @``, a tab or a carriage return gets a leading ``'``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

BOM = "\ufeff"
MEDIA_TYPE = "text/csv; charset=utf-8"


def guard(text: str) -> str:
    """A CSV text cell that a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """The table as CSV bytes; numbers stay numbers, every text cell is guarded."""
    return csv_text(rows, header).encode("utf-8")


def csv_text(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    """CSV lines of ``rows``, after the byte-order mark and ``header`` when one is given (the
    start of a file; a stream's later parts have none)."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header is not None:
        out.write(BOM)
        writer.writerow([guard(name) for name in header])
    for row in rows:
        writer.writerow(["" if cell is None else guard(cell) if isinstance(cell, str) else cell
                         for cell in row])
    return out.getvalue()
