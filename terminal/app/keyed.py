"""What the cashier keys before pressing a function key: digits and a decimal point."""

from __future__ import annotations

from terminal.loyalty.errors import InvalidInput
from terminal.loyalty.pricing import MAX_UNIT_PRICE_FEN

MAX_KEYED = 20  # longer than any amount, phone or member number: a stuck key, not input


class Keyed:
    """The entry buffer. ``press`` consumes digit, decimal point and backspace actions."""

    def __init__(self) -> None:
        self.text = ""

    def press(self, action: str) -> bool:
        if action.startswith("digit_") and len(action) == 7 and action[6].isdigit():
            if len(self.text) < MAX_KEYED:
                self.text += action[6]
            return True
        if action == "decimal_point":
            if len(self.text) < MAX_KEYED:
                self.text += "."
            return True
        if action == "backspace":
            self.text = self.text[:-1]
            return True
        return False

    @property
    def empty(self) -> bool:
        return not self.text

    def take(self) -> str:
        text, self.text = self.text, ""
        return text


def parse_amount(text: str, what: str = "amount") -> int:
    """Keyed yuan ("12", "12.5", "12.50") -> whole fen, or InvalidInput naming the problem."""
    if not text or text == ".":
        raise InvalidInput(f"key the {what} first", what, why="keyed.missing", what=what)
    whole, dot, part = text.partition(".")
    if "." in part:
        raise InvalidInput(f"{text} is not an amount: two decimal points", what,
                           why="keyed.two_points", text=text)
    if len(part) > 2:
        raise InvalidInput(f"{text} has more than 2 decimals (fen)", what, why="keyed.decimals",
                           text=text)
    fen = int(whole or "0") * 100 + int((part + "00")[:2]) if dot else int(whole) * 100
    if fen <= 0:
        raise InvalidInput(f"the {what} must be above 0.00", what, why="keyed.zero", what=what)
    if fen > MAX_UNIT_PRICE_FEN:
        raise InvalidInput(f"{text} yuan is over the limit of {MAX_UNIT_PRICE_FEN // 100} yuan",
                           what, why="keyed.over", text=text, most=MAX_UNIT_PRICE_FEN // 100)
    return fen


def parse_count(text: str, what: str, low: int, high: int) -> int:
    """A keyed whole number from ``low`` to ``high``."""
    if not text:
        raise InvalidInput(f"key the {what} first", what, why="keyed.missing", what=what)
    if not text.isdigit():
        raise InvalidInput(f"the {what} is a whole number, not {text}", what, why="keyed.whole",
                           what=what, text=text)
    value = int(text)
    if not low <= value <= high:
        raise InvalidInput(f"{what} {value} is not from {low} to {high}", what, why="keyed.range",
                           what=what, value=value, low=low, high=high)
    return value
