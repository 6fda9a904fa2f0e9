"""Member balance lookups and holds: MQTT 5 request/response with HQ, short and bounded.

Requests go to the terminal's own ``members/req`` with ``members/resp`` as the response topic.
A lookup HQ answered is cached for ``cache_ttl`` seconds, so a member identified twice in a sale
costs one round trip. Every answer carries HQ time, which raises the terminal's time floor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from terminal.app.hqlink import CardStoppedAtHq, Hold, HqUnreachable, RemoteBalance
from terminal.loyalty.errors import RedeemRefused
from terminal.protocol import ids
from terminal.protocol.messages import MemberRequest, MemberResponse, MessageError
from terminal.protocol.mqtt import MqttClient, MqttError
from terminal.protocol.topics import Topics

# HQ's lookup refusals that stop the card, by the card state the till's words name
# (terminal.app.catalogue's "card.<state>"); any other refusal is "no such member" to the till.
STOPPED = {"card.retired": "retired"}

log = logging.getLogger(__name__)


class MemberClient:
    def __init__(self, client: MqttClient, topics: Topics, store: str, terminal: str, *,
                 timeout: float = 1.5, cache_ttl: float = 30.0,
                 reachable: Callable[[], bool] = lambda: True,
                 on_hq_time: Callable[[datetime], None] = lambda at: None) -> None:
        self.client, self.store, self.terminal = client, store, terminal
        self.request_topic = topics.member_request(store, terminal)
        self.response_topic = topics.member_response(store, terminal)
        self.timeout, self.cache_ttl = timeout, cache_ttl
        self.reachable, self.on_hq_time = reachable, on_hq_time
        self._cache: dict[str, tuple[float, RemoteBalance]] = {}
        self._asking = 0  # lookups, holds and voids sent and not yet answered (or given up)
        self._quiet = asyncio.Event()  # set while none is
        self._quiet.set()

    async def quiet(self, longest: float) -> None:
        """Return once no lookup, hold or void awaits HQ's answer, or after ``longest`` seconds
        (a till's catch-up of member states asks its next page then: the sale's requests first)."""
        try:
            async with asyncio.timeout(longest):
                await self._quiet.wait()
        except TimeoutError:
            pass

    async def _ask(self, request: MemberRequest,
                   timeout: float | None = None) -> MemberResponse | None:
        """HQ's answer, or None when HQ cannot be asked or did not answer in time."""
        if request.op == "states":
            return await self._asked(request, timeout)
        self._asking += 1
        self._quiet.clear()
        try:
            return await self._asked(request, timeout)
        finally:
            self._asking -= 1
            if self._asking == 0:
                self._quiet.set()

    async def _asked(self, request: MemberRequest,
                     timeout: float | None) -> MemberResponse | None:
        if not self.reachable():
            return None
        try:
            reply = await self.client.request(self.request_topic, request.to_json(),
                                              response_topic=self.response_topic,
                                              timeout=timeout or self.timeout)
            response = MemberResponse.from_json(reply.payload)
        except MqttError as exc:
            log.info("member %s: HQ did not answer: %s", request.op, exc)
            return None
        except MessageError as exc:
            log.warning("member %s: refused HQ's answer: %s", request.op, exc)
            return None
        if response.op != request.op:
            log.warning("member %s: HQ answered a %s", request.op, response.op)
            return None
        self.on_hq_time(response.hq_time)
        return response

    async def balance(self, card_hash: str) -> RemoteBalance | None:
        """HQ's view of the member; None when HQ knows no such member or did not answer."""
        try:
            return await self.find(card_hash)
        except HqUnreachable:
            return None

    async def find(self, card_hash: str) -> RemoteBalance | None:
        """HQ's view of the member, None when HQ answered that it knows no such member;
        raises :class:`HqUnreachable` when HQ could not be asked or did not answer in time."""
        cached = self._cache.get(card_hash)
        if cached is not None and time.monotonic() - cached[0] < self.cache_ttl:
            return cached[1]
        response = await self._ask(MemberRequest("lookup", member=card_hash, codes=True))
        if response is None:
            raise HqUnreachable("HQ did not answer the member lookup")
        if not response.ok and response.code in STOPPED:
            # Not "no such member": a retired card must not be registered anew or earn here.
            raise CardStoppedAtHq(STOPPED[response.code],
                                  str((response.values or {}).get("reason", "")))
        if not response.ok or response.balance is None:
            return None
        found = RemoteBalance(response.balance, response.tier or "")
        self._cache[card_hash] = (time.monotonic(), found)
        return found

    async def states(self, since: int, timeout: float) -> MemberResponse | None:
        """A page of the member states HQ published above version ``since``
        (terminal.sync.member_states); None when HQ could not be asked, did not answer in time
        or refused."""
        response = await self._ask(MemberRequest("states", since=since), timeout)
        if response is None or not response.ok or response.through is None:
            return None
        return response

    def forget(self, card_hash: str) -> None:
        """Drop the cached answer for a card (HQ announced a change to it)."""
        self._cache.pop(card_hash, None)

    async def hold(self, card_hash: str, points: int, sale_id: str, kind: str = "sale") -> Hold:
        """A hold for a sale's redemption or (``kind="exchange"``) a goods exchange: a new one
        for each request (:func:`ids.new_hold_id`); the record's event names it, and HQ posts it
        when that event arrives. ``sale_id`` and ``kind`` say what it is for, in the log."""
        hold_id = ids.new_hold_id()
        log.debug("hold %s for %s %s", hold_id, kind, sale_id)
        response = await self._ask(MemberRequest("hold", member=card_hash, points=points,
                                                 hold_id=hold_id, codes=True))
        if response is None:
            # HQ unreachable: the caller keeps to the rules' offline allowance; HQ posts the
            # redemption when the sale's (or exchange's) event arrives.
            return Hold(hold_id, points, offline=True)
        if not response.ok:
            raise RedeemRefused(f"HQ refused the hold: {response.error}", "hq.hold",
                                **hq_refusal_values(response))
        self._cache.pop(card_hash, None)  # the balance HQ will answer has changed
        return Hold(hold_id, points, offline=False)

    async def void(self, hold: Hold) -> None:
        if hold.offline:
            return
        response = await self._ask(MemberRequest("void", hold_id=hold.id, codes=True))
        if response is not None and not response.ok:
            log.warning("HQ did not void hold %s: %s", hold.id, response.error)


# The names a till's refusal of HQ's words uses itself (terminal.app.refusal_words): HQ's values
# never take their place, whatever a newer or faulty HQ names them.
_OWN = frozenset({"why", "said", "code"})


def hq_refusal_values(response: MemberResponse) -> dict[str, int | str]:
    """A refusal's values for the till's words: HQ's English as ``said``, its ``code`` if it
    sent one (an older HQ does not) and the values it sent with it."""
    values: dict[str, int | str] = {name: value for name, value in (response.values or {}).items()
                                    if name not in _OWN}
    values["said"] = response.error or ""
    if response.code is not None:
        values["code"] = response.code
    return values
