"""``--member-requests apart``: HQ says it is online only once its member requests are answered.

A till takes HQ's retained "online" to mean its lookups and holds are answered; with the two
halves of a collector in two processes, the events' half used to say so as soon as it was
connected, and a hold sent before the other half had subscribed timed out into the offline
allowance (tests/trust/test_requests_apart.py, now and then on a loaded machine)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from terminal.protocol.messages import HqState, MemberRequest, MemberResponse
from terminal.protocol.topics import Topics

from .conftest import Inbox, mqtt_client, run
from .harness import Chain

TILL = ("S001", "T01")
ROUNDS = 3  # of the events' half's upkeep, each of which would say "online" again


def _states(inbox: Inbox) -> list[str]:
    return [HqState.from_json(message.payload).state for message in inbox.messages]


def test_online_is_said_once_member_requests_are_answered(tmp_path: Path, pki: Any,
                                                          broker: Any) -> None:
    topics = Topics()

    async def scenario() -> None:
        chain = Chain(tmp_path, pki, broker)
        answering = threading.Event()  # what the two processes share (a multiprocessing Event)
        events = chain.hq(client_id="hq-events", serves="events", answering=answering)
        requests = chain.hq(client_id="hq-requests", serves="requests", answering=answering)
        states = Inbox()
        async with mqtt_client(pki, broker, "/".join(TILL)) as till:
            await till.subscribe(topics.hq_state(), states)
            try:
                await events.start()
                await events.client.wait_ready(30)
                # Connected, subscribed and announcing every state_interval: still not online,
                # as nothing answers a hold yet. (A window of absence, not a synchronisation.)
                await asyncio.sleep(events.state_interval * ROUNDS)
                assert "online" not in _states(states)
                assert not answering.is_set()

                await requests.start()
                await requests.client.wait_ready(30)
                async with asyncio.timeout(30):
                    while "online" not in _states(states):
                        await states.wait_for(len(states.messages) + 1, 30)
                assert answering.is_set()
                # What a till does on "online": a lookup, answered at once.
                reply = await till.request(
                    topics.member_request(*TILL),
                    MemberRequest("lookup", "0" * 64).to_json(),
                    response_topic=topics.member_response(*TILL), timeout=30)
                answer = MemberResponse.from_json(reply.payload)
                assert not answer.ok and answer.error == "unknown member"
            finally:
                await chain.stop()

    run(scenario())
