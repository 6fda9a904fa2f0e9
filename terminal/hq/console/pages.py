"""The console's pages: sign-in, members, the audit log. Each is server-rendered; htmx asks
for the part that changes (``HX-Request``) and gets only that fragment."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from terminal.hq.console import accounts, audit
from terminal.hq.console.audit import AuditQuery, search
from terminal.hq.console.i18n import LANGUAGES
from terminal.hq.console.members import QueryError
from terminal.hq.console.operations import OPERATIONS
from terminal.hq.console.roles import Principal
from terminal.hq.console.web import (
    LANG_COOKIE,
    NotFound,
    console_of,
    page,
    principal,
    render,
    safe_next,
    translator,
    visible_or_404,
)
from terminal.hq.member_ops.errors import ImportProblem, ImportRejected, MemberOpError


def is_fragment(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" \
        and request.headers.get("hx-boosted") != "true"


# -- signing in and out ------------------------------------------------------------------------

async def login_form(request: Request) -> Response:
    if await principal(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), 303)
    return render(request, "login.html", next=safe_next(request.query_params.get("next")))


async def login(request: Request) -> Response:
    form = await request.form()
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    client = request.client.host if request.client else "?"
    db = console_of(request).db
    try:
        who = await db.run(accounts.authenticate, name, password, client)
    except accounts.Throttled:
        await db.run(audit.record, Principal(name[:64] or "-", "-"), "login.throttled", "",
                     "", f"from {client}")
        return render(request, "login.html", 429, error="login.throttled", next=target,
                      name=name)
    if who is None:
        await db.run(audit.record, Principal(name[:64] or "-", "-"), "login.failed", "",
                     "", f"from {client}")
        return render(request, "login.html", 401, error="login.failed", next=target, name=name)
    # A fresh session id on every sign-in, the old one ended: a session id planted before
    # sign-in is worth nothing after it (session fixation).
    old = request.session.get("sid")
    if isinstance(old, str):
        await db.run(accounts.end_session, old)
    request.session.clear()
    request.session["sid"] = await db.run(_signed_in, who)
    return RedirectResponse(target, 303)


def _signed_in(who: Principal) -> str:
    sid = accounts.start_session(who.name)
    audit.record(who, "login")
    return sid


async def logout(request: Request) -> Response:
    sid = request.session.get("sid")
    who = await principal(request)
    if isinstance(sid, str):
        await console_of(request).db.run(_signed_out, sid, who)
    request.session.clear()
    return RedirectResponse("/login", 303)


def _signed_out(sid: str, who: Principal | None) -> None:
    accounts.end_session(sid)
    if who is not None:
        audit.record(who, "logout")


async def language(request: Request) -> Response:
    code = request.path_params["code"]
    response = RedirectResponse(safe_next(request.query_params.get("next")), 303)
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="strict",
                            secure=console_of(request).secure_cookies, httponly=True)
    return response


@page()
async def home(request: Request) -> Response:
    return RedirectResponse("/members", 303)


# -- members -----------------------------------------------------------------------------------

@page("members.read")
async def members(request: Request) -> Response:
    who = request.scope["principal"]
    text = request.query_params.get("q", "").strip()
    results, error = None, None
    if text:
        try:
            results = await console_of(request).db.run(console_of(request).reader.search, who,
                                                       text)
        except QueryError as exc:
            error = translator(request)(f"search.error.{exc.kind}")
    template = "members/_results.html" if is_fragment(request) else "members/search.html"
    return render(request, template, q=text, results=results, error=error)


@page("members.read")
async def member(request: Request) -> Response:
    console = console_of(request)
    data = await visible_or_404(request, console.reader.page, request.path_params["member_id"])
    return render(request, "members/show.html", m=data, done=request.query_params.get("done"),
                  done_keys=(*OPERATIONS, "move"))


async def _page_refusing(request: Request, member_id: str, exc: MemberOpError) -> Response:
    """The member's page again, with why the operation was refused (nothing changed)."""
    data = await visible_or_404(request, console_of(request).reader.page, member_id)
    op_error = translator(request).refusal(exc.code, exc.field, str(exc))
    return render(request, "members/show.html", 400, m=data, op_error=op_error,
                  done_keys=OPERATIONS)


@page("members.read")
async def operate(request: Request) -> Response:
    """A member operation's form posted: done (back to the page, saying so) or refused (the
    page again with the reason; nothing changed)."""
    console = console_of(request)
    name = request.path_params["operation"]
    if name not in OPERATIONS:
        raise NotFound()
    member_id = request.path_params["member_id"]
    form = await request.form()
    fields = {key: str(form[key]) for key in OPERATIONS[name].fields if key in form
              and str(form[key]) != str(form.get(f"was_{key}", "\0"))}
    try:
        result = await console.db.run_own(console.operator.perform, request.scope["principal"],
                                          member_id, name, str(form.get("reason", "")), fields)
    except MemberOpError as exc:
        return await _page_refusing(request, member_id, exc)
    if result is None:
        raise NotFound()
    return RedirectResponse(f"/members/{member_id}?done={name}", 303)


@page("members.read")
async def statement_more(request: Request) -> Response:
    console = console_of(request)
    who = request.scope["principal"]
    before = _int(request.query_params.get("before"))

    def read() -> dict | None:
        found = console.reader.visible(who, request.path_params["member_id"])
        if found is None:
            return None
        audit.record(who, "member.statement", found[0].id, detail=f"before {before}")
        return console.reader.statement(found[0], before)

    data = await console.db.run(read)
    if data is None:
        raise NotFound()
    return render(request, "members/_statement_rows.html",
                  m={"id": request.path_params["member_id"], "statement": data})


@page("members.export")
async def statement_csv(request: Request) -> Response:
    console = console_of(request)
    member_id = request.path_params["member_id"]
    text = await visible_or_404(request, console.reader.statement_csv, member_id)
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="statement-{member_id}.csv"'})


@page("members.move")
async def move_home(request: Request) -> Response:
    console = console_of(request)
    member_id = request.path_params["member_id"]
    form = await request.form()
    try:
        moved = await console.db.run_own(console.operator.move_home, request.scope["principal"],
                                         member_id, str(form.get("store", "")).strip(),
                                         str(form.get("reason", "")))
    except MemberOpError as exc:
        return await _page_refusing(request, member_id, exc)
    if not moved:
        raise NotFound()
    return RedirectResponse(f"/members/{member_id}?done=move", 303)


@page("members.operate")
async def import_form(request: Request) -> Response:
    return render(request, "members/import.html")


@page("members.operate")
async def import_members(request: Request) -> Response:
    console = console_of(request)
    async with request.form(max_files=1, max_fields=8) as form:
        upload = form.get("file")
        reason, store = str(form.get("reason", "")), str(form.get("store", "")).strip()
        raw = await upload.read() if isinstance(upload, UploadFile) else b""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return render(request, "members/import.html", 400, reason=reason, store=store,
                      problems=[ImportProblem(0, "file", "not_utf8", "the file is not UTF-8")])
    try:
        result = await console.db.run_own(console.operator.import_members,
                                          request.scope["principal"], text, reason, store)
    except ImportRejected as exc:
        return render(request, "members/import.html", 400, problems=exc.problems,
                      reason=reason, store=store)
    except MemberOpError as exc:
        return render(request, "members/import.html", 400, reason=reason, store=store,
                      error=translator(request).refusal(exc.code, exc.field, str(exc)))
    return render(request, "members/import.html", result=result, store=store)


# -- audit -------------------------------------------------------------------------------------

def audit_query(request: Request) -> AuditQuery:
    params = request.query_params
    return AuditQuery(actor=params.get("actor", "").strip(),
                      action=params.get("action", "").strip(),
                      subject=params.get("subject", "").strip(),
                      before_id=_int(params.get("before")))


@page("audit.read")
async def audit_log(request: Request) -> Response:
    query = audit_query(request)
    rows = await console_of(request).db.run(search_audited, request.scope["principal"], query)
    return render(request, "audit/index.html", query=query, rows=rows,
                  next_before=rows[-1]["id"] if len(rows) == query.limit else None)


def search_audited(who: Principal, query: AuditQuery) -> list[dict]:
    """The audit log searched, the search itself written to it (who looked at what)."""
    audit.record(who, "audit.search", query.subject, detail=f"actor={query.actor!r} "
                 f"action={query.action!r} before={query.before_id}")
    return search(query)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


ROUTES = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/lang/{code}", language, methods=["GET"]),
    Route("/", home),
    Route("/members", members),
    Route("/members/import", import_form, methods=["GET"]),
    Route("/members/import", import_members, methods=["POST"]),
    Route("/members/{member_id}", member),
    Route("/members/{member_id}/statement", statement_more),
    Route("/members/{member_id}/statement.csv", statement_csv),
    Route("/members/{member_id}/op/{operation}", operate, methods=["POST"]),
    Route("/members/{member_id}/home", move_home, methods=["POST"]),
    Route("/audit", audit_log),
]
