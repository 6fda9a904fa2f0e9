"""The console's own tables, in HQ's database beside the ledger's and the collectors'.

Secrets are never stored in clear: passwords as argon2id hashes, session ids and API tokens as
SHA-256 digests of 256-bit random values (a digest is enough for a value that cannot be guessed;
a slow hash is for what people choose). ``console_audit`` is append-only: triggers refuse UPDATE
and DELETE (HQ migration 7, :mod:`terminal.hq.migrations.v0007_console`).
"""

from __future__ import annotations

from peewee import AutoField, BigIntegerField, BooleanField, IntegerField, TextField

from terminal.loyalty.store.models import BaseModel


class ConsoleUser(BaseModel):
    name = TextField(primary_key=True)
    role = TextField()
    stores = TextField(default="")  # comma-separated store ids, for store_manager only
    password_hash = TextField()
    active = BooleanField(default=True)
    created_us = BigIntegerField()


class ConsoleSession(BaseModel):
    """A signed-in browser: the cookie carries the random id, this row its digest."""

    id_digest = TextField(primary_key=True)
    user = TextField(index=True)
    created_us = BigIntegerField()
    seen_us = BigIntegerField()
    expires_us = BigIntegerField()


class ApiToken(BaseModel):
    """A per-user API token; ``revoked_us`` set means refused from then on."""

    id = TextField(primary_key=True)  # the token's public prefix, shown in lists
    user = TextField(index=True)
    digest = TextField(unique=True)
    created_us = BigIntegerField()
    revoked_us = BigIntegerField(null=True)


class LoginFailure(BaseModel):
    """A failed sign-in, for the rate limit (kept in the database so every console process
    behind a load balancer counts the same attempts)."""

    id = AutoField()
    name = TextField(index=True)
    client = TextField(index=True)
    at_us = BigIntegerField(index=True)


class ConsoleAudit(BaseModel):
    """Who did or read what, when, and why. Append-only."""

    id = AutoField()
    at_us = BigIntegerField(index=True)
    actor = TextField(index=True)
    role = TextField()
    via = TextField()  # web | api | cli
    action = TextField(index=True)
    subject = TextField(default="", index=True)
    why = TextField(default="")
    detail = TextField(default="")


class ConsoleSecret(BaseModel):
    """The key that signs session and CSRF cookies, made on first start and shared by every
    console process on this database."""

    name = TextField(primary_key=True)
    value = TextField()


class ConsoleCommand(BaseModel):
    """A command sent to a terminal from the console, and what the terminal answered."""

    id = TextField(primary_key=True)  # the command's id on the wire
    store = TextField()
    terminal = TextField()
    name = TextField()
    actor = TextField()
    sent_us = BigIntegerField()
    state = TextField()  # sent | done | refused
    detail = TextField(default="")
    answered_us = BigIntegerField(null=True)

    class Meta:
        indexes = ((("store", "terminal", "sent_us"), False),)


class BacklogSample(BaseModel):
    """A terminal's backlog as its statuses reported it: "growing" is judged on these."""

    id = AutoField()
    store = TextField()
    terminal = TextField()
    at_us = BigIntegerField()
    backlog = IntegerField()

    class Meta:
        indexes = ((("store", "terminal", "at_us"), False),)


CONSOLE_MODELS = (ConsoleUser, ConsoleSession, ApiToken, LoginFailure, ConsoleAudit,
                  ConsoleSecret, ConsoleCommand, BacklogSample)
APPEND_ONLY = (ConsoleAudit,)
