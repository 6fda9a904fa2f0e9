"""The console's ASGI application: Starlette routes, server-rendered Jinja2 pages, JSON API.

Layers, outermost first: security headers; CSRF (asgi-csrf, double-submit cookie, on every
unsafe method: forms carry ``csrftoken``, htmx sends the ``x-csrftoken`` header; API calls with
a bearer token carry no cookie and need none); the signed session cookie (Starlette's
``SessionMiddleware``, itsdangerous), which holds only a random session id whose digest is a row
of ``console_session``. Who is asking is worked out per request (:func:`principal`): a bearer
token for ``/api/v1``, else the session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import wraps
from importlib import resources
from typing import Any

from asgi_csrf import asgi_csrf
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from terminal.hq.console import accounts
from terminal.hq.console.commands import Commander
from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.fleet import FleetReader
from terminal.hq.console.i18n import (
    LANGUAGE_NAMES,
    LANGUAGES,
    Translator,
    accepted,
    pick,
    printer_ok,
)
from terminal.hq.console.members import Reader
from terminal.hq.console.operations import Operator
from terminal.hq.console.roles import Forbidden, Principal
from terminal.hq.shown_text import shown

SESSION_COOKIE = "posterm_session"
LANG_COOKIE = "posterm_lang"
PACKAGE = resources.files("terminal.hq.console")
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; "
     b"img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


@dataclass
class Console:
    """What the routes need: the database, the member reader and operator, the fleet reader,
    the commander (when the console has a broker) and the cookie settings."""

    db: ConsoleDb
    reader: Reader
    operator: Operator
    fleet: FleetReader
    commander: Commander | None = None  # None: no broker given, commands off
    secure_cookies: bool = True
    studio: Any = None  # terminal.hq.console.rules_pages.Studio; None: no rules studio
    revoker: Any = None  # terminal.hq.pki.revocation.Revoker; None: terminals not revoked here
    care_config: Any = None  # terminal.hq.care.config.CareConfig: the templates a campaign's
    # preview fills (the sender's --care-config); None: the built-in ones


Handler = Callable[[Request], Awaitable[Response]]


class NotFound(Exception):
    """Absent, or outside the asker's stores: the same 404 either way."""


def console_of(request: Request) -> Console:
    return request.app.state.console


async def visible_or_404(request: Request, read: Callable[..., Any], *args: Any) -> Any:
    """``read(principal, *args)`` on the console's database thread; None, which a reader answers
    for what the signed-in person may not see (another store's member), is a 404."""
    found = await console_of(request).db.run(read, request.scope["principal"], *args)
    if found is None:
        raise NotFound()
    return found


async def principal(request: Request) -> Principal | None:
    if "principal" in request.scope:
        return request.scope["principal"]
    console = console_of(request)
    found: Principal | None = None
    authorization = request.headers.get("authorization", "")
    if authorization:
        # A bearer token is the API's way in, and only the API's: a page never accepts one.
        scheme, _, token = authorization.partition(" ")
        if scheme == "Bearer" and token and request.url.path.startswith("/api/"):
            found = await console.db.run(accounts.token_principal, token.strip())
    else:
        sid = request.session.get("sid")
        if isinstance(sid, str):
            found = await console.db.run(accounts.session_principal, sid)
            if found is None:
                request.session.clear()
    request.scope["principal"] = found
    return found


def translator(request: Request) -> Translator:
    """The language of a page or an API answer: the one the pages were switched to (the
    language cookie a browser carries), else the request's ``Accept-Language`` (a browser's
    or a token caller's), else zh-CN."""
    chosen = request.cookies.get(LANG_COOKIE)
    return Translator(chosen if chosen in LANGUAGES
                      else pick(accepted(request.headers.get("accept-language"))))


def api_refused(request: Request, status: int, code: str,
                message: str | Callable[[Translator], str], *,
                headers: dict[str, str] | None = None, **fields: Any) -> JSONResponse:
    """An API call refused: ``error``, the stable code a program reads (unchanged across
    languages and releases), ``message``, the words in the request's language
    (:func:`translator`; ``message`` a catalogue key or a function of the translator),
    and the route's own ``fields`` (``field``, ``detail``: the service's English words)."""
    t = translator(request)
    words = t(message) if isinstance(message, str) else message(t)
    return JSONResponse({"error": code, "message": words, **fields}, status, headers=headers)


def render(request: Request, template: str, status_code: int = 200,
           **context: Any) -> Response:
    t = translator(request)
    return request.app.state.templates.TemplateResponse(request, template, {
        "t": t, "lang": t.language, "languages": LANGUAGES, "language_names": LANGUAGE_NAMES,
        "who": request.scope.get("principal"),
        "csrftoken": request.scope["csrftoken"](), **context}, status_code=status_code)


def page(permission: str | None = None) -> Callable[[Handler], Handler]:
    """A page: signed in (else the login page), allowed (else 403), found (else 404)."""
    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def wrapped(request: Request) -> Response:
            who = await principal(request)
            if who is None:
                return RedirectResponse(f"/login?next={_local_path(request)}", 303)
            try:
                if permission:
                    who.require(permission)
                return await handler(request)
            except Forbidden:
                return render(request, "error.html", 403, code=403, message="error.forbidden")
            except NotFound:
                return render(request, "error.html", 404, code=404, message="error.not_found")
        return wrapped
    return decorate


def api(permission: str | None = None) -> Callable[[Handler], Handler]:
    """An API route: a valid token or session (else 401), allowed (else 403), found (else 404),
    always JSON."""
    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def wrapped(request: Request) -> Response:
            who = await principal(request)
            if who is None:
                return api_refused(request, 401, "unauthenticated", "apierr.unauthenticated",
                                   headers={"www-authenticate": "Bearer"})
            try:
                if permission:
                    who.require(permission)
                return await handler(request)
            except Forbidden as exc:
                return api_refused(request, 403, "forbidden", lambda t: t(
                    "apierr.forbidden", role=t(f"role.{who.role}")), detail=str(exc))
            except NotFound:
                return api_refused(request, 404, "not found", "apierr.not_found")
        return wrapped
    return decorate


def _local_path(request: Request) -> str:
    from urllib.parse import quote

    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return quote(path, safe="")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/members"
    return target


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        status = exc.status_code
        return api_refused(request, status, exc.detail, lambda t: t.known(
            f"apierr.http.{status}") or t("apierr.http", status=status))
    if await principal(request) is None:
        return RedirectResponse("/login", 303)
    key = "error.not_found" if exc.status_code == 404 else "error.generic"
    return render(request, "error.html", exc.status_code, code=exc.status_code, message=key)


def create_app(console: Console, routes: list[Any]) -> ASGIApp:
    """The whole console as one ASGI app (``routes`` from :mod:`terminal.hq.console.routes`)."""
    secret = console.db.call(accounts.signing_secret)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if console.commander is not None:
            await console.commander.start()
        try:
            yield
        finally:
            if console.commander is not None:
                await console.commander.stop()

    app = Starlette(
        lifespan=lifespan,
        routes=[*routes, Mount("/static", StaticFiles(packages=[("terminal.hq.console",
                                                                 "static")]), name="static")],
        middleware=[Middleware(SessionMiddleware, secret_key=secret,
                               session_cookie=SESSION_COOKIE, max_age=12 * 3600,
                               same_site="strict", https_only=console.secure_cookies)],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.console = console
    app.state.templates = Jinja2Templates(directory=str(PACKAGE.joinpath("templates")))
    app.state.templates.env.globals.update(shown=shown, printer_ok=printer_ok)
    protected = asgi_csrf(app, signing_secret=secret, cookie_secure=console.secure_cookies,
                          cookie_samesite="Strict", always_protect={"/login"})
    return SecurityHeaders(protected)
