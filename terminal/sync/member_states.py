"""Member states on the terminal: HQ's signed word about each card, verified and applied.

Each message on ``{root}/members/state/{card_hash}`` is verified against the terminal's root keys
(:func:`terminal.protocol.member_state.verify_member_state`), checked against its topic, and applied
in one ledger transaction by :meth:`LedgerStore.apply_card_update` only if its version is newer
than the one held for that card (so a replayed or reordered message changes nothing).

Those live messages can be lost: the broker queues at most ``max_queued_messages`` (1,000) past
the 100 in flight for a subscriber and drops the rest, so a campaign's bonus to 100,000 members
(a state each) reaches a till that reads slower than HQ publishes only in part, and a till that
subscribed again used to get some 1,100 of the retained states and never the others
(tests/sync/test_state_catch_up.py). So the till also catches up by version (:class:`CatchUp`):
it keeps the version up to which it holds every state HQ published (``meta``,
:data:`THROUGH_KEY`) and asks HQ for the states above it, a page at a time at its own pace
(a ``states`` member request, answered from what HQ's publishers sent:
terminal.hq.member_ops.publish), after each connection, when HQ comes online, when HQ's signed
notice says it published many states at once (a campaign's bonus: :func:`receive_notice`), and
every ``interval`` while connected. A page's states and the version it covers are kept in one
transaction; a till cut off half-way asks again from there. A reissue's notice (``posterm-hq
member republish``) sets the version back, and the till takes every state again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from terminal.loyalty.store import LedgerStore
from terminal.loyalty.store.card_states import CardUpdate, Profile
from terminal.loyalty.store.database import write_transaction
from terminal.loyalty.store.ledger_thread import LedgerThread
from terminal.loyalty.store.models import Meta
from terminal.protocol.bundle import BundleRejected, TrustStore, WrongScope, latest_trusted
from terminal.protocol.member_state import MemberState, verify_member_state, verify_notice
from terminal.sync.members import MemberClient

log = logging.getLogger(__name__)

THROUGH_KEY = "member_states_through"  # every state HQ published up to this version is held
# The least time between two pages' requests: HQ answers a till ``requests_per_second`` member
# requests (5 by default, in bursts of 10; what is over is dropped), and a catch-up at up to
# 1/PACE pages a second leaves the rest to the till's lookups and holds.
PACE = 0.3


def as_update(state: MemberState) -> CardUpdate:
    profile = state.profile
    return CardUpdate(
        card_hash=state.card_hash, version=state.version, state=state.state,
        reason=state.reason, replaced_by=state.replaced_by,
        replaced_by_last4=state.replaced_by_last4, tier=state.tier,
        profile=None if profile is None else Profile(
            profile.name, profile.birthday, profile.phone_hash, profile.phone_last4,
            profile.erased),
        forget_merged=True)


def _verify(store: LedgerStore, wire: bytes, trust: TrustStore,
            clock_trusted: bool) -> MemberState:
    return verify_member_state(
        wire, trust, latest_trusted=latest_trusted(datetime.now(UTC), clock_trusted,
                                                   store.floor))


def receive(store: LedgerStore, wire: bytes, topic_card_hash: str, trust: TrustStore,
            clock_trusted: bool) -> MemberState | None:
    """Verify and apply one member-state message (on the ledger thread). Returns the state if
    it changed anything, None if the ledger held it (or a newer one) already; raises a
    ``BundleRejected`` subclass, having changed nothing, when it is refused."""
    state = _verify(store, wire, trust, clock_trusted)
    if state.card_hash != topic_card_hash:
        raise WrongScope(f"the state of card {state.card_hash[:12]}… arrived on the topic of "
                         f"card {topic_card_hash[:12]}…")
    moment = store.moment(datetime.now(UTC), clock_trusted)
    if not store.apply_card_update(as_update(state), moment):
        return None
    # The signed issue time moves no floor: only what HQ's acks vouch for does (as for bundles).
    return state


def held_through() -> int:
    """The version up to which this ledger holds every state HQ published (on the thread)."""
    row = Meta.get_or_none(Meta.key == THROUGH_KEY)
    return int(row.value) if row is not None else 0


def receive_page(store: LedgerStore, wires: list[bytes], since: int, through: int,
                 trust: TrustStore, clock_trusted: bool
                 ) -> tuple[list[MemberState], list[BundleRejected]]:
    """Verify a catch-up page (asked from version ``since``), apply the states it may and keep
    ``through``, in one transaction: one commit (one fsync) a page, and a till stopped at any
    point holds the page's states and its bookmark together or neither (on the ledger thread).
    The bookmark moves only on from where it was (``since`` at or below it): a notice that
    set it back (a reissue) is not undone by a page asked before it. Returns the states that
    changed something and the refusals (a refused state is reported, not asked for again:
    HQ would send the same)."""
    states, refused = [], []
    for wire in wires:
        try:
            states.append(_verify(store, wire, trust, clock_trusted))
        except BundleRejected as exc:
            refused.append(exc)
    moment = store.moment(datetime.now(UTC), clock_trusted)
    with write_transaction(store.db):
        changed = (store.apply_card_updates([as_update(state) for state in states], moment)
                   if states else [])
        if since <= held_through() < through:
            _keep(through)
    return [state for state, done in zip(states, changed, strict=True) if done], refused


def _keep(through: int) -> None:
    (Meta.insert(key=THROUGH_KEY, value=str(through))
     .on_conflict(conflict_target=[Meta.key], update={Meta.value: str(through)})
     .execute())


def receive_notice(store: LedgerStore, wire: bytes, trust: TrustStore,
                   clock_trusted: bool) -> bool:
    """Verify HQ's notice of many states published at once (on the ledger thread); whether the
    till should catch up now (it lacks some). A reissue's notice (``since`` set) sets the
    bookmark back to ``since``: every state above it is taken again. Raises a
    ``BundleRejected`` subclass, having changed nothing, when it is refused."""
    notice = verify_notice(wire, trust, latest_trusted=latest_trusted(
        datetime.now(UTC), clock_trusted, store.floor))
    if notice.since is not None:
        with write_transaction(store.db):
            if notice.since < held_through():
                _keep(notice.since)
                log.info("member states: HQ signed every state again, taking those above "
                         "v%d again", notice.since)
    return held_through() < notice.through


class CatchUp:
    """Asks HQ for the member states the till lacks, a page at a time (see the module).

    ``on_state`` is called for each state that changed the ledger, ``report`` for each refusal
    (what, reason code, detail, ref), as for the live messages.

    The pace follows a page's own cost: the next page is asked once the ledger thread (the
    sales' too) has been left for as long as the last page kept it (a page's verifications
    and its commit: the catch-up takes at most about half of it), no sooner than ``pace``
    seconds after the last page was asked (HQ's per-till request rate, :data:`PACE`), and
    not while a lookup, hold or void of the till awaits HQ's answer (up to ``timeout``):
    the sale's requests go first. It was a fixed half second between pages (two pages a
    second at most, whatever a page cost). ``clock`` and ``sleep`` are the loop's (a test's
    fakes)."""

    def __init__(self, members: MemberClient, ledger: LedgerThread, store: LedgerStore,
                 trust: TrustStore, clock_trusted: Callable[[], bool],
                 on_state: Callable[[MemberState], None],
                 report: Callable[[str, str, str, str], Awaitable[None]], *,
                 interval: float = 30.0, pace: float = PACE, timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.members, self.ledger, self.store, self.trust = members, ledger, store, trust
        self.clock_trusted, self.on_state, self.report = clock_trusted, on_state, report
        self.interval, self.pace, self.timeout = interval, pace, timeout
        self.clock, self.sleep = clock, sleep
        self._wake = asyncio.Event()
        self.applied = 0  # states a catch-up applied (they changed the ledger)

    def wake(self) -> None:
        """Catch up now (a new connection, HQ online again)."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.once()
            except Exception:  # the ledger's trouble: the next round asks again
                log.exception("member states: the catch-up failed")

    async def once(self) -> bool:
        """Ask until HQ has no more or stops answering; whether HQ answered every page."""
        since = await self.ledger.run(held_through)
        while True:
            asked = self.clock()
            page = await self.members.states(since, self.timeout)
            if page is None:
                return False
            wires = [state.encode() for state in page.states or ()]
            started = self.clock()
            applied, refused = await self.ledger.run(
                receive_page, self.store, wires, since, page.through or since, self.trust,
                self.clock_trusted())
            cost = self.clock() - started  # on the ledger thread, with any wait for it
            for exc in refused:
                await self.report("member_state", exc.reason_code, exc.message, "catch-up")
            for state in applied:
                self.on_state(state)
            self.applied += len(applied)
            if applied:
                log.info("member states: %d applied from HQ's catch-up, up to v%d",
                         len(applied), page.through)
            if not page.more:
                return True
            since = await self.ledger.run(held_through)  # set back by a reissue meanwhile?
            await self.sleep(max(cost, self.pace - (self.clock() - asked)))
            await self.members.quiet(self.timeout)
