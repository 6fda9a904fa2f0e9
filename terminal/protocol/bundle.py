"""Signed bundles (rules, catalogue, settings) and the key chain that vouches for them.

Wire form of a bundle, itself canonical JSON::

    {"bundle": b64(canonical bundle), "signature": b64(Ed25519 by the signing key),
     "delegation": {"statement": b64(canonical statement), "signature": b64(by a root key)}}

The bundle is ``{scope, version, issued_at, expires_at, key_id, payload: {rules, catalogue,
settings}}``. The statement is ``{key_id, public_key, not_before, not_after, root_key_id}``: a root
key provisioned on the terminal lets a signing key sign bundles issued within that window.
Rotating the signing key is HQ signing a new statement; each bundle carries its own, so a terminal
needs nothing but its root keys. Each signature covers a context prefix plus the exact canonical
bytes, so a statement can never pass for a bundle or the other way round.

Time (DESIGN promise 6): with a trusted clock a bundle is refused once expired or when issued more
than ``skew`` in the future. With an untrusted clock the terminal's own time is no evidence either
way: "not yet valid" is not checked (a Pi booting in 1970 would refuse every bundle) and "expired"
is judged only against ``time_floor``, the latest HQ time HQ's acks and answers vouched for.
Replaying an old bundle does not help an attacker: its version is not above the one held.

The issue time is the signer's word, so it never decides alone whether its key may sign: the
delegation must also not have ended by the latest time the terminal trusts (the clock when
trusted, else the floor), and a bundle lives at most ``MAX_LIFETIME``, so a retired key cannot
sign a backdated bundle that lives for decades. For the same reason a bundle's issue time moves
no floor (:mod:`terminal.sync.bundle_store`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from terminal.protocol import canonical
from terminal.protocol.topics import TopicError, check_scope

BUNDLE_CONTEXT = b"posterm bundle v1\x00"
DELEGATION_CONTEXT = b"posterm delegation v1\x00"
DEFAULT_SKEW = timedelta(minutes=5)
PAYLOAD_TYPES: dict[str, type] = {"rules": dict, "catalogue": list, "settings": dict}
# The longest a bundle may be valid: HQ pushes a new one well within it, and a key that signs a
# bundle while delegated cannot make it outlive the delegation by more.
MAX_LIFETIME = timedelta(days=90)
# The highest version: an exact integer in every JSON reader, and in the terminal's database.
MAX_VERSION = 2**53 - 1


class BundleRejected(Exception):
    """A bundle was refused; ``reason_code`` is the short code reported to HQ."""

    reason_code = "rejected"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason_code}: {self.message}"


class BundleMalformed(BundleRejected):
    reason_code = "malformed"


class BadSignature(BundleRejected):
    reason_code = "bad_signature"


class UnknownKey(BundleRejected):
    reason_code = "unknown_key"


class KeyRevoked(BundleRejected):
    reason_code = "key_revoked"


class KeyNotValid(BundleRejected):
    reason_code = "key_not_valid"


class WrongScope(BundleRejected):
    reason_code = "wrong_scope"


class StaleVersion(BundleRejected):
    reason_code = "stale_version"


class Expired(BundleRejected):
    reason_code = "expired"


class NotYetValid(BundleRejected):
    reason_code = "not_yet_valid"


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A short stable name for a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_bytes(key)).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise BundleMalformed(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BundleMalformed(f"{what} is not valid base64") from None


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError(f"{when!r} must carry a time zone")
    return when.isoformat()


def _time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise BundleMalformed(f"{what} must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BundleMalformed(f"{what} {value!r} is not an ISO-8601 time") from None
    if parsed.tzinfo is None:
        raise BundleMalformed(f"{what} {value!r} has no time zone")
    return parsed


def _object(raw: bytes, what: str, keys: Iterable[str]) -> dict[str, Any]:
    try:
        data = canonical.loads(raw)
    except canonical.CanonicalError as exc:
        raise BundleMalformed(f"{what}: {exc}") from None
    if not isinstance(data, dict):
        raise BundleMalformed(f"{what} must be a JSON object")
    expected = set(keys)
    if set(data) != expected:
        missing, extra = sorted(expected - set(data)), sorted(set(data) - expected)
        raise BundleMalformed(f"{what} fields: missing {missing}, unexpected {extra}")
    return data


# ---------------------------------------------------------------- key chain


@dataclass(frozen=True)
class Delegation:
    """A root key's statement that ``public_key`` may sign bundles issued in a window."""

    key_id: str
    public_key: Ed25519PublicKey
    not_before: datetime
    not_after: datetime
    root_key_id: str
    statement: bytes = field(repr=False)
    signature: bytes = field(repr=False)

    def to_wire(self) -> dict[str, str]:
        return {"statement": _b64(self.statement), "signature": _b64(self.signature)}


_STATEMENT_KEYS = ("key_id", "public_key", "not_before", "not_after", "root_key_id")


def delegate(root: Ed25519PrivateKey, signing: Ed25519PublicKey, not_before: datetime,
             not_after: datetime) -> Delegation:
    """Sign a statement delegating bundle signing to ``signing`` within the window."""
    if not_after <= not_before:
        raise ValueError("a delegation must end after it starts")
    statement = canonical.dumps({
        "key_id": key_id(signing), "public_key": _b64(public_bytes(signing)),
        "not_before": _iso(not_before), "not_after": _iso(not_after),
        "root_key_id": key_id(root.public_key()),
    })
    signature = root.sign(DELEGATION_CONTEXT + statement)
    return Delegation(key_id(signing), signing, not_before, not_after,
                      key_id(root.public_key()), statement, signature)


@dataclass(frozen=True)
class TrustStore:
    """What a terminal is provisioned with: root public keys, and signing keys it refuses."""

    roots: Mapping[str, Ed25519PublicKey]
    revoked: frozenset[str] = frozenset()

    @classmethod
    def of(cls, roots: Iterable[Ed25519PublicKey], revoked: Iterable[str] = ()) -> TrustStore:
        return cls({key_id(key): key for key in roots}, frozenset(revoked))

    def delegation(self, wire: Any) -> Delegation:
        """Check a delegation's root signature and decode it (:func:`_verified_delegation`:
        verified once for the same bytes and root key)."""
        if not isinstance(wire, dict) or set(wire) != {"statement", "signature"}:
            raise BundleMalformed("delegation must be {statement, signature}")
        statement = _unb64(wire["statement"], "delegation statement")
        signature = _unb64(wire["signature"], "delegation signature")
        data = _object(statement, "delegation statement", _STATEMENT_KEYS)
        root = self.roots.get(data["root_key_id"]) if isinstance(data["root_key_id"], str) else None
        if root is None:
            raise UnknownKey(f"delegation is signed by root key {data['root_key_id']!r}, "
                             "which this terminal does not trust")
        return _verified_delegation(public_bytes(root), statement, signature)


# Distinct delegations whose verification is remembered (a chain has one signing key at a time,
# two while it rotates; the rest is headroom, and the least recently used goes first).
VERIFIED_DELEGATIONS = 32


@functools.lru_cache(maxsize=VERIFIED_DELEGATIONS)
def _verified_delegation(root: bytes, statement: bytes, signature: bytes) -> Delegation:
    """The delegation of ``statement`` once ``signature`` verifies with the ``root`` key (its
    raw bytes), decoded; else a ``BundleRejected``.

    Remembered by those exact bytes (lru_cache; never a refusal: an exception is not cached):
    every message a signing key signs carries the same delegation, so a till's catch-up page
    of 200 member states verified it 200 times, half the page's Ed25519 verifications. What
    depends on the message or on the terminal's state is checked for each message, outside:
    the message's own signature (:func:`open_signed`), the key it names, revocation and the
    delegation's window against its issue time and the latest trusted time
    (:func:`check_signing_key`); which roots a terminal trusts is its :class:`TrustStore`'s."""
    try:
        Ed25519PublicKey.from_public_bytes(root).verify(signature, DELEGATION_CONTEXT + statement)
    except InvalidSignature:
        raise BadSignature("delegation signature does not verify with the root key") from None
    data = _object(statement, "delegation statement", _STATEMENT_KEYS)
    raw_key = _unb64(data["public_key"], "delegated public key")
    if len(raw_key) != 32:
        raise BundleMalformed("delegated public key must be 32 bytes")
    public = Ed25519PublicKey.from_public_bytes(raw_key)
    if data["key_id"] != key_id(public):
        raise BundleMalformed("delegation key_id does not match its public key")
    not_before = _time(data["not_before"], "delegation not_before")
    not_after = _time(data["not_after"], "delegation not_after")
    return Delegation(data["key_id"], public, not_before, not_after, data["root_key_id"],
                      statement, signature)


# ---------------------------------------------------------------- bundles


@dataclass(frozen=True)
class Bundle:
    """A verified bundle. ``issued_at`` is HQ time and may raise the terminal's time floor."""

    scope: str
    version: int
    issued_at: datetime
    expires_at: datetime
    key_id: str
    payload: dict[str, Any]
    raw: bytes = field(repr=False)


_BUNDLE_KEYS = ("scope", "version", "issued_at", "expires_at", "key_id", "payload")


def bundle_bytes(scope: str, version: int, issued_at: datetime, expires_at: datetime,
                 signing_key_id: str, payload: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a bundle; raises ValueError (or CanonicalError) on bad input."""
    check_scope(scope)
    if _bad_version(version):
        raise ValueError(f"version must be a whole number from 1 to {MAX_VERSION}, "
                         f"not {version!r}")
    if expires_at <= issued_at:
        raise ValueError("expires_at must be after issued_at")
    if expires_at - issued_at > MAX_LIFETIME:
        raise ValueError(f"a bundle's lifetime (expires_at - issued_at) is at most "
                         f"{MAX_LIFETIME.days} days")
    _check_payload(dict(payload), ValueError)
    return canonical.dumps({
        "scope": scope, "version": version, "issued_at": _iso(issued_at),
        "expires_at": _iso(expires_at), "key_id": signing_key_id, "payload": dict(payload),
    })


def sign(raw_bundle: bytes, signing: Ed25519PrivateKey) -> bytes:
    return signing.sign(BUNDLE_CONTEXT + raw_bundle)


def envelope(raw_bundle: bytes, signature: bytes, delegation: Mapping[str, str]) -> bytes:
    """The message published on ``{root}/bundles/{scope}``."""
    return canonical.dumps({"bundle": _b64(raw_bundle), "signature": _b64(signature),
                            "delegation": dict(delegation)})


def _bad_version(version: Any) -> bool:
    return isinstance(version, bool) or not isinstance(version, int) \
        or not 1 <= version <= MAX_VERSION


def _check_payload(payload: Any, error: type[Exception]) -> None:
    if not isinstance(payload, dict) or set(payload) != set(PAYLOAD_TYPES):
        raise error(f"payload must hold exactly {', '.join(PAYLOAD_TYPES)}")
    for name, kind in PAYLOAD_TYPES.items():
        if not isinstance(payload[name], kind):
            raise error(f"payload.{name} must be a JSON {'object' if kind is dict else 'array'}")


def _parse_bundle(raw: bytes) -> Bundle:
    data = _object(raw, "bundle", _BUNDLE_KEYS)
    try:
        scope = check_scope(data["scope"])
    except TopicError as exc:
        raise BundleMalformed(str(exc)) from None
    version = data["version"]
    if _bad_version(version):
        raise BundleMalformed(f"version must be a whole number from 1 to {MAX_VERSION}, "
                              f"not {repr(version)[:40]}")
    issued_at = _time(data["issued_at"], "issued_at")
    expires_at = _time(data["expires_at"], "expires_at")
    if expires_at <= issued_at:
        raise BundleMalformed("expires_at is not after issued_at")
    if expires_at - issued_at > MAX_LIFETIME:
        raise BundleMalformed(f"lifetime {expires_at - issued_at} is over the most a bundle may "
                              f"live ({MAX_LIFETIME.days} days)")
    if not isinstance(data["key_id"], str):
        raise BundleMalformed("key_id must be a string")
    _check_payload(data["payload"], BundleMalformed)
    return Bundle(scope, version, issued_at, expires_at, data["key_id"], data["payload"], raw)


def seal_signed(name: str, context: bytes, raw: bytes, signing: Ed25519PrivateKey,
                delegation: Mapping[str, str]) -> bytes:
    """The wire form ``{name: b64(raw), signature, delegation}`` that :func:`open_signed`
    opens: ``raw`` signed with ``signing`` over ``context`` and the bytes."""
    return canonical.dumps({name: _b64(raw), "signature": _b64(signing.sign(context + raw)),
                            "delegation": dict(delegation)})


def open_signed(wire: Any, trust: TrustStore, name: str,
                context: bytes) -> tuple[Delegation, bytes]:
    """The signed bytes of a message ``{name, signature, delegation}`` (a bundle, a member
    state) once the delegation verifies with a root key and the signature, over ``context`` and
    those bytes, with the delegated key."""
    what = name.replace("_", "-")
    if not isinstance(wire, bytes | bytearray):
        raise BundleMalformed(f"a {what} message must be bytes")
    outer = _object(bytes(wire), f"{what} message", (name, "signature", "delegation"))
    delegation = trust.delegation(outer["delegation"])
    raw = _unb64(outer[name], what)
    signature = _unb64(outer["signature"], f"{what} signature")
    try:
        delegation.public_key.verify(signature, context + raw)
    except InvalidSignature:
        raise BadSignature(f"{what} signature does not verify with its signing key") from None
    return delegation, raw


def check_signing_key(delegation: Delegation, trust: TrustStore, named: str,
                      issued_at: datetime, what: str, *,
                      latest_trusted: datetime | None = None) -> None:
    """The key a message names is its delegation's, not revoked, and was allowed to sign at
    the message's issue time; and, the issue time being the signer's word, its delegation had
    not ended by ``latest_trusted`` (the latest time the terminal trusts, when it knows one)."""
    if named != delegation.key_id:
        raise UnknownKey(f"{what} names key {named!r} but carries a delegation "
                         f"for {delegation.key_id!r}")
    if named in trust.revoked:
        raise KeyRevoked(f"signing key {named} is revoked")
    if not delegation.not_before <= issued_at <= delegation.not_after:
        raise KeyNotValid(f"key {named} may sign from {delegation.not_before.isoformat()} "
                          f"to {delegation.not_after.isoformat()}; {what} issued "
                          f"{issued_at.isoformat()}")
    if latest_trusted is not None and latest_trusted > delegation.not_after:
        raise KeyNotValid(f"key {named}'s delegation ended at {delegation.not_after.isoformat()},"
                          f" before the latest trusted time {latest_trusted.isoformat()}")


def verify_bundle(raw_bytes: bytes, trust: TrustStore, scopes: set[str] | frozenset[str],
                  held_version: int, now: datetime, clock_trusted: bool, *,
                  time_floor: datetime | None = None, skew: timedelta = DEFAULT_SKEW) -> Bundle:
    """Return the bundle in ``raw_bytes`` if it may be applied, else raise a BundleRejected.

    ``held_version`` is the version of this scope the terminal holds (0 for none); ``now`` and
    ``time_floor`` must be aware datetimes. See the module docstring for the time rules.
    """
    if now.tzinfo is None or (time_floor is not None and time_floor.tzinfo is None):
        raise ValueError("now and time_floor must carry a time zone")
    delegation, raw = open_signed(raw_bytes, trust, "bundle", BUNDLE_CONTEXT)
    bundle = _parse_bundle(raw)
    check_signing_key(delegation, trust, bundle.key_id, bundle.issued_at, "bundle",
                      latest_trusted=latest_trusted(now, clock_trusted, time_floor))
    if bundle.scope not in scopes:
        raise WrongScope(f"scope {bundle.scope!r} is not one of {sorted(scopes)}")
    if bundle.version <= held_version:
        raise StaleVersion(f"version {bundle.version} is not above the held {held_version}")
    _check_times(bundle, now, clock_trusted, time_floor, skew)
    return bundle


def latest_trusted(now: datetime, clock_trusted: bool,
                   time_floor: datetime | None) -> datetime | None:
    """The latest time the terminal trusts: its clock when trusted, the floor HQ vouched for."""
    known = [t for t in (now if clock_trusted else None, time_floor) if t is not None]
    return max(known) if known else None


def _check_times(bundle: Bundle, now: datetime, clock_trusted: bool,
                 time_floor: datetime | None, skew: timedelta) -> None:
    known = latest_trusted(now, clock_trusted, time_floor)
    if known is not None and bundle.expires_at <= known:
        raise Expired(f"bundle expired at {bundle.expires_at.isoformat()} "
                      f"(latest trusted time {known.isoformat()})")
    if clock_trusted and bundle.issued_at > now + skew:
        raise NotYetValid(f"bundle issued at {bundle.issued_at.isoformat()}, more than "
                          f"{skew} after the trusted clock ({now.isoformat()})")
