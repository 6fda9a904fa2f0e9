"""The report pages' chain: test_analytics's hand-made chain (June to October 2026, two real
tills, HQ applying their events), then November: 王芳 (birthday 15 November) registers at S002
and buys 18 bags of rice (90,000 fen: within 10% of silver's 100,000), a member whose name is a
spreadsheet formula registers at S001 (birthday in November too), and A buys 6 more bags at
S001 and redeems 500 points at S002, most from lots earned at S001 (the settlement matrix's
S001 -> S002 cell); that day S002's till prints an X and a Z report, S001's an X."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from starlette.types import ASGIApp

from terminal.hq.console.app import build as build_console
from terminal.loyalty.operations import Registration
from tests.console.chain import Chain as ConsoleChain
from tests.console.chain import add_user_at, add_users
from tests.hq.test_analytics import KEY, RICE, A, at, built_chain, line
from tests.hq.test_analytics import build as october
from tests.hq.test_day_reports import print_report
from tests.hq.test_points_reports import Recorded

F, G = "8000000006", "8000000007"
FORMULA = '=HYPERLINK("http://evil.example","x")'
PERIOD = {"from": "2026-10-01", "to": "2026-12-01"}  # October and November, Shanghai days
DAY = date(2026, 11, 5)


def named(chain: Recorded, store: str, card: str, name: str, birthday: date, moment) -> None:
    till = chain.tills[store]
    till.call(till.store.register, Registration(card=card, name=name, birthday=birthday,
                                                operator="cashier"), moment)
    till.known.add(card)
    chain._to_hq(till)
    chain.note(moment)


def build(chain: Recorded) -> None:
    october(chain)
    named(chain, "S002", F, "王芳", date(1990, 11, 15), at(11, 2, 2))
    chain.sell("S002", F, at(11, 3, 2), line(RICE, 18))
    named(chain, "S001", G, FORMULA, date(1985, 11, 30), at(11, 4, 2))
    chain.sell("S001", A, at(11, 4, 3), line(RICE, 6))  # 300 points more: 663 in all
    chain.redeem("S002", A, at(11, 5, 2), 500)
    # The tills' day reports for 5 November: S002 reads an X, then closes with a Z; S001 an X.
    print_report(chain, "S002", "X", at(11, 5, 3), DAY)
    print_report(chain, "S002", "Z", at(11, 5, 12), DAY)
    print_report(chain, "S001", "X", at(11, 5, 12, 30), DAY)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def report_chain(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleChain]:
    url, recorded = built_chain(request, tmp_path_factory.mktemp("reports"), Recorded, build)
    chain = ConsoleChain(url, recorded.rules)
    add_users(chain)
    add_user_at(url, "fin", "finance")
    yield chain


def report_app(chain: ConsoleChain, *, secure_cookies: bool = True) -> ASGIApp:
    return build_console(chain.url, chain.rules, KEY, secure_cookies=secure_cookies)

