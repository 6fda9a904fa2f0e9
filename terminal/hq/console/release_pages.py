"""The rules studio's releases (issue 17): stage a candidate to one store, watch its tills apply
or refuse it, approve the chain push, read the history, roll back.

Staging is ``rules.author`` (marketing); approving, rolling back and the two-person policy are
``rules.approve`` (admin). Each step signs with the studio's key and publishes through the
console's broker connection (:mod:`terminal.hq.rules_studio.pushing`); a refused step shows the
reason on the page it came from and changes nothing."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from terminal.hq.console.pages import is_fragment
from terminal.hq.console.rules_pages import can_push, job_of, studio_of
from terminal.hq.console.web import NotFound, api, console_of, page, render
from terminal.hq.rules_studio import releases, rollout
from terminal.hq.rules_studio.pushing import push

PUSH_TIMEOUT = 10.0


async def _push(request: Request, step: Any, *args: Any) -> Response:
    """Run a release step and publish it; the release's page, or the refusal."""
    console, studio = console_of(request), studio_of(request)
    if not can_push(request):
        return _refused(request, "rules.cannot_push")
    assert console.commander is not None and studio.keys is not None
    client, topics = console.commander.client, console.commander.topics

    async def publish(found: list[tuple[str, bytes]]) -> None:
        async with asyncio.timeout(PUSH_TIMEOUT):
            for topic, message in found:
                await client.publish(topic, message, qos=1, retain=True)
    try:
        row = await push(console.db, studio.keys, topics, publish, step,
                         request.scope["principal"], *args)
    except releases.ReleaseError as exc:
        return _refused(request, "rules.refused", str(exc))
    return RedirectResponse(f"/rules/releases/{row.version}", 303)


def _refused(request: Request, message: str, detail: str = "") -> Response:
    return render(request, "rules/refused.html", 409, nav="rules", message=message,
                  detail=detail)


@page("rules.author")
async def stage(request: Request) -> Response:
    studio = studio_of(request)
    form = await request.form()
    job = await job_of(request, str(form.get("job", "")))
    if job is None or not job.text:
        raise NotFound()
    backtest = releases.backtest_summary(job.result, job.days) if job.result else None
    content = await console_of(request).db.run(releases.carried, studio.catalogue,
                                                studio.settings, job.text)
    step = functools.partial(releases.stage, backtest=backtest)
    return await _push(request, step, content, studio.stage_store)


def _version(request: Request) -> int:
    try:
        return int(request.path_params["version"])
    except ValueError:
        raise NotFound() from None


@page("rules.approve")
async def approve(request: Request) -> Response:
    studio_of(request)
    return await _push(request, releases.approve, _version(request))


@page("rules.approve")
async def rollback(request: Request) -> Response:
    studio_of(request)
    return await _push(request, releases.rollback, _version(request))


@page("rules.approve")
async def policy(request: Request) -> Response:
    studio_of(request)
    form = await request.form()
    await console_of(request).db.run(releases.set_two_person, request.scope["principal"],
                                     form.get("two_person") == "on")
    return RedirectResponse("/rules/releases", 303)


async def _history(request: Request) -> tuple[list[dict[str, Any]], bool]:
    studio_of(request)
    console = console_of(request)
    return await console.db.run(
        lambda: (rollout.history(console.fleet.zone), releases.policy_two_person()))


@page("rules.author")
async def history(request: Request) -> Response:
    rows, two_person = await _history(request)
    return render(request, "rules/releases.html", nav="rules", releases=rows,
                  two_person=two_person)


def _with_terminals(row: Any, zone: Any, stores: tuple[str, ...] | None) -> dict[str, Any]:
    data = rollout.describe(row, zone)
    data["terminals"] = rollout.terminals(row, stores)
    data["counts"] = rollout.counts(data["terminals"])
    return data


def _release(version: int, zone: Any) -> dict[str, Any] | None:
    try:
        row = releases.get(version)
    except releases.ReleaseError:
        return None
    return {**_with_terminals(row, zone, None), "two_person": releases.policy_two_person()}


async def _found(request: Request) -> dict[str, Any]:
    studio_of(request)
    console = console_of(request)
    data = await console.db.run(_release, _version(request), console.fleet.zone)
    if data is None:
        raise NotFound()
    return data


@page("rules.author")
async def release(request: Request) -> Response:
    data = await _found(request)
    if is_fragment(request):
        return render(request, "rules/_rollout.html", release=data)
    return render(request, "rules/release.html", nav="rules", release=data,
                  can_push=can_push(request))


def latest_rollout(zone: Any, who: Any) -> dict[str, Any] | None:
    """The newest release and its terminals, for the fleet page (``who``'s stores only)."""
    row = rollout.latest()
    return None if row is None else _with_terminals(row, zone, None if who.chain_wide
                                                    else who.stores)


@api("rules.author")
async def api_history(request: Request) -> Response:
    rows, two_person = await _history(request)
    return JSONResponse({"releases": rows, "two_person": two_person})


@api("rules.author")
async def api_release(request: Request) -> Response:
    return JSONResponse(await _found(request))


ROUTES = [
    Route("/rules/stage", stage, methods=["POST"]),
    Route("/rules/releases", history),
    Route("/rules/policy", policy, methods=["POST"]),
    Route("/rules/releases/{version}", release),
    Route("/rules/releases/{version}/approve", approve, methods=["POST"]),
    Route("/rules/releases/{version}/rollback", rollback, methods=["POST"]),
    Route("/api/v1/rules/releases", api_history),
    Route("/api/v1/rules/releases/{version}", api_release),
]
