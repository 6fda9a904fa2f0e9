"""``posterm-hq collect --member-requests apart``: the tills' lookups and holds answered by a
process of their own beside the one applying events, on SQLite and PostgreSQL; the member-request
process dies with the collector, even one SIGKILLed."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

from terminal.hq.scheduling import SLICE_NS
from terminal.protocol.messages import MemberRequest, MemberResponse
from terminal.protocol.topics import Topics
from tests.sync.conftest import mqtt_client, run
from tests.sync.harness import until

from .support import ATTACKER, card, collector, drained, honest_till


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _slice(pid: int) -> int | None:
    """The EEVDF slice the kernel keeps for ``pid`` (ns; None where /proc does not say)."""
    found = re.search(r"^se\.slice\s*:\s*(\d+)", Path(f"/proc/{pid}/sched").read_text(), re.M)
    return int(found[1]) if found else None


def _kernel() -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", os.uname().release)[:2])


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def _ask(client: Any, request: MemberRequest) -> MemberResponse:
    topics = Topics()
    reply = await client.request(topics.member_request(*ATTACKER), request.to_json(),
                                 response_topic=topics.member_response(*ATTACKER), timeout=30)
    return MemberResponse.from_json(reply.payload)


def test_member_requests_answered_apart(tmp_path: Path, pki: Any, broker: Any,
                                        hq_db: str) -> None:
    member = "8000000600"

    async def scenario() -> None:
        async with honest_till(tmp_path, pki, broker) as till:
            await till.register(member)
            await till.sell(300_000, member)
            await until(lambda: drained(till), 60)
            held = await till.link.hold(card(member), 500, "S002-T01-0003")
            assert not held.offline
            async with mqtt_client(pki, broker, "/".join(ATTACKER), client_id="ask") as client:
                looked = await _ask(client, MemberRequest("lookup", card(member)))
                assert looked.ok and looked.balance == 3100 - 500
                unknown = await _ask(client, MemberRequest("lookup", card("8000000699")))
                assert not unknown.ok and unknown.error == "unknown member"

    with collector(tmp_path, pki, broker, hq_db, "--member-requests", "apart",
                   "--ingest-nice", "5") as hq:
        run(scenario())
        assert hq.process is not None
        parent = hq.process.pid
        children = _children(parent)
        assert len(children) == 2, children  # the member-request process, the event reader
        [reader] = map(int, re.findall(r"event reader \(pid (\d+)\)", hq.log()))
        [requests] = children - {reader}
        # The bulk work, the ingest process, yields the CPU to the member requests and to the
        # event reader, which drains the broker through a burst (--ingest-nice); they keep the
        # collector's priority (a runner already at niceness 19 has no lower one to give).
        assert _nice(parent) == min(19, _nice(requests) + 5)
        assert _nice(reader) == _nice(requests)
        assert _nice(parent) > _nice(requests) or _nice(requests) == 19
        # The member-request process is a session (an autogroup) of its own, the ingest
        # process and the event reader stay in the collector's (terminal/hq/scheduling.py),
        # and it runs with a short slice where the kernel takes one (Linux 6.12 and later).
        assert os.getsid(requests) == requests
        assert os.getsid(reader) == os.getsid(parent) != requests
        slices = {pid: _slice(pid) for pid in (parent, reader, requests)}
        if _kernel() >= (6, 12) and slices[requests] is not None:
            assert slices[requests] == SLICE_NS, slices
            assert slices[parent] == slices[reader] != SLICE_NS, slices
        hq.process.send_signal(signal.SIGKILL)
        hq.process.wait(60)
        run(until(lambda: all(_gone(child) for child in children), 60))
        log = hq.log()
    assert "member-request process stopped" in log and "Traceback" not in log
    assert "event reader stopped" in log
    # Each process keeps what it made at start out of its full collections (settle_heap): a
    # full collection of it stopped a process for 70-220 ms, a hold or a batch's locks with it.
    kept = dict(re.findall(r"INFO (collect|member-request process|event reader): (\d+) "
                           r"objects kept out", log))
    assert set(kept) == {"collect", "member-request process", "event reader"}, log[-2000:]
    assert all(int(count) > 10_000 for count in kept.values()), kept
