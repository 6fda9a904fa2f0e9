"""The checks HQ's collector runs on every event, written for speed (a match where a parse or a
loop per character was; session 9 of issue 11), answer as before: an event id in any form but
the lower-case hyphenated one, a key given twice at any depth, and control characters and lone
surrogates in text, each refused with the same words."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from terminal.hq.refusals import DETAIL_MAX, storable
from terminal.hq.validation import BadEvent, validate
from terminal.protocol import canonical
from terminal.protocol import messages as m

ID = "0b0a0c0d-0000-4000-8000-000000000001"


def event(**fields: object) -> bytes:
    data = {"id": ID, "kind": "register", "store": "S001", "terminal": "T01", "seq": 1,
            "epoch": 1, "wall_time": "2026-12-06T00:00:00+00:00", "time_trusted": True,
            "body": {"card_hash": "a" * 64, "name": "会员"}}
    data.update(fields)
    return json.dumps(data).encode()


@pytest.mark.parametrize(("value", "problem"), [
    (ID.upper(), "must be a UUID in lower-case hyphenated form"),
    ("{" + ID + "}", "must be a UUID in lower-case hyphenated form"),
    (ID.replace("-", ""), "must be a UUID in lower-case hyphenated form"),
    ("urn:uuid:" + ID, "must be a UUID in lower-case hyphenated form"),
    (ID + "\n", "is not a UUID"),
    (ID[:-1] + "g", "is not a UUID"),
    ("", "is not a UUID"),
])
def test_an_event_id_in_another_form_is_refused(value: str, problem: str) -> None:
    with pytest.raises(m.MessageError, match=problem):
        m.Event.from_json(event(id=value))
    fresh = str(uuid.uuid4())
    assert m.Event.from_json(event(id=fresh)).id == fresh


def test_a_key_given_twice_is_refused_at_any_depth() -> None:
    with pytest.raises(canonical.CanonicalError, match="duplicate key 'seq'"):
        canonical.loads(b'{"seq": 1, "kind": "x", "seq": 2}')
    with pytest.raises(canonical.CanonicalError, match="duplicate key 'qty'"):
        canonical.loads(b'{"body": {"lines": [{"qty": 1, "sku": "A", "qty": 1}]}}')
    assert canonical.loads(b'{"a": {"a": 1}, "b": [{"a": 2}]}') == {"a": {"a": 1},
                                                                      "b": [{"a": 2}]}


@pytest.mark.parametrize(("char", "what"), [
    ("\x00", "a control character (U+0000)"), ("\x1f", "a control character (U+001F)"),
    ("\x7f", "a control character (U+007F)"), ("\x9f", "a control character (U+009F)"),
    ("\ud800", "a lone surrogate (U+D800)"), ("\udfff", "a lone surrogate (U+DFFF)"),
])
def test_control_characters_and_lone_surrogates_are_refused(char: str, what: str) -> None:
    parsed = m.Event.from_json(event())
    bad = m.Event(parsed.id, parsed.kind, parsed.store, parsed.terminal, parsed.seq,
                  parsed.epoch, parsed.wall_time, parsed.time_trusted,
                  {**parsed.body, "name": f"会员{char}x"})
    with pytest.raises(BadEvent, match=re.escape(f"body.name holds {what}")):
        validate(bad)
    fine = m.Event(parsed.id, parsed.kind, parsed.store, parsed.terminal, parsed.seq,
                   parsed.epoch, parsed.wall_time, parsed.time_trusted,
                   {**parsed.body, "name": "会员 \xa0\u200b😀 \\ '%s"})
    validate(fine)


def test_a_refusals_reason_escapes_what_a_column_cannot_hold() -> None:
    assert storable("bad \x00 \x9f \ud800 会员 😀") == "bad \\u0000 \\u009f \\ud800 会员 😀"
    assert storable("\x01" * 600) == "\\u0001" * 83 + "\\u"  # bounded before and after
    assert storable("x" * 600) == "x" * DETAIL_MAX
