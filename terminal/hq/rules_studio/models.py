"""The rules studio's tables: every bundle release ever pushed and the studio's policy (whether a
chain push needs a second person), HQ migration 9; the backtests run, migration 10."""

from __future__ import annotations

from peewee import BigIntegerField, IntegerField, TextField

from terminal.loyalty.store.models import BaseModel


class BundleRelease(BaseModel):
    """One release: the same signed content pushed to one or more scopes under one version.

    ``kind`` is ``stage`` (one store first), ``chain`` (approved for the whole chain) or
    ``rollback`` (earlier content again, as a new version); ``source_version`` names the
    release whose content it carries (the staged one a chain push approves, the earlier one a
    rollback restores). ``wires`` holds each scope's signed message, as published."""

    version = BigIntegerField(primary_key=True)
    kind = TextField()
    scopes = TextField()  # JSON list, broadest first
    rules_text = TextField()  # the rules TOML as written
    payload = TextField()  # canonical JSON {rules, catalogue, settings}
    content_sha = TextField(index=True)
    author = TextField()
    created_us = BigIntegerField()
    approver = TextField(default="")
    approved_us = BigIntegerField(null=True)
    source_version = BigIntegerField(null=True)
    backtest = TextField(default="")  # JSON summary of the backtest staged with it, if any
    state = TextField()  # signed | pushed | failed
    detail = TextField(default="")  # why a push failed
    pushed_us = BigIntegerField(null=True)
    issued_at = TextField()
    expires_at = TextField()
    wires = TextField(default="{}")  # JSON {scope: signed message}


class StudioPolicy(BaseModel):
    """One setting per row: ``two_person`` = ``on`` makes a chain push need an approver who is
    not the release's author."""

    name = TextField(primary_key=True)
    value = TextField()


class BacktestJob(BaseModel):
    """A backtest started from the console: who, over how many days, the candidate as written,
    its last step, and its figures (JSON) or its error once ended (HQ migration 10)."""

    id = TextField(primary_key=True)
    author = TextField()
    days = IntegerField()
    text = TextField()
    step = TextField()
    result = TextField(default="")
    error = TextField(default="")
    started_us = BigIntegerField(index=True)
    ended_us = BigIntegerField(null=True)


STUDIO_MODELS = (BundleRelease, StudioPolicy)
