from __future__ import annotations

import pytest

from terminal.protocol.topics import TerminalTopic, TopicError, Topics, check_scope, identity


def test_builders_follow_the_design_scheme() -> None:
    t = Topics()
    assert t.events("S001", "T01") == "posterm/v1/t/S001/T01/events"
    assert t.status("S001", "T01") == "posterm/v1/t/S001/T01/status"
    assert t.acks("S001", "T01") == "posterm/v1/t/S001/T01/acks"
    assert t.cmd("S001", "T01") == "posterm/v1/t/S001/T01/cmd"
    assert t.member_request("S001", "T01") == "posterm/v1/t/S001/T01/members/req"
    assert t.member_response("S001", "T01") == "posterm/v1/t/S001/T01/members/resp"
    assert t.bundle("store/S001") == "posterm/v1/bundles/store/S001"
    assert t.hq_state() == "posterm/v1/hq/state"
    assert t.scopes_for("S001") == ("chain", "store/S001")
    assert t.all_terminals("events") == "$share/posterm-hq/posterm/v1/t/+/+/events"
    assert Topics("acme/x").cmd("a", "b") == "acme/x/t/a/b/cmd"
    assert identity("S001", "T01") == "S001/T01"


def test_parser_round_trips() -> None:
    t = Topics()
    assert t.parse_terminal("posterm/v1/t/S001/T01/members/resp") == TerminalTopic(
        "S001", "T01", "members/resp")
    assert t.parse_bundle("posterm/v1/bundles/chain") == "chain"


def test_a_terminal_topic_is_parsed_once_and_a_refused_one_every_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """HQ parses the topic of every event twice (event reader, ingest process): a topic parsed
    once is answered from memory, the same immutable TerminalTopic; a refused one is refused
    every time (and one that is not text at all, unkept); past PARSED_KEPT topics the least
    recently used is forgotten."""
    monkeypatch.setattr(Topics, "PARSED_KEPT", 2)
    t = Topics()
    first = t.parse_terminal("posterm/v1/t/S001/T01/events")
    assert t.parse_terminal("posterm/v1/t/S001/T01/events") is first
    assert t.parse_terminal("posterm/v1/t/S001/T02/events") == TerminalTopic("S001", "T02",
                                                                             "events")
    for bad in ("posterm/v1/t/S001/+/events", "posterm/v1/t/S001/+/events", ["a"], None):
        with pytest.raises(TopicError):
            t.parse_terminal(bad)  # type: ignore[arg-type]
    assert t.parse_terminal("posterm/v1/t/S001/T01/events") is first  # used last: T02 goes
    third = t.parse_terminal("posterm/v1/t/S001/T03/events")
    assert t.parse_terminal("posterm/v1/t/S001/T03/events") is third
    assert t.parse_terminal("posterm/v1/t/S001/T01/events") is first  # still kept
    t.parse_terminal("posterm/v1/t/S001/T02/events")  # T03 was the least recently used: gone
    again = t.parse_terminal("posterm/v1/t/S001/T03/events")
    assert again == third and again is not third


@pytest.mark.parametrize("bad", ["", "+", "#", "a/b", "a b", "a\x00", "é", "x" * 65])
def test_bad_ids_refused(bad: str) -> None:
    with pytest.raises(TopicError, match="id"):
        Topics().events(bad, "T01")
    with pytest.raises(TopicError):
        Topics().events("S001", bad)


@pytest.mark.parametrize("topic", [
    "posterm/v1/t/S001/T01", "posterm/v1/t/S001/+/events", "posterm/v1/t/S001/T01/other",
    "posterm/v2/t/S001/T01/events", "posterm/v1/t//T01/events", "posterm/v1/t/#/T01/events",
])
def test_parser_refuses_foreign_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        Topics().parse_terminal(topic)


@pytest.mark.parametrize("scope", ["", "store", "store/", "store/a/b", "chain/x", "region/1"])
def test_bad_scopes(scope: str) -> None:
    with pytest.raises(TopicError, match=r"scope|id"):
        check_scope(scope)


def test_bad_root() -> None:
    with pytest.raises(TopicError, match="root"):
        Topics("posterm/+")
