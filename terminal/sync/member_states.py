"""Member states on the terminal: HQ's signed word about each card, verified and applied.

Each message on ``{root}/members/state/{card_hash}`` is verified against the terminal's root keys
(:func:`terminal.protocol.member_state.verify_member_state`), checked against its topic, and applied
in one ledger transaction by :meth:`LedgerStore.apply_card_update` only if its version is newer
than the one held for that card (so a replayed or reordered message changes nothing).
"""

from __future__ import annotations

from datetime import UTC, datetime

from terminal.loyalty.store import LedgerStore
from terminal.loyalty.store.card_states import CardUpdate, Profile
from terminal.protocol.bundle import TrustStore, WrongScope, latest_trusted
from terminal.protocol.member_state import MemberState, verify_member_state


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


def receive(store: LedgerStore, wire: bytes, topic_card_hash: str, trust: TrustStore,
            clock_trusted: bool) -> MemberState | None:
    """Verify and apply one member-state message (on the ledger thread). Returns the state if
    it changed anything, None if the ledger held it (or a newer one) already; raises a
    ``BundleRejected`` subclass, having changed nothing, when it is refused."""
    now = datetime.now(UTC)
    state = verify_member_state(
        wire, trust, latest_trusted=latest_trusted(now, clock_trusted, store.floor))
    if state.card_hash != topic_card_hash:
        raise WrongScope(f"the state of card {state.card_hash[:12]}… arrived on the topic of "
                         f"card {topic_card_hash[:12]}…")
    moment = store.moment(now, clock_trusted)
    if not store.apply_card_update(as_update(state), moment):
        return None
    # The signed issue time moves no floor: only what HQ's acks vouch for does (as for bundles).
    return state
