"""The rules studio's pages over HTTP: who may author, the engine's errors on their line, lint
and diff, a backtest job run to its end (and kept), the release history's JSON API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from terminal.hq.console import accounts
from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.roles import Principal
from terminal.hq.console.rules_pages import Studio
from terminal.hq.member_ops.publish import Signer
from terminal.hq.rules_studio import releases
from terminal.hq.rules_studio.jobs import Job
from terminal.hq.rules_studio.models import BacktestJob
from terminal.protocol import bundle
from tests.console.rules_studio import IN_FORCE_TEXT, studio_app, studio_of
from tests.console.test_http import BASE, csrf, login

TRIPLE = IN_FORCE_TEXT.replace("points_per_yuan = 1 ", "points_per_yuan = 3 ")


def client(chain, studio: Studio | None = None) -> TestClient:
    return TestClient(studio_app(chain, studio or studio_of(chain)), base_url=BASE,
                      follow_redirects=False)


@pytest.mark.parametrize(("name", "allowed"), [("mkt", True), ("admin", True), ("svc", False),
                                               ("aud", False), ("mgr1", False)])
def test_marketing_and_admin_author_the_rules(chain, name: str, allowed: bool) -> None:
    with client(chain) as c:
        login(c, name)
        page = c.get("/rules")
        assert page.status_code == (200 if allowed else 403)
        assert ('href="/rules"' in c.get("/members").text) is allowed
        if allowed:
            assert "Sunrise Mart Rewards" in page.text
        else:
            token = csrf(c, "/members")
            assert c.post("/rules/backtests", data={"rules": TRIPLE, "days": "30",
                                                    "csrftoken": token}).status_code == 403


def test_an_error_names_its_line_and_key_and_keeps_the_text(chain) -> None:
    with client(chain) as c:
        login(c, "mkt")
        token = csrf(c, "/rules")
        bad = IN_FORCE_TEXT.replace('rounding = "floor"', 'rounding = "sideways"')
        page = c.post("/rules/check", data={"rules": bad, "days": "30", "csrftoken": token})
        assert page.status_code == 422
        line = next(n for n, text in enumerate(bad.splitlines(), 1)
                    if text.startswith("rounding = "))
        problem = re.search(r'id="rules-problem">(.*?)</p>', page.text, re.S).group(1)
        assert f"第 {line} 行" in problem and "earn.rounding" in problem
        assert "sideways" in page.text  # the author's text is given back to fix


def test_a_valid_candidate_shows_its_warnings_and_diff(chain) -> None:
    with client(chain) as c:
        login(c, "mkt")
        token = csrf(c, "/rules")
        page = c.post("/rules/check", data={"rules": TRIPLE, "days": "30", "csrftoken": token})
        assert page.status_code == 200
        assert "每元积分从 1 提高到 3" in page.text
        assert "~ earn.points_per_yuan: 1 -&gt; 3" in page.text


def test_a_backtest_runs_as_a_job_to_its_figures(chain) -> None:
    studio = studio_of(chain)
    with client(chain, studio) as c:
        login(c, "mkt")
        token = csrf(c, "/rules")
        started = c.post("/rules/backtests", data={"rules": TRIPLE, "days": "90",
                                                   "csrftoken": token})
        assert started.status_code == 303
        path = started.headers["location"]
        job_id = path.rsplit("/", 1)[1]
        job = studio.jobs.get(job_id)
        assert job is not None and job.author == "mkt" and job.days == 90
        assert job.ended.wait(120), "the backtest did not end"
        assert job.finished and not job.error, job.error
        page = c.get(path)
        assert "校验通过" in page.text
        assert job.result["candidate"]["points_issued"] > job.result["in_force"]["points_issued"]
        assert c.get("/rules/backtests/nothing").status_code == 404
    # Another console (or this one restarted) holds no thread for it: the table's copy shows.
    with client(chain) as other:
        login(other, "mkt")
        again = other.get(path)
        assert again.status_code == 200 and "校验通过" in again.text
        assert re.findall(r"<td>(\d+)</td>", again.text) == re.findall(r"<td>(\d+)</td>",
                                                                        page.text)


def test_a_running_backtest_says_how_many_events_it_has_replayed(chain) -> None:
    studio = studio_of(chain)
    job = Job("e" * 32, "mkt", 30, TRIPLE, "replaying", done=41_000, total=110_034)
    studio.jobs.jobs[job.id] = job  # as the job's thread leaves it midway
    with client(chain, studio) as c:
        login(c, "mkt")
        page = c.get(f"/rules/backtests/{job.id}", headers={"hx-request": "true"})
        assert "正在重放 41,000 / 110,034 个事件（37%）" in page.text
        assert 'value="37"' in page.text and "hx-trigger" in page.text
        c.get("/lang/en?next=/rules")
        page = c.get(f"/rules/backtests/{job.id}", headers={"hx-request": "true"})
        assert "Replaying 41,000 / 110,034 events (37%)" in page.text


def test_a_job_whose_figures_are_not_in_place_yet_is_still_polled(chain) -> None:
    """The page read a job between its last replayed event and its figures being stored (the
    CI's rare 500 with nothing left polling): it is not finished until its result is there."""
    studio = studio_of(chain)
    job = Job("d" * 32, "mkt", 30, TRIPLE, "done", done=110_034, total=110_034)
    studio.jobs.jobs[job.id] = job
    assert not job.finished
    with client(chain, studio) as c:
        login(c, "mkt")
        for headers in ({}, {"hx-request": "true"}):
            page = c.get(f"/rules/backtests/{job.id}", headers=headers)
            assert page.status_code == 200 and "hx-trigger" in page.text


def test_a_backtest_no_console_runs_any_more_shows_as_interrupted(chain) -> None:
    db = ConsoleDb(chain.url)
    try:
        db.call(lambda: BacktestJob.create(id="f" * 32, author="mkt", days=30, text=TRIPLE,
                                           step="in_force", started_us=1))
    finally:
        db.close()
    with client(chain) as c:
        login(c, "mkt")
        page = c.get("/rules/backtests/" + "f" * 32)
        assert page.status_code == 200 and "interrupted" in page.text
        assert "hx-trigger" not in page.text  # not polled for ever


def test_the_release_history_as_json_for_the_roles_that_author(fresh_chain) -> None:
    root, signing = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    start = datetime.now(UTC)
    signer = Signer(signing, bundle.delegate(root, signing.public_key(), start,
                                             start + timedelta(days=9)).to_wire())
    db = ConsoleDb(fresh_chain.url)
    try:
        staged = db.call(releases.stage, Principal("mkt", "marketing"),
                         releases.Content(TRIPLE, [], {}), "S001", signer)
        db.call(releases.mark_pushed, staged.version)
        tokens = {name: db.call(accounts.issue_token, name).secret for name in ("mkt", "svc")}
    finally:
        db.close()
    with client(fresh_chain) as c:
        def get(path: str, who: str):
            return c.get(path, headers={"authorization": f"Bearer {tokens[who]}"})
        listed = get("/api/v1/rules/releases", "mkt").json()
        assert listed["two_person"] is False
        (one,) = listed["releases"]
        assert (one["version"], one["kind"], one["scopes"], one["author"], one["state"]) == (
            1, "stage", ["store/S001"], "mkt", "pushed")
        shown = get("/api/v1/rules/releases/1", "mkt").json()
        assert shown["content_sha"] == one["content_sha"] and shown["terminals"] == []
        assert get("/api/v1/rules/releases/2", "mkt").status_code == 404
        assert get("/api/v1/rules/releases", "svc").status_code == 403
        # The page shows its expiry in the chain's time, as its other times (the stored ISO
        # text, in UTC, in the tooltip): it showed that text raw until session 15.
        login(c, "mkt")
        page = c.get("/rules/releases/1").text
        local = datetime.fromisoformat(shown["expires_at"]).astimezone(
            ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
        assert shown["expires"] == local
        assert f'id="release-expires" title="{shown["expires_at"]}">{local}</dd>' in page
