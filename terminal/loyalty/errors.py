"""Refusals: every rule that says no raises one of these, naming the rule and the reason.

A refusal changes nothing: callers raise before anything is written, or inside the transaction
that is then rolled back.
"""

from __future__ import annotations

# A business operation refused is a core Refused (``rule`` names the rule, e.g.
# ``redeem.min_points``); a payment card offered as a member's number is refused alike by the
# domain and by the stripe reader: one class.
from terminal.core.pan import PaymentCardRefused
from terminal.core.refusal import Refused

__all__ = [
    "AdjustRefused",
    "DuplicateId",
    "InvalidInput",
    "PaymentCardRefused",
    "RedeemRefused",
    "RefundRefused",
    "Refused",
    "RulesError",
    "StorageFull",
    "UnknownCard",
    "UnknownSale",
]


class RulesError(ValueError):
    """The rules file is malformed; the message names the key. ``code`` names the problem and
    ``values`` what it names (the key among them), for saying it in another language (the
    console's rules studio: terminal.hq.console.rules_words)."""

    def __init__(self, message: str, code: str = "", **values: object) -> None:
        super().__init__(message)
        self.code = code
        self.values = values


class InvalidInput(Refused):
    """A request is malformed: an impossible amount, a missing field, a bad date."""


class UnknownCard(Refused):
    """The card belongs to no member."""


class UnknownSale(Refused):
    """The sale id is not recorded on this terminal."""


class DuplicateId(Refused):
    """The id is already recorded (sale ids, member cards)."""


class RedeemRefused(Refused):
    """A redemption (cash deduction or goods exchange) breaks a redeem rule."""


class RefundRefused(Refused):
    """A refund asks for more than is left, or for a sale that cannot be refunded."""


class AdjustRefused(Refused):
    """A manual adjustment is malformed or would overdraw the member."""


class StorageFull(Refused):
    """The ledger's disk (or its size limit) is full: the transaction was rolled back whole."""

    def __init__(self) -> None:
        super().__init__("Disk full: nothing was recorded. Free space on the terminal, then "
                         "try again", "storage.full")
