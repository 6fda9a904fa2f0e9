"""Consent given at a till: the ``consent`` event a till sends when a member it has just
registered answers member care's question (terminal.app.members; docs/member-care.md).

The collector's ledger calls :func:`record_from_till` in the event's own savepoint of its
batch (models bound, the batch's member lock held), so the answer is recorded once, with the
event. A yes carries the member's registered phone (checked against the keyed hash HQ holds);
a no carries nothing, and takes effect at once: the sender checks consent again before each
message. A till from before this event sends none, and no answer is no consent. The member is
named by card hash: one whose registration has not arrived yet defers the event (the till sends
it again), an erased member's answer is not recorded (an erasure keeps no contact).

What is refused says why without the address, and nothing of the address is logged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from terminal.hq.care import consent
from terminal.hq.care.segments import is_excluded
from terminal.loyalty.errors import Refused, UnknownCard
from terminal.loyalty.store.models import Member


def record_from_till(body: dict[str, Any], store: str, terminal: str, at: datetime,
                     card_key: bytes) -> str:
    """Record the answer in ``body`` (validated: terminal.hq.validation), given at ``at`` at
    ``store``/``terminal``; what was done, for the applied event's record."""
    member = Member.get_or_none(Member.card_hash == body["card_hash"])
    if member is None:
        raise UnknownCard("the member's registration has not arrived", "consent.card")
    channel, granted = body["channel"], body["granted"]
    answer = f"{channel} {'opt-in' if granted else 'opt-out'} at {store}/{terminal}"
    if is_excluded(member.id):
        return f"{answer}: not recorded, the member's data was erased"
    try:
        took = consent.record(member.id, channel, granted, source="till",
                              actor=str(body.get("operator") or "till"), at=at,
                              address=body.get("address") if granted else None,
                              card_key=card_key, store=store, terminal=terminal)
    except consent.ConsentError as exc:
        raise Refused(f"consent: {exc}", "consent.address") from None
    return answer if took else f"{answer}: recorded, a later answer stands"
