"""The fault suites reuse the sync suite's PKI and broker fixtures (a real Mosquitto per test)."""

from tests.sync.conftest import broker, pki  # noqa: F401  (pytest fixtures)
