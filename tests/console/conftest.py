"""The console suite's chain: built once per module (read-only tests), or fresh per test; the
sync suite's PKI and broker for the end-to-end tests."""

from __future__ import annotations

import pytest

from tests.console.chain import Chain, add_users, build_chain
from tests.console.report_chain import report_chain  # noqa: F401
from tests.sync.conftest import broker, pki, postgres  # noqa: F401


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    built = build_chain(tmp_path_factory.mktemp("chain"))
    add_users(built)
    return built


@pytest.fixture
def fresh_chain(tmp_path) -> Chain:
    built = build_chain(tmp_path)
    add_users(built)
    return built
