"""The till's staff as a technician or store manager keeps them (``posterm operator``): listed,
added or changed, retired; every change audited under who made it.

An operator is retired, never deleted: events and the audit name them for good, and their number
stays theirs (setting them again brings them back). A change that would leave the till without an
active manager is refused: unlocking an operator, voiding and refunds need one at the till.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from terminal.loyalty.clock import Moment, from_micros, to_micros
from terminal.loyalty.errors import InvalidInput
from terminal.loyalty.store.models import Operator, OperatorName
from terminal.loyalty.store.operators import (
    Operators,
    SignInRefused,
    check_operator,
    write_operator,
)

ACTOR_MAX = 64  # characters of who made a change, as the audit keeps it


@dataclass(frozen=True)
class StaffMember:
    number: int
    name: str  # the id events and the audit carry
    role: str
    shown: str  # the name the till greets them by ("" = their id)
    active: bool
    locked_until: datetime | None  # UTC, while locked after wrong PINs


class OperatorUnknown(SignInRefused):
    """No operator has that number here."""


class Staff(Operators):
    """Listing and changing this ledger's operators."""

    def staff(self, moment: Moment) -> list[StaffMember]:
        """Every operator, retired ones too, by number."""
        shown = {row.name: row.shown for row in OperatorName.select()}
        now_us = to_micros(moment.at)
        return [
            StaffMember(op.number, op.name, op.role, shown.get(op.name, ""), bool(op.active),
                        from_micros(op.locked_until_us)
                        if op.locked_until_us and op.locked_until_us > now_us else None)
            for op in Operator.select().order_by(Operator.number)
        ]

    def put_operator(self, key: bytes, number: int, name: str, role: str, pin: str,
                     shown: str, by: str, moment: Moment) -> bool:
        """Add operator ``number`` or change them (role, shown name, PIN; a lockout is lifted, a
        retired operator is back). True when they are new. Audited as ``operator_added`` or
        ``operator_changed`` under ``by``; the PIN is never written anywhere but as its keyed
        hash. ``key`` must be the PIN key this ledger's operators were set with."""
        check_operator(number, name, role, pin, shown)
        _check_actor(by)
        self.check_pin_key(key)
        with self._writing(moment) as w:
            if role != "manager":
                self._keep_a_manager(name, number)
            new = write_operator(key, number, name, role, pin, shown)
            detail = f"{name} {role}" + (f" shown {shown}" if shown else "") + "; PIN set"
            self._audit(w, by, "operator_added" if new else "operator_changed", str(number),
                        detail)
        return new

    def retire_operator(self, number: int, by: str, moment: Moment) -> str:
        """Operator ``number`` can no longer sign in (audited as ``operator_retired``); their
        id is returned. Retiring one already retired changes nothing and is refused."""
        _check_actor(by)
        with self._writing(moment) as w:
            operator = Operator.get_or_none(Operator.number == number)
            if operator is None:
                raise OperatorUnknown(f"Operator {number} is not known here",
                                      "sign_in.number", number=number)
            if not operator.active:
                raise InvalidInput(f"operator {number} ({operator.name}) is already retired",
                                   "operator.retired")
            self._keep_a_manager(operator.name, number)
            Operator.update(active=False).where(Operator.name == operator.name).execute()
            self._audit(w, by, "operator_retired", str(number), operator.name)
        return str(operator.name)

    def _keep_a_manager(self, name: str, number: int) -> None:
        """Refuse to take away the last active manager (``name`` stops being one)."""
        if Operator.get_or_none((Operator.name == name) & (Operator.role == "manager")
                                & Operator.active) is None:
            return  # not an active manager now: nothing is taken away
        others = Operator.select().where((Operator.role == "manager") & Operator.active
                                         & (Operator.name != name)).count()
        if not others:
            raise InvalidInput(f"operator {number} ({name}) is this till's last manager: set "
                               "another manager first", "operator.last_manager")


def _check_actor(by: str) -> None:
    if not isinstance(by, str) or not by.strip() or len(by) > ACTOR_MAX \
            or not by.isprintable():
        raise InvalidInput(f"who makes the change is 1-{ACTOR_MAX} printable characters",
                           "operator.by")
