"""The database's backtest reads and replays a span of members at a time (and on PostgreSQL
over worker processes sharing one snapshot): any cut of the members gives exactly the figures
of the window read and replayed whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from terminal.hq.database import open_hq_database
from terminal.hq.models import HQ_MODELS
from terminal.hq.rules_studio import stream
from terminal.hq.rules_studio.backtest import backtest
from terminal.hq.rules_studio.history import Span, load_history
from terminal.loyalty.store.models import MODELS
from tests.hq.test_postgres_collector import fresh_database
from tests.rules_studio.chain import HandChain
from tests.rules_studio.test_backtest import IN_FORCE, TRIPLE_EARN, rules

CHEAP_SILVER = rules(("qualify_spend_fen = 100000 ", "qualify_spend_fen = 20000 "))


def _chain(chain: HandChain) -> None:
    """Six members at two stores: registrations before and in the window, sales before it
    refunded in it, redemptions, a sale without a member and its refund."""
    people = ["wang", "li", "zhao", "qian", "sun", "zhou"]
    home = {who: "S001" if n % 2 else "S002" for n, who in enumerate(people)}
    for number, who in enumerate(people):
        chain.register(home[who], who, f"2026-10-0{1 + number}T09:00")
    earlier = [chain.sale(home[who], who, f"2026-10-{10 + n:02d}T10:00",
                          [("F1", 2, 20000 + 700 * n, "fresh"), ("D1", 3, 1200, "drinks")])
               for n, who in enumerate(people)]
    chain.refund(home["li"], earlier[1], "2026-10-20T10:00", [("D1", 1)])
    for n, who in enumerate(people):
        chain.sale(home[who], who, f"2026-11-{12 + n:02d}T11:00",
                   [("H1", 1, 20000 + 3000 * n, "household")], redeem=500 if n % 3 == 0 else 0)
    nobody = chain.sale("S001", None, "2026-11-15T12:00", [("D1", 2, 1500, "drinks")])
    chain.refund("S001", nobody, "2026-11-16T12:00")
    for n, sale in list(enumerate(earlier))[::2]:
        chain.refund(home[people[n]], sale, "2026-11-20T10:00", [("F1", 1)])
    chain.sale("S002", "li", "2026-11-25T10:00", [("F1", 1, 9000, "fresh")])


def _whole(url: str, candidate: Any) -> dict[str, Any]:
    db = open_hq_database(url, migrate=False)
    try:
        with db.bind_ctx(MODELS + HQ_MODELS):
            history = load_history(30, IN_FORCE.zone)
    finally:
        db.close()
    return backtest(history, IN_FORCE, candidate, workers=1)


def test_spans_of_members_give_the_whole_windows_figures(tmp_path: Path) -> None:
    chain = HandChain(tmp_path, IN_FORCE)
    try:
        _chain(chain)
    finally:
        chain.close()
    for candidate in (TRIPLE_EARN, CHEAP_SILVER):
        whole = _whole(chain.url, candidate)
        assert whole["check"]["matches"], whole["check"]
        assert whole["in_force"]["points_reversed"] and whole["in_force"]["points_redeemed"]
        assert whole["most_affected"] and whole["window"]["events"] > 10
        for chunk in (1, 2, 4, 100):
            assert stream.run(chain.url, IN_FORCE, candidate, 30, chunk=chunk) == whole, chunk


def test_spans_cut_the_members_in_id_order(tmp_path: Path) -> None:
    chain = HandChain(tmp_path, IN_FORCE)
    try:
        _chain(chain)
        db = open_hq_database(chain.url, migrate=False)
        with db.bind_ctx(MODELS + HQ_MODELS):
            cut = stream.spans(4)
        db.close()
    finally:
        chain.close()
    assert [(span.low is None, span.high is None, span.nobody) for span in cut] == [
        (True, False, True), (False, True, False)]
    assert cut[0].high == cut[1].low
    assert stream.spans.__doc__ and Span().whole


def test_worker_processes_on_postgresql_share_one_snapshot_and_the_figures(
        postgres, tmp_path: Path) -> None:
    url = fresh_database(postgres)
    chain = HandChain(tmp_path, IN_FORCE, url)
    try:
        _chain(chain)
    finally:
        chain.close()
    whole = _whole(url, TRIPLE_EARN)
    assert whole["check"]["matches"], whole["check"]
    for workers, chunk in ((1, 2), (2, 1), (3, 2)):
        seen: list[tuple[str, int, int]] = []
        assert stream.run(url, IN_FORCE, TRIPLE_EARN, 30,
                          progress=lambda *told, into=seen: into.append(told),
                          workers=workers, chunk=chunk, min_events=0) == whole
        assert seen[-1] == ("replaying", whole["window"]["events"], whole["window"]["events"])
