from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.protocol import bundle as b
from terminal.protocol import canonical

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SCOPES = frozenset({"chain", "store/S001"})
PAYLOAD = {"rules": {"earn": {"points_per_yuan": 1, "multiplier": "1.5"}},
           "catalogue": [{"sku": "6901234567892", "price_fen": 1250}], "settings": {}}


class Hq:
    """A root key, a delegated signing key, and a way to seal bundles with them."""

    def __init__(self, root: Ed25519PrivateKey | None = None) -> None:
        self.root = root or Ed25519PrivateKey.generate()
        self.rotate()

    def rotate(self, not_before: datetime = T0 - timedelta(days=30),
               days: int = 400) -> None:
        self.signing = Ed25519PrivateKey.generate()
        self.delegation = b.delegate(self.root, self.signing.public_key(), not_before,
                                     not_before + timedelta(days=days))

    def seal(self, version: int, scope: str = "chain", issued: datetime = T0,
             lifetime: timedelta = timedelta(days=30), payload: dict | None = None) -> bytes:
        raw = b.bundle_bytes(scope, version, issued, issued + lifetime,
                             b.key_id(self.signing.public_key()), payload or PAYLOAD)
        return b.envelope(raw, b.sign(raw, self.signing), self.delegation.to_wire())

    @property
    def trust(self) -> b.TrustStore:
        return b.TrustStore.of([self.root.public_key()])


def verify(raw: bytes, trust: b.TrustStore, held: int = 0, now: datetime = T0,
           trusted: bool = True, **kw: object) -> b.Bundle:
    return b.verify_bundle(raw, trust, set(SCOPES), held, now, trusted, **kw)


@pytest.fixture
def hq() -> Hq:
    return Hq()


def test_good_bundle_verifies(hq: Hq) -> None:
    got = verify(hq.seal(7, "store/S001"), hq.trust, held=6)
    assert (got.scope, got.version, got.payload) == ("store/S001", 7, PAYLOAD)
    assert got.issued_at == T0 and got.key_id == b.key_id(hq.signing.public_key())


def test_forged_by_unrelated_root(hq: Hq) -> None:
    with pytest.raises(b.UnknownKey, match="does not trust"):
        verify(Hq().seal(1), hq.trust)


def test_tampered_payload_fails_signature(hq: Hq) -> None:
    outer = json.loads(hq.seal(1))
    inner = base64.b64decode(outer["bundle"]).replace(b'"price_fen":1250', b'"price_fen":1')
    outer["bundle"] = base64.b64encode(inner).decode()
    with pytest.raises(b.BadSignature) as info:
        verify(canonical.dumps(outer), hq.trust)
    assert info.value.reason_code == "bad_signature"


def test_self_made_delegation_is_refused(hq: Hq) -> None:
    """A rogue key delegating to itself under the real root's id fails the root signature."""
    rogue = Hq()
    statement = json.loads(base64.b64decode(rogue.delegation.to_wire()["statement"]))
    statement["root_key_id"] = b.key_id(hq.root.public_key())
    forged = canonical.dumps(statement)
    outer = json.loads(rogue.seal(1))
    outer["delegation"] = {"statement": base64.b64encode(forged).decode(),
                           "signature": base64.b64encode(rogue.root.sign(
                               b.DELEGATION_CONTEXT + forged)).decode()}
    with pytest.raises(b.BadSignature, match="root key"):
        verify(canonical.dumps(outer), hq.trust)


def test_signing_key_swapped_under_real_delegation(hq: Hq) -> None:
    other = Hq(hq.root)
    outer = json.loads(other.seal(1))
    outer["delegation"] = hq.delegation.to_wire()
    with pytest.raises(b.BadSignature):
        verify(canonical.dumps(outer), hq.trust)


def test_wrong_scope(hq: Hq) -> None:
    with pytest.raises(b.WrongScope, match="store/S002"):
        verify(hq.seal(1, "store/S002"), hq.trust)


@pytest.mark.parametrize("held", [5, 6])
def test_version_must_be_above_held(hq: Hq, held: int) -> None:
    with pytest.raises(b.StaleVersion, match=f"held {held}"):
        verify(hq.seal(5), hq.trust, held=held)


def test_out_of_order_v5_v3_v4_keeps_v5(hq: Hq) -> None:
    held, rejected = 0, []
    for version in (5, 3, 4):
        try:
            held = verify(hq.seal(version), hq.trust, held=held).version
        except b.StaleVersion as exc:
            rejected.append((version, exc.reason_code))
    assert held == 5
    assert rejected == [(3, "stale_version"), (4, "stale_version")]


def test_expired_on_trusted_clock(hq: Hq) -> None:
    raw = hq.seal(1, lifetime=timedelta(days=1))
    with pytest.raises(b.Expired):
        verify(raw, hq.trust, now=T0 + timedelta(days=1))
    assert verify(raw, hq.trust, now=T0 + timedelta(hours=23)).version == 1


def test_untrusted_clock_judges_expiry_by_hq_time_floor_only(hq: Hq) -> None:
    raw = hq.seal(1, lifetime=timedelta(days=1))
    far_future = T0 + timedelta(days=3650)  # a clock that lies forward proves nothing
    assert verify(raw, hq.trust, now=far_future, trusted=False).version == 1
    with pytest.raises(b.Expired, match="latest trusted time"):
        verify(raw, hq.trust, now=far_future, trusted=False, time_floor=T0 + timedelta(days=2))


def test_not_yet_valid_only_on_trusted_clock(hq: Hq) -> None:
    raw = hq.seal(1, issued=T0 + timedelta(hours=1))
    with pytest.raises(b.NotYetValid):
        verify(raw, hq.trust, now=T0)
    assert verify(raw, hq.trust, now=T0 + timedelta(minutes=56)).version == 1  # inside skew
    booted_in_1970 = datetime(1970, 1, 1, tzinfo=UTC)
    assert verify(raw, hq.trust, now=booted_in_1970, trusted=False).version == 1


def test_rotation_via_root_key(hq: Hq) -> None:
    old = hq.seal(1)
    old_key = b.key_id(hq.signing.public_key())
    hq.rotate(not_before=T0)
    new = hq.seal(2, issued=T0 + timedelta(hours=1))
    assert verify(old, hq.trust).version == 1
    assert verify(new, hq.trust, held=1, now=T0 + timedelta(hours=1)).version == 2
    revoked = b.TrustStore.of([hq.root.public_key()], revoked=[old_key])
    with pytest.raises(b.KeyRevoked):
        verify(old, revoked)


def test_bundle_issued_outside_delegation_window(hq: Hq) -> None:
    hq.rotate(not_before=T0 + timedelta(days=1))
    with pytest.raises(b.KeyNotValid):
        verify(hq.seal(1), hq.trust)


@pytest.mark.parametrize("mutate", [
    lambda o: o.pop("signature"),
    lambda o: o.update(signature="not base64!"),
    lambda o: o.update(bundle=42),
    lambda o: o.update(delegation=[]),
    lambda o: o.update(extra=1),
])
def test_malformed_envelopes(hq: Hq, mutate) -> None:
    outer = json.loads(hq.seal(1))
    mutate(outer)
    with pytest.raises(b.BundleRejected) as info:
        verify(canonical.dumps(outer), hq.trust)
    assert info.value.reason_code in {"malformed", "bad_signature"}


def test_builder_refuses_bad_input(hq: Hq) -> None:
    key = b.key_id(hq.signing.public_key())
    with pytest.raises(ValueError, match="version"):
        b.bundle_bytes("chain", 0, T0, T0 + timedelta(days=1), key, PAYLOAD)
    with pytest.raises(ValueError, match="after"):
        b.bundle_bytes("chain", 1, T0, T0, key, PAYLOAD)
    with pytest.raises(ValueError, match="payload"):
        b.bundle_bytes("chain", 1, T0, T0 + timedelta(days=1), key, {"rules": {}})
    with pytest.raises(canonical.CanonicalError, match="float"):
        b.bundle_bytes("chain", 1, T0, T0 + timedelta(days=1), key,
                       {**PAYLOAD, "settings": {"rate": 1.5}})


HOSTILE = Hq()
GOOD = HOSTILE.seal(3)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=300),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.sampled_from(["bundle", "signature", "delegation",
                                                    "statement", "x"]), inner, max_size=4),
                 max_leaves=12).map(lambda v: json.dumps(v).encode()),
    st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)).map(
        lambda p: GOOD[:p[0]] + bytes([p[1]]) + GOOD[p[0] + 1:]),
))
def test_hostile_input_only_ever_raises_bundle_rejected(raw: bytes) -> None:
    try:
        got = verify(raw, HOSTILE.trust)
    except b.BundleRejected as exc:
        assert exc.reason_code != "rejected" and str(exc)
    else:  # only a byte flip that leaves the meaning intact (e.g. base64 padding) may pass
        assert got.payload == PAYLOAD and got.version == 3
