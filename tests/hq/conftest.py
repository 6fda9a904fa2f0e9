"""The HQ suite uses the sync suite's PKI, broker and PostgreSQL fixtures."""

from tests.sync.conftest import broker, pki, postgres  # noqa: F401
