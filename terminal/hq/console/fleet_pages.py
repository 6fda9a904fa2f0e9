"""The fleet's pages and API: every terminal (live-refreshed), one terminal, and commands."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from terminal.hq.console.commands import PERSON_COMMANDS, CommandError
from terminal.hq.console.fleet import PER_PAGE, FleetView
from terminal.hq.console.pages import is_fragment
from terminal.hq.console.release_pages import latest_rollout
from terminal.hq.console.web import (
    NotFound,
    api,
    api_refused,
    console_of,
    page,
    render,
    translator,
)
from terminal.protocol.topics import TopicError, check_id


async def _terminal(request: Request) -> dict | None:
    console = console_of(request)
    store, terminal = request.path_params["store"], request.path_params["terminal"]
    return await console.db.run(console.fleet.terminal, request.scope["principal"], store,
                                terminal)


def _view(request: Request, per_page: int) -> FleetView:
    params = request.query_params
    try:
        page_no = max(0, int(params.get("page", "0")))
    except ValueError:
        page_no = 0
    return FleetView(store=params.get("store", "").strip(), alerting=params.get("alerts") == "1",
                     page=page_no, per_page=per_page)


@page("fleet.read")
async def fleet(request: Request) -> Response:
    console = console_of(request)
    view = _view(request, PER_PAGE)
    who = request.scope["principal"]
    data = await console.db.run(console.fleet.terminals, who, view)
    rollout = await console.db.run(latest_rollout, console.fleet.zone, who)
    template = "fleet/_table.html" if is_fragment(request) else "fleet/index.html"
    pages = max(1, -(-data["matching"] // PER_PAGE))
    return render(request, template, fleet=data, rows=data["terminals"], view=view,
                  pages=pages, can_command=console.commander is not None, release=rollout)


@page("fleet.read")
async def terminal_page(request: Request) -> Response:
    data = await _terminal(request)
    if data is None:
        raise NotFound()
    console = console_of(request)
    return render(request, "fleet/terminal.html", term=data, commands=PERSON_COMMANDS,
                  can_command=console.commander is not None,
                  sent=request.query_params.get("sent"))


async def _send(request: Request) -> str | None:
    """Send the command of the path for the principal: its id, or None when the terminal is
    not found (or outside the principal's stores)."""
    console = console_of(request)
    who = request.scope["principal"]
    name = request.path_params["name"]
    if name not in PERSON_COMMANDS:
        raise NotFound()
    try:
        check_id(request.path_params["store"], "store")
        check_id(request.path_params["terminal"], "terminal")
    except TopicError:
        raise NotFound() from None
    if await _terminal(request) is None:
        return None
    if console.commander is None:
        raise CommandError("this console has no broker (start it with --host, --ca, --cert, "
                           "--key)", "no_broker")
    return await console.commander.send(who, request.path_params["store"],
                                        request.path_params["terminal"], name)


@page("fleet.command")
async def command(request: Request) -> Response:
    try:
        sent = await _send(request)
    except CommandError as exc:
        data = await _terminal(request)
        if data is None:
            raise NotFound() from None
        console = console_of(request)
        return render(request, "fleet/terminal.html", 503, term=data, commands=PERSON_COMMANDS,
                      can_command=console.commander is not None,
                      error=translator(request)(f"command.error.{exc.reason}"))
    if sent is None:
        raise NotFound()
    return RedirectResponse(f"/fleet/{request.path_params['store']}/"
                            f"{request.path_params['terminal']}?sent={request.path_params['name']}",
                            303)


@api("fleet.read")
async def api_fleet(request: Request) -> Response:
    """Every terminal the caller may see (``?store=``, ``?alerts=1`` filter them), with the
    fleet's counts."""
    console = console_of(request)
    return JSONResponse(await console.db.run(console.fleet.terminals,
                                             request.scope["principal"], _view(request, 0)))


@api("fleet.read")
async def api_terminal(request: Request) -> Response:
    data = await _terminal(request)
    if data is None:
        raise NotFound()
    return JSONResponse(data)


@api("fleet.command")
async def api_command(request: Request) -> Response:
    try:
        sent = await _send(request)
    except CommandError as exc:
        return api_refused(request, 503, "unavailable", f"command.error.{exc.reason}",
                           detail=str(exc))
    if sent is None:
        raise NotFound()
    return JSONResponse({"id": sent, "state": "sent"}, 202)


ROUTES = [
    Route("/fleet", fleet),
    Route("/fleet/{store}/{terminal}", terminal_page),
    Route("/fleet/{store}/{terminal}/cmd/{name}", command, methods=["POST"]),
    Route("/api/v1/fleet", api_fleet),
    Route("/api/v1/fleet/{store}/{terminal}", api_terminal),
    Route("/api/v1/fleet/{store}/{terminal}/cmd/{name}", api_command, methods=["POST"]),
]
