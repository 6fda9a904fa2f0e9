"""An ingest batch's kept writes (terminal.hq.buffered.Writes) rolled back to an event's mark:
what the next flushes send is what the mark of every list sent before session 18, whatever
the events kept, flushed and rolled back; and a mark is two counts, not a copy of each list's."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from terminal.hq.buffered import Writes
from terminal.loyalty.store import hotpath

TYPES = {"audit": {"seq": "bigint", "wall_us": "bigint", "trusted": "boolean", "actor": "text",
                   "action": "text", "subject": "text", "detail": "text"},
         "applied_event": {"id": "text", "outcome": "text"},
         "lot": {"id": "text", "remaining": "integer"},
         "member": {"id": "text", "balance": "integer", "debt": "integer"}}


class ListsMarked(Writes):
    """Writes as they marked before session 18: each list's length and sent count."""

    def mark(self) -> Any:  # type: ignore[override]
        return {key: (len(rows), self._sent[key]) for key, rows in self._rows.items()}

    def restore(self, mark: Any) -> None:
        for key, rows in self._rows.items():
            kept, sent = mark.get(key, (0, 0))
            del rows[kept:]
            self._sent[key] = min(self._sent[key], sent, kept)


def _sending() -> tuple[list[tuple[str, list[Any]]], Any]:
    sent: list[tuple[str, list[Any]]] = []

    def send(sql: str, params: Sequence[Any]) -> None:
        sent.append((sql, [getattr(param, "data", param) for param in params]))
    return sent, send


def _keep_some(writes: Writes, rng: random.Random, n: int) -> None:
    for _ in range(rng.randrange(4)):
        choice = rng.randrange(4)
        if choice == 0:
            writes.add(hotpath.INSERT_AUDIT, (n, n, True, "a", "b", f"s{n}", ""))
        elif choice == 1:
            writes.add(hotpath.MOVE_LOT, (rng.randrange(-5, 5), f"lot{rng.randrange(3)}"))
        elif choice == 2:
            writes.add(hotpath.SAVE_BALANCE, (n, 0, f"m{rng.randrange(3)}"))
        else:
            writes.add_rows("applied_event", ("id", "outcome"), [(f"e{n}", "applied")])


def test_a_rolled_back_event_leaves_what_marking_every_list_left() -> None:
    for seed in range(200):
        rng = random.Random(seed)
        ops = []
        for n in range(30):  # an event: a mark, rows kept, flushes inside it, maybe a rollback
            ops.append((n, rng.random() < 0.3, rng.random() < 0.3, rng.random() < 0.25,
                        rng.random() < 0.2))
        results = []
        for kind in (Writes, ListsMarked):
            sent, send = _sending()
            writes = kind(send, TYPES)
            for n, flush_inside, flush_after, rolled_back, flush_before in ops:
                if flush_before:
                    writes.flush()
                mark = writes.mark()
                _keep_some(writes, random.Random(f"{seed}-{n}"), n)
                if flush_inside:  # a read inside the event sent what was kept so far
                    writes.flush()
                _keep_some(writes, random.Random(f"{seed}-{n}-after"), n)
                if rolled_back:
                    writes.restore(mark)
                if flush_after:
                    writes.flush()
            writes.flush()
            results.append(sent)
        assert results[0] == results[1], seed


def test_a_mark_is_two_counts() -> None:
    _, send = _sending()
    writes = Writes(send, TYPES)
    assert writes.mark() == (0, 0)
    writes.add(hotpath.INSERT_AUDIT, (1, 1, True, "a", "b", "s", ""))
    writes.add(hotpath.MOVE_LOT, (1, "lot"))
    writes.flush()
    writes.add(hotpath.MOVE_LOT, (2, "lot"))
    assert writes.mark() == (3, 1)
