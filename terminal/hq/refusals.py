"""An event that fails at apply is refused alone; the database failing is not the event's fault.

:mod:`terminal.hq.validation` refuses what it can see is wrong before the ledger is touched. If an
event still fails while it is applied, it must not take its batch (up to 500 events of every
terminal) down with it, batch after batch, as the till publishes it again:

* a failure the database reports as busy or gone (:func:`transient`: locked, connection lost,
  serialisation) is nobody's event: the batch is left unacked and comes again;
* any other failure is the event's own: it is refused for good, recorded with the failure as its
  reason (for review) and acked, and the rest of the batch commits.

:func:`storable` keeps the record of a refusal itself writable: a reason quoting the bad text
has its control characters and lone surrogates escaped, and numbers outside what a column
holds are recorded as 0 (the reason says what they were).
"""

from __future__ import annotations

import re

from peewee import InterfaceError, OperationalError

from terminal.hq.validation import INT32, INT64, REFUSED_CHARS

DETAIL_MAX = 500  # applied_event.detail, as the ledger records it


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` is the database's trouble (retry the batch), not the event's."""
    return isinstance(exc, OperationalError | InterfaceError)


def storable(text: str) -> str:
    """``text`` bounded, its control characters and lone surrogates written as escapes."""
    return REFUSED_CHARS.sub(_escape, text[:DETAIL_MAX])[:DETAIL_MAX]


def _escape(found: re.Match[str]) -> str:
    return f"\\u{ord(found.group()):04x}"


def column(value: int, bits: int) -> int:
    """``value`` if a signed column of ``bits`` holds it, else 0."""
    return value if 0 <= value <= {32: INT32, 64: INT64}[bits] else 0


def failure(exc: BaseException) -> str:
    """The reason recorded for an event that failed at apply."""
    return storable(f"HQ could not apply it: {type(exc).__name__}: {exc}")
