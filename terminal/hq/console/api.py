"""``/api/v1``: every page's data as JSON, with the same roles, scoping and audit as the pages
(the same functions answer both). Authenticated by a per-user bearer token
(``posterm-hq user token NAME``) or the browser's session. Described by ``openapi.json``."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from terminal.hq.console.members import QueryError
from terminal.hq.console.operations import OPERATIONS
from terminal.hq.console.pages import _int, audit_query, search_audited
from terminal.hq.console.web import (
    NotFound,
    api,
    api_refused,
    console_of,
    translator,
    visible_or_404,
)
from terminal.hq.member_ops.errors import ImportRejected, MemberOpError

OPENAPI = json.loads(resources.files("terminal.hq.console").joinpath("openapi.json")
                     .read_text("utf-8"))


async def _json_object(request: Request) -> dict[str, Any] | None:
    """The request's body if it is a JSON object; None if it is not JSON or not an object."""
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _not_an_object(request: Request) -> Response:
    return api_refused(request, 400, "invalid", "apierr.not_json_object",
                       detail="the body is a JSON object")


def _op_refused(request: Request, exc: MemberOpError, status: int) -> Response:
    """A member operation refused: its code and field, the service's words (``detail``) and
    the refusal in the request's language (``message``)."""
    return api_refused(request, status, exc.code, lambda t: t.refusal(
        exc.code, exc.field, str(exc)), detail=str(exc), field=exc.field)


@api()
async def me(request: Request) -> Response:
    who = request.scope["principal"]
    return JSONResponse({"name": who.name, "role": who.role, "stores": list(who.stores)})


@api()
async def openapi(request: Request) -> Response:
    return JSONResponse(OPENAPI)


@api("members.read")
async def members(request: Request) -> Response:
    console = console_of(request)
    try:
        rows = await console.db.run(console.reader.search, request.scope["principal"],
                                    request.query_params.get("q", ""))
    except QueryError as exc:
        return api_refused(request, 400, "bad query", f"search.error.{exc.kind}",
                           detail=str(exc))
    return JSONResponse({"members": rows})


@api("members.read")
async def member(request: Request) -> Response:
    console = console_of(request)
    return JSONResponse(await visible_or_404(request, console.reader.page,
                                             request.path_params["member_id"],
                                             _int(request.query_params.get("before"))))


@api("members.export")
async def statement_csv(request: Request) -> Response:
    console = console_of(request)
    text = await visible_or_404(request, console.reader.statement_csv,
                                request.path_params["member_id"])
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8")


@api("members.read")
async def operate(request: Request) -> Response:
    """POST a JSON object: ``reason`` and the operation's fields (``points`` for adjust)."""
    console = console_of(request)
    name = request.path_params["operation"]
    if name not in OPERATIONS:
        raise NotFound()
    body = await _json_object(request)
    if body is None:
        return _not_an_object(request)
    fields = {key: str(body[key]) for key in OPERATIONS[name].fields
              if body.get(key) is not None}
    try:
        result = await console.db.run_own(console.operator.perform, request.scope["principal"],
                                          request.path_params["member_id"], name,
                                          str(body.get("reason", "")), fields)
    except MemberOpError as exc:
        return _op_refused(request, exc, 409 if exc.code in (
            "wrong_state", "card_retired", "ledger_refused") else 400)
    if result is None:
        raise NotFound()
    return JSONResponse({"seq": result.seq, "kind": result.kind, "member": result.member,
                         "card_last4": result.card_last4, "state": result.state,
                         "balance": result.balance, "tier": result.tier,
                         "detail": result.detail})


@api("members.move")
async def move_home(request: Request) -> Response:
    """POST ``{"store": "S002", "reason": ...}``: the member's new home store."""
    console = console_of(request)
    body = await _json_object(request)
    if body is None:
        return _not_an_object(request)
    try:
        moved = await console.db.run_own(console.operator.move_home, request.scope["principal"],
                                         request.path_params["member_id"],
                                         str(body.get("store", "")), str(body.get("reason", "")))
    except MemberOpError as exc:
        return _op_refused(request, exc, 400)
    if not moved:
        raise NotFound()
    return JSONResponse({"home_store": body["store"]})


@api("members.operate")
async def import_members(request: Request) -> Response:
    """POST the CSV itself (text/csv, UTF-8) with ``store`` and ``reason`` in the query."""
    console = console_of(request)
    try:
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError:
        return api_refused(request, 400, "invalid", "import.err.file.not_utf8",
                           detail="the body is not UTF-8 text", field="file")
    try:
        result = await console.db.run_own(
            console.operator.import_members, request.scope["principal"], text,
            request.query_params.get("reason", ""), request.query_params.get("store", ""))
    except ImportRejected as exc:
        problems = exc.problems
        return api_refused(request, 400, exc.code, lambda t: t(
            "import.problems", n=len(problems)), problems=[
            {"line": p.line, "field": p.field, "code": p.code, "problem": p.message,
             "message": translator(request).import_problem(p)} for p in problems])
    except MemberOpError as exc:
        return _op_refused(request, exc, 400)
    return JSONResponse({"members": result.members, "points": result.points})


@api("audit.read")
async def audit_log(request: Request) -> Response:
    return JSONResponse({"entries": await console_of(request).db.run(
        search_audited, request.scope["principal"], audit_query(request))})


ROUTES = [
    Route("/api/v1/me", me),
    Route("/api/v1/openapi.json", openapi),
    Route("/api/v1/members", members),
    Route("/api/v1/members/import", import_members, methods=["POST"]),
    Route("/api/v1/members/{member_id}", member),
    Route("/api/v1/members/{member_id}/statement.csv", statement_csv),
    Route("/api/v1/members/{member_id}/op/{operation}", operate, methods=["POST"]),
    Route("/api/v1/members/{member_id}/home", move_home, methods=["POST"]),
    Route("/api/v1/audit", audit_log),
]
