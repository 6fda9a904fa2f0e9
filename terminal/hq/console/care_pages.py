"""Member care's pages (issue 13): campaigns (create from a segment, preview the count, send,
each message's delivery, refreshed while the sender works) and a member's consent.

"Send" queues the campaign: its messages are minted in HQ's outbox and its bonus granted; the
care sender (``posterm-hq campaign send``, with the channels' config) delivers them and this
page shows each one's state. Marketing runs campaigns (``care.manage``); member service records
consent (``care.consent``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from terminal.hq.care.campaigns import CampaignError
from terminal.hq.care.consent import ConsentError
from terminal.hq.care.models import CHANNELS
from terminal.hq.care.segments import SEGMENTS
from terminal.hq.care.service import Care
from terminal.hq.console.pages import is_fragment
from terminal.hq.console.web import (
    NotFound,
    console_of,
    page,
    render,
    translator,
    visible_or_404,
)
from terminal.hq.member_ops.errors import MemberOpError


def care_of(request: Request) -> Care:
    console = console_of(request)
    ops = console.operator.ops
    return Care(ops.db, ops.rules, ops.card_key, ops=ops, config=console.care_config)


async def _call(request: Request, method: str, *args: object) -> object:
    """``Care.method(*args)`` on the console's database thread (it binds and commits itself)."""
    return await console_of(request).db.run_own(getattr(care_of(request), method), *args)


def _campaign_id(request: Request) -> int:
    try:
        return int(request.path_params["campaign"])
    except ValueError:
        raise NotFound() from None


def _said(request: Request, exc: Exception) -> str:
    """Why a campaign or consent change was refused, in the page's language."""
    t = translator(request)
    if isinstance(exc, MemberOpError):
        return t.refusal(exc.code, exc.field, str(exc))
    return t.care_error(exc)


@page("care.read")
async def index(request: Request) -> Response:
    return await _index(request)


async def _index(request: Request, error: str | None = None, status_code: int = 200,
                 form: dict[str, str] | None = None) -> Response:
    rows = await _call(request, "campaigns")
    stores = await _call(request, "stores")
    return render(request, "care/index.html", status_code, nav="care", campaigns=rows,
                  segments=SEGMENTS, channels=CHANNELS, stores=stores, error=error,
                  form=form or {})


@page("care.manage")
async def create(request: Request) -> Response:
    form = {key: str(value) for key, value in (await request.form()).items()}
    try:
        days = int(form["days"]) if form.get("days", "").strip() else None
        bonus = int(form.get("bonus", "").strip() or "0")
    except ValueError:
        return await _index(request, translator(request)("care.error.not_whole"), 422, form)
    try:
        campaign = await _call(request, "create", request.scope["principal"],
                               form.get("name", ""), form.get("segment", ""), days,
                               form.get("channel", ""), bonus,
                               form.get("store", "").strip() or None)
    except CampaignError as exc:
        return await _index(request, _said(request, exc), 422, form)
    return RedirectResponse(f"/care/campaigns/{campaign}", 303)


@page("care.read")
async def campaign_page(request: Request) -> Response:
    return await _campaign_page(request)


async def _campaign_page(request: Request, error: str | None = None,
                         status_code: int = 200) -> Response:
    campaign = _campaign_id(request)
    try:
        data = await _call(request, "status", campaign)
        preview = await _call(request, "preview", campaign, request.scope["principal"]) \
            if data["state"] == "draft" and not is_fragment(request) else None
    except CampaignError:
        raise NotFound() from None
    template = "care/_messages.html" if is_fragment(request) else "care/campaign.html"
    return render(request, template, status_code, nav="care", c=data, preview=preview,
                  error=error)


@page("care.manage")
async def send(request: Request) -> Response:
    campaign = _campaign_id(request)
    try:
        await _call(request, "queue", request.scope["principal"], campaign)
    except (CampaignError, MemberOpError) as exc:
        return await _campaign_page(request, _said(request, exc), 422)
    return RedirectResponse(f"/care/campaigns/{campaign}", 303)


@page("care.consent")
async def consent_page(request: Request) -> Response:
    return await _consent_page(request)


async def _consent_page(request: Request, error: str | None = None,
                        status_code: int = 200) -> Response:
    member_id = request.path_params["member"]
    member, _ = await visible_or_404(request, console_of(request).reader.visible, member_id)
    state = await _call(request, "consent_state", member_id)
    history = await _call(request, "consent_history", member_id)
    return render(request, "care/consent.html", status_code, nav="members", m=member,
                  consent=state, history=history, channels=CHANNELS, error=error,
                  done=request.query_params.get("done"))


@page("care.consent")
async def consent_change(request: Request) -> Response:
    member_id = request.path_params["member"]
    await visible_or_404(request, console_of(request).reader.visible, member_id)
    form = await request.form()
    channel, answer = str(form.get("channel", "")), str(form.get("answer", ""))
    try:
        await _call(request, "consent", request.scope["principal"], member_id, channel,
                    answer == "yes", str(form.get("address", "")).strip() or None)
    except ConsentError as exc:
        return await _consent_page(request, _said(request, exc), 422)
    return RedirectResponse(f"/care/consent/{member_id}?done={channel}", 303)


ROUTES = [
    Route("/care", index),
    Route("/care/campaigns", create, methods=["POST"]),
    Route("/care/campaigns/{campaign}", campaign_page),
    Route("/care/campaigns/{campaign}/send", send, methods=["POST"]),
    Route("/care/consent/{member}", consent_page),
    Route("/care/consent/{member}", consent_change, methods=["POST"]),
]
