"""What the hostile-input suite shares: strategies for what a cashier, a card, a scanner or a
stranger on the broker can send, and a log watch that counts what crashed."""

from __future__ import annotations

import json
import logging
from typing import Any

from hypothesis import strategies as st

from terminal.drivers.keymap import DEFAULT_KEYMAP

KEY_WORDS = sorted(set(DEFAULT_KEYMAP.values()))
AMOUNTS = ["0", "1", "1234", "9999", "12.5", "0.001", "99999999999", "3", "100", "1."]
_LINE_SAFE = st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",))

# One console command: a key (maybe after a number), a swipe of raw tracks or of a card number
# (payment-card-like numbers included), or a scan.
cashier_commands = st.one_of(
    st.sampled_from(KEY_WORDS),
    st.tuples(st.sampled_from(AMOUNTS), st.sampled_from(KEY_WORDS)).map(" ".join),
    st.text(_LINE_SAFE, max_size=80).map(lambda t: f"t {t}"),
    st.sampled_from([";8000123456=3012101?", "%B4111111111111111^X/Y^3012101?;4111111111111111"
                     "=3012101?", ";80001234", "%B8000123456^^?", ";=?"]).map(lambda t: f"t {t}"),
    st.from_regex(r"[0-9]{1,24}", fullmatch=True).map(lambda n: f"s {n}"),
    st.text(_LINE_SAFE, max_size=40).map(lambda t: f"b {t}"),
    st.sampled_from(["6901234567892", "S001-T01-0001", "S001-T01-9999", "0"]).map(
        lambda c: f"b {c}"),
)

_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                          st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_values = st.recursive(_json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)


def mutate(document: Any, draw: st.DrawFn,
           values: st.SearchStrategy[Any] = json_values) -> Any:
    """``document`` with one value somewhere replaced, or one key dropped or added (new values
    drawn from ``values``)."""
    if isinstance(document, dict) and document:
        key = draw(st.sampled_from(sorted(document)))
        action = draw(st.sampled_from(["replace", "drop", "add", "descend"]))
        copy = dict(document)
        if action == "drop":
            del copy[key]
        elif action == "add":
            copy[draw(st.text(max_size=10))] = draw(values)
        elif action == "descend":
            copy[key] = mutate(copy[key], draw, values)
        else:
            copy[key] = draw(values)
        return copy
    if isinstance(document, list) and document:
        index = draw(st.integers(0, len(document) - 1))
        return [*document[:index], mutate(document[index], draw, values),
                *document[index + 1:]]
    return draw(values)


def payloads(valid: list[bytes]) -> st.SearchStrategy[bytes]:
    """Raw bytes, JSON of any shape, and valid messages with one thing changed."""
    documents = [json.loads(raw) for raw in valid]

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        return json.dumps(mutate(draw(st.sampled_from(documents)), draw)).encode()

    return st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                     *([mutated()] if documents else []))


class Crashes(logging.Handler):
    """Counts log records that carry a traceback or ERROR level: something did not handle its
    input. Attach with ``with Crashes() as crashes:``."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> Crashes:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)

    def describe(self) -> str:
        return "\n".join(f"{r.name}: {r.getMessage()}\n{r.exc_text or ''}" for r in self.records)
