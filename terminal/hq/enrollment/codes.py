"""One-time enrollment codes: issued for one terminal with an expiry, kept only as a hash, redeemed
once by a request whose CSR names that terminal.

A code is 12 characters from an alphabet without look-alikes (no 0/O, 1/I), about 60 bits, shown
``ABCD-EFGH-JKLM``; the box sends what the technician typed, and case, spaces and dashes do not
matter. A code is shown once, when issued; afterwards HQ's people see it by its reference, the
first 12 hex digits of its hash (:func:`listing`), and may revoke it while unused (:func:`revoke`).
Run every function here with ``EnrollmentCode`` bound to HQ's database.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from terminal.hq.acl import Terminal
from terminal.hq.models import EnrollmentCode
from terminal.hq.pki.authority import CaError, load_request, request_identity
from terminal.loyalty.clock import from_micros, to_micros
from terminal.protocol.enrollment import EnrollRequest

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
LENGTH = 12
DEFAULT_TTL = timedelta(hours=24)
MAX_TTL = timedelta(days=14)


class Refused(Exception):
    """A redemption refused; ``reason`` is one of protocol.enrollment.REFUSALS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Issued:
    code: str
    terminal: Terminal
    expires: datetime


def normalize(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch not in " -\t")


def code_hash(code: str) -> str:
    return hashlib.sha256(normalize(code).encode()).hexdigest()


def issue(terminal: Terminal, now: datetime, ttl: timedelta = DEFAULT_TTL) -> Issued:
    """A new code for ``terminal`` valid ``ttl``; earlier unused codes for it stay valid."""
    if not timedelta(minutes=1) <= ttl <= MAX_TTL:
        raise ValueError(f"the code's lifetime must be between 1 minute and {MAX_TTL.days} days")
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    expires = now + ttl
    EnrollmentCode.create(code_hash=code_hash(raw), store=terminal.store,
                          terminal=terminal.terminal, issued_us=to_micros(now),
                          expires_us=to_micros(expires))
    return Issued("-".join(raw[i:i + 4] for i in range(0, LENGTH, 4)), terminal, expires)


def check(request: EnrollRequest,
          now: datetime) -> tuple[EnrollmentCode, x509.CertificateSigningRequest]:
    """The unused code row and the checked CSR of ``request``; Refused otherwise."""
    row = EnrollmentCode.get_or_none(EnrollmentCode.code_hash == code_hash(request.code))
    asked = f"{request.store}/{request.terminal}"
    if row is None:
        raise Refused("code_unknown", f"{asked}: no such enrollment code")
    if (row.store, row.terminal) != (request.store, request.terminal):
        raise Refused("wrong_terminal", f"{asked}: the code is for another terminal")
    if row.revoked_us is not None:
        # Told as not recognised: boxes of earlier releases know no other word for it.
        raise Refused("code_unknown", f"{asked}: the code was revoked at HQ at "
                      f"{from_micros(row.revoked_us).isoformat(timespec='seconds')}")
    if row.used_us is not None:
        raise Refused("code_used", f"{asked}: the code was used at "
                      f"{from_micros(row.used_us).isoformat(timespec='seconds')}")
    if to_micros(now) >= row.expires_us:
        raise Refused("code_expired", f"{asked}: the code expired at "
                      f"{from_micros(row.expires_us).isoformat(timespec='seconds')}")
    try:
        csr = load_request(request.csr.encode(), "csr")
        named = request_identity(csr)
    except CaError as exc:
        raise Refused("cn_mismatch", f"{asked}: {exc}") from None
    if named.identity != asked:
        raise Refused("cn_mismatch", f"{asked}: the request's CN is {named.identity}")
    return row, csr


def mark_used(row: EnrollmentCode, serial: int, now: datetime) -> None:
    """Spend the code; Refused if another redemption spent it first, or a person revoked it
    meanwhile (the guard is the UPDATE)."""
    spent = (EnrollmentCode.update(used_us=to_micros(now), serial=f"{serial:x}")
             .where((EnrollmentCode.code_hash == row.code_hash)
                    & EnrollmentCode.used_us.is_null()
                    & EnrollmentCode.revoked_us.is_null()).execute())
    if spent != 1:
        raise Refused("code_used", f"{row.store}/{row.terminal}: the code was just used")


REF_LENGTH = 12
STATES = ("pending", "used", "expired", "revoked")


class NotRevocable(ValueError):
    """A code that cannot be revoked (unknown, used, expired or revoked already): said why."""


def state(row: EnrollmentCode, now: datetime) -> str:
    """One of STATES: revoked and used first, then expired by ``now``, else pending."""
    if row.revoked_us is not None:
        return "revoked"
    if row.used_us is not None:
        return "used"
    return "expired" if to_micros(now) >= row.expires_us else "pending"


@dataclass(frozen=True)
class Listed:
    ref: str
    terminal: Terminal
    state: str
    issued: datetime
    expires: datetime
    used: datetime | None
    serial: str | None
    revoked: datetime | None
    revoked_by: str | None


def listing(now: datetime, store: str = "", limit: int = 200) -> list[Listed]:
    """The codes issued (of ``store`` only, if given), newest first, each with its state."""
    rows = EnrollmentCode.select().order_by(EnrollmentCode.issued_us.desc(),
                                            EnrollmentCode.code_hash).limit(limit)
    if store:
        rows = rows.where(EnrollmentCode.store == store)
    return [_listed(row, now) for row in rows]


def _listed(row: EnrollmentCode, now: datetime) -> Listed:
    return Listed(row.code_hash[:REF_LENGTH], Terminal(row.store, row.terminal), state(row, now),
                  from_micros(row.issued_us), from_micros(row.expires_us),
                  None if row.used_us is None else from_micros(row.used_us), row.serial,
                  None if row.revoked_us is None else from_micros(row.revoked_us),
                  row.revoked_by)


def revoke(ref: str, now: datetime, by: str) -> Listed:
    """Revoke the pending code whose reference is ``ref``; NotRevocable (nothing changed) for an
    unknown, used, expired or already revoked one."""
    if len(ref) != REF_LENGTH or any(ch not in "0123456789abcdef" for ch in ref):
        raise NotRevocable(f"{ref!r} is not a code reference ({REF_LENGTH} hex digits)")
    row = EnrollmentCode.get_or_none(EnrollmentCode.code_hash.startswith(ref))
    if row is None:
        raise NotRevocable(f"no code {ref}")
    if (current := state(row, now)) != "pending":
        raise NotRevocable(f"code {ref} for {row.store}/{row.terminal} is {current}, not pending")
    changed = (EnrollmentCode.update(revoked_us=to_micros(now), revoked_by=by)
               .where((EnrollmentCode.code_hash == row.code_hash)
                      & EnrollmentCode.used_us.is_null()
                      & EnrollmentCode.revoked_us.is_null()).execute())
    if changed != 1:
        raise NotRevocable(f"code {ref} for {row.store}/{row.terminal} was just used")
    return _listed(EnrollmentCode.get_by_id(row.code_hash), now)
