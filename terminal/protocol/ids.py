"""Ids both sides derive from what they already share, so a retry is the same thing.

A hold for a sale is named by the terminal and the sale, so the terminal can ask again after a
timeout without holding twice, and HQ can post the hold when the sale's event arrives. A goods
exchange's hold is named the same way by the exchange id, under its own kind: a record id never
contains ``/``, so the two names can never meet. HQ files a
sale under a chain-wide id made from the terminal's own sale id, which is unique only per till.
"""

from __future__ import annotations

import uuid

_HOLDS = uuid.UUID("6f1d7c1e-3f0b-5a53-9d55-7a0c8e8f1a01")
_SALES = uuid.UUID("0b6a3c0e-95f4-5c1e-8a0f-2f1b4d9d7c02")
HOLD_KINDS = ("sale", "exchange")


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
