"""Console users: passwords (argon2id), sign-in with a rate limit, sessions and API tokens.

Run every function here with the console models bound (:class:`terminal.hq.console.db.Db`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from peewee import fn

from terminal.hq.console import audit
from terminal.hq.console.models import (
    ApiToken,
    ConsoleSecret,
    ConsoleSession,
    ConsoleUser,
    LoginFailure,
)
from terminal.hq.console.roles import ROLES, Principal

NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
PASSWORD_MIN, PASSWORD_MAX = 10, 1024
_HASHER = PasswordHasher()  # argon2id, the library's defaults (RFC 9106's second choice)
# Verified when the name is unknown, so a wrong name costs what a wrong password costs.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))

MINUTE_US = 60_000_000
THROTTLE_WINDOW_US = 15 * MINUTE_US
THROTTLE_PER_NAME = 5  # failed attempts on one account within the window
THROTTLE_PER_CLIENT = 20  # failed attempts from one address within the window
SESSION_IDLE_US = 120 * MINUTE_US
SESSION_MAX_US = 12 * 60 * MINUTE_US
TOKEN_PREFIX = "pt"


class AccountError(ValueError):
    """A user or token operation refused: the message says why."""


class Throttled(Exception):
    """Too many failed sign-ins: refused without looking at the password."""


@dataclass(frozen=True)
class NewToken:
    id: str
    secret: str  # shown once


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _principal(user: ConsoleUser, via: str) -> Principal:
    stores = tuple(s for s in user.stores.split(",") if s)
    return Principal(user.name, user.role, stores, via)


def user_principal(name: str, via: str) -> Principal | None:
    """An active user by name (the command line acting as that person), else None."""
    user = ConsoleUser.get_or_none((ConsoleUser.name == name)
                                   & (ConsoleUser.active == True))  # noqa: E712
    return None if user is None else _principal(user, via)


def check_password(password: str) -> str:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise AccountError(f"a password is {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    return password


def add_user(name: str, role: str, stores: tuple[str, ...], password: str) -> None:
    if not NAME.fullmatch(name):
        raise AccountError(f"user name {name!r} must be 1-64 characters of A-Z a-z 0-9 . _ @ -")
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if role == "store_manager" and not stores:
        raise AccountError("a store_manager needs --stores (the stores it manages)")
    if role != "store_manager" and stores:
        raise AccountError(f"--stores is for store_manager; {role} sees the whole chain")
    check_password(password)
    if ConsoleUser.get_or_none(ConsoleUser.name == name) is not None:
        raise AccountError(f"user {name!r} exists already")
    ConsoleUser.create(name=name, role=role, stores=",".join(stores),
                       password_hash=_HASHER.hash(password), created_us=audit.now_us())
    audit.record_system("user.add", name, f"role {role}"
                        + (f", stores {','.join(stores)}" if stores else ""))


def authenticate(name: str, password: str, client: str) -> Principal | None:
    """The user if the password is right; None if not (the failure counted); ``Throttled``
    once the account or the address failed too often lately."""
    now = audit.now_us()
    since = now - THROTTLE_WINDOW_US
    by_name = LoginFailure.select(fn.COUNT(LoginFailure.id)).where(
        (LoginFailure.name == name) & (LoginFailure.at_us > since)).scalar()
    by_client = LoginFailure.select(fn.COUNT(LoginFailure.id)).where(
        (LoginFailure.client == client) & (LoginFailure.at_us > since)).scalar()
    if by_name >= THROTTLE_PER_NAME or by_client >= THROTTLE_PER_CLIENT:
        raise Throttled()
    user = ConsoleUser.get_or_none((ConsoleUser.name == name) & (ConsoleUser.active == True))  # noqa: E712
    try:
        _HASHER.verify(user.password_hash if user else _DUMMY_HASH, password)
        ok = user is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        LoginFailure.create(name=name[:64], client=client[:64], at_us=now)
        return None
    if _HASHER.check_needs_rehash(user.password_hash):
        ConsoleUser.update(password_hash=_HASHER.hash(password)).where(
            ConsoleUser.name == user.name).execute()
    LoginFailure.delete().where(LoginFailure.name == name).execute()
    return _principal(user, "web")


def start_session(name: str) -> str:
    """A new session for ``name``: the random id for the cookie (only its digest is stored)."""
    secret = secrets.token_urlsafe(32)
    now = audit.now_us()
    ConsoleSession.create(id_digest=_digest(secret), user=name, created_us=now, seen_us=now,
                          expires_us=now + SESSION_MAX_US)
    return secret


def session_principal(secret: str) -> Principal | None:
    row = ConsoleSession.get_or_none(ConsoleSession.id_digest == _digest(secret))
    now = audit.now_us()
    if row is None or row.expires_us <= now or row.seen_us + SESSION_IDLE_US <= now:
        return None
    user = ConsoleUser.get_or_none((ConsoleUser.name == row.user) & (ConsoleUser.active == True))  # noqa: E712
    if user is None:
        return None
    if now - row.seen_us > MINUTE_US:  # at most one write a minute per session
        ConsoleSession.update(seen_us=now).where(
            ConsoleSession.id_digest == row.id_digest).execute()
    return _principal(user, "web")


def end_session(secret: str) -> None:
    ConsoleSession.delete().where(ConsoleSession.id_digest == _digest(secret)).execute()


def issue_token(name: str) -> NewToken:
    if ConsoleUser.get_or_none(ConsoleUser.name == name) is None:
        raise AccountError(f"no user {name!r}")
    token_id = secrets.token_hex(6)
    secret = f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
    ApiToken.create(id=token_id, user=name, digest=_digest(secret), created_us=audit.now_us())
    audit.record_system("token.issue", token_id, f"for {name}")
    return NewToken(token_id, secret)


def revoke_token(token_id: str) -> None:
    token = ApiToken.get_or_none(ApiToken.id == token_id)
    if token is None:
        raise AccountError(f"no token {token_id!r}")
    if token.revoked_us is None:
        ApiToken.update(revoked_us=audit.now_us()).where(ApiToken.id == token_id).execute()
        audit.record_system("token.revoke", token_id, f"of {token.user}")


def list_tokens(name: str) -> list[dict[str, object]]:
    return [{"id": t.id, "created_us": t.created_us, "revoked": t.revoked_us is not None}
            for t in ApiToken.select().where(ApiToken.user == name).order_by(ApiToken.created_us)]


def token_principal(secret: str) -> Principal | None:
    row = ApiToken.get_or_none(ApiToken.digest == _digest(secret))
    if row is None or row.revoked_us is not None:
        return None
    user = ConsoleUser.get_or_none((ConsoleUser.name == row.user) & (ConsoleUser.active == True))  # noqa: E712
    return _principal(user, "api") if user else None


def signing_secret() -> str:
    """The key that signs the session and CSRF cookies: made once, shared by every console
    process on this database (so a load balancer may send a browser to any of them)."""
    row = ConsoleSecret.get_or_none(ConsoleSecret.name == "cookies")
    if row is None:
        ConsoleSecret.insert(name="cookies", value=secrets.token_hex(32)).on_conflict_ignore(
        ).execute()
        row = ConsoleSecret.get(ConsoleSecret.name == "cookies")
    return row.value
