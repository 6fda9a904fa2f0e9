"""A member state is judged like a bundle (issue 16, break 8): a key whose delegation ended
before the terminal's latest trusted time signs nothing, however the state is backdated, and the
state's signed issue time moves no floor."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.protocol import bundle as b
from terminal.protocol.bundle import BundleRejected
from terminal.protocol.member_state import MemberState, Profile, signed
from terminal.sync import member_states
from tests.sync.harness import CARD_KEY, now, rules_data

CARD = "a" * 64


@pytest.fixture
def till(tmp_path: Path):
    store = LedgerStore.open(tmp_path / "till.db", Rules.from_mapping(rules_data()), CARD_KEY,
                             Identity("S001", "T01"))
    yield store
    store.close()


def test_a_retired_key_signs_no_member_state_even_backdated(till: LedgerStore) -> None:
    root, signing = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ended = now() - timedelta(days=30)
    delegation = b.delegate(root, signing.public_key(), ended - timedelta(days=400),
                            ended).to_wire()
    trust = b.TrustStore.of([root.public_key()])
    backdated = MemberState(CARD, 1, ended - timedelta(days=1), "frozen", "stolen key",
                            card_last4="1122", tier="member", profile=Profile())
    wire = signed(backdated, signing, delegation)
    with pytest.raises(BundleRejected) as refused:
        member_states.receive(till, wire, CARD, trust, clock_trusted=True)
    assert refused.value.reason_code == "key_not_valid"
    # An untrusted clock knows no later time than the floor HQ's acks vouched for.
    till.observe_trusted_time(now() - timedelta(minutes=5))
    with pytest.raises(BundleRejected):
        member_states.receive(till, wire, CARD, trust, clock_trusted=False)


def test_a_member_state_issued_in_the_future_moves_no_floor(till: LedgerStore) -> None:
    root, signing = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    delegation = b.delegate(root, signing.public_key(), now() - timedelta(days=1),
                            now() + timedelta(days=200)).to_wire()
    trust = b.TrustStore.of([root.public_key()])
    acked = now() - timedelta(minutes=5)
    till.observe_trusted_time(acked)  # an HQ ack
    ahead = MemberState(CARD, 1, now() + timedelta(days=80), "frozen", "why", card_last4="1122",
                        tier="member", profile=Profile())
    assert member_states.receive(till, signed(ahead, signing, delegation), CARD, trust,
                                 clock_trusted=False) is not None
    assert till.floor == acked
