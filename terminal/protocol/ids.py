"""Ids both sides derive from what they already share, and the ids a till mints for HQ.

A hold is minted fresh for each request (:func:`new_hold_id`): a sale that clears its redemption
and asks again, or the next sale after a crash (which gets the same sale number), asks for a new
hold, and no other till can guess or pre-empt it. The sale's or exchange's event names the hold it
used, so HQ posts that one. :func:`hold_id` is the name tills used before (derived from the
terminal and the record): HQ still finds holds by it for events that name none. HQ files a sale
under a chain-wide id made from the terminal's own sale id, which is unique only per till.
"""

from __future__ import annotations

import uuid

_HOLDS = uuid.UUID("6f1d7c1e-3f0b-5a53-9d55-7a0c8e8f1a01")
_SALES = uuid.UUID("0b6a3c0e-95f4-5c1e-8a0f-2f1b4d9d7c02")
HOLD_KINDS = ("sale", "exchange")


def new_hold_id() -> str:
    """A hold id for one request: random, so no other till can predict it."""
    return str(uuid.uuid4())


def hold_id(store: str, terminal: str, record_id: str, kind: str = "sale") -> str:
    """The hold for a sale's redemption, or for a goods exchange (``kind="exchange"``)."""
    if kind not in HOLD_KINDS:
        raise ValueError(f"no hold for a {kind!r}")
    # A sale's name is kept as it was, so holds asked before an upgrade are still found.
    name = f"{store}/{terminal}/{record_id}" if kind == "sale" \
        else f"{store}/{terminal}/{kind}/{record_id}"
    return str(uuid.uuid5(_HOLDS, name))


def chain_sale_id(store: str, terminal: str, sale_id: str) -> str:
    return str(uuid.uuid5(_SALES, f"{store}/{terminal}/{sale_id}"))
