"""Member operations from the console: the table of what a page or an API call may ask, and the
call into HQ's member-operations service (:mod:`terminal.hq.member_ops`), which records,
changes the ledger and sets the card states the tills receive. The console adds who may (roles),
which members they may touch (store scope) and its own audit row."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from terminal.hq.console import audit
from terminal.hq.console.members import Reader
from terminal.hq.console.roles import Principal
from terminal.hq.member_ops.errors import InvalidRequest, MemberOpError
from terminal.hq.member_ops.service import MemberOps, OpResult
from terminal.loyalty.store.accounts import CardRef

Fields = Mapping[str, str]


def _points(fields: Fields) -> int:
    text = (fields.get("points") or "").strip()
    try:
        return int(text)
    except ValueError:
        raise InvalidRequest(f"points {text!r} is not a whole number", "points") from None


@dataclass(frozen=True)
class Operation:
    name: str
    permission: str
    fields: tuple[str, ...]  # besides the reason every operation needs
    run: Callable[[MemberOps, CardRef, str, str, Fields], OpResult]


OPERATIONS: dict[str, Operation] = {op.name: op for op in (
    Operation("adjust", "members.operate", ("points",),
              lambda ops, card, actor, reason, f: ops.adjust(card, _points(f), actor=actor,
                                                             reason=reason)),
    Operation("freeze", "members.operate", (),
              lambda ops, card, actor, reason, f: ops.freeze(card, actor=actor, reason=reason)),
    Operation("unfreeze", "members.operate", (),
              lambda ops, card, actor, reason, f: ops.unfreeze(card, actor=actor,
                                                               reason=reason)),
)}


class Operator:
    """Runs an operation for a principal. Call :meth:`perform` on the console's database
    thread (``ConsoleDb.run_own``): it binds and commits by itself."""

    def __init__(self, ops: MemberOps, reader: Reader, call: Callable[..., object]) -> None:
        self.ops, self.reader = ops, reader
        self._call = call  # ConsoleDb.call: bound, one transaction

    def perform(self, who: Principal, member_id: str, name: str, reason: str,
                fields: Fields) -> OpResult | None:
        """The result; None when the member is not found (or outside ``who``'s stores);
        ``MemberOpError`` when refused (nothing changed). Audited either way."""
        operation = OPERATIONS[name]
        who.require(operation.permission)
        card = self._call(self._card, who, member_id)
        if card is None:
            return None
        try:
            result = operation.run(self.ops, card, who.name, reason, fields)
        except MemberOpError as exc:
            self._call(audit.record, who, f"member.{name}.refused", member_id, reason, str(exc))
            raise
        self._call(audit.record, who, f"member.{name}", member_id, reason,
                   f"op {result.seq}: {result.detail}")
        return result

    def _card(self, who: Principal, member_id: str) -> CardRef | None:
        found = self.reader.visible(who, member_id)
        return None if found is None else CardRef(found[0].card_hash, found[0].card_last4)
