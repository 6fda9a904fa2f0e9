"""The JSON messages on the wire, as small frozen dataclasses.

Each has ``to_json() -> bytes`` (canonical JSON) and a strict ``from_json(raw)`` that refuses
anything malformed, mistyped, unknown or missing with a MessageError naming the field. Times are
ISO-8601 strings with a zone on the wire and aware datetimes in Python.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Self

from terminal.protocol import canonical

# The kinds the terminal's ledger store writes to its outbox (LedgerStore._event).
# ``import``: a till recorded a member HQ already knows (registered at another store).
# ``consent``: the member's answer at the till to member care's question (a till before it
# sends none: no answer is no consent).
EVENT_KINDS = frozenset({"register", "import", "sale", "refund", "void", "exchange", "adjust",
                         "day_report",  # day_report: an X or Z report as printed
                         "consent"})
COMMAND_NAMES = frozenset({"resync", "print_status", "reload_rules", "report_health"})
MEMBER_OPS = frozenset({"lookup", "hold", "post", "void", "states"})
STATUS_STATES = frozenset({"online", "offline"})
# A status's ``printer_state.code``: what the till's printer driver last knew of the printer
# (terminal.app.printing.ReceiptDesk.printer_state). HQ takes any other short code too (a newer
# till's) and shows the till's own words for it.
PRINTER_CODES = ("ok", "paper_low", "paper_out", "offline", "absent")
PRINTER_CODE_MAX = 64


class MessageError(ValueError):
    """A message is malformed; ``field`` names the offending field ("" for the whole message)."""

    def __init__(self, kind: str, field_name: str, problem: str) -> None:
        self.kind = kind
        self.field = field_name
        where = f"{kind}.{field_name}" if field_name else kind
        super().__init__(f"{where}: {problem}")


class _Fields:
    """Typed access to a decoded JSON object that remembers which keys were read."""

    def __init__(self, kind: str, raw: bytes | str) -> None:
        self.kind = kind
        try:
            data = canonical.loads(raw)
        except canonical.CanonicalError as exc:
            raise MessageError(kind, "", str(exc)) from None
        if not isinstance(data, dict):
            raise MessageError(kind, "", "must be a JSON object")
        self.data: dict[str, Any] = data
        self.seen: set[str] = set()

    def error(self, name: str, problem: str) -> MessageError:
        return MessageError(self.kind, name, problem)

    def get(self, name: str, types: type | tuple[type, ...], *, optional: bool = False) -> Any:
        self.seen.add(name)
        value = self.data.get(name)
        if value is None:  # absent or null
            if optional:
                return None
            raise self.error(name, "is required")
        # bool is an int in Python; never accept it where a number is meant.
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple)
                                                    else (types,)):
            raise self.error(name, f"must be {_names(types)}, not a boolean")
        if not isinstance(value, types):
            raise self.error(name, f"must be {_names(types)}, not {type(value).__name__}")
        return value

    def int(self, name: str, *, minimum: int = 0, optional: bool = False) -> int | None:
        value = self.get(name, int, optional=optional)
        if value is not None and value < minimum:
            raise self.error(name, f"must be at least {minimum}")
        return value

    def text(self, name: str, *, choices: frozenset[str] | None = None,
             optional: bool = False) -> str | None:
        value = self.get(name, str, optional=optional)
        if value is None:
            return None
        if not value or not value.isprintable():
            raise self.error(name, "must be non-empty printable text")
        if choices is not None and value not in choices:
            raise self.error(name, f"{value!r} is not one of {', '.join(sorted(choices))}")
        return value

    def uuid(self, name: str, *, optional: bool = False) -> str | None:
        value = self.get(name, str, optional=optional)
        return None if value is None else _check_uuid(self, name, value)

    def time(self, name: str) -> datetime:
        value = self.get(name, str)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise self.error(name, f"{value!r} is not an ISO-8601 time") from None
        if parsed.tzinfo is None:
            raise self.error(name, "must carry a time zone")
        return parsed

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.error(unknown[0], "is not a known field")


def _names(types: type | tuple[type, ...]) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join({"str": "a string", "int": "an integer", "bool": "a boolean",
                        "dict": "an object", "list": "a list"}[t.__name__] for t in types)


# What str(uuid.UUID(value)) gives back unchanged: checked by a match, not by parsing (a UUID a
# message, HQ's collector parsing every event's id).
_UUID_FORM = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _check_uuid(fields: _Fields, name: str, value: str) -> str:
    if _UUID_FORM.fullmatch(value):
        return value
    try:
        uuid.UUID(value)
    except ValueError:
        raise fields.error(name, f"{value!r} is not a UUID") from None
    raise fields.error(name, "must be a UUID in lower-case hyphenated form")


class _Message:
    KIND: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in vars(self).items():
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            if value is not None:
                out[key] = value
        return out

    def to_json(self) -> bytes:
        return canonical.dumps(self.to_dict())


@dataclass(frozen=True)
class Event(_Message):
    """A terminal's durable event: minted id, sequence within the terminal, session epoch.

    Exactly the envelope ``LedgerStore._event`` writes to the outbox; ``store`` and ``terminal``
    must match the topic it arrives on (HQ checks: the broker vouches for the topic).
    """

    KIND: ClassVar[str] = "event"
    id: str
    kind: str
    store: str
    terminal: str
    seq: int
    epoch: int
    wall_time: datetime
    time_trusted: bool
    body: dict[str, Any]

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        f = _Fields(cls.KIND, raw)
        msg = cls(id=f.uuid("id"), kind=f.text("kind", choices=EVENT_KINDS),
                  store=f.text("store"), terminal=f.text("terminal"),
                  seq=f.int("seq", minimum=1), epoch=f.int("epoch", minimum=1),
                  wall_time=f.time("wall_time"), time_trusted=f.get("time_trusted", bool),
                  body=f.get("body", dict))
        f.finish()
        return msg


@dataclass(frozen=True)
class Ack(_Message):
    """HQ's application acknowledgement: these ids are durably applied. Carries HQ time."""

    KIND: ClassVar[str] = "ack"
    ids: tuple[str, ...]
    hq_time: datetime

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        f = _Fields(cls.KIND, raw)
        ids = f.get("ids", list)
        for index, value in enumerate(ids):
            if not isinstance(value, str):
                raise f.error(f"ids[{index}]", "must be a string")
            _check_uuid(f, f"ids[{index}]", value)
        msg = cls(ids=tuple(ids), hq_time=f.time("hq_time"))
        f.finish()
        return msg


@dataclass(frozen=True)
class Status(_Message):
    """Birth (state online, retained) and death (state offline, the will) of one session.

    ``rejected`` is the latest refusal the terminal reports to HQ (a bundle or a command):
    ``{what, reason, detail, at}``; each refusal republishes the birth with it. ``done`` is the
    latest command from HQ the terminal carried out, ``{ref, name, at}`` (``ref`` the command's
    id), so HQ can show each command's result. ``bundles`` is the version of the bundle it
    holds per scope (``{"chain": 7, "store/S001": 8}``), so HQ sees which terminals applied a
    pushed bundle (the rules studio's fleet status); ``rule_version`` is the one in force.
    ``printer_state`` is the printer's state as a code beside ``devices["printer"]``'s words,
    ``{"code": "paper_out", "waiting": 2}`` (one of :data:`PRINTER_CODES`; ``waiting``: receipts
    kept for a reprint), so HQ can show it in its reader's language; a till before it sends none.
    """

    KIND: ClassVar[str] = "status"
    state: str
    epoch: int
    version: str
    rule_version: int
    backlog: int
    devices: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] | None = None
    done: dict[str, str] | None = None
    bundles: dict[str, int] = field(default_factory=dict)
    printer_state: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        f = _Fields(cls.KIND, raw)
        devices = f.get("devices", dict)
        for name, state in devices.items():
            if not isinstance(state, str):
                raise f.error(f"devices.{name}", "must be a string")
        rejected = f.get("rejected", dict, optional=True)
        for name, value in (rejected or {}).items():
            if name not in _REJECTION_FIELDS or not isinstance(value, str):
                raise f.error(f"rejected.{name}", "must be one of "
                              f"{', '.join(sorted(_REJECTION_FIELDS))} with a string value")
        done = f.get("done", dict, optional=True)
        for name, value in (done or {}).items():
            if name not in _DONE_FIELDS or not isinstance(value, str):
                raise f.error(f"done.{name}", "must be one of "
                              f"{', '.join(sorted(_DONE_FIELDS))} with a string value")
        bundles = f.get("bundles", dict, optional=True) or {}
        for scope, held in bundles.items():
            if isinstance(held, bool) or not isinstance(held, int) or held < 1 \
                    or not isinstance(scope, str) or len(scope) > 64:
                raise f.error(f"bundles.{str(scope)[:64]}", "must map a scope to a version >= 1")
        printer = f.get("printer_state", dict, optional=True)
        if printer is not None:
            _check_printer_state(f, printer)
        msg = cls(state=f.text("state", choices=STATUS_STATES), epoch=f.int("epoch", minimum=1),
                  version=f.text("version"), rule_version=f.int("rule_version"),
                  backlog=f.int("backlog"), devices=devices, rejected=rejected, done=done,
                  bundles=bundles, printer_state=printer)
        f.finish()
        return msg


def _check_printer_state(f: _Fields, printer: dict[str, Any]) -> None:
    """``{"code": str, "waiting": int}``: the code any short string (a code HQ does not know is
    shown by the till's words), ``waiting`` a count; nothing else."""
    for name in printer:
        if name not in ("code", "waiting"):
            raise f.error(f"printer_state.{str(name)[:64]}", "is not a known field (code, waiting)")
    code = printer.get("code")
    if not isinstance(code, str) or not 0 < len(code) <= PRINTER_CODE_MAX:
        raise f.error("printer_state.code", f"must be a string of 1 to {PRINTER_CODE_MAX} "
                      "characters")
    waiting = printer.get("waiting", 0)
    if isinstance(waiting, bool) or not isinstance(waiting, int) or waiting < 0:
        raise f.error("printer_state.waiting", "must be a whole number >= 0")


_REJECTION_FIELDS = frozenset({"what", "reason", "detail", "at", "ref"})
_DONE_FIELDS = frozenset({"ref", "name", "at"})


@dataclass(frozen=True)
class Command(_Message):
    """A command from HQ; only the names in COMMAND_NAMES exist."""

    KIND: ClassVar[str] = "command"
    id: str
    name: str
    args: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        f = _Fields(cls.KIND, raw)
        args = f.get("args", dict, optional=True)
        msg = cls(id=f.uuid("id"), name=f.text("name", choices=COMMAND_NAMES),
                  args={} if args is None else args)
        f.finish()
        return msg


@dataclass(frozen=True)
class MemberRequest(_Message):
    """lookup(member) | hold(member, points, hold_id) | post(hold_id) | void(hold_id) |
    states(since).

    The terminal mints ``hold_id`` so a retried hold is the same hold; MQTT 5 correlation data
    pairs each request with its response. ``states``: the signed member states of the cards HQ
    changed after version ``since`` (the till's catch-up, terminal.sync.member_states).
    ``codes``: true when the till reads a refusal's ``code`` and ``values`` (a till before
    them sends none, and HQ answers it without them: its strict parser would refuse them).
    """

    KIND: ClassVar[str] = "member_request"
    op: str
    member: str | None = None
    points: int | None = None
    hold_id: str | None = None
    since: int | None = None
    codes: bool | None = None

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        f = _Fields(cls.KIND, raw)
        op = f.text("op", choices=MEMBER_OPS)
        need_member = op in ("lookup", "hold")
        msg = cls(op=op, member=f.text("member", optional=not need_member),
                  points=f.int("points", minimum=1, optional=op != "hold"),
                  hold_id=f.uuid("hold_id", optional=op in ("lookup", "states")),
                  since=f.int("since", optional=op != "states"),
                  codes=f.get("codes", bool, optional=True))
        f.finish()
        for name in ("member", "points", "hold_id", "since"):
            if getattr(msg, name) is not None and name not in _MEMBER_FIELDS[op]:
                raise f.error(name, f"does not belong in a {op} request")
        return msg


_MEMBER_FIELDS = {"lookup": {"member"}, "hold": {"member", "points", "hold_id"},
                  "post": {"hold_id"}, "void": {"hold_id"}, "states": {"since"}}


@dataclass(frozen=True)
class MemberResponse(_Message):
    """HQ's answer: the authoritative balance and tier, or a refusal with its reason. To
    ``states``: the signed member states (each as published on its card's topic), ``through``
    the version up to which the till now holds every state HQ published, ``more`` whether
    another page follows.

    A refusal's ``error`` is HQ's English sentence; ``code`` names the refusal
    (terminal.protocol.hq_refusals.ENGLISH) and ``values`` are its facts by name, a flat object
    of integers and short printable strings, so a till words it in its own language. Sent only
    to a till whose request said ``codes``; a refusal from an older HQ carries neither."""

    KIND: ClassVar[str] = "member_response"
    op: str
    ok: bool
    hq_time: datetime
    member: str | None = None
    balance: int | None = None
    tier: str | None = None
    hold_id: str | None = None
    error: str | None = None
    states: tuple[str, ...] | None = None
    through: int | None = None
    more: bool | None = None
    code: str | None = None
    values: dict[str, int | str] | None = None

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        f = _Fields(cls.KIND, raw)
        ok = f.get("ok", bool)
        code = f.get("code", str, optional=True)
        if code is not None:
            if ok:
                raise f.error("code", "belongs to a refusal only (ok is true)")
            if not REFUSAL_CODE.fullmatch(code):
                raise f.error("code", f"must be 1 to {REFUSAL_CODE_MAX} characters of a-z, 0-9, "
                              "'.' and '_', starting with a letter")
        values = f.get("values", dict, optional=True)
        if values is not None:
            if code is None:
                raise f.error("values", "belong to a refusal's code (no code given)")
            _check_refusal_values(f, values)
        balance = f.get("balance", int, optional=True)  # may be negative after an overdraft
        states = f.get("states", list, optional=True)
        if states is not None and not all(isinstance(state, str) for state in states):
            raise f.error("states", "must be a list of strings")
        msg = cls(op=f.text("op", choices=MEMBER_OPS), ok=ok, hq_time=f.time("hq_time"),
                  member=f.text("member", optional=True), balance=balance,
                  tier=f.text("tier", optional=True), hold_id=f.uuid("hold_id", optional=True),
                  error=f.text("error", optional=ok),
                  states=None if states is None else tuple(states),
                  through=f.int("through", optional=True),
                  more=f.get("more", bool, optional=True), code=code, values=values)
        f.finish()
        return msg


# A refusal's code (MemberResponse.code) and its values: a flat object of at most
# REFUSAL_VALUES_MAX names (identifiers) to integers (within JSON's safe range, never booleans)
# or strings of at most REFUSAL_TEXT_MAX printable characters (no control characters).
REFUSAL_CODE_MAX = 64
REFUSAL_CODE = re.compile(r"[a-z][a-z0-9_.]{0,63}")
REFUSAL_VALUES_MAX = 16
REFUSAL_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
REFUSAL_TEXT_MAX = 200
_SAFE_INT = 2**53 - 1


def _check_refusal_values(f: _Fields, values: dict[str, Any]) -> None:
    if len(values) > REFUSAL_VALUES_MAX:
        raise f.error("values", f"must hold at most {REFUSAL_VALUES_MAX} values")
    for name, value in values.items():
        if not REFUSAL_NAME.fullmatch(name):
            raise f.error(f"values.{name[:32]!r}", "a value's name must be 1 to 32 characters "
                          "of a-z, 0-9 and '_', starting with a letter")
        where = f"values.{name}"
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise f.error(where, "must be an integer or a string, not "
                          f"{'a boolean' if isinstance(value, bool) else type(value).__name__}")
        if isinstance(value, int) and not -_SAFE_INT <= value <= _SAFE_INT:
            raise f.error(where, f"must be within +-{_SAFE_INT}")
        if isinstance(value, str) and (len(value) > REFUSAL_TEXT_MAX or not value.isprintable()):
            raise f.error(where, f"must be at most {REFUSAL_TEXT_MAX} printable characters "
                          "(no control characters)")


@dataclass(frozen=True)
class HqState(_Message):
    """HQ's retained ``{root}/hq/state``: online (birth) or offline (the collector's will).
    Terminals publish their outbox only while it says online."""

    KIND: ClassVar[str] = "hq_state"
    state: str
    hq_time: datetime

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        f = _Fields(cls.KIND, raw)
        msg = cls(state=f.text("state", choices=STATUS_STATES), hq_time=f.time("hq_time"))
        f.finish()
        return msg
