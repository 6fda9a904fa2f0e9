"""Signed member states: what HQ's member operations tell every till about one card.

HQ publishes one message per card on ``{root}/members/state/{card_hash}`` (not retained), signed
like a bundle (the signing key vouched for by a root key's delegation;
:mod:`terminal.protocol.bundle`):

    {"member_state": b64(canonical state), "signature": b64(Ed25519), "delegation": {...}}

The state is a snapshot, not a delta: ``{card_hash, version, issued_at, key_id, state, reason,
replaced_by, replaced_by_last4, card_last4, tier, profile}``. ``version`` is HQ's member-operation
sequence, so a till applies a state only when it is newer than the one it holds for that card:
messages may arrive in any order, twice, or replayed by an attacker, and the newest always wins.
The broker queues a bounded number of messages for each subscriber and drops the rest, so a
till that reads slower than HQ publishes, or was offline, also asks HQ for the states above the
version it holds them all up to (a ``states`` member request: terminal.sync.member_states), and
takes no retained copies when it subscribes. A round of more states than HQ sends one by one (a
campaign's bonus) goes out as one :class:`StatesNotice` on ``{root}/members/states`` instead,
signed the same way with a context of its own: "every state up to version ``through`` is
published, take it by your catch-up" (and, after ``posterm-hq member republish``, "take every
state above ``since`` again").

``state`` is ``active``, ``frozen`` (neither earns nor redeems; ``reason`` says why on the till's
display) or ``retired`` (reported lost, or merged into another member: ``replaced_by`` names the
card that carries the member on). ``profile`` is the member's personal data as HQ now holds it
(``erased`` once the member asked for erasure, with every field empty), ``None`` on a retired card.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminal.protocol import canonical
from terminal.protocol.bundle import (
    BundleMalformed,
    TrustStore,
    _iso,
    _object,
    _time,
    check_signing_key,
    key_id,
    open_signed,
    seal_signed,
)

MEMBER_STATE_CONTEXT = b"posterm member-state v1\x00"
STATES = ("active", "frozen", "retired")
_HASH = re.compile(r"[0-9a-f]{64}")
_LAST4 = re.compile(r"[0-9A-Za-z]{0,4}")
_STATE_KEYS = ("card_hash", "version", "issued_at", "key_id", "state", "reason", "replaced_by",
               "replaced_by_last4", "card_last4", "tier", "profile")
_PROFILE_KEYS = ("name", "birthday", "phone_hash", "phone_last4", "erased")
NOTICE_CONTEXT = b"posterm member-states notice v1\x00"
_NOTICE_KEYS = ("through", "since", "issued_at", "key_id")
MAX_REASON = 200


@dataclass(frozen=True)
class Profile:
    """A member's personal data as HQ holds it; all empty once erased on request."""

    name: str = ""
    birthday: str | None = None  # YYYY-MM-DD
    phone_hash: str | None = None
    phone_last4: str = ""
    erased: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "birthday": self.birthday, "phone_hash": self.phone_hash,
                "phone_last4": self.phone_last4, "erased": self.erased}


@dataclass(frozen=True)
class MemberState:
    card_hash: str
    version: int
    issued_at: datetime
    state: str
    reason: str = ""
    replaced_by: str | None = None
    replaced_by_last4: str = ""
    card_last4: str = ""
    tier: str | None = None
    profile: Profile | None = None
    key_id: str = ""
    raw: bytes = field(default=b"", repr=False, compare=False)

    def to_dict(self, signing_key_id: str) -> dict[str, Any]:
        return {"card_hash": self.card_hash, "version": self.version,
                "issued_at": _iso(self.issued_at), "key_id": signing_key_id,
                "state": self.state, "reason": self.reason, "replaced_by": self.replaced_by,
                "replaced_by_last4": self.replaced_by_last4, "card_last4": self.card_last4,
                "tier": self.tier,
                "profile": self.profile.to_dict() if self.profile is not None else None}


def signed(state: MemberState, signing: Ed25519PrivateKey, delegation: dict[str, str]) -> bytes:
    """The wire message for ``state``, signed by ``signing`` (whose delegation is given)."""
    raw = canonical.dumps(state.to_dict(key_id(signing.public_key())))
    _parse(raw)  # HQ never publishes what a till would refuse
    return seal_signed("member_state", MEMBER_STATE_CONTEXT, raw, signing, delegation)


def verify_member_state(wire: bytes, trust: TrustStore, *,
                        latest_trusted: datetime | None = None) -> MemberState:
    """The state in ``wire`` if HQ's key chain vouches for it, else a ``BundleRejected``
    subclass (``malformed``, ``bad_signature``, ``unknown_key``, ``key_revoked``,
    ``key_not_valid``); nothing else, whatever the bytes.

    ``issued_at`` is the signer's word, so a key whose delegation ended before
    ``latest_trusted`` (the terminal's latest trusted time, when it knows one) is refused
    whatever the state claims, as for bundles."""
    delegation, raw = open_signed(wire, trust, "member_state", MEMBER_STATE_CONTEXT)
    state = _parse(raw)
    check_signing_key(delegation, trust, state.key_id, state.issued_at, "member state",
                      latest_trusted=latest_trusted)
    return state


@dataclass(frozen=True)
class StatesNotice:
    """HQ published every member state up to version ``through``: a till takes what it lacks
    by its catch-up. ``since``: not None after a reissue (every state signed again), when every
    till takes every state above it again, whatever it holds."""

    through: int
    issued_at: datetime
    since: int | None = None
    key_id: str = ""


def signed_notice(notice: StatesNotice, signing: Ed25519PrivateKey,
                  delegation: dict[str, str]) -> bytes:
    """The wire message for ``notice``, signed by ``signing`` (whose delegation is given)."""
    raw = canonical.dumps({"through": notice.through, "since": notice.since,
                           "issued_at": _iso(notice.issued_at),
                           "key_id": key_id(signing.public_key())})
    _parse_notice(raw)
    return seal_signed("states_notice", NOTICE_CONTEXT, raw, signing, delegation)


def verify_notice(wire: bytes, trust: TrustStore, *,
                  latest_trusted: datetime | None = None) -> StatesNotice:
    """The notice in ``wire`` if HQ's key chain vouches for it, else a ``BundleRejected``
    subclass, as :func:`verify_member_state`."""
    delegation, raw = open_signed(wire, trust, "states_notice", NOTICE_CONTEXT)
    notice = _parse_notice(raw)
    check_signing_key(delegation, trust, notice.key_id, notice.issued_at,
                      "member-states notice", latest_trusted=latest_trusted)
    return notice


def _version(value: Any, name: str, *, least: int = 1, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value < 2**63:
        raise BundleMalformed(f"member state {name} must be an integer of at least {least}, "
                              f"not {value!r}")
    return value


def _parse_notice(raw: bytes) -> StatesNotice:
    data = _object(raw, "member-states notice", _NOTICE_KEYS)
    if not isinstance(data["key_id"], str):
        raise BundleMalformed("member-states notice key_id must be a string")
    return StatesNotice(_version(data["through"], "notice through", least=0),
                        _time(data["issued_at"], "issued_at"),
                        _version(data["since"], "notice since", least=0, optional=True),
                        data["key_id"])


def _text(data: dict[str, Any], name: str, limit: int, *, optional: bool = False) -> Any:
    value = data[name]
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit or (value and not value.isprintable()):
        raise BundleMalformed(f"member state {name} must be printable text of at most {limit} "
                              "characters")
    return value


def _hash(value: Any, name: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not _HASH.fullmatch(value):
        raise BundleMalformed(f"member state {name} must be 64 lower-case hex digits")
    return value


def _last4(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _LAST4.fullmatch(value):
        raise BundleMalformed(f"member state {name} must be at most 4 letters or digits")
    return value


def _profile(value: Any) -> Profile | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != set(_PROFILE_KEYS):
        raise BundleMalformed(f"member state profile must hold exactly {', '.join(_PROFILE_KEYS)}")
    birthday = _text(value, "birthday", 10, optional=True)
    if birthday is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", birthday):
        raise BundleMalformed("member state profile birthday must be YYYY-MM-DD")
    if not isinstance(value["erased"], bool):
        raise BundleMalformed("member state profile erased must be true or false")
    profile = Profile(_text(value, "name", 64), birthday,
                      _hash(value["phone_hash"], "phone_hash", optional=True),
                      _last4(value["phone_last4"], "phone_last4"), value["erased"])
    if profile.erased and profile != Profile(erased=True):
        raise BundleMalformed("an erased member's profile must be empty")
    return profile


def _parse(raw: bytes) -> MemberState:
    data = _object(raw, "member state", _STATE_KEYS)
    version = _version(data["version"], "version")
    state = data["state"]
    if state not in STATES:
        raise BundleMalformed(f"member state state must be one of {', '.join(STATES)}")
    if not isinstance(data["key_id"], str):
        raise BundleMalformed("member state key_id must be a string")
    replaced_by = _hash(data["replaced_by"], "replaced_by", optional=True)
    if (state == "retired") != (replaced_by is not None):
        raise BundleMalformed("a retired card, and only a retired card, names its replacement")
    card_hash = _hash(data["card_hash"], "card_hash")
    if replaced_by == card_hash:
        raise BundleMalformed("a card cannot replace itself")
    profile = _profile(data["profile"])
    tier = _text(data, "tier", 64, optional=True)
    if state != "retired" and (profile is None or not tier):
        raise BundleMalformed("an active or frozen card's state carries its tier and profile")
    return MemberState(
        card_hash=card_hash, version=version,  # type: ignore[arg-type]
        issued_at=_time(data["issued_at"], "issued_at"), state=state,
        reason=_text(data, "reason", MAX_REASON), replaced_by=replaced_by,
        replaced_by_last4=_last4(data["replaced_by_last4"], "replaced_by_last4"),
        card_last4=_last4(data["card_last4"], "card_last4"), tier=tier, profile=profile,
        key_id=data["key_id"], raw=raw)
