"""The backtest reads HQ's production database, PostgreSQL, as it reads SQLite."""

from __future__ import annotations

from pathlib import Path

from terminal.hq.rules_studio.jobs import run_backtest
from tests.hq.test_postgres_collector import fresh_database
from tests.rules_studio.chain import HandChain
from tests.rules_studio.test_backtest import IN_FORCE, TRIPLE_EARN, shop


def test_a_backtest_on_postgresql_gives_the_sqlite_figures(postgres, tmp_path: Path) -> None:
    figures = []
    for url in (fresh_database(postgres), None):
        directory = tmp_path / ("pg" if url else "sqlite")
        directory.mkdir()
        chain = HandChain(directory, IN_FORCE, url)
        try:
            shop(chain)
            chain.sale("S001", "wang", "2026-11-10T10:00", [("F1", 2, 15000, "fresh")])
            chain.sale("S001", "wang", "2026-11-12T10:00", [("D1", 3, 4590, "drinks")],
                       redeem=500)
            result = run_backtest(chain.url, IN_FORCE, TRIPLE_EARN, 30)
        finally:
            chain.close()
        assert result["check"]["matches"], result["check"]
        del result["most_affected"]  # member ids are minted afresh in each database
        figures.append(result)
    assert figures[0]["candidate"] == figures[1]["candidate"]
    assert figures[0]["in_force"] == figures[1]["in_force"]
    assert figures[0]["candidate"]["points_redeemed"] == 500
