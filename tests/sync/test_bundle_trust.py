"""A retired signing key signs nothing, a bundle's lifetime is bounded, a bundle's issue time moves
no floor, and a signed version too large for the terminal is refused cleanly (issue 16,
break 8)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import Registration
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.protocol import bundle as b
from terminal.protocol import canonical
from terminal.sync import bundle_store
from tests.sync.harness import CARD_KEY, Keys, now, rules_data
from tests.sync.test_bundle import PAYLOAD, T0, Hq, verify


def forge(hq: Hq, **fields: Any) -> bytes:
    """A bundle validly signed by ``hq``'s signing key with any fields, bypassing the checks
    HQ's own builder makes: what a stolen or retired signing key can produce."""
    data = {"scope": "chain", "version": 1, "issued_at": T0.isoformat(),
            "expires_at": (T0 + timedelta(days=7)).isoformat(),
            "key_id": b.key_id(hq.signing.public_key()), "payload": PAYLOAD, **fields}
    raw = canonical.dumps(data)
    return b.envelope(raw, b.sign(raw, hq.signing), hq.delegation.to_wire())


@pytest.fixture
def hq() -> Hq:
    return Hq()


def test_a_key_whose_delegation_ended_signs_nothing_even_backdated(hq: Hq) -> None:
    # The delegation ran 400 days and ended 30 days before the terminal's trusted time; the
    # bundle claims to be issued inside it.
    hq.rotate(not_before=T0 - timedelta(days=430), days=400)
    backdated = forge(hq, issued_at=(T0 - timedelta(days=40)).isoformat(),
                      expires_at=(T0 + timedelta(days=20)).isoformat())
    with pytest.raises(b.KeyNotValid, match="ended"):
        verify(backdated, hq.trust, now=T0)
    # On an untrusted clock the floor (the latest HQ time seen) is the evidence.
    with pytest.raises(b.KeyNotValid, match="ended"):
        verify(backdated, hq.trust, now=T0 - timedelta(days=3000), trusted=False,
               time_floor=T0)


def test_a_bundle_lives_at_most_the_bounded_lifetime(hq: Hq) -> None:
    too_long = forge(hq, expires_at=(T0 + b.MAX_LIFETIME + timedelta(seconds=1)).isoformat())
    with pytest.raises(b.BundleMalformed, match="lifetime"):
        verify(too_long, hq.trust)
    assert verify(forge(hq, expires_at=(T0 + b.MAX_LIFETIME).isoformat()), hq.trust).version == 1
    with pytest.raises(ValueError, match="lifetime"):
        b.bundle_bytes("chain", 1, T0, T0 + b.MAX_LIFETIME + timedelta(days=1),
                       b.key_id(hq.signing.public_key()), PAYLOAD)


@pytest.mark.parametrize("version", [2**63, 2**64 + 5, 2**53])  # 2^53 - 1 is the highest
def test_a_version_too_large_is_refused_cleanly(hq: Hq, version: int) -> None:
    with pytest.raises(b.BundleMalformed, match="version"):
        verify(forge(hq, version=version), hq.trust)


def test_the_largest_version_is_accepted(hq: Hq) -> None:
    assert verify(forge(hq, version=b.MAX_VERSION), hq.trust).version == b.MAX_VERSION




def test_a_bundle_issued_in_the_future_moves_no_floor(tmp_path: Path) -> None:
    """An untrusted-clock till takes a validly signed bundle issued 80 days ahead; its floor
    stays what HQ's acks vouched for, so the next honest bundle is not "expired" and no lot
    expires early."""
    keys = Keys(tmp_path / "keys")
    start = now() - timedelta(days=30)
    keys.delegation = b.delegate(keys.root, keys.signing.public_key(), start,
                                 start + timedelta(days=200))
    trust = b.TrustStore.of([keys.root.public_key()])
    till = LedgerStore.open(tmp_path / "till.db", Rules.from_mapping(rules_data()), CARD_KEY,
                            Identity("S001", "T01"))
    try:
        acked = now() - timedelta(minutes=5)
        # A lot earned 300 days ago: it expires in about 65 days.
        till.register(Registration(card="8000000001"), Moment(acked - timedelta(days=300)))
        till.observe_trusted_time(acked)  # an HQ ack
        ahead = now() + timedelta(days=80)
        payload = {"rules": rules_data(), "catalogue": [], "settings": {}}
        future = keys.bundle("chain", 1, payload, issued=ahead, expires=ahead + timedelta(days=5))
        bundle_store.receive(till, future, "chain", trust, ("chain",), clock_trusted=False)
        assert till.floor == acked
        honest = keys.bundle("chain", 2, payload, issued=now(), expires=now() + timedelta(days=7))
        assert bundle_store.receive(till, honest, "chain", trust, ("chain",),
                                    clock_trusted=False) is not None
        swept = till.expire(till.moment(now() + timedelta(days=400), trusted=False))
        assert swept.lots == 0  # as of the floor, the lot has 65 days to go
    finally:
        till.close()
