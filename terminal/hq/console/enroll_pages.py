"""The enrollment page (issue 14): IT issues one-time enrollment codes for new terminals, sees
which are pending, used, expired or revoked, and revokes an unused one.

A code is shown once, on the page that issued it (never in a URL, the list or the audit log);
afterwards it is named by its reference (terminal.hq.enrollment.codes). Each issue and revocation
is written to the audit log in the transaction that makes it. With a revoker (the console started
with ``--revoke-ca``), IT also cuts a terminal off: every valid certificate of it revoked, the
terminal out of the register and the broker's ACL, one reload (terminal.hq.pki.revocation).
The ``it`` and ``admin`` roles may (``terminals.enroll``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from terminal.hq.acl import AclError, Terminal
from terminal.hq.console import audit
from terminal.hq.console.roles import Principal
from terminal.hq.console.web import console_of, page, render
from terminal.hq.enrollment import codes
from terminal.hq.pki.authority import CaError
from terminal.hq.pki.revocation import Revocation, Revoker
from terminal.protocol.topics import TopicError, check_id

# What the form offers, in the order shown; the command line takes any 1 minute .. 14 days.
LIFETIMES = {"30m": timedelta(minutes=30), "4h": timedelta(hours=4), "24h": timedelta(hours=24),
             "3d": timedelta(days=3), "14d": timedelta(days=14)}
DEFAULT_LIFETIME = "24h"


@dataclass(frozen=True)
class IssueForm:
    store: str = ""
    terminal: str = ""
    lifetime: str = DEFAULT_LIFETIME


def _issue(who: Principal, form: IssueForm, now: datetime) -> codes.Issued:
    issued = codes.issue(Terminal(form.store, form.terminal), now, LIFETIMES[form.lifetime])
    audit.record(who, "enroll.issue", issued.terminal.identity,
                 detail=f"ref {codes.code_hash(issued.code)[:codes.REF_LENGTH]}, valid until "
                 f"{issued.expires.isoformat()}")
    return issued


def _revoke(who: Principal, ref: str, now: datetime) -> codes.Listed:
    revoked = codes.revoke(ref, now, who.name)
    audit.record(who, "enroll.revoke", revoked.terminal.identity, detail=f"ref {ref}")
    return revoked


def _rows(store: str, now: datetime, zone: Any) -> list[dict[str, Any]]:
    def local(moment: datetime | None) -> str:
        return "" if moment is None else moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    return [{"ref": c.ref, "terminal": c.terminal.identity, "state": c.state,
             "issued": local(c.issued), "expires": local(c.expires), "used": local(c.used),
             "serial": c.serial or "", "revoked": local(c.revoked),
             "revoked_by": c.revoked_by or ""} for c in codes.listing(now, store)]


async def _page(request: Request, status: int = 200, **context: Any) -> Response:
    console = console_of(request)
    store = request.query_params.get("store", "").strip()
    try:
        store = check_id(store, "store") if store else ""
    except TopicError:
        store = ""
    rows = await console.db.run(_rows, store, datetime.now(UTC), console.fleet.zone)
    context.setdefault("form", IssueForm(store=store))
    return render(request, "enroll/index.html", status, nav="enroll", rows=rows, store=store,
                  lifetimes=list(LIFETIMES), can_cut=console.revoker is not None, **context)


@page("terminals.enroll")
async def enroll(request: Request) -> Response:
    return await _page(request, revoked=request.query_params.get("revoked"))


def _checked(form: IssueForm) -> str | None:
    """What is wrong with the form (a catalogue key), or None."""
    if form.lifetime not in LIFETIMES:
        return "enroll.bad_lifetime"
    try:
        check_id(form.store, "store")
        check_id(form.terminal, "terminal")
    except TopicError:
        return "enroll.bad_terminal"
    return None


@page("terminals.enroll")
async def issue(request: Request) -> Response:
    data = await request.form()
    form = IssueForm(str(data.get("store", "")).strip(), str(data.get("terminal", "")).strip(),
                     str(data.get("lifetime", DEFAULT_LIFETIME)))
    if problem := _checked(form):
        return await _page(request, 400, form=form, error=problem)
    console = console_of(request)
    try:
        issued = await console.db.run(_issue, request.scope["principal"], form,
                                      datetime.now(UTC))
    except (AclError, ValueError):
        return await _page(request, 400, form=form, error="enroll.bad_terminal")
    expires = issued.expires.astimezone(console.fleet.zone).strftime("%Y-%m-%d %H:%M")
    return await _page(request, form=form, issued={"code": issued.code, "expires": expires,
                                                   "terminal": issued.terminal.identity})


@page("terminals.enroll")
async def revoke(request: Request) -> Response:
    ref = request.path_params["ref"]
    try:
        await console_of(request).db.run(_revoke, request.scope["principal"], ref,
                                         datetime.now(UTC))
    except codes.NotRevocable as exc:
        return await _page(request, 409, refusal=str(exc))
    return RedirectResponse(f"/enroll?revoked={ref}", 303)


def _revoke_terminal(who: Principal, revoker: Revoker, terminal: Terminal,
                     why: str) -> Revocation:
    """Revoke, then audit in the console's transaction (a refusal changes and records nothing)."""
    done = revoker.terminal(terminal)
    audit.record(who, "terminal.revoke", terminal.identity, why=why,
                 detail=f"serials {', '.join(f'{s:x}' for s in done.serials)}; register "
                 f"{done.registered}; broker {done.reloaded or 'not reloaded'}")
    return done


@page("terminals.enroll")
async def revoke_terminal(request: Request) -> Response:
    console = console_of(request)
    if console.revoker is None:
        return await _page(request, 503, cut_error="enroll.no_ca")
    data = await request.form()
    store, terminal = str(data.get("store", "")).strip(), str(data.get("terminal", "")).strip()
    why = str(data.get("why", "")).strip()[:500]
    try:
        identity = Terminal(check_id(store, "store"), check_id(terminal, "terminal"))
    except TopicError:
        return await _page(request, 400, cut_error="enroll.bad_terminal")
    if not why:
        return await _page(request, 400, cut_error="enroll.why_needed")
    try:
        done = await console.db.run(_revoke_terminal, request.scope["principal"],
                                    console.revoker, identity, why)
    except (CaError, AclError, OSError) as exc:
        return await _page(request, 409, cut_refusal=str(exc))
    return await _page(request, cut={"terminal": identity.identity, "registered": done.registered,
                                     "serials": [f"{s:x}" for s in done.serials],
                                     "reloaded": done.reloaded})


ROUTES = [
    Route("/enroll", enroll),
    Route("/enroll", issue, methods=["POST"]),
    Route("/enroll/terminal/revoke", revoke_terminal, methods=["POST"]),
    Route("/enroll/{ref}/revoke", revoke, methods=["POST"]),
]
