"""The backtest on PostgreSQL uses the sync suite's server fixture."""

from tests.sync.conftest import postgres  # noqa: F401
