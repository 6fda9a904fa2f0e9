"""The rules studio's pages (issue 17): edit a candidate rule set, see the engine's errors on
their lines, the lint warnings and the diff against the rules in force, and backtest it on the
chain's history in a background job. The ``marketing`` role authors (``rules.author``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from terminal.hq.console import audit
from terminal.hq.console.i18n import Translator
from terminal.hq.console.pages import is_fragment
from terminal.hq.console.web import (
    NotFound,
    api,
    api_refused,
    console_of,
    page,
    render,
    translator,
)
from terminal.hq.rules_studio import releases
from terminal.hq.rules_studio.cli import finding_json
from terminal.hq.rules_studio.diff import diff
from terminal.hq.rules_studio.jobs import Job, Jobs, stored
from terminal.hq.rules_studio.lint import lint
from terminal.hq.rules_studio.pushing import Keys
from terminal.hq.rules_studio.source import Problem
from terminal.hq.rules_studio.validate import Validation, validate

MAX_TEXT = 200_000  # characters of TOML a form may send
MAX_DAYS = 3660


@dataclass
class Studio:
    """The rules in force (the text the console was started with, until the studio pushes
    rules to the chain), the backtests run, and for staging and pushing: HQ's signing key, the
    catalogue and settings every bundle carries, and the store staged first."""

    in_force_text: str
    jobs: Jobs
    keys: Keys | None = None  # None: the studio checks and backtests, but cannot push
    catalogue: list[Any] | None = None  # None: the newest release's (releases.carried)
    settings: dict[str, Any] | None = None
    stage_store: str = "S001"
    in_force: Validation = field(init=False)

    def __post_init__(self) -> None:
        self.in_force = validate(self.in_force_text)
        if not self.in_force.ok:
            raise ValueError(f"the rules in force are refused: {self.in_force.problems[0]}")

    async def current(self, request: Request) -> Validation:
        """The rules in force now: the newest pushed to the chain, else the console's file."""
        text = await console_of(request).db.run(releases.in_force_text, self.in_force_text)
        return self.in_force if text == self.in_force_text else validate(text)


def studio_of(request: Request) -> Studio:
    studio = console_of(request).studio
    if studio is None:
        raise NotFound()
    return studio


def review(in_force: Validation, text: str, lang: str) -> dict[str, Any]:
    """The candidate checked: its problem, or its warnings and its diff per scope."""
    candidate = validate(text)
    if not candidate.ok:
        return {"problem": candidate.problems[0], "warnings": [], "changes": None}
    assert candidate.rules is not None and in_force.rules is not None
    assert candidate.mapping is not None and in_force.mapping is not None
    warnings = [finding_json(f, candidate)
                for f in lint(in_force.rules, candidate.rules, datetime.now(UTC))]
    return {"problem": None, "warnings": warnings, "lang": "zh" if lang == "zh-CN" else "en",
            "changes": {"chain": diff(in_force.mapping, candidate.mapping)}}


async def _form(request: Request) -> tuple[str, int]:
    form = await request.form()
    text = str(form.get("rules", ""))[:MAX_TEXT]
    try:
        days = min(MAX_DAYS, max(1, int(str(form.get("days", "30")))))
    except ValueError:
        days = 30
    return text, days


@page("rules.author")
async def editor(request: Request) -> Response:
    studio = studio_of(request)
    text = await console_of(request).db.run(releases.in_force_text, studio.in_force_text)
    return render(request, "rules/index.html", nav="rules", text=text, days=30, checked=None)


@page("rules.author")
async def check(request: Request) -> Response:
    studio = studio_of(request)
    text, days = await _form(request)
    result = review(await studio.current(request), text, translator(request).language)
    return render(request, "rules/index.html", 200 if result["problem"] is None else 422,
                  nav="rules", text=text, days=days, checked=result)


@page("rules.author")
async def start_backtest(request: Request) -> Response:
    studio = studio_of(request)
    text, days = await _form(request)
    candidate = validate(text)
    in_force = await studio.current(request)
    if not candidate.ok:
        return render(request, "rules/index.html", 422, nav="rules", text=text, days=days,
                      checked=review(in_force, text, translator(request).language))
    assert candidate.rules is not None and in_force.rules is not None
    who = request.scope["principal"]
    job = studio.jobs.start(who.name, in_force.rules, candidate.rules, days, text)
    await console_of(request).db.run(audit.record, who, "rules.backtest", job.id, "",
                                     f"{days} days")
    return RedirectResponse(f"/rules/backtests/{job.id}", 303)


@page("rules.author")
async def backtest_page(request: Request) -> Response:
    job = await job_of(request, request.path_params["job"])
    if job is None:
        raise NotFound()
    template = "rules/_job.html" if is_fragment(request) else "rules/job.html"
    return render(request, template, nav="rules", job=job, can_stage=can_push(request),
                  stage_store=studio_of(request).stage_store)


async def job_of(request: Request, job_id: str) -> Job | None:
    """A backtest this console runs, else as the database keeps it."""
    found = studio_of(request).jobs.get(job_id)
    return found or await console_of(request).db.run(stored, job_id)


def can_push(request: Request) -> bool:
    """The studio holds a signing key and the console a broker."""
    console = console_of(request)
    return console.studio is not None and console.studio.keys is not None \
        and console.commander is not None


def problem_json(problem: Problem, t: Translator) -> dict[str, Any]:
    """A refused rules text's problem for the API: where, its code and values, the engine's
    English (``problem``) and the words in the caller's language (``message``)."""
    return {**problem.located(), "problem": problem.message, "message": t.rules_problem(problem)}


@api("rules.author")
async def api_check(request: Request) -> Response:
    """POST a candidate rules text (UTF-8 TOML) as the body: its warnings and its diff
    against the rules in force, or 422 with why the engine refuses it."""
    studio = studio_of(request)
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        return api_refused(request, 400, "invalid", "rules.err.not_utf8",
                           detail="the body is not UTF-8 text")
    if len(text) > MAX_TEXT:
        return api_refused(request, 413, "invalid", lambda t: t("rules.err.too_long",
                                                                n=MAX_TEXT),
                           detail=f"the rules text is over {MAX_TEXT} characters")
    result = review(await studio.current(request), text, translator(request).language)
    problem = result["problem"]
    if problem is not None:
        return api_refused(request, 422, "rules_refused", lambda t: t.rules_problem(problem),
                           problems=[problem_json(problem, translator(request))])
    return JSONResponse({"ok": True, "warnings": result["warnings"],
                         "changes": result["changes"]})


ROUTES = [
    Route("/rules", editor),
    Route("/rules/check", check, methods=["POST"]),
    Route("/rules/backtests", start_backtest, methods=["POST"]),
    Route("/rules/backtests/{job}", backtest_page),
    Route("/api/v1/rules/check", api_check, methods=["POST"]),
]
