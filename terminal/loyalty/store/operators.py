"""Operators and signing in: operator number + PIN, a keyed hash, and a lockout.

A PIN is checked against one operator only, the one whose number was keyed, as
HMAC-SHA256(terminal's PIN key, "number:PIN"). The PIN key is a per-terminal secret kept with the
terminal's other credentials (``{state_dir}/credentials/pin.key``), never in the database: a
stolen ledger file alone does not let anyone try PINs. ``MAX_FAILURES`` wrong PINs in a row lock
the operator for ``LOCKOUT``, or until a manager unlocks them; both are audited.

Operators recorded before schema 3 carry a scrypt hash and got a number in name order (the
migration in :mod:`.database`); their first sign-in checks that hash once and stores the keyed
hash in its place.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import SqliteDatabase

from terminal.loyalty.clock import Moment, from_micros, to_micros
from terminal.loyalty.errors import InvalidInput, Refused
from terminal.loyalty.store.database import write_transaction
from terminal.loyalty.store.models import Operator, OperatorName
from terminal.loyalty.store.writer import LedgerCore

ROLES = ("cashier", "manager")
PIN = re.compile(r"[0-9]{4,8}")
MAX_NUMBER = 9999
MAX_FAILURES = 5
SHOWN_MAX = 16  # an operator's shown name, in characters (the LCD's line; the pole shortens)
LOCKOUT = timedelta(minutes=15)
PIN_KEY_BYTES = 32
_KEY_CHECK = b"posterm operator PIN key check"
# The scrypt cost of the hashes written before schema 3 (checked once each, then replaced).
_LEGACY_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class SignedIn:
    """The operator signed in: ``name`` their id (events, the audit), ``shown`` the name they
    are greeted by ("" when none was set: the id is shown)."""

    name: str
    role: str
    shown: str = ""

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"

    @property
    def greeted(self) -> str:
        """The name the till greets them by: their shown name, else their id."""
        return self.shown or self.name


class SignInRefused(Refused):
    """Unknown operator number, wrong PIN, or an operator locked after too many wrong PINs."""


class OperatorLocked(SignInRefused):
    def __init__(self, number: int, until: datetime) -> None:
        super().__init__(f"Operator {number} is locked after {MAX_FAILURES} wrong PINs until "
                         f"{until:%H:%M}: wait, or a manager unlocks it (Void)", "sign_in.lockout",
                         number=number, failures=MAX_FAILURES, until=f"{until:%H:%M}")
        self.number = number
        self.until = until


def pin_mac(key: bytes, number: int, pin: str) -> str:
    return hmac.new(key, f"{number}:{pin}".encode(), hashlib.sha256).hexdigest()


def key_check(key: bytes) -> str:
    """What the ledger keeps to recognise its PIN key (not the key, nor anything about a PIN)."""
    return hmac.new(key, _KEY_CHECK, hashlib.sha256).hexdigest()


def _check_number(number: int) -> None:
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_NUMBER:
        raise InvalidInput(f"an operator number is from 1 to {MAX_NUMBER}", "operator.number")


def set_operator(db: SqliteDatabase, key: bytes, number: int, name: str, role: str,
                 pin: str, shown: str = "") -> None:
    """Add an operator or change their number, role and PIN (which clears a lockout), unaudited
    (a ledger's first staff, as the simulation seeds them; a technician's changes go through
    :meth:`terminal.loyalty.store.staff.Staff.put_operator`, which audits them). ``name`` is
    their id (1-32 of ``0-9 A-Z a-z _ . -``: events and the audit carry it); ``shown`` the name
    the till greets them by at sign-in (a person's name, Chinese or Latin, at most
    :data:`SHOWN_MAX` characters; "" greets them by their id)."""
    check_operator(number, name, role, pin, shown)
    with write_transaction(db):
        write_operator(key, number, name, role, pin, shown)


def check_operator(number: int, name: str, role: str, pin: str, shown: str) -> None:
    """Refuse, naming the field, an operator that cannot be set (before anything is written)."""
    _check_number(number)
    if not isinstance(name, str) or not re.fullmatch(r"[0-9A-Za-z_.-]{1,32}", name):
        raise InvalidInput(f"operator name {name!r} is not 1-32 letters, digits or _.-",
                           "operator.name")
    if not isinstance(shown, str) or len(shown) > SHOWN_MAX or not shown.isprintable() \
            or shown != shown.strip():
        raise InvalidInput(f"an operator's shown name is at most {SHOWN_MAX} printable "
                           "characters, without spaces around", "operator.shown")
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}", "operator.role")
    if not isinstance(pin, str) or not PIN.fullmatch(pin):
        raise InvalidInput("a PIN is 4 to 8 digits", "operator.pin")


def write_operator(key: bytes, number: int, name: str, role: str, pin: str, shown: str) -> bool:
    """Write a checked operator inside the caller's write transaction; True if they are new."""
    taken = Operator.get_or_none(Operator.number == number)
    if taken is not None and taken.name != name:
        raise InvalidInput(f"operator number {number} is {taken.name}'s", "operator.number")
    new = Operator.get_or_none(Operator.name == name) is None
    Operator.replace(name=name, number=number, role=role, pin_mac=pin_mac(key, number, pin),
                     pin_salt=None, pin_hash=None, failures=0, locked_until_us=None,
                     active=True).execute()
    if shown:
        OperatorName.replace(name=name, shown=shown).execute()
    else:
        OperatorName.delete().where(OperatorName.name == name).execute()
    return new


def _legacy_match(operator: Operator, pin: str) -> bool:
    if not operator.pin_salt or not operator.pin_hash:
        return False
    digest = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(operator.pin_salt), dklen=32,
                            **_LEGACY_SCRYPT).hex()
    return hmac.compare_digest(digest, operator.pin_hash)


class Operators(LedgerCore):
    """Signing in against this ledger's operators."""

    def operator_known(self, number: int) -> bool:
        """Whether ``number`` is an active operator here (the till asks before the PIN)."""
        return Operator.get_or_none((Operator.number == number) & Operator.active) is not None

    def sign_in(self, key: bytes, number: int, pin: str, moment: Moment) -> SignedIn:
        """The operator ``number`` if ``pin`` is theirs, else :class:`SignInRefused` (a wrong
        PIN counted, the lockout recorded and audited)."""
        operator = Operator.get_or_none((Operator.number == number) & Operator.active)
        if operator is None:
            raise SignInRefused(f"Operator {number} is not known here: key your operator no., "
                                "then Enter", "sign_in.number", number=number)
        now_us = to_micros(moment.at)
        if operator.locked_until_us is not None and operator.locked_until_us > now_us:
            raise OperatorLocked(number, from_micros(operator.locked_until_us).astimezone(
                self.rules.zone))
        mac = pin_mac(key, number, pin) if PIN.fullmatch(pin or "") else ""
        if operator.pin_mac is not None:
            matched = bool(mac) and hmac.compare_digest(mac, operator.pin_mac)
        else:
            matched = bool(mac) and _legacy_match(operator, pin)
        if matched:
            if operator.failures or operator.locked_until_us or operator.pin_mac is None:
                with self._writing(moment) as w:
                    Operator.update(pin_mac=mac, pin_salt=None, pin_hash=None, failures=0,
                                    locked_until_us=None).where(
                        Operator.name == operator.name).execute()
                    if operator.pin_mac is None:
                        self._audit(w, operator.name, "pin_rehashed", str(number), "")
            greeted = OperatorName.get_or_none(OperatorName.name == operator.name)
            return SignedIn(operator.name, operator.role,
                            greeted.shown if greeted is not None else "")
        return self._wrong_pin(operator, moment)

    def _wrong_pin(self, operator: Operator, moment: Moment) -> SignedIn:
        failures = operator.failures + 1
        if failures < MAX_FAILURES:
            with self._writing(moment):
                Operator.update(failures=failures).where(Operator.name == operator.name).execute()
            left = MAX_FAILURES - failures
            raise SignInRefused(f"PIN not recognised: key your PIN again, then Enter ({left} "
                                f"{'try' if left == 1 else 'tries'} left)", "sign_in.pin",
                                left=left)
        until = moment.at + LOCKOUT
        with self._writing(moment) as w:
            Operator.update(failures=0, locked_until_us=to_micros(until)).where(
                Operator.name == operator.name).execute()
            self._audit(w, operator.name, "operator_locked", str(operator.number),
                        f"{MAX_FAILURES} wrong PINs; locked until {until.isoformat()}")
        raise OperatorLocked(operator.number, until.astimezone(self.rules.zone))

    def unlock_operator(self, number: int, manager: str, moment: Moment) -> None:
        """A manager lifts operator ``number``'s lockout (audited)."""
        operator = Operator.get_or_none(Operator.number == number)
        if operator is None:
            raise SignInRefused(f"Operator {number} is not known here", "sign_in.number",
                                why="sign_in.number.unlock", number=number)
        if not operator.locked_until_us or operator.locked_until_us <= to_micros(moment.at):
            raise SignInRefused(f"Operator {number} is not locked: key the PIN, then Enter",
                                "sign_in.lockout", why="sign_in.lockout.unlock", number=number)
        with self._writing(moment) as w:
            Operator.update(failures=0, locked_until_us=None).where(
                Operator.name == operator.name).execute()
            self._audit(w, manager, "operator_unlocked", str(number), "")

    def check_pin_key(self, key: bytes) -> None:
        """Remember the PIN key's check value at first use; refuse a different key after (the
        operators' hashes were made with the first)."""
        expected = key_check(key)
        with write_transaction(self.db):
            stored = self._meta("pin_key_check")
            if not stored:
                self._set_meta("pin_key_check", expected)
                return
        if not hmac.compare_digest(stored, expected):
            raise SignInRefused("the PIN key is not the one this ledger's operators were set "
                                "with: restore it, or set every operator's PIN again",
                                "sign_in.key", why="sign_in.key")


def new_pin_key() -> bytes:
    return os.urandom(PIN_KEY_BYTES).hex().encode()
