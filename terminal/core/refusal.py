"""Refusals: something said no, with a message fit to show and the name of what said it.

The root of the domain's refusals (:mod:`terminal.loyalty.errors`) and of the devices' input
refusals (:mod:`terminal.drivers`), so that one refusal both raise, a payment card offered as a
member's number (:class:`terminal.core.pan.PaymentCardRefused`), is one class.
"""

from __future__ import annotations


class Refused(Exception):
    """An operation or an input was refused. ``rule`` names the rule (e.g. ``redeem.min_points``);
    ``str()`` is the message, fit for the cashier's display (English, with its numbers);
    ``values`` are those numbers by name, for saying it in another language (the till's
    Chinese: terminal.app.catalogue.refusal)."""

    def __init__(self, message: str, rule: str = "", **values: int | str) -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule
        self.values = values

    def __str__(self) -> str:
        return self.message


class InputRefused(Refused):
    """A cashier input (a swipe, a scan, a number keyed) was refused."""
