from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from terminal.protocol import messages as m

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ID = str(uuid.uuid4())


def round_trip(msg: m._Message) -> None:
    assert type(msg).from_json(msg.to_json()) == msg


def test_round_trips() -> None:
    round_trip(m.Event(ID, "sale", "S001", "T01", 12, 3, NOW, False, {"total_fen": 1250}))
    round_trip(m.Ack((ID, str(uuid.uuid4())), NOW))
    round_trip(m.Status("online", 3, "0.1.0", 7, 0, {"printer": "paper_out"}))
    round_trip(m.Status("online", 3, "0.1.0", 7, 2, {}, {"what": "bundle", "reason": "expired",
                                                         "detail": "v4 expired"}))
    round_trip(m.Status("online", 3, "0.1.0", 7, 0, {}, None,
                        {"ref": ID, "name": "print_status", "at": NOW.isoformat()}))
    round_trip(m.Command(ID, "resync"))
    round_trip(m.MemberRequest("hold", member="M1", points=500, hold_id=ID))
    round_trip(m.MemberRequest("void", hold_id=ID))
    round_trip(m.MemberRequest("states", since=0))
    round_trip(m.MemberResponse("states", True, NOW, states=('{"signed":1}', "{}"), through=9,
                                more=False))
    round_trip(m.MemberResponse("lookup", True, NOW, member="M1", balance=-20, tier="gold"))
    round_trip(m.MemberResponse("hold", False, NOW, hold_id=ID, error="insufficient points"))


def event(**changes: object) -> bytes:
    data = {"id": ID, "kind": "sale", "store": "S001", "terminal": "T01", "seq": 1, "epoch": 1,
            "wall_time": NOW.isoformat(), "time_trusted": True, "body": {}}
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


@pytest.mark.parametrize(("raw", "field"), [
    (event(id="not-a-uuid"), "id"),
    (event(id=ID.upper()), "id"),
    (event(kind="bribe"), "kind"),
    (event(kind="registration"), "kind"),
    (event(store=...), "store"),
    (event(terminal=""), "terminal"),
    (event(seq=0), "seq"),
    (event(seq=True), "seq"),
    (event(epoch="1"), "epoch"),
    (event(wall_time="2026-03-01T08:00:00"), "wall_time"),
    (event(wall_time="yesterday"), "wall_time"),
    (event(time_trusted=1), "time_trusted"),
    (event(body=...), "body"),
    (event(extra=1), "extra"),
    (event(seq=1.0), ""),
    (b"[]", ""),
    (b"\xff", ""),
])
def test_event_errors_name_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(m.MessageError) as info:
        m.Event.from_json(raw)
    assert info.value.field == field
    assert str(info.value).startswith("event")


def test_command_names_are_closed() -> None:
    with pytest.raises(m.MessageError, match=r"command\.name: 'format_disk' is not one of"):
        m.Command.from_json(json.dumps({"id": ID, "name": "format_disk"}))
    assert m.Command.from_json(json.dumps({"id": ID, "name": "print_status"})).args == {}


def test_ack_ids_checked_one_by_one() -> None:
    with pytest.raises(m.MessageError) as info:
        m.Ack.from_json(json.dumps({"ids": [ID, "nope"], "hq_time": NOW.isoformat()}))
    assert info.value.field == "ids[1]"


@pytest.mark.parametrize(("data", "field"), [
    ({"op": "hold", "member": "M1", "hold_id": ID}, "points"),
    ({"op": "lookup"}, "member"),
    ({"op": "post"}, "hold_id"),
    ({"op": "post", "hold_id": ID, "points": 5}, "points"),
    ({"op": "lookup", "member": "M1\n"}, "member"),
    ({"op": "states"}, "since"),
    ({"op": "states", "since": -1}, "since"),
    ({"op": "states", "since": 3, "member": "M1"}, "member"),
    ({"op": "lookup", "member": "M1", "since": 3}, "since"),
])
def test_member_request_fields_per_op(data: dict, field: str) -> None:
    with pytest.raises(m.MessageError) as info:
        m.MemberRequest.from_json(json.dumps(data))
    assert info.value.field == field


def test_refusal_needs_a_reason() -> None:
    with pytest.raises(m.MessageError, match="error: is required"):
        m.MemberResponse.from_json(json.dumps({"op": "hold", "ok": False,
                                               "hq_time": NOW.isoformat()}))


def test_catch_up_states_are_strings() -> None:
    with pytest.raises(m.MessageError) as info:
        m.MemberResponse.from_json(json.dumps({"op": "states", "ok": True, "through": 2,
                                               "hq_time": NOW.isoformat(), "states": [1]}))
    assert info.value.field == "states"


def test_status_devices_are_text() -> None:
    raw = json.dumps({"state": "offline", "epoch": 2, "version": "0.1.0", "rule_version": 0,
                      "backlog": 0, "devices": {"printer": 1}})
    with pytest.raises(m.MessageError) as info:
        m.Status.from_json(raw)
    assert info.value.field == "devices.printer"


def test_a_status_done_field_is_strict() -> None:
    good = m.Status("online", 1, "0.1.0", 1, 0, {}).to_dict()
    for done, field in (({"ref": ID, "extra": "x"}, "done.extra"), ({"ref": 7}, "done.ref"),
                        ("print_status", "done")):
        with pytest.raises(m.MessageError) as caught:
            m.Status.from_json(json.dumps({**good, "done": done}))
        assert caught.value.field == field


def test_a_status_carries_the_printers_code_and_an_older_tills_is_still_taken() -> None:
    printer = {"code": "paper_out", "waiting": 2}
    status = m.Status("online", 3, "0.2.0", 7, 0, {"printer": "2 receipts waiting"},
                      printer_state=printer)
    round_trip(status)
    assert json.loads(status.to_json())["printer_state"] == printer
    # A till from before the code: exactly the shape it sends (no printer_state key at all).
    old = {"state": "online", "epoch": 3, "version": "0.1.0", "rule_version": 7, "backlog": 0,
           "devices": {"printer": "1 receipts waiting", "reader": "present"}}
    parsed = m.Status.from_json(json.dumps(old))
    assert parsed.printer_state is None and parsed.devices["printer"] == "1 receipts waiting"
    assert "printer_state" not in json.loads(parsed.to_json())
    # A code HQ does not know (a newer till's), control characters and all, is taken: HQ shows
    # the till's words for it. The shape is strict.
    odd = m.Status.from_json(json.dumps({**old, "printer_state": {"code": "cover\x1b[2J"}}))
    assert odd.printer_state == {"code": "cover\x1b[2J"}
    for bad, field in (({"code": ""}, "printer_state.code"), ({"code": 5}, "printer_state.code"),
                       ({"code": "x" * 65}, "printer_state.code"),
                       ({"waiting": 1}, "printer_state.code"),
                       ({"code": "ok", "waiting": -1}, "printer_state.waiting"),
                       ({"code": "ok", "waiting": True}, "printer_state.waiting"),
                       ({"code": "ok", "extra": 1}, "printer_state.extra"),
                       ("ok", "printer_state")):
        with pytest.raises(m.MessageError) as caught:
            m.Status.from_json(json.dumps({**old, "printer_state": bad}))
        assert caught.value.field == field, bad


def refusal(**changes: object) -> bytes:
    data: dict[str, object] = {"op": "hold", "ok": False, "hq_time": NOW.isoformat(),
                               "hold_id": ID, "error": "insufficient points: 300 available",
                               "code": "hold.points", "values": {"available": 300}}
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


def test_a_refusal_carries_its_code_and_values() -> None:
    round_trip(m.MemberResponse("hold", False, NOW, hold_id=ID, error="card frozen at HQ: 挂失",
                                code="card.frozen", values={"reason": "挂失", "n": -3}))
    round_trip(m.MemberRequest("lookup", member="M1", codes=True))
    parsed = m.MemberResponse.from_json(refusal())
    assert (parsed.code, parsed.values) == ("hold.points", {"available": 300})
    assert m.MemberResponse.from_json(refusal(values=...)).values is None  # a code alone
    old = m.MemberResponse.from_json(refusal(code=..., values=...))  # an HQ before codes
    assert (old.code, old.values, old.error) == (None, None, "insufficient points: 300 available")


@pytest.mark.parametrize(("raw", "field"), [
    (refusal(code=7), "code"),
    (refusal(code=""), "code"),
    (refusal(code="Hold.Points"), "code"),
    (refusal(code="hold points"), "code"),
    (refusal(code="hold.\npoints"), "code"),
    (refusal(code="a" * 65), "code"),
    (refusal(ok=True, error=...), "code"),  # a code on an answer that is no refusal
    (refusal(code=...), "values"),  # values without a code
    (refusal(values=[300]), "values"),
    (refusal(values="available=300"), "values"),
    (refusal(values={"available": {"points": 300}}), "values.available"),  # nested
    (refusal(values={"available": [300]}), "values.available"),
    (refusal(values={"available": True}), "values.available"),
    (refusal(values={"available": None}), "values.available"),
    (refusal(values={"available": 2**53}), "values.available"),
    (refusal(values={"reason": "x" * 201}), "values.reason"),
    (refusal(values={"reason": "lost\x00"}), "values.reason"),
    (refusal(values={"reason": "line\nbreak"}), "values.reason"),
    (refusal(values={"reason": "\x1b[2J"}), "values.reason"),
    (refusal(values={"reason": "\u202e"}), "values.reason"),
    (refusal(values={"Reason": "x"}), "values.'Reason'"),
    (refusal(values={"": "x"}), "values.''"),
    (refusal(values={"re\nason": "x"}), "values.'re\\nason'"),
    (refusal(values={f"v{n}": n for n in range(17)}), "values"),
])
def test_a_refusals_code_and_values_are_strict(raw: bytes, field: str) -> None:
    with pytest.raises(m.MessageError) as info:
        m.MemberResponse.from_json(raw)
    assert info.value.field == field
    assert str(info.value).startswith(f"member_response.{field}: ")


def test_a_requests_codes_is_a_boolean() -> None:
    with pytest.raises(m.MessageError) as info:
        m.MemberRequest.from_json(json.dumps({"op": "lookup", "member": "M1", "codes": 1}))
    assert info.value.field == "codes"
