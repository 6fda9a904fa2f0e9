"""The till's modes and the prompt each shows the cashier."""

from __future__ import annotations

import enum


class Mode(enum.StrEnum):
    LOCKED = "locked"  # nobody signed in: an operator number, then their PIN, opens the till
    PIN = "pin"  # the operator's number keyed: their PIN
    READY = "ready"  # ringing up (or waiting for) a sale
    MANAGER = "manager"  # waiting for a manager's number to authorise an action
    MANAGER_PIN = "manager_pin"  # the manager's number keyed: their PIN
    REGISTER = "register"  # an unknown card: phone number keyed to register it
    SUBTOTAL = "subtotal"  # the quote is shown: redemption and tender
    REFUND_FIND = "refund_find"  # which sale: scan its receipt or key its number
    REFUND_LINES = "refund_lines"  # the whole sale or one line
    EXCHANGE = "exchange"  # goods for points
    ADJUST = "adjust"  # a manual points adjustment
    CONFIRM_Z = "confirm_z"  # closing the day
    PRICE_CHECK = "price_check"  # show a product's price, sell nothing


PROMPTS = {
    Mode.LOCKED: "Key your operator no., then Enter",
    Mode.PIN: "Key your PIN, then Enter (Clear = other operator)",
    Mode.READY: "Swipe member card, scan or key an item",
    Mode.MANAGER: "Manager no., then Enter (Clear cancels)",
    Mode.MANAGER_PIN: "Manager PIN, then Enter (Clear cancels)",
    Mode.REGISTER: "Unknown card: key phone no. + Enter to register, Clear = no",
    Mode.SUBTOTAL: "Key points + Redeem, or pay: Cash / Card",
    Mode.REFUND_FIND: "Refund: scan receipt or key sale no. + Enter",
    Mode.REFUND_LINES: "Enter = whole sale, line no. + Enter = one line, Void = void sale",
    Mode.EXCHANGE: "Key goods no. + Enter (qty: n Quantity)",
    Mode.ADJUST: "Key points: Enter adds, Discount takes off",
    Mode.CONFIRM_Z: "Z report closes the day: Enter to confirm",
    Mode.PRICE_CHECK: "Price check: scan or key code + Enter",
}
MASKED = (Mode.PIN, Mode.MANAGER_PIN)
