"""The fault suites reuse the sync suite's PKI, broker and PostgreSQL fixtures (a real Mosquitto per
test)."""

from tests.sync.conftest import broker, pki, postgres  # noqa: F401  (pytest fixtures)
