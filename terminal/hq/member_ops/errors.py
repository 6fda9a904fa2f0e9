"""What a member operation refuses, each a class of its own so a caller (the console's pages
and API, the command line) can answer precisely. A refused operation changes nothing."""

from __future__ import annotations


class MemberOpError(Exception):
    """A member operation was refused; ``field`` names the input at fault ("" for none)."""

    code = "refused"

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class InvalidRequest(MemberOpError):
    """An input is missing or malformed: no actor or reason, points not a whole number, ..."""

    code = "invalid"


class UnknownMember(MemberOpError):
    """No member holds the card."""

    code = "unknown_member"


class CardRetired(MemberOpError):
    """The card was reported lost or merged away: operate on the member's current card."""

    code = "card_retired"


class WrongState(MemberOpError):
    """The card is not in a state the operation applies to (freezing a frozen card, ...)."""

    code = "wrong_state"


class CardInUse(MemberOpError):
    """A replacement card already belongs to a member, or was itself retired."""

    code = "card_in_use"


class LedgerRefused(MemberOpError):
    """The ledger refused the change (an adjustment that would overdraw the member, ...)."""

    code = "ledger_refused"


class ImportRejected(MemberOpError):
    """A member import had problems; ``problems`` lists each (line, message). Nothing was
    imported."""

    code = "import_rejected"

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        shown = "; ".join(f"line {line}: {problem}" for line, problem in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{len(problems)} problem(s), nothing imported: {shown}{more}", "csv")
