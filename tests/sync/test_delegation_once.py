"""A delegation (HQ's signing key certified by a chain's root key) is verified once for its
exact bytes and root key (terminal.protocol.bundle._verified_delegation), not once a message:
a catch-up page of N member states under one delegation costs N + 1 Ed25519 verifications,
not 2N. Whatever was remembered, a tampered delegation or state, a delegation of another chain,
a revoked key or a delegation whose window is over is refused exactly as on a till that never
saw the good one (same reason code, same words), and every state's own signature is still
verified."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.protocol import bundle as b
from terminal.protocol import canonical
from terminal.protocol.bundle import BundleRejected
from terminal.protocol.member_state import MemberState, Profile, signed, verify_member_state
from terminal.sync import member_states
from tests.sync.harness import CARD_KEY, now, rules_data


class _Counted:
    """An Ed25519 public key that counts its verifications in ``counts``."""

    def __init__(self, key: Ed25519PublicKey, counts: list[int]) -> None:
        self.key, self.counts = key, counts

    def verify(self, signature: bytes, data: bytes) -> None:
        self.counts[0] += 1
        self.key.verify(signature, data)

    def public_bytes(self, *args: Any) -> bytes:
        return self.key.public_bytes(*args)


def test_a_page_under_one_delegation_verifies_it_once_and_every_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = [0]

    class Counting:
        @staticmethod
        def from_public_bytes(data: bytes) -> _Counted:
            return _Counted(Ed25519PublicKey.from_public_bytes(data), counts)

    monkeypatch.setattr(b, "Ed25519PublicKey", Counting)
    root, signing = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    delegation = b.delegate(root, signing.public_key(), now() - timedelta(days=1),
                            now() + timedelta(days=200)).to_wire()
    # The root as the till holds it, counted too (the old way verified with it directly).
    root_public = Counting.from_public_bytes(b.public_bytes(root.public_key()))
    trust = b.TrustStore({b.key_id(root.public_key()): root_public})  # type: ignore[dict-item]
    wires = [signed(MemberState(f"{n:064x}", n, now(), "active", "campaign", card_last4="0001",
                                tier="member", profile=Profile()), signing, delegation)
             for n in range(1, 21)]
    store = LedgerStore.open(tmp_path / "till.db", Rules.from_mapping(rules_data()), CARD_KEY,
                             Identity("S001", "T01"))
    try:
        applied, refused = member_states.receive_page(store, wires, 0, 20, trust, True)
        assert len(applied) == 20 and refused == []
        assert counts[0] == 20 + 1  # each state's signature, and the delegation once
        # The next page: the states only.
        more = [signed(MemberState(f"{n:064x}", n, now(), "frozen", "campaign",
                                   card_last4="0001", tier="member", profile=Profile()),
                       signing, delegation) for n in range(21, 31)]
        applied, refused = member_states.receive_page(store, more, 20, 30, trust, True)
        assert len(applied) == 10 and refused == []
        assert counts[0] == 31
    finally:
        store.close()


# -- refused exactly as before, whatever was remembered ---------------------------------------

Chain = tuple[Ed25519PrivateKey, Ed25519PrivateKey, dict[str, str], datetime]


def _chain(not_after: datetime | None = None) -> Chain:
    root, signing = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ends = not_after or now() + timedelta(days=200)
    delegation = b.delegate(root, signing.public_key(), ends - timedelta(days=300),
                            ends).to_wire()
    return root, signing, delegation, ends


def _state(signing: Ed25519PrivateKey, delegation: dict[str, str], version: int = 1,
           issued: datetime | None = None) -> bytes:
    return signed(MemberState("a" * 64, version, issued or now(), "frozen", "why",
                              card_last4="1122", tier="member", profile=Profile()),
                  signing, delegation)


def _rewrap(wire: bytes, **delegation: str) -> bytes:
    """``wire`` with its delegation's fields replaced."""
    outer = json.loads(wire)
    outer["delegation"] = {**outer["delegation"], **delegation}
    return canonical.dumps(outer)


def _flip(encoded: str) -> str:
    raw = bytearray(base64.b64decode(encoded))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _statement_changed(wire: bytes, **fields: str) -> bytes:
    outer = json.loads(wire)
    statement = json.loads(base64.b64decode(outer["delegation"]["statement"]))
    return _rewrap(wire, statement=base64.b64encode(
        canonical.dumps({**statement, **fields})).decode())


def _tampered_delegation_signature(chain: Chain) -> tuple[bytes, b.TrustStore, Any]:
    root, signing, delegation, _ = chain
    wire = _state(signing, delegation)
    return _rewrap(wire, signature=_flip(delegation["signature"])), \
        b.TrustStore.of([root.public_key()]), None


def _longer_window_claimed(chain: Chain) -> tuple[bytes, b.TrustStore, Any]:
    """The statement's end moved a year on, the root's signature of the old one kept."""
    root, signing, delegation, ends = chain
    return _statement_changed(_state(signing, delegation),
                              not_after=(ends + timedelta(days=365)).isoformat()), \
        b.TrustStore.of([root.public_key()]), None


def _another_chains_delegation(chain: Chain) -> tuple[bytes, b.TrustStore, Any]:
    """Another chain's root delegates to our signing key: a till of ours trusts no such root."""
    root, signing, _, ends = chain
    theirs = b.delegate(Ed25519PrivateKey.generate(), signing.public_key(),
                        ends - timedelta(days=300), ends).to_wire()
    return _state(signing, theirs), b.TrustStore.of([root.public_key()]), None


def _another_root_signing_as_ours(chain: Chain) -> tuple[bytes, b.TrustStore, Any]:
    """Another root signs our delegation's very statement: it names our root, which refuses."""
    root, signing, delegation, _ = chain
    statement = base64.b64decode(delegation["statement"])
    forged = Ed25519PrivateKey.generate().sign(b.DELEGATION_CONTEXT + statement)
    return _rewrap(_state(signing, delegation), signature=base64.b64encode(forged).decode()), \
        b.TrustStore.of([root.public_key()]), None


def _our_bytes_another_chains_till(chain: Chain) -> tuple[bytes, b.TrustStore, Any]:
    """Our good message at a till of another chain."""
    _, signing, delegation, _ = chain
    return _state(signing, delegation), \
        b.TrustStore.of([Ed25519PrivateKey.generate().public_key()]), None


def _root_id_bound_to_another_key(chain: Chain) -> tuple[bytes, b.TrustStore, Any]:
    """A trust store whose entry under our root's id holds another key: the bytes once
    verified with our root are verified again with the key this till trusts."""
    root, signing, delegation, _ = chain
    other = Ed25519PrivateKey.generate().public_key()
    return _state(signing, delegation), \
        b.TrustStore({b.key_id(root.public_key()): other}), None


def _revoked(chain: Chain) -> tuple[bytes, b.TrustStore, Any]:
    root, signing, delegation, _ = chain
    return _state(signing, delegation), \
        b.TrustStore.of([root.public_key()], revoked=[b.key_id(signing.public_key())]), None


def _issued_after_the_window(chain: Chain) -> tuple[bytes, b.TrustStore, Any]:
    root, signing, delegation, ends = chain
    return _state(signing, delegation, issued=ends + timedelta(days=1)), \
        b.TrustStore.of([root.public_key()]), None


def _window_over_by_the_trusted_time(chain: Chain) -> tuple[bytes, b.TrustStore, Any]:
    root, signing, delegation, ends = chain
    return _state(signing, delegation, issued=ends - timedelta(days=1)), \
        b.TrustStore.of([root.public_key()]), ends + timedelta(days=1)


def _tampered_state(chain: Chain) -> tuple[bytes, b.TrustStore, Any]:
    """The state's bytes changed (frozen made active), its signature and delegation kept."""
    root, signing, delegation, _ = chain
    outer = json.loads(_state(signing, delegation))
    state = json.loads(base64.b64decode(outer["member_state"]))
    outer["member_state"] = base64.b64encode(canonical.dumps({**state, "state": "active"}))\
        .decode()
    return canonical.dumps(outer), b.TrustStore.of([root.public_key()]), None


def _state_by_another_key(chain: Chain) -> tuple[bytes, b.TrustStore, Any]:
    """A state signed by a key of its own, carrying our (good) delegation."""
    root, _, delegation, _ = chain
    return _state(Ed25519PrivateKey.generate(), delegation), \
        b.TrustStore.of([root.public_key()]), None


CASES: dict[str, tuple[Callable[[Chain], tuple[bytes, b.TrustStore, Any]], str]] = {
    "delegation signature flipped": (_tampered_delegation_signature, "bad_signature"),
    "delegation window lengthened": (_longer_window_claimed, "bad_signature"),
    "another chain's delegation": (_another_chains_delegation, "unknown_key"),
    "another root signing as ours": (_another_root_signing_as_ours, "bad_signature"),
    "our message at another chain's till": (_our_bytes_another_chains_till, "unknown_key"),
    "our root's id bound to another key": (_root_id_bound_to_another_key, "bad_signature"),
    "signing key revoked": (_revoked, "key_revoked"),
    "issued after the window": (_issued_after_the_window, "key_not_valid"),
    "window over by the trusted time": (_window_over_by_the_trusted_time, "key_not_valid"),
    "state tampered": (_tampered_state, "bad_signature"),
    "state signed by another key": (_state_by_another_key, "bad_signature"),
}


def _refusal(wire: bytes, trust: b.TrustStore, latest: datetime | None) -> tuple[str, str]:
    with pytest.raises(BundleRejected) as refused:
        verify_member_state(wire, trust, latest_trusted=latest)
    return refused.value.reason_code, refused.value.message


@pytest.mark.parametrize("case", list(CASES))
def test_refused_as_before_after_the_good_delegation_was_verified(case: str) -> None:
    make, reason = CASES[case]
    chain = _chain(now() + timedelta(days=10) if "window" in case or "issued" in case else None)
    root, signing, delegation, _ = chain
    wire, trust, latest = make(chain)
    b._verified_delegation.cache_clear()
    fresh = _refusal(wire, trust, latest)  # a till that never saw the good delegation
    assert fresh[0] == reason, fresh
    good = _state(signing, delegation, version=2)
    assert verify_member_state(good, b.TrustStore.of([root.public_key()])).version == 2
    assert verify_member_state(good, b.TrustStore.of([root.public_key()])).version == 2
    assert _refusal(wire, trust, latest) == fresh  # remembered: refused the same way
    assert _refusal(wire, trust, latest) == fresh
