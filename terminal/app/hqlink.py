"""What the cashier application needs from chain HQ, and the standalone stand-in.

The sale flow talks to HQ only through this protocol, so the same flow runs with the MQTT link
(``terminal.sync``), with no HQ at all (a single shop: the local ledger is the authority), and in
tests. Every call is short and bounded: a slow HQ is an unreachable HQ, never a stuck till.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RemoteBalance:
    """HQ's authoritative view of a member, as answered to a lookup."""

    balance: int
    tier: str
    redeemed_today: int = 0


class HqUnreachable(Exception):
    """HQ could not be asked, or did not answer in time."""


class CardStoppedAtHq(Exception):
    """HQ answered a lookup that the card may not be used: HQ retired it (lost, merged into
    another card) and its signed word has not reached this till yet. ``state`` is the card
    state's name as the till's own card states say it ("retired"), ``reason`` HQ's."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(f"card {state} at HQ: {reason}")
        self.state, self.reason = state, reason


@dataclass(frozen=True)
class Hold:
    """Points HQ has set aside for a sale being rung up (pending until posted or voided).

    ``offline`` holds are recorded locally under the rules' offline allowance and sent to HQ
    with the sale's event; HQ posts them when they arrive.
    """

    id: str
    points: int
    offline: bool


class HqLink(Protocol):
    @property
    def reachable(self) -> bool:
        """Whether HQ answers now; when False, redemption is limited to the offline allowance."""
        ...

    @property
    def connected(self) -> bool:
        """Whether the link to HQ's broker is up (HQ itself may still be offline)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def member_balance(self, card_hash: str) -> RemoteBalance | None:
        """HQ's balance for the member, or None if HQ did not answer in time; raises
        :class:`CardStoppedAtHq` when HQ answers that the card may not be used."""
        ...

    async def find_member(self, card_hash: str) -> RemoteBalance | None:
        """For a card this ledger does not know: HQ's view of the member (registered at another
        store), or None when HQ knows no such member; raises :class:`HqUnreachable` when HQ
        cannot be asked or did not answer in time, :class:`CardStoppedAtHq` when HQ answers
        that the card may not be used."""
        ...

    async def hold(self, card_hash: str, points: int, sale_id: str, kind: str = "sale") -> Hold:
        """Ask HQ to hold ``points`` for the sale ``sale_id`` (or, with ``kind="exchange"``, for
        the goods exchange of that id); raises ``terminal.loyalty.errors.RedeemRefused`` when HQ
        refuses, returns an offline hold when HQ cannot be asked."""
        ...

    async def void(self, hold: Hold) -> None:
        """Release a hold whose sale was cancelled (best effort; HQ also expires holds)."""
        ...

    def events_written(self) -> None:
        """The outbox has new events: publish them soon (never blocks)."""
        ...

    async def publish_status(self) -> None:
        """Tell HQ the terminal's status now (device health changed); never raises."""
        ...


class Standalone:
    """No HQ: the terminal's own ledger is the authority, so HQ is never 'unreachable'."""

    reachable = True
    connected = True

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def member_balance(self, card_hash: str) -> RemoteBalance | None:
        return None

    async def find_member(self, card_hash: str) -> RemoteBalance | None:
        return None  # no other store: a card the ledger does not know is not a member

    async def hold(self, card_hash: str, points: int, sale_id: str, kind: str = "sale") -> Hold:
        return Hold(id=f"local:{sale_id}" if kind == "sale" else f"local:{kind}:{sale_id}",
                    points=points, offline=False)

    async def void(self, hold: Hold) -> None:
        return None

    def events_written(self) -> None:
        return None

    async def publish_status(self) -> None:
        return None  # no HQ to tell
