"""Long lists of ids in queries: a campaign's segment may hold every member of the chain, and
one ``IN (...)`` binds one parameter per id (SQLite takes at most 32,766, PostgreSQL 65,535)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

CHUNK = 5_000  # ids per query


def chunks(ids: Iterable[str], size: int = CHUNK) -> Iterator[list[str]]:
    """``ids`` (sorted, each once) in lists of at most ``size``."""
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), size):
        yield ordered[start:start + size]
