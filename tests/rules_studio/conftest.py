"""The backtest on PostgreSQL uses the sync suite's server fixture; releases its PKI and broker."""

from tests.sync.conftest import broker, pki, postgres  # noqa: F401
