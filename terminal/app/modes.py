"""The till's modes and the prompt each shows the cashier."""

from __future__ import annotations

import enum

from terminal.app.catalogue import CATALOGUE


class Mode(enum.StrEnum):
    LOCKED = "locked"  # nobody signed in: an operator number, then their PIN, opens the till
    PIN = "pin"  # the operator's number keyed: their PIN
    READY = "ready"  # ringing up (or waiting for) a sale
    MANAGER = "manager"  # waiting for a manager's number to authorise an action
    MANAGER_PIN = "manager_pin"  # the manager's number keyed: their PIN
    REGISTER = "register"  # an unknown card: phone number keyed to register it
    CONSENT = "consent"  # just registered: the customer's yes (1) or no (0) to care messages
    SUBTOTAL = "subtotal"  # the quote is shown: redemption and tender
    REFUND_FIND = "refund_find"  # which sale: scan its receipt or key its number
    REFUND_LINES = "refund_lines"  # the whole sale or one line
    EXCHANGE = "exchange"  # goods for points
    ADJUST = "adjust"  # a manual points adjustment
    CONFIRM_Z = "confirm_z"  # closing the day
    PRICE_CHECK = "price_check"  # show a product's price, sell nothing


# Each mode's standing prompt, in English (the catalogue has it in Chinese and for the pole).
PROMPTS = {mode: CATALOGUE[f"prompt.{mode}"].en for mode in Mode}
MASKED = (Mode.PIN, Mode.MANAGER_PIN)
