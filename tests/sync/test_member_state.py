"""Signed member states: what verifies, and that hostile bytes get only a ``BundleRejected``."""

from __future__ import annotations

import base64
import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.protocol import bundle, canonical
from terminal.protocol.bundle import BundleRejected, TrustStore
from terminal.protocol.member_state import MemberState, Profile, signed, verify_member_state

NOW = datetime.now(UTC).replace(microsecond=0)
ROOT = Ed25519PrivateKey.generate()
SIGNING = Ed25519PrivateKey.generate()
DELEGATION = bundle.delegate(ROOT, SIGNING.public_key(), NOW - timedelta(days=1),
                             NOW + timedelta(days=30)).to_wire()
TRUST = TrustStore.of([ROOT.public_key()])
CARD, NEW = "a" * 64, "b" * 64
FROZEN = MemberState(CARD, 7, NOW, "frozen", "卡片被盗", card_last4="1122", tier="gold",
                     profile=Profile("张三", "1990-05-01", "c" * 64, "0001"))


def test_a_signed_state_verifies_and_reads_back() -> None:
    state = verify_member_state(signed(FROZEN, SIGNING, DELEGATION), TRUST)
    assert (state.card_hash, state.version, state.state, state.reason, state.tier) == (
        CARD, 7, "frozen", "卡片被盗", "gold")
    assert state.profile == FROZEN.profile
    retired = MemberState(CARD, 8, NOW, "retired", "lost", replaced_by=NEW,
                          replaced_by_last4="9876")
    assert verify_member_state(signed(retired, SIGNING, DELEGATION), TRUST).replaced_by == NEW


@pytest.mark.parametrize(("change", "code"), [
    ({"signing": Ed25519PrivateKey.generate()}, "bad_signature"),  # not the delegated key
    ({"trust": TrustStore.of([Ed25519PrivateKey.generate().public_key()])}, "unknown_key"),
    ({"trust": TrustStore.of([ROOT.public_key()], revoked=[bundle.key_id(SIGNING.public_key())])},
     "key_revoked"),
    ({"issued": NOW + timedelta(days=90)}, "key_not_valid"),
])
def test_keys_and_times_outside_the_chain_of_trust_are_refused(change, code) -> None:
    state = MemberState(CARD, 7, change.get("issued", NOW), "frozen", "why", card_last4="1122",
                        tier="gold", profile=Profile())
    wire = signed(state, change.get("signing", SIGNING), DELEGATION)
    with pytest.raises(BundleRejected) as refused:
        verify_member_state(wire, change.get("trust", TRUST))
    assert refused.value.reason_code == code


def _tampered(**fields: object) -> bytes:
    """A valid message whose signed state has ``fields`` changed (so the signature fails) or,
    re-signed, carries them (so the state's own checks must refuse them)."""
    outer = canonical.loads(signed(FROZEN, SIGNING, DELEGATION))
    data = canonical.loads(base64.b64decode(outer["member_state"]))
    data.update(fields)
    raw = canonical.dumps(data)
    outer["member_state"] = base64.b64encode(raw).decode()
    outer["signature"] = base64.b64encode(
        SIGNING.sign(b"posterm member-state v1\x00" + raw)).decode()
    return canonical.dumps(outer)


@pytest.mark.parametrize("fields", [
    {"state": "deleted"}, {"version": 0}, {"version": True}, {"version": 2**63},
    {"card_hash": "A" * 64}, {"replaced_by": NEW},  # a frozen card names no replacement
    {"state": "retired"},  # a retired card must name its replacement
    {"state": "retired", "replaced_by": CARD},  # nor may it be itself
    {"reason": "x" * 201}, {"reason": "bell\x07"}, {"card_last4": "12345"},
    {"profile": {"name": "x", "birthday": None, "phone_hash": None, "phone_last4": "",
                 "erased": True}},  # erased yet holding a name
    {"profile": None}, {"tier": None}, {"extra": 1},
])
def test_a_signed_but_malformed_state_is_refused(fields) -> None:
    with pytest.raises(BundleRejected) as refused:
        verify_member_state(_tampered(**fields), TRUST)
    assert refused.value.reason_code == "malformed"


def test_a_statement_or_bundle_signature_never_passes_for_a_member_state() -> None:
    outer = canonical.loads(signed(FROZEN, SIGNING, DELEGATION))
    raw = base64.b64decode(outer["member_state"])
    outer["signature"] = base64.b64encode(bundle.sign(raw, SIGNING)).decode()
    with pytest.raises(BundleRejected) as refused:
        verify_member_state(canonical.dumps(outer), TRUST)
    assert refused.value.reason_code == "bad_signature"


WIRE = signed(FROZEN, SIGNING, DELEGATION)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=600),
    st.integers(0, len(WIRE) * 8 - 1).map(
        lambda bit: bytes(b ^ (1 << (bit % 8)) if i == bit // 8 else b
                          for i, b in enumerate(WIRE))),
))
def test_hostile_bytes_get_only_a_refusal(data: bytes) -> None:
    with contextlib.suppress(BundleRejected):
        verify_member_state(data, TRUST)
