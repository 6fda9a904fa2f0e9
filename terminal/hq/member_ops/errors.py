"""What a member operation refuses, each a class of its own so a caller (the console's pages
and API, the command line) can answer precisely. A refused operation changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as _field


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


@dataclass(frozen=True)
class ImportProblem:
    """One problem of a member import: its line (1 the header, 0 the file as a whole), the
    column at fault (``points``; ``row`` for a line's shape, ``file`` for the whole file), a
    code naming the problem within that column (``invalid``, ``duplicate_in_file``, ...), the
    values its words need, and the words themselves (English: the command line's, the API's
    ``problem``). A page says it in its own language from the column, code and values."""

    line: int
    field: str
    code: str
    message: str
    values: dict[str, str] = _field(default_factory=dict)


class ImportRejected(MemberOpError):
    """A member import had problems; ``problems`` lists each (:class:`ImportProblem`). Nothing
    was imported."""

    code = "import_rejected"

    def __init__(self, problems: list[ImportProblem]) -> None:
        self.problems = problems
        shown = "; ".join(f"line {p.line}: {p.message}" for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{len(problems)} problem(s), nothing imported: {shown}{more}", "csv")
