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
from terminal.hq.member_ops.errors import ImportRejected, InvalidRequest, MemberOpError
from terminal.hq.member_ops.service import ImportResult, MemberOps, OpResult
from terminal.hq.models import MemberHome, MemberOp
from terminal.loyalty.store.accounts import CardRef
from terminal.loyalty.store.models import Member
from terminal.protocol.topics import TopicError, check_id

Fields = Mapping[str, str]


def _points(fields: Fields) -> int:
    text = (fields.get("points") or "").strip()
    try:
        return int(text)
    except ValueError:
        raise InvalidRequest(f"points {text!r} is not a whole number", "points") from None


def _card(fields: Fields, key: str) -> str:
    number = (fields.get(key) or "").strip()
    if not number:
        raise InvalidRequest(f"the operation needs {key.replace('_', ' ')}", key)
    return number


def _edit(ops: MemberOps, card: CardRef, actor: str, reason: str, fields: Fields) -> OpResult:
    """Only the fields given change; "" clears one (as the service takes them)."""
    return ops.edit_profile(card, actor=actor, reason=reason, **{
        key: fields[key].strip() for key in ("name", "phone", "birthday") if key in fields})


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
    Operation("replace", "members.operate", ("new_card",),
              lambda ops, card, actor, reason, f: ops.replace_card(
                  card, _card(f, "new_card"), actor=actor, reason=reason)),
    Operation("merge", "members.operate", ("duplicate_card",),
              lambda ops, card, actor, reason, f: ops.merge(
                  card, _card(f, "duplicate_card"), actor=actor, reason=reason)),
    Operation("edit", "members.operate", ("name", "phone", "birthday"), _edit),
    Operation("erase", "members.operate", (),
              lambda ops, card, actor, reason, f: ops.erase(card, actor=actor, reason=reason)),
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
            self._call(audit.record, who, f"member.{name}.refused", member_id, reason,
                       f"[{exc.code}/{exc.field}] {exc}")  # read by console.audit_words
            raise
        self._call(audit.record, who, f"member.{name}", member_id, reason,
                   f"op {result.seq}: {result.detail}")
        return result

    def _card(self, who: Principal, member_id: str) -> CardRef | None:
        found = self.reader.visible(who, member_id)
        return None if found is None else CardRef(found[0].card_hash, found[0].card_last4)

    def move_home(self, who: Principal, member_id: str, store: str, reason: str) -> bool:
        """Make ``store`` the member's home store (a store manager of it sees the member from
        now on); False when the member is not found. Call on the console's database thread."""
        who.require("members.move")
        try:
            check_id(store, "store")
        except TopicError as exc:
            raise InvalidRequest(str(exc), "store") from None
        if not reason.strip():
            raise InvalidRequest("moving a member needs a reason", "reason")
        return self._call(_move, who, member_id, store, reason.strip()[:200])

    def import_members(self, who: Principal, text: str, reason: str, store: str) -> ImportResult:
        """Members from another system (CSV, see :mod:`terminal.hq.member_ops.import_csv`),
        all of them at home in ``store``; ``ImportRejected`` lists every problem and nothing is
        imported. Call on the console's database thread."""
        who.require("members.operate")
        try:
            check_id(store, "store")
        except TopicError as exc:
            raise InvalidRequest(str(exc), "store") from None
        try:
            result = self.ops.import_members(text, actor=who.name, reason=reason)
        except ImportRejected as exc:  # each problem by its line, column and code
            self._call(audit.record, who, "member.import.refused", store, reason,
                       f"{len(exc.problems)} problem(s), nothing imported: " + "; ".join(
                           f"line {p.line} {p.field}/{p.code}" for p in exc.problems[:20]))
            raise
        except MemberOpError as exc:
            self._call(audit.record, who, "member.import.refused", "", reason, str(exc))
            raise
        self._call(_homes, result, store)
        self._call(audit.record, who, "member.import", store, reason,
                   f"{result.members} members, {result.points} points, ops "
                   f"{result.first_seq}-{result.last_seq}")
        return result


def _homes(result: ImportResult, store: str) -> None:
    """The imported members' home store (the import's operations name them)."""
    members = [op.member for op in MemberOp.select(MemberOp.member).where(
        (MemberOp.kind == "import") & MemberOp.seq.between(result.first_seq, result.last_seq))]
    now = audit.now_us()
    for member in members:
        MemberHome.insert(member=member, store=store, since_us=now).on_conflict_ignore().execute()


def _move(who: Principal, member_id: str, store: str, reason: str) -> bool:
    home = MemberHome.get_or_none(MemberHome.member == member_id)
    if Member.get_or_none(Member.id == member_id) is None:
        return False
    if home is None:
        MemberHome.create(member=member_id, store=store, since_us=audit.now_us())
    else:
        MemberHome.update(store=store, since_us=audit.now_us()).where(
            MemberHome.member == member_id).execute()
    audit.record(who, "member.move", member_id, reason,
                 f"home store {home.store if home else '-'} -> {store}")
    return True
